'use strict'
// depot-sqlite/prisma: a Prisma (>= 7) driver adapter factory for `provider = "sqlite"` over a
// NativeDatabaseHandle. Types: prisma.d.ts.
//
//   const prisma = new PrismaClient({ adapter: new PrismaDepot(handle) })
//
// What it does, and where it differs from Prisma's own SQLite adapters (better-sqlite3, libsql):
//
// - Statements go to the handle's `execute`; the handle queues calls itself, so queries from
//   concurrent tasks are sent at once and run in order on the database's worker.
// - A Prisma transaction is the handle's interactive transaction (`handle.beginTransaction()`),
//   never BEGIN/COMMIT text: its statements go through the Transaction object, and while it is open
//   every other call on the database waits, so two transactions from two tasks cannot interleave.
//   `usePhantomQuery` is true: Prisma calls `commit()`/`rollback()` and sends no COMMIT statement.
//   Nested transactions are SAVEPOINT / ROLLBACK TO / RELEASE on that Transaction object.
// - The handle reports no declared column types, so column types come from the values read (as
//   Prisma's adapters do for expressions): this needs the handle's INTEGERs to be told apart from
//   TEXT, i.e. `intMode: 'bigint'` (exact, recommended) or `'number'` (the default). `connect()`
//   refuses a handle opened with `intMode: 'string'`.
// - Arguments and values are converted the way Prisma's SQLite adapters do: DateTime as ISO 8601
//   text ending in `+00:00` (or unix milliseconds with `timestampFormat: 'unixepoch-ms'`), booleans
//   as 1/0, Decimal as a double, Bytes as BLOB, BigInt exact; INTEGER results as decimal strings,
//   BLOBs as Uint8Array.
// - Errors of the handle become DriverAdapterErrors shaped as Prisma's SQLite adapters shape them.

const { isHandle } = require('../lib/shared.js')
let utils
try {
  utils = require('@prisma/driver-adapter-utils')
} catch (error) {
  if (error?.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes('@prisma/driver-adapter-utils')) throw error
  throw new Error(
    "depot-sqlite/prisma needs the '@prisma/driver-adapter-utils' package (>= 7), which @prisma/client brings: npm install @prisma/client",
    { cause: error },
  )
}
const { ColumnTypeEnum, DriverAdapterError } = utils

const ADAPTER_NAME = 'depot-sqlite'
const TIMESTAMP_FORMATS = new Set(['iso8601', 'unixepoch-ms'])

// ---------------------------------------------------------------------------------------------
// Arguments

/** A DriverAdapterError for an argument Prisma sent that cannot be bound. */
function invalidInput(message) {
  return new DriverAdapterError({ kind: 'InvalidInputValue', message })
}

/** An integer as a number when it is safe, else as a bigint (exact either way). */
function integer(value, index) {
  const text = String(value).trim()
  if (!/^[+-]?\d+$/.test(text)) throw invalidInput(`argument ${index + 1}: ${JSON.stringify(text)} is not an integer`)
  const big = BigInt(text)
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big
}

/** A DateTime as the adapter stores it. */
function timestamp(value, format, index) {
  const date = value instanceof Date ? value : new Date(value)
  const time = date.getTime()
  if (Number.isNaN(time)) throw invalidInput(`argument ${index + 1}: ${JSON.stringify(String(value))} is not a valid DateTime`)
  return format === 'unixepoch-ms' ? time : date.toISOString().replace('Z', '+00:00')
}

/** Bytes from base64 text, a Uint8Array/Buffer, an ArrayBuffer or an array of octets. */
function bytes(value, index) {
  if (value instanceof Uint8Array) return value
  if (typeof value === 'string') return Buffer.from(value, 'base64')
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (Array.isArray(value)) return Uint8Array.from(value)
  throw invalidInput(`argument ${index + 1}: Bytes must be base64 text or a Uint8Array`)
}

/** A number from text, a number or a Decimal-like object (Decimal.js, Prisma.Decimal). */
function double(value, index) {
  const number = typeof value === 'number' ? value : Number.parseFloat(String(value))
  if (Number.isNaN(number) && String(value).trim() !== 'NaN') {
    throw invalidInput(`argument ${index + 1}: ${JSON.stringify(String(value))} is not a number`)
  }
  return number
}

