// depot-sqlite/kysely: a Kysely dialect over a NativeDatabaseHandle (kysely.js).
import type { DatabaseIntrospector, Dialect, DialectAdapter, Driver, Kysely, QueryCompiler } from 'kysely'

import type { NativeDatabaseHandle } from '../index'

export interface DepotDialectConfig {
  /**
   * The database: an open handle, or a function resolving to one (called once, when Kysely first
   * needs a connection). `db.destroy()` closes it.
   */
  database: NativeDatabaseHandle | (() => Promise<NativeDatabaseHandle>)
}

/**
 * Kysely's SQLite compiler, adapter and introspector over a NativeDatabaseHandle:
 * `new Kysely<DB>({ dialect: new DepotDialect({ database }) })`.
 *
 * - Transactions (`db.transaction()`, `db.startTransaction()`) are the handle's interactive
 *   transactions: other calls on the database wait until they end, so two never interleave.
 *   Do not await queries on `db` itself inside one: they wait behind it.
 * - Savepoints (`trx.savepoint(name)` etc.) are SAVEPOINT / ROLLBACK TO / RELEASE on it.
 * - `insertId` and `numAffectedRows` are bigints; `stream(chunkSize)` pulls `chunkSize` rows per
 *   round trip to the database's worker.
 * - Date parameters are bound as ISO 8601 text; rows come back as the handle reads them (INTEGER
 *   per its `intMode`, BLOB as Buffer).
 * - Errors are the handle's, with their `code`, unchanged.
 * - The Migrator runs each run's migrations in one transaction (SQLite's DDL is transactional).
 */
export declare class DepotDialect implements Dialect {
  constructor(config: DepotDialectConfig)
  createDriver(): Driver
  createQueryCompiler(): QueryCompiler
  createAdapter(): DialectAdapter
  createIntrospector(db: Kysely<any>): DatabaseIntrospector
}
