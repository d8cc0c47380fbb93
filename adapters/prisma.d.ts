// depot-sqlite/prisma: a Prisma (>= 7) driver adapter for SQLite over a NativeDatabaseHandle (prisma.js).
import type {
  ConnectionInfo,
  IsolationLevel,
  SqlDriverAdapter,
  SqlDriverAdapterFactory,
  SqlQuery,
  SqlResultSet,
  Transaction,
  TransactionOptions,
} from '@prisma/driver-adapter-utils'

import type { NativeDatabaseHandle } from '../index'

export interface PrismaDepotOptions {
  /**
   * How DateTime values are written, as in Prisma's own SQLite adapters: `'iso8601'` (default,
   * text such as `2024-01-02T03:04:05.678+00:00`) or `'unixepoch-ms'` (an INTEGER of milliseconds,
   * what Prisma's former built-in SQLite engine wrote). Either is read back.
   */
  timestampFormat?: 'iso8601' | 'unixepoch-ms'
  /** SQLite's BEGIN mode of Prisma's transactions (default: the handle's, `'deferred'`). */
  transactionBehavior?: 'deferred' | 'immediate' | 'exclusive'
}

/**
 * An open database handle (shared: the adapter never closes it), or a function resolving to one
 * (called on each `connect()`; the adapter owns the handle and `dispose()` closes it).
 */
export type PrismaDepotSource = NativeDatabaseHandle | (() => NativeDatabaseHandle | Promise<NativeDatabaseHandle>)

/** A Prisma transaction: the handle's interactive transaction. */
export interface PrismaDepotTransaction extends Transaction {
  /** `{ usePhantomQuery: true }`: Prisma sends no COMMIT/ROLLBACK text; `commit()`/`rollback()` end it. */
  readonly options: TransactionOptions
  createSavepoint(name: string): Promise<void>
  rollbackToSavepoint(name: string): Promise<void>
  releaseSavepoint(name: string): Promise<void>
}

/** What `connect()` resolves to: Prisma's connection to one handle. */
export interface PrismaDepotAdapter extends SqlDriverAdapter {
  readonly provider: 'sqlite'
  readonly adapterName: 'depot-sqlite'
  queryRaw(query: SqlQuery): Promise<SqlResultSet>
  executeRaw(query: SqlQuery): Promise<number>
  /** Runs `;`-separated statements (split by SQLite itself); the first error stops it. */
  executeScript(script: string): Promise<void>
  /** Only `'SERIALIZABLE'` (or none) is accepted, as by Prisma's SQLite adapters. */
  startTransaction(isolationLevel?: IsolationLevel): Promise<PrismaDepotTransaction>
  getConnectionInfo(): ConnectionInfo
  /** Later calls reject with ConnectionClosed; closes the handle only if the adapter owns it. */
  dispose(): Promise<void>
}

/**
 * A Prisma driver adapter factory for `provider = "sqlite"`:
 * `new PrismaClient({ adapter: new PrismaDepot(handle) })`.
 *
 * - Transactions (`prisma.$transaction`) are the handle's interactive transactions: other calls on
 *   the database, from Prisma or not, wait until they end, so two never interleave.
 * - The handle must be opened with `intMode: 'bigint'` (exact 64-bit integers, recommended) or
 *   `'number'` (the default; an INTEGER beyond 2^53 then fails with ValueOutOfRange);
 *   `connect()` refuses `'string'`.
 * - Values are stored as Prisma's own SQLite adapters store them (DateTime as ISO 8601 text,
 *   Boolean as 1/0, Decimal as REAL, Json as text, Bytes as BLOB).
 * - Errors are DriverAdapterErrors mapped as Prisma's SQLite adapters map them (Prisma turns them
 *   into P2002, P2003, P2021, ...); `originalCode` is the handle's `code`.
 */
export declare class PrismaDepot implements SqlDriverAdapterFactory {
  constructor(handleOrFactory: PrismaDepotSource, options?: PrismaDepotOptions)
  readonly provider: 'sqlite'
  readonly adapterName: 'depot-sqlite'
  connect(): Promise<PrismaDepotAdapter>
}

/** `new PrismaDepot(handleOrFactory, options)`. */
export declare function prismaAdapter(handleOrFactory: PrismaDepotSource, options?: PrismaDepotOptions): PrismaDepot