/**
 * One of Prisma's arguments as the handle binds it, per its `argTypes` entry (`scalarType`):
 * int/bigint exact (a bigint beyond 2^53), float/decimal as a double (SQLite has no decimal type,
 * as with Prisma's own SQLite adapters), boolean as 1/0, datetime per `timestampFormat`, bytes as
 * a BLOB, json as text; anything else (string, enum, uuid) as it comes.
 */
function bindArg(arg, argType, format, index) {
  if (arg === null || arg === undefined) return null
  const scalarType = argType?.scalarType
  if (typeof arg === 'boolean') return arg ? 1 : 0
  if (arg instanceof Date) return timestamp(arg, format, index)
  switch (scalarType) {
    case 'int':
    case 'bigint':
      if (typeof arg === 'bigint') return arg
      if (typeof arg === 'number') return Number.isInteger(arg) ? arg : Math.trunc(arg)
      return integer(arg, index)
    case 'float':
    case 'decimal':
      return double(arg, index)
    case 'boolean':
      if (typeof arg === 'string') return arg === 'true' || arg === '1' ? 1 : 0
      return arg ? 1 : 0
    case 'datetime':
      return timestamp(arg, format, index)
    case 'bytes':
      return bytes(arg, index)
    case 'json':
      return typeof arg === 'string' ? arg : JSON.stringify(arg)
    default:
      break
  }
  switch (typeof arg) {
    case 'string':
    case 'number':
    case 'bigint':
      return arg
    default:
      if (arg instanceof Uint8Array) return arg
      if (arg instanceof ArrayBuffer || ArrayBuffer.isView(arg)) return bytes(arg, index)
      // Decimal.js objects and the like bind as their text; plain objects and arrays as JSON.
      if (typeof arg === 'object' && typeof arg.toFixed === 'function') return String(arg)
      return JSON.stringify(arg)
  }
}

function bindArgs(query, format) {
  const { args = [], argTypes = [] } = query
  const out = new Array(args.length)
  for (let i = 0; i < args.length; i++) out[i] = bindArg(args[i], argTypes[i], format, i)
  return out
}

// ---------------------------------------------------------------------------------------------
// Results

/**
 * A column's type from its first non-NULL value (the handle reports no declared types): an INTEGER
 * (a bigint under `intMode: 'bigint'`) is Int64, a REAL is Double, an integral number under
 * `intMode: 'number'` is UnknownNumber (INTEGER or REAL, SQLite cannot say), TEXT is Text, a BLOB
 * is Bytes. A column of NULLs only is Int32, as in Prisma's SQLite adapters.
 */
function columnType(value) {
  switch (typeof value) {
    case 'bigint':
      return ColumnTypeEnum.Int64
    case 'number':
      return Number.isInteger(value) ? ColumnTypeEnum.UnknownNumber : ColumnTypeEnum.Double
    case 'string':
      return ColumnTypeEnum.Text
    default:
      return value instanceof Uint8Array ? ColumnTypeEnum.Bytes : ColumnTypeEnum.Int32
  }
}

function columnTypes(columns, rows) {
  const types = new Array(columns.length)
  for (let c = 0; c < columns.length; c++) {
    let type = ColumnTypeEnum.Int32
    for (let r = 0; r < rows.length; r++) {
      const value = rows[r][c]
      if (value !== null && value !== undefined) {
        type = columnType(value)
        break
      }
    }
    types[c] = type
  }
  return types
}

/** A value as Prisma reads it: INTEGER (bigint) as decimal text, BLOB as a plain Uint8Array. */
function resultValue(value) {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  return value ?? null
}

function resultSet(result) {
  const { columns, rows, lastInsertRowId } = result
  const out = {
    columnNames: columns,
    columnTypes: columnTypes(columns, rows),
    rows: rows.map((row) => row.map(resultValue)),
  }
  if (lastInsertRowId !== null && lastInsertRowId !== undefined) out.lastInsertId = String(lastInsertRowId)
  return out
}

// ---------------------------------------------------------------------------------------------
// Errors

