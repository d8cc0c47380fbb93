// depot-sqlite/drizzle: a Drizzle ORM SQLite database (async) over a NativeDatabaseHandle, and a
// migrator for drizzle-kit's migration folders. Types: drizzle.d.ts.
//
// Statements go through drizzle-orm's async proxy session (sqlite-proxy), fed by the handle's
// `execute`, with three things of our own:
//
// - `db.batch([...])` is one `executeBatch` of the handle: one trip, all or nothing.
// - `db.transaction(fn)` runs on the handle's interactive transaction (`handle.transaction`):
//   every statement of `fn` goes through that Transaction object, pinned to the worker, so calls
//   made elsewhere on the database wait and never land inside it. Nested `tx.transaction(fn)` is
//   the Transaction's savepoint (`htx.transaction`). No BEGIN text is ever sent as a statement.
// - `migrate(db, { migrationsFolder })` applies the folder in one interactive transaction.
'use strict'

let drizzleOrm
let sqliteCore
let proxySession
let migrator
try {
  drizzleOrm = require('drizzle-orm')
  sqliteCore = require('drizzle-orm/sqlite-core')
  proxySession = require('drizzle-orm/sqlite-proxy/session')
  migrator = require('drizzle-orm/migrator')
} catch (error) {
  const missing = new Error('depot-sqlite/drizzle needs drizzle-orm (>= 0.45): npm install drizzle-orm')
  missing.cause = error
  throw missing
}

const { isHandle, quoteIdentifier } = require('../lib/shared.js')
const { entityKind, DefaultLogger, extractTablesRelationalConfig, createTableRelationsHelpers } = drizzleOrm
const { BaseSQLiteDatabase, SQLiteAsyncDialect, SQLiteTransaction } = sqliteCore
const { SQLiteRemoteSession } = proxySession
const { readMigrationFiles } = migrator

/**
 * What the proxy session expects back for one statement, from the handle's `ExecuteResult`:
 * 'all'/'values' every row (arrays), 'get' the first row array (or undefined), 'run' the whole
 * result (`{ columns, rows, changes, lastInsertRowId }`, what `db.run()` and a write without
 * `returning()` resolve to).
 */
function shape(result, method) {
  switch (method) {
    case 'get':
      return { rows: result.rows[0] }
    case 'run':
      return result
    default:
      return { rows: result.rows }
  }
}

/** The proxy callbacks that run statements on `queries` (the handle or one of its transactions). */
function callbacks(queries) {
  return {
    one: async (sql, params, method) => shape(await queries.execute(sql, params), method),
    many: async (statements) => {
      const results = await queries.executeBatch(statements.map(({ sql, params }) => ({ sql, params })))
      return results.map((result, i) => shape(result, statements[i].method))
    },
  }
}

/**
 * The proxy session over one `Queries` object: the handle (`inTransaction` false) or a handle
 * Transaction (true). Transactions open on `queries` itself, never by sending BEGIN.
 */
class DepotSession extends SQLiteRemoteSession {
  static [entityKind] = 'DepotSQLiteSession'

  constructor(queries, inTransaction, dialect, schema, options) {
    const { one, many } = callbacks(queries)
    super(one, dialect, schema, many, options)
    this.queries = queries
    this.inTransaction = inTransaction
    this.options = options
  }

  // A 'get' statement of a batch answers `{ rows: firstRow }` (what the prepared queries of the
  // proxy read); the raw `db.get(sql)` of a batch reads the same.
  extractRawGetValueFromBatchResult(result) {
    return result.rows
  }

  /**
   * `fn(tx)` in the handle's interactive transaction (on the handle) or in a savepoint of it (on a
   * Transaction): committed or released when `fn` resolves, rolled back when it throws (drizzle's
   * `tx.rollback()` throws too).
   */
  transaction(fn, config, nestedIndex = 0) {
    const body = (htx) => {
      const session = new DepotSession(htx, true, this.dialect, this.schema, this.options)
      return fn(new DepotTransaction('async', this.dialect, session, this.schema, nestedIndex))
    }
    if (this.inTransaction) return this.queries.transaction(body)
    return this.queries.transaction(body, config?.behavior ? { behavior: config.behavior } : undefined)
  }
}

