'use strict'
// depot-sqlite/kysely: a Kysely dialect over a NativeDatabaseHandle. Types: kysely.d.ts.
//
//   const db = new Kysely({ dialect: new DepotDialect({ database: handle }) })
//
// SQL is compiled by Kysely's own SQLite compiler, and introspected by its SQLite introspector. What
// differs from Kysely's SqliteDialect is the driver:
//
// - Connections are cheap views of the one handle, not a single connection behind a mutex: the
//   handle queues calls itself, so queries from concurrent tasks are sent at once and run in order.
// - A Kysely transaction is the handle's interactive transaction (`handle.beginTransaction()`), never
//   BEGIN text: while it is open the handle keeps every other call waiting, so two transactions from
//   two tasks cannot interleave. The connection that began it sends its queries through the
//   Transaction object, which is the only way past that wait.
// - Savepoints are SAVEPOINT / ROLLBACK TO / RELEASE statements on that Transaction object.
// - Migrations run in one interactive transaction (SQLite's DDL is transactional): all or nothing,
//   and no other call on the database runs in between.

let kysely
try {
  kysely = require('kysely')
} catch (error) {
  if (error?.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes("'kysely'")) throw error
  throw new Error("depot-sqlite/kysely needs the 'kysely' package (npm install kysely)", { cause: error })
}
const { codedError, isHandle, quoteIdentifier, rowMaker } = require('../lib/shared.js')
const { SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } = kysely

/** Rows per chunk when Kysely streams without saying (the default of its `stream()`). */
const DEFAULT_CHUNK_SIZE = 100

/** Statements Kysely builds that report affected rows even when they change none. */
const WRITE_KINDS = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode'])

/**
 * Kysely's parameters as the handle binds them. A Date becomes ISO 8601 text (the handle binds no
 * objects but Buffer/Uint8Array); everything else goes through as is, for the handle to bind or
 * refuse with ERR_INVALID_ARGUMENT. The array is copied only when a Date is in it.
 */
function bindable(parameters) {
  let out = parameters
  for (let i = 0; i < parameters.length; i++) {
    const value = parameters[i]
    if (!(value instanceof Date)) continue
    const time = value.getTime()
    if (Number.isNaN(time)) throw codedError('ERR_INVALID_ARGUMENT', `parameter ${i + 1}: an invalid Date`)
    if (out === parameters) out = parameters.slice()
    out[i] = value.toISOString()
  }
  return out
}

/**
 * The handle's per-call options from the ones Kysely passes. Kysely 0.28 passes none to
 * `executeQuery`/`streamQuery` (its DatabaseConnection has no options parameter, so no query can
 * be aborted through it); Kysely 0.29 passes `{ signal }`, which the handle then honours: a queued
 * call never runs, a running statement is interrupted (ERR_ABORTED).
 */
function callOptions(options) {
  const signal = options?.signal
  return signal ? { signal } : undefined
}

/** The handle's `{ columns, rows, changes, lastInsertRowId }` as Kysely's QueryResult. */
function queryResult(result, query) {
  const { columns, rows, changes, lastInsertRowId } = result
  const objects = rows.map(rowMaker(columns))
  const kind = query?.kind
  // Kysely's insert/update/delete/merge always report a count (0n included); raw SQL reports one
  // when it is not a query (no result columns) or when it changed rows (`INSERT ... RETURNING`).
  const wrote = WRITE_KINDS.has(kind) || (kind !== 'SelectQueryNode' && (columns.length === 0 || changes > 0))
  const out = { rows: objects }
  if (wrote) out.numAffectedRows = BigInt(changes)
  // The handle gives the rowid only when this statement inserted one: a number, a bigint or a
  // decimal string, per its intMode; BigInt() takes each exactly.
  if (lastInsertRowId !== null && lastInsertRowId !== undefined) out.insertId = BigInt(lastInsertRowId)
  return out
}

/**
 * A Kysely DatabaseConnection: the handle, or, between beginTransaction and its end, the handle's
 * Transaction object.
 */
class DepotConnection {
  #db
  #tx = null

  constructor(db) {
    this.#db = db
  }