/** SQLite's primary result codes, by name. */
const PRIMARY_CODES = {
  ERROR: 1, INTERNAL: 2, PERM: 3, ABORT: 4, BUSY: 5, LOCKED: 6, NOMEM: 7, READONLY: 8, INTERRUPT: 9,
  IOERR: 10, CORRUPT: 11, NOTFOUND: 12, FULL: 13, CANTOPEN: 14, PROTOCOL: 15, EMPTY: 16, SCHEMA: 17,
  TOOBIG: 18, CONSTRAINT: 19, MISMATCH: 20, MISUSE: 21, NOLFS: 22, AUTH: 23, FORMAT: 24, RANGE: 25,
  NOTADB: 26, NOTICE: 27, WARNING: 28,
}

/** The extended result codes an application meets, by name; others fall back to their primary code. */
const EXTENDED_CODES = {
  ERROR_MISSING_COLLSEQ: 257, ERROR_RETRY: 513, ERROR_SNAPSHOT: 769,
  ABORT_ROLLBACK: 516,
  BUSY_RECOVERY: 261, BUSY_SNAPSHOT: 517, BUSY_TIMEOUT: 773,
  LOCKED_SHAREDCACHE: 262, LOCKED_VTAB: 518,
  READONLY_RECOVERY: 264, READONLY_CANTLOCK: 520, READONLY_ROLLBACK: 776, READONLY_DBMOVED: 1032,
  READONLY_CANTINIT: 1288, READONLY_DIRECTORY: 1544,
  CORRUPT_VTAB: 267, CORRUPT_SEQUENCE: 523, CORRUPT_INDEX: 779,
  CONSTRAINT_CHECK: 275, CONSTRAINT_COMMITHOOK: 531, CONSTRAINT_FOREIGNKEY: 787, CONSTRAINT_FUNCTION: 1043,
  CONSTRAINT_NOTNULL: 1299, CONSTRAINT_PRIMARYKEY: 1555, CONSTRAINT_TRIGGER: 1811, CONSTRAINT_UNIQUE: 2067,
  CONSTRAINT_VTAB: 2323, CONSTRAINT_ROWID: 2579, CONSTRAINT_PINNED: 2835, CONSTRAINT_DATATYPE: 3091,
  AUTH_USER: 279,
}

/** The extended result code of an `SQLITE_*` error code name (1, SQLITE_ERROR, when unknown). */
function extendedCode(code) {
  const name = code.slice('SQLITE_'.length)
  if (name in EXTENDED_CODES) return EXTENDED_CODES[name]
  const number = /(\d+)$/.exec(name)
  if (number) return Number(number[1])
  const primary = name.split('_')[0]
  return PRIMARY_CODES[primary] ?? 1
}

/** The column list of "UNIQUE constraint failed: t.a, t.b" as field names (and the table). */
function constraintColumns(message) {
  const columns = message.split('constraint failed: ').at(1)?.split(', ')
  if (columns === undefined) return {}
  const fields = columns.map((column) => column.split('.').pop())
  const table = columns[0].split('.').slice(0, -1).join('.') || undefined
  return { fields, table }
}

/** The MappedError of an `SQLITE_*` error, as Prisma's SQLite adapters map them. */
function mapSqliteError(code, message) {
  const extended = extendedCode(code)
  switch (extended) {
    case 2067: // SQLITE_CONSTRAINT_UNIQUE
    case 1555: {
      // SQLITE_CONSTRAINT_PRIMARYKEY
      const { fields, table } = constraintColumns(message)
      return { kind: 'UniqueConstraintViolation', constraint: fields ? { fields } : undefined, table }
    }
    case 1299: {
      // SQLITE_CONSTRAINT_NOTNULL
      const { fields } = constraintColumns(message)
      return { kind: 'NullConstraintViolation', constraint: fields ? { fields } : undefined }
    }
    case 787: // SQLITE_CONSTRAINT_FOREIGNKEY
    case 1811: // SQLITE_CONSTRAINT_TRIGGER
      return { kind: 'ForeignKeyConstraintViolation', constraint: { foreignKey: {} } }
    default:
      break
  }
  if ((extended & 0xff) === PRIMARY_CODES.BUSY) return { kind: 'SocketTimeout' }
  if (message.startsWith('no such table')) return { kind: 'TableDoesNotExist', table: message.split(': ').at(1) }
  if (message.startsWith('no such column')) return { kind: 'ColumnNotFound', column: message.split(': ').at(1) }
  if (message.includes('has no column named ')) {
    return { kind: 'ColumnNotFound', column: message.split('has no column named ').at(1) }
  }
  return { kind: 'sqlite', extendedCode: extended, message }
}

