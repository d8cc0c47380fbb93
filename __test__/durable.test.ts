// depot-sqlite/durable on every store: code written against Cloudflare's documented Durable Objects
// SQL storage API (`ctx.storage.sql.exec`, cursors, `transactionSync`, `transaction`, bookmarks)
// runs unchanged on a handle, through the synchronous call path, which refuses to deadlock.
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'

import type * as Durable from '../adapters/durable'
import { forEachBackend, useDepot } from './backends'

const { durableStorage, openDurableStorage } = createRequire(import.meta.url)('../adapters/durable.js') as typeof Durable

/** Thrown error's `code` (the sync API throws instead of rejecting). */
function thrownCode(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    return (error as { code: string }).code
  }
  throw new Error('expected a throw')
}

// A Durable Object written against Cloudflare's documented API, nothing of depot-sqlite in it.
interface Ctx {
  storage: Durable.DurableStorage
}
class VisitCounter {
  sql: Durable.SqlStorage
  constructor(readonly ctx: Ctx) {
    this.sql = ctx.storage.sql
    this.sql.exec(`CREATE TABLE IF NOT EXISTS visits(page TEXT PRIMARY KEY, n INTEGER NOT NULL);
                   CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, page TEXT, at INTEGER)`)
  }
  visit(page: string, at: number): number {
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec('INSERT INTO visits(page, n) VALUES (?, 1) ON CONFLICT(page) DO UPDATE SET n = n + 1', page)
      this.sql.exec('INSERT INTO log(page, at) VALUES (?, ?)', page, at)
      return this.sql.exec<{ n: number }>('SELECT n FROM visits WHERE page = ?', page).one().n
    })
  }
  top(): { page: string; n: number }[] {
    return this.sql.exec<{ page: string; n: number }>('SELECT page, n FROM visits ORDER BY n DESC, page').toArray()
  }
  async resetIf(predicate: (n: number) => boolean): Promise<void> {
    await this.ctx.storage.transaction(async (txn) => {
      const total = this.sql.exec<{ t: number }>('SELECT sum(n) AS t FROM visits').one().t
      this.sql.exec('DELETE FROM visits')
      if (!predicate(total)) txn.rollback()
    })
  }
}

