// depot-sqlite/drizzle: types of drizzle.js.
//
// drizzle-orm ships separate declarations for its ESM and CommonJS builds, and a table typed by one
// is not assignable to the classes of the other. This file is read as CommonJS (the package is), so
// its drizzle-orm imports ask for the ESM declarations explicitly: the ones an ES module or a
// bundler-resolved project sees when it imports drizzle-orm.
import type { BatchItem, BatchResponse } from 'drizzle-orm/batch' with { 'resolution-mode': 'import' }
import type { MigrationConfig } from 'drizzle-orm/migrator' with { 'resolution-mode': 'import' }
import type { ExtractTablesWithRelations, TablesRelationalConfig } from 'drizzle-orm/relations' with { 'resolution-mode': 'import' }
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core' with { 'resolution-mode': 'import' }
import type { DrizzleConfig } from 'drizzle-orm/utils' with { 'resolution-mode': 'import' }

import type { ExecuteResult, NativeDatabaseHandle } from '../index'

export type { MigrationConfig } from 'drizzle-orm/migrator' with { 'resolution-mode': 'import' }

/**
 * A Drizzle SQLite database (async) over a `NativeDatabaseHandle`. A write without `returning()`
 * and `db.run()` resolve to the handle's `ExecuteResult` (`changes`, `lastInsertRowId`, ...).
 *
 * - `batch([...])`: one `executeBatch` of the handle, atomic (all or nothing).
 * - `transaction(fn, { behavior })`: the handle's interactive transaction, committed when `fn`
 *   resolves, rolled back when it throws (`tx.rollback()` throws `TransactionRollbackError`);
 *   `tx.transaction(fn)` is a savepoint. Do not await `db` (not `tx`) calls inside `fn`: they wait
 *   for the transaction to end.
 */
export declare class DepotSQLiteDatabase<
  TFullSchema extends Record<string, unknown> = Record<string, never>,
  TSchema extends TablesRelationalConfig = ExtractTablesWithRelations<TFullSchema>,
> extends BaseSQLiteDatabase<'async', ExecuteResult, TFullSchema, TSchema> {
  /** The handle the database runs on. */
  readonly $client: NativeDatabaseHandle
  /** Runs the statements as one `executeBatch` of the handle: one trip, all or nothing. */
  batch<U extends BatchItem<'sqlite'>, T extends Readonly<[U, ...U[]]>>(batch: T): Promise<BatchResponse<T>>
}

/** A Drizzle database over `db`; `config`: drizzle's `{ schema, logger, casing, cache }`. */
export declare function drizzle<TSchema extends Record<string, unknown> = Record<string, never>>(
  db: NativeDatabaseHandle,
  config?: DrizzleConfig<TSchema>,
): DepotSQLiteDatabase<TSchema>

/**
 * Applies the drizzle-kit migrations of `config.migrationsFolder` not applied yet, in one
 * interactive transaction of the handle (every pending migration or none), recording them in
 * `__drizzle_migrations` (or `config.migrationsTable`) like drizzle's own SQLite migrators.
 * `db`: a database from `drizzle()`, or the handle itself.
 */
export declare function migrate(
  db: DepotSQLiteDatabase<any, any> | NativeDatabaseHandle,
  config: MigrationConfig,
): Promise<void>