/**
 * The handle's error as a DriverAdapterError: `SQLITE_*` errors as Prisma's SQLite adapters map
 * them, and the depot errors that have a Prisma counterpart. Other errors (`ERR_STORE_*`,
 * `ERR_FENCED`, ...) stay as they are, with their `code`: Prisma reports them as they are.
 */
function convertError(error, inTransaction) {
  if (error instanceof DriverAdapterError) return error
  const code = error?.code
  const message = typeof error?.message === 'string' ? error.message : String(error)
  if (typeof code !== 'string') return error
  let mapped
  if (code.startsWith('SQLITE_')) {
    mapped = mapSqliteError(code, message)
  } else {
    switch (code) {
      case 'ERR_CLOSED':
        mapped = inTransaction ? { kind: 'TransactionAlreadyClosed', cause: message } : { kind: 'ConnectionClosed' }
        break
      case 'ERR_TIMEOUT':
        mapped = { kind: 'SocketTimeout' }
        break
      case 'ERR_INTEGER_OVERFLOW':
        mapped = { kind: 'ValueOutOfRange', cause: message }
        break
      case 'ERR_INVALID_ARGUMENT':
        mapped = { kind: 'InvalidInputValue', message }
        break
      default:
        return error
    }
  }
  const converted = new DriverAdapterError({ ...mapped, originalCode: code, originalMessage: message })
  converted.stack = error.stack
  return converted
}

// ---------------------------------------------------------------------------------------------
// Adapter

/** A savepoint name as an SQL identifier: double-quoted, inner quotes doubled. */
function savepointName(name) {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw invalidInput('a savepoint name must be a non-empty string without NUL characters')
  }
  return `"${name.replaceAll('"', '""')}"`
}

/** queryRaw/executeRaw over a `Queries` object: the handle, or one of its Transactions. */
class DepotQueryable {
  provider = 'sqlite'
  adapterName = ADAPTER_NAME
  #options

  constructor(options) {
    this.#options = options
  }

  /** Where statements go; throws when that is no longer possible. */
  _target() {
    throw new Error('not implemented')
  }

  /** Whether errors come from a transaction (ERR_CLOSED then means the transaction ended). */
  get _inTransaction() {
    return false
  }