  /** Where this connection's statements go. */
  #target() {
    return this.#tx ?? this.#db
  }

  async executeQuery(compiledQuery, options) {
    const { sql, parameters, query } = compiledQuery
    const result = await this.#target().execute(sql, bindable(parameters), callOptions(options))
    return queryResult(result, query)
  }

  /**
   * Streams through the handle's cursor (`iterate`), `chunkSize` rows per round trip to the worker
   * and per chunk handed to Kysely. Ending the loop early closes the cursor.
   */
  async *streamQuery(compiledQuery, chunkSize, options) {
    const size = chunkSize ?? DEFAULT_CHUNK_SIZE
    if (!Number.isInteger(size) || size < 1) throw codedError('ERR_INVALID_ARGUMENT', 'chunkSize must be a positive integer')
    const { sql, parameters } = compiledQuery
    const iterateOptions = { ...callOptions(options), chunkRows: size }
    let chunk = []
    for await (const row of this.#target().iterate(sql, bindable(parameters), iterateOptions)) {
      chunk.push(row)
      if (chunk.length === size) {
        yield { rows: chunk }
        chunk = []
      }
    }
    if (chunk.length > 0) yield { rows: chunk }
  }

  /** Begins the handle's interactive transaction; this connection's statements then go to it. */
  async begin() {
    if (this.#tx !== null) throw codedError('ERR_INVALID_ARGUMENT', 'this connection already has a transaction open')
    this.#tx = await this.#db.beginTransaction()
  }

  /** The open transaction, handed over to be ended: the connection goes back to the handle. */
  #take() {
    const tx = this.#tx
    this.#tx = null
    return tx
  }

  async commit() {
    const tx = this.#take()
    if (tx === null) throw codedError('ERR_CLOSED', 'no transaction is open on this connection')
    await tx.commit()
  }

  /**
   * Rolls back. Quietly does nothing when there is nothing left to roll back (the transaction had
   * timed out, or its commit failed): Kysely rolls back after such failures and would otherwise
   * replace the error that explains them.
   */
  async rollback() {
    const tx = this.#take()
    if (tx !== null && tx.active) await tx.rollback()
  }

  /** `SAVEPOINT name`, `ROLLBACK TO name` or `RELEASE name` on the open transaction. */
  async savepointCommand(command, name) {
    if (this.#tx === null) throw codedError('ERR_CLOSED', `${command} needs an open transaction`)
    await this.#tx.exec(`${command} ${quoteIdentifier(name, 'a savepoint name')}`)
  }

  /** Whether a transaction is open, for the driver's release check. */
  get inTransaction() {
    return this.#tx !== null
  }
}

/**
 * The driver: hands out connections over one handle (reused through a free list), and runs
 * transactions and savepoints on them.
 */
class DepotDriver {
  #config
  #db = null
  #idle = []

  constructor(config) {
    this.#config = config
  }

  async init() {
    const { database } = this.#config
    const db = typeof database === 'function' ? await database() : database
    if (!isHandle(db)) {
      throw new TypeError('DepotDialect: `database` must be a NativeDatabaseHandle (or a function resolving to one)')
    }
    this.#db = db
  }

  async acquireConnection() {
    return this.#idle.pop() ?? new DepotConnection(this.#db)
  }

  async releaseConnection(connection) {
    // Kysely ends every transaction before it releases the connection; should one still be open,
    // leaving it would keep every other call on the database waiting forever.
    if (connection.inTransaction) await connection.rollback().catch(() => {})
    this.#idle.push(connection)
  }

  // Kysely's settings (isolation level, access mode) have no counterpart: a transaction on the
  // handle is serializable, the only one running on its database, and read-write.
  async beginTransaction(connection, _settings) {
    await connection.begin()
  }

  async commitTransaction(connection) {
    await connection.commit()
  }

  async rollbackTransaction(connection) {
    await connection.rollback()
  }

  async savepoint(connection, savepointName) {
    await connection.savepointCommand('SAVEPOINT', savepointName)
  }

  async rollbackToSavepoint(connection, savepointName) {
    await connection.savepointCommand('ROLLBACK TO', savepointName)
  }

  async releaseSavepoint(connection, savepointName) {
    await connection.savepointCommand('RELEASE', savepointName)
  }

  /** Closes the handle, as Kysely's SqliteDialect closes its database on `db.destroy()`. */
  async destroy() {
    this.#idle = []
    const db = this.#db
    this.#db = null
    if (db !== null) await db.close()
  }
}

/** An async lock: holders run one at a time, in arrival order. */
class Lock {
  #tail = Promise.resolve()
  #release = null

  async acquire() {
    const previous = this.#tail
    let release
    this.#tail = new Promise((resolve) => {
      release = resolve
    })
    await previous
    this.#release = release
  }

  release() {
    const release = this.#release
    this.#release = null
    release?.()
  }
}

/**
 * Kysely's SQLite adapter, with DDL in transactions. SQLite's DDL is transactional, so Kysely's
 * Migrator runs all the migrations of a run in one interactive transaction: a failing migration
 * leaves the schema as it was, and no other call on the database runs in between (that is the
 * lock between migrators sharing a database). With `disableTransactions: true`, the migration
 * lock below still keeps the migrators of one Kysely instance apart, as SqliteDialect's single
 * connection does.
 */
class DepotAdapter extends SqliteAdapter {
  #lock = new Lock()

  get supportsTransactionalDdl() {
    return true
  }

  async acquireMigrationLock() {
    await this.#lock.acquire()
  }

  async releaseMigrationLock() {
    this.#lock.release()
  }
}

/** `new Kysely({ dialect: new DepotDialect({ database }) })`. */
class DepotDialect {
  #config

  constructor(config) {
    if (config === null || typeof config !== 'object' || config.database === undefined || config.database === null) {
      throw new TypeError('DepotDialect needs { database }: a NativeDatabaseHandle or a function resolving to one')
    }
    this.#config = Object.freeze({ database: config.database })
  }

  createDriver() {
    return new DepotDriver(this.#config)
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler()
  }

  createAdapter() {
    return new DepotAdapter()
  }

  createIntrospector(db) {
    return new SqliteIntrospector(db)
  }
}

module.exports = { DepotDialect }