forEachBackend((backend) => {
  describe('durable', () => {
    const ctx = useDepot(backend)

    it('a Durable Object written against the documented API runs unchanged', async () => {
      const db = await ctx.depot.openDatabase('do')
      const counter = new VisitCounter({ storage: durableStorage(db) })
      expect(counter.visit('/a', 1)).toBe(1)
      expect(counter.visit('/a', 2)).toBe(2)
      expect(counter.visit('/b', 3)).toBe(1)
      expect(counter.top()).toEqual([
        { page: '/a', n: 2 },
        { page: '/b', n: 1 },
      ])
      await counter.resetIf((total) => total > 100)
      expect(counter.top()).toHaveLength(2)
      await counter.resetIf((total) => total === 3)
      expect(counter.top()).toEqual([])
      // The writes reached the store: another handle after this one sees them.
      expect((await db.query('SELECT count(*) FROM log')).rows).toEqual([[3]])
      await db.close()
    })

    it('cursors: next, iteration, toArray, one, raw, columnNames, rowsRead, rowsWritten, ArrayBuffer blobs', async () => {
      const db = await ctx.depot.openDatabase('cursor')
      const { sql } = durableStorage(db)
      sql.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, data BLOB)')
      const inserted = sql.exec('INSERT INTO t(name, data) VALUES (?, ?), (?, ?)', 'x', Buffer.from([1, 2]), 'y', null)
      expect(inserted.rowsWritten).toBe(2)
      const cursor = sql.exec('SELECT id, name, data FROM t ORDER BY id')
      expect(cursor.columnNames).toEqual(['id', 'name', 'data'])
      expect(cursor.rowsRead).toBe(2)
      const first = cursor.next()
      expect(first.done).toBe(false)
      expect(first.value?.data).toBeInstanceOf(ArrayBuffer)
      expect([...new Uint8Array(first.value?.data as ArrayBuffer)]).toEqual([1, 2])
      expect(cursor.toArray()).toEqual([{ id: 2, name: 'y', data: null }])
      expect(cursor.next().done).toBe(true)
      expect([...sql.exec('SELECT name FROM t ORDER BY id').raw()]).toEqual([['x'], ['y']])
      expect([...sql.exec('SELECT id FROM t ORDER BY id')].map((r) => r.id)).toEqual([1, 2])
      expect(thrownCode(() => sql.exec('SELECT * FROM t').one())).toBe('ERR_INVALID_ARGUMENT')
      expect(thrownCode(() => sql.exec('SELECT * FROM t WHERE id = 9').one())).toBe('ERR_INVALID_ARGUMENT')
      expect(sql.exec('SELECT 1 AS a; SELECT 2 AS b').one()).toEqual({ b: 2 })
      expect(sql.databaseSize).toBeGreaterThanOrEqual(2 * 4096)
      expect(thrownCode(() => sql.exec('SELECT * FROM nope'))).toBe('SQLITE_ERROR')
      expect(thrownCode(() => sql.exec('BEGIN'))).toBe('ERR_INVALID_ARGUMENT')
      expect(thrownCode(() => sql.exec('  savepoint s'))).toBe('ERR_INVALID_ARGUMENT')
      expect(thrownCode(() => sql.exec('SELECT 1; COMMIT'))).toBe('ERR_INVALID_ARGUMENT')
      expect(thrownCode(() => sql.exec('/* x */ ROLLBACK'))).toBe('ERR_INVALID_ARGUMENT')
      expect(sql.exec("SELECT 'begin' AS w -- COMMIT").one()).toEqual({ w: 'begin' })
      await db.close()
    })

    it('transactionSync rolls back on a throw, nests as savepoints, and refuses an async callback', async () => {
      const db = await ctx.depot.openDatabase('txsync')
      const storage = durableStorage(db)
      storage.sql.exec('CREATE TABLE t(v)')
      expect(() =>
        storage.transactionSync(() => {
          storage.sql.exec('INSERT INTO t VALUES (1)')
          throw new Error('boom')
        }),
      ).toThrow('boom')
      storage.transactionSync(() => {
        storage.sql.exec('INSERT INTO t VALUES (2)')
        expect(() =>
          storage.transactionSync(() => {
            storage.sql.exec('INSERT INTO t VALUES (3)')
            throw new Error('inner')
          }),
        ).toThrow('inner')
        storage.sql.exec('INSERT INTO t VALUES (4)')
      })
      expect(storage.sql.exec('SELECT v FROM t ORDER BY v').toArray()).toEqual([{ v: 2 }, { v: 4 }])
      expect(thrownCode(() => db.transactionSync(async () => 1))).toBe('ERR_INVALID_ARGUMENT')
      expect((await db.query('SELECT count(*) FROM t')).rows).toEqual([[2]])
      await db.close()
    })

    it('a synchronous call that would wait for an open interactive transaction throws ERR_WOULD_DEADLOCK at once', async () => {
      const db = await ctx.depot.openDatabase('deadlock')
      const { sql } = durableStorage(db)
      sql.exec('CREATE TABLE t(v)')
      const tx = await db.beginTransaction()
      await tx.run('INSERT INTO t VALUES (1)')
      expect(thrownCode(() => sql.exec('INSERT INTO t VALUES (2)'))).toBe('ERR_WOULD_DEADLOCK')
      // A read with parameters goes to a snapshot reader: it answers the last commit at once.
      expect(sql.exec('SELECT count(*) AS n FROM t WHERE ?', 1).one().n).toBe(0)
      // A BEGIN still in the queue counts too.
      await tx.commit()
      const starting = db.beginTransaction()
      expect(thrownCode(() => db.executeSync('INSERT INTO t VALUES (3)'))).toBe('ERR_WOULD_DEADLOCK')
      await (await starting).rollback()
      expect(sql.exec('SELECT count(*) AS n FROM t').one().n).toBe(1)
      await db.close()
      expect(thrownCode(() => sql.exec('SELECT 1'))).toBe('ERR_CLOSED')
    })

    it('a synchronous call is bounded by its deadline', async () => {
      const db = await ctx.depot.openDatabase('slow')
      const slow = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n'
      expect(thrownCode(() => db.executeSync(slow, [], { timeoutMs: 50 }))).toBe('ERR_TIMEOUT')
      expect(db.executeSync('SELECT 1 AS one').rows).toEqual([[1]])
      await db.close()
    })
  })
})

forEachBackend((backend) => {
  describe('durable bookmarks', () => {
    const ctx = useDepot(backend)

    it('getCurrentBookmark, getBookmarkForTime and onNextSessionRestoreBookmark', async () => {
      const depot = ctx.depot
      let storage = await openDurableStorage(depot, 'pitr')
      storage.sql.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      const good = await storage.getCurrentBookmark()
      await new Promise((r) => setTimeout(r, 5))
      const time = Date.now()
      await new Promise((r) => setTimeout(r, 5))
      storage.sql.exec('DELETE FROM t')
      expect(await storage.getBookmarkForTime(time)).toBe(good)
      const undo = await storage.onNextSessionRestoreBookmark(good)
      // This session goes on unchanged; the next one starts from the bookmark.
      expect(storage.sql.exec('SELECT count(*) AS n FROM t').one().n).toBe(0)
      storage = await openDurableStorage(depot, 'pitr')
      expect(storage.sql.exec('SELECT v FROM t').toArray()).toEqual([{ v: 1 }])
      expect(storage.sql.exec("SELECT count(*) AS n FROM sqlite_schema WHERE name = '_depot_durable'").one().n).toBe(0)
      // Undone the same way.
      await storage.onNextSessionRestoreBookmark(undo)
      storage = await openDurableStorage(depot, 'pitr')
      expect(storage.sql.exec('SELECT count(*) AS n FROM t').one().n).toBe(0)
      // A point the history no longer holds (the store reopened without history, so on the stores
      // that keep data across opens): that session fails with the reason, the next one starts.
      if (!backend.durable) return
      await storage.onNextSessionRestoreBookmark('0000000000000001')
      await ctx.depot.close()
      const narrow = await ctx.openDepot({ historyMs: 0 })
      const err = await openDurableStorage(narrow, 'pitr').catch((e) => e)
      expect(err.code).toBe('ERR_HISTORY_UNAVAILABLE')
      storage = await openDurableStorage(narrow, 'pitr')
      expect(storage.sql.exec("SELECT count(*) AS n FROM sqlite_schema WHERE name = '_depot_durable'").one().n).toBe(0)
    })
  })
})