  async _execute(query) {
    const target = this._target()
    try {
      return await target.execute(query.sql, bindArgs(query, this.#options.timestampFormat))
    } catch (error) {
      throw convertError(error, this._inTransaction)
    }
  }

  async queryRaw(query) {
    return resultSet(await this._execute(query))
  }

  async executeRaw(query) {
    return (await this._execute(query)).changes
  }
}

/** A Prisma transaction: the handle's interactive transaction. */
class DepotTransaction extends DepotQueryable {
  options = Object.freeze({ usePhantomQuery: true })
  #tx

  constructor(tx, options) {
    super(options)
    this.#tx = tx
  }

  _target() {
    return this.#tx
  }

  get _inTransaction() {
    return true
  }

  async commit() {
    try {
      await this.#tx.commit()
    } catch (error) {
      throw convertError(error, true)
    }
  }

  /**
   * Rolls back. Does nothing when the transaction has already ended (timed out, or its commit
   * failed): Prisma rolls back after such failures, and the error that explains them is the one
   * to report.
   */
  async rollback() {
    if (!this.#tx.active) return
    try {
      await this.#tx.rollback()
    } catch (error) {
      if (error?.code === 'ERR_CLOSED') return
      throw convertError(error, true)
    }
  }

  async #savepoint(command, name) {
    try {
      await this.#tx.exec(`${command} ${savepointName(name)}`)
    } catch (error) {
      throw convertError(error, true)
    }
  }

  createSavepoint(name) {
    return this.#savepoint('SAVEPOINT', name)
  }

  rollbackToSavepoint(name) {
    return this.#savepoint('ROLLBACK TO', name)
  }

  releaseSavepoint(name) {
    return this.#savepoint('RELEASE', name)
  }
}

/** The adapter `connect()` resolves: one handle, shared by every query of a PrismaClient. */
class DepotAdapter extends DepotQueryable {
  #db
  #owned
  #options
  #disposed = false

  constructor(db, owned, options) {
    super(options)
    this.#db = db
    this.#owned = owned
    this.#options = options
  }

  _target() {
    if (this.#disposed) throw new DriverAdapterError({ kind: 'ConnectionClosed' })
    return this.#db
  }

  async executeScript(script) {
    const db = this._target()
    try {
      await db.executeScript(script)
    } catch (error) {
      throw convertError(error, false)
    }
  }

  /**
   * Begins the handle's interactive transaction. Every isolation level but SERIALIZABLE is refused,
   * as by Prisma's SQLite adapters (a transaction on the handle is the only one running on its
   * database: serializable).
   */
  async startTransaction(isolationLevel) {
    if (isolationLevel !== undefined && isolationLevel !== 'SERIALIZABLE') {
      throw new DriverAdapterError({ kind: 'InvalidIsolationLevel', level: isolationLevel })
    }
    const db = this._target()
    let tx
    try {
      tx = await db.beginTransaction(this.#options.transactionBehavior ? { behavior: this.#options.transactionBehavior } : undefined)
    } catch (error) {
      throw convertError(error, false)
    }
    return new DepotTransaction(tx, this.#options)
  }

  getConnectionInfo() {
    return { supportsRelationJoins: false }
  }

  /**
   * Ends this connection: later calls reject with ConnectionClosed. The handle is closed only when
   * the adapter opened it (a factory function was given); a handle passed in stays open.
   */
  async dispose() {
    if (this.#disposed) return
    this.#disposed = true
    if (this.#owned) await this.#db.close()
  }
}

/** Throws when the handle reads INTEGERs as text (`intMode: 'string'`), which the adapter cannot type. */
async function checkIntMode(db) {
  let value
  try {
    value = (await db.execute('SELECT 1')).rows[0][0]
  } catch (error) {
    throw convertError(error, false)
  }
  if (typeof value === 'string') {
    throw new TypeError(
      "depot-sqlite/prisma: the handle was opened with intMode: 'string', which reads INTEGERs as text the adapter cannot tell from TEXT; open it with intMode: 'bigint' (or 'number')",
    )
  }
}

/**
 * The factory Prisma takes as `adapter`: `new PrismaClient({ adapter: new PrismaDepot(handle) })`.
 * `handleOrFactory` is an open NativeDatabaseHandle (shared, never closed by the adapter) or a
 * function resolving to one (called once per `connect()`; the adapter owns what it returns and
 * closes it on `dispose()`).
 */
class PrismaDepot {
  provider = 'sqlite'
  adapterName = ADAPTER_NAME
  #source
  #options

  constructor(handleOrFactory, options = {}) {
    if (typeof handleOrFactory !== 'function' && !isHandle(handleOrFactory)) {
      throw new TypeError('PrismaDepot needs a NativeDatabaseHandle, or a function resolving to one')
    }
    if (options === null || typeof options !== 'object') throw new TypeError('PrismaDepot: options must be an object')
    const timestampFormat = options.timestampFormat ?? 'iso8601'
    if (!TIMESTAMP_FORMATS.has(timestampFormat)) {
      throw new TypeError(`PrismaDepot: timestampFormat must be 'iso8601' or 'unixepoch-ms', not ${JSON.stringify(timestampFormat)}`)
    }
    const transactionBehavior = options.transactionBehavior
    if (transactionBehavior !== undefined && !['deferred', 'immediate', 'exclusive'].includes(transactionBehavior)) {
      throw new TypeError("PrismaDepot: transactionBehavior must be 'deferred', 'immediate' or 'exclusive'")
    }
    this.#source = handleOrFactory
    this.#options = Object.freeze({ timestampFormat, transactionBehavior })
  }

  async connect() {
    const owned = typeof this.#source === 'function'
    const db = owned ? await this.#source() : this.#source
    if (!isHandle(db)) throw new TypeError('PrismaDepot: the factory must resolve to a NativeDatabaseHandle')
    try {
      await checkIntMode(db)
    } catch (error) {
      if (owned) await db.close().catch(() => {})
      throw error
    }
    return new DepotAdapter(db, owned, this.#options)
  }
}

/** `new PrismaDepot(handle, options)`, as a function. */
function prismaAdapter(handleOrFactory, options) {
  return new PrismaDepot(handleOrFactory, options)
}

module.exports = { PrismaDepot, prismaAdapter }
