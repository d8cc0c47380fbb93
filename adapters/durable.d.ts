// depot-sqlite/durable: Cloudflare Durable Objects' SQLite storage API over a NativeDatabaseHandle
// (durable.js).
import type { Depot, NativeDatabaseHandle, OpenDatabaseOptions } from '../index'

/** A value as Durable Objects' SQL API gives it: BLOBs are ArrayBuffers. */
export type SqlStorageValue = ArrayBuffer | string | number | bigint | null

/**
 * The rows of one `sql.exec` (read whole when `exec` returns). Iterable; `next()`, `toArray()`,
 * `one()` and `raw()` hand out the rows not read yet.
 */
export declare class SqlStorageCursor<T extends Record<string, SqlStorageValue> = Record<string, SqlStorageValue>>
  implements IterableIterator<T>
{
  readonly columnNames: string[]
  /** Rows returned (Durable Objects count rows scanned). */
  readonly rowsRead: number
  /** Rows the statement changed. */
  readonly rowsWritten: number
  next(): IteratorResult<T, undefined>
  [Symbol.iterator](): IterableIterator<T>
  toArray(): T[]
  /** The one row left; throws unless exactly one is. */
  one(): T
  raw<U extends SqlStorageValue[] = SqlStorageValue[]>(): IterableIterator<U>
}

export interface SqlStorage {
  /**
   * Runs `query` synchronously (the JS thread blocks until the database's worker answers) and
   * returns its rows. Several `;`-separated statements (without bindings): the last one's rows.
   * BEGIN/COMMIT/SAVEPOINT... are refused: use `transactionSync()` or `transaction()`. Throws
   * `ERR_WOULD_DEADLOCK` at once while an interactive transaction of the database is open outside
   * this API.
   */
  exec<T extends Record<string, SqlStorageValue> = Record<string, SqlStorageValue>>(
    query: string,
    ...bindings: unknown[]
  ): SqlStorageCursor<T>
  /** Bytes of the database (pages times 4096). */
  readonly databaseSize: number
}

export interface DurableStorage {
  readonly sql: SqlStorage
  /** Runs `fn` in a transaction, synchronously: a throw rolls it back; nested calls are savepoints. */
  transactionSync<T>(fn: () => T): T
  /** Runs `closure` in a transaction; `txn.rollback()` discards its changes, a throw rolls back. */
  transaction<T>(closure: (txn: { rollback(): void }) => Promise<T>): Promise<T>
  /** The bookmark of the newest commit. */
  getCurrentBookmark(): Promise<string>
  /** The bookmark of the newest commit at or before `time` (needs the depot's `historyMs`). */
  getBookmarkForTime(time: number | Date): Promise<string>
  /**
   * Restores the database to `bookmark` at the next `openDurableStorage()`; resolves with the
   * bookmark of the state now (restoring to it undoes the restore).
   */
  onNextSessionRestoreBookmark(bookmark: string): Promise<string>
}

/** What `ctx.storage` is to a SQLite-backed Durable Object, over `db`. */
export declare function durableStorage(db: NativeDatabaseHandle): DurableStorage

/** Opens `name` for a new session, applying a restore the last session asked for. */
export declare function openDurableStorage(
  depot: Depot,
  name: string,
  options?: OpenDatabaseOptions,
): Promise<DurableStorage>