/** Drizzle's `tx`: its statements run on the handle's Transaction; nested = a savepoint. */
class DepotTransaction extends SQLiteTransaction {
  static [entityKind] = 'DepotSQLiteTransaction'

  transaction(fn) {
    return this.session.transaction(fn, undefined, this.nestedIndex + 1)
  }
}

/** The database `drizzle()` returns. */
class DepotSQLiteDatabase extends BaseSQLiteDatabase {
  static [entityKind] = 'DepotSQLiteDatabase'

  /** Runs the statements as one `executeBatch` of the handle: one trip, all or nothing. */
  async batch(statements) {
    return this.session.batch(statements)
  }
}

/**
 * A Drizzle SQLite database (async) over `handle`. `config`: drizzle's `{ schema, logger, casing,
 * cache }`.
 */
function drizzle(handle, config = {}) {
  if (!isHandle(handle)) {
    throw new TypeError('drizzle(db) needs a NativeDatabaseHandle (from depot.openDatabase)')
  }
  const dialect = new SQLiteAsyncDialect({ casing: config.casing })
  const logger = config.logger === true ? new DefaultLogger() : config.logger || undefined
  let schema
  if (config.schema) {
    const relational = extractTablesRelationalConfig(config.schema, createTableRelationsHelpers)
    schema = { fullSchema: config.schema, schema: relational.tables, tableNamesMap: relational.tableNamesMap }
  }
  const session = new DepotSession(handle, false, dialect, schema, { logger, cache: config.cache })
  const db = new DepotSQLiteDatabase('async', dialect, session, schema)
  db.$client = handle
  if (config.cache) {
    db.$cache = config.cache
    db.$cache.invalidate = config.cache.onMutate
  }
  return db
}

/**
 * Applies the drizzle-kit migrations of `config.migrationsFolder` not applied yet, all in one
 * interactive transaction of the handle: every pending migration or none. Applied migrations are
 * recorded in `__drizzle_migrations` (or `config.migrationsTable`), the table and rule drizzle's
 * own SQLite migrators use: a migration is pending when its journal time (`when`) is later than the
 * newest `created_at` recorded.
 */
async function migrate(db, config) {
  const handle = isHandle(db) ? db : db?.$client
  if (!isHandle(handle)) {
    throw new TypeError('migrate(db) needs a database made by drizzle() of depot-sqlite/drizzle, or a NativeDatabaseHandle')
  }
  if (config === null || typeof config !== 'object' || typeof config.migrationsFolder !== 'string') {
    throw new TypeError('migrate(db, config) needs config.migrationsFolder')
  }
  const migrations = readMigrationFiles(config)
  const table = quoteIdentifier(config.migrationsTable ?? '__drizzle_migrations', 'config.migrationsTable')
  await handle.transaction(
    async (tx) => {
      await tx.exec(`CREATE TABLE IF NOT EXISTS ${table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)`)
      const { rows } = await tx.query(`SELECT id, hash, created_at FROM ${table} ORDER BY created_at DESC LIMIT 1`)
      const newest = rows.length === 0 ? undefined : Number(rows[0][2])
      for (const migration of migrations) {
        if (newest !== undefined && !(newest < migration.folderMillis)) continue
        for (const statement of migration.sql) {
          // exec: a part may hold several `;`-separated statements (drizzle-kit without breakpoints).
          if (statement.trim() !== '') await tx.exec(statement)
        }
        await tx.run(`INSERT INTO ${table} ("hash", "created_at") VALUES (?, ?)`, [migration.hash, migration.folderMillis])
      }
    },
    { behavior: 'immediate' },
  )
}

module.exports = { drizzle, migrate, DepotSQLiteDatabase }
