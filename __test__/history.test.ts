// History from JavaScript on every store (memory, file, PostgreSQL), with the default window (an
// hour): bookmarks, the commit log, the commit at a time, restore (undoable, fencing the writer),
// fork (isolated both ways), handles at a bookmark (holding their point past a short window), and
// `historyMs: 0`, where only the newest state is reachable.
import { describe, expect, it } from 'vitest'

import { codeOf, type Depot, forEachBackend, useDepot } from './backends'

const rows = async (db: Awaited<ReturnType<Depot['openDatabase']>>) => (await db.query('SELECT v FROM t ORDER BY v')).rows

forEachBackend((backend) => {
  describe('history', () => {
    const ctx = useDepot(backend)

    it('bookmarks sort in commit order and name the newest commit (an hour of history by default)', async () => {
      const depot = ctx.depot
      const db = await depot.openDatabase('b')
      const first = await db.bookmark()
      await db.exec('CREATE TABLE t(v)')
      const second = await db.bookmark()
      await db.run('INSERT INTO t VALUES (1)')
      const third = await db.bookmark()
      expect(first < second && second < third).toBe(true)
      const history = await depot.history('b')
      expect(history.map((h) => h.bookmark)).toEqual([third, second])
      expect(history[0].time).toBeInstanceOf(Date)
      expect(history[0].pages).toBeGreaterThan(0)
      expect(history[0].bytes).toBe(history[0].pages * 4096)
      expect((await depot.history('b', { limit: 1, before: third })).map((h) => h.bookmark)).toEqual([second])
      await depot.close()
    })

    it('bookmarkForTime finds the newest commit at or before a time, and refuses a time before the history', async () => {
      const depot = ctx.depot
      const db = await depot.openDatabase('t')
      await db.exec('CREATE TABLE t(v)')
      const marks: [string, number][] = []
      for (let i = 0; i < 3; i++) {
        await db.run('INSERT INTO t VALUES (?)', [i])
        marks.push([await db.bookmark(), Date.now()])
        await new Promise((r) => setTimeout(r, 5))
      }
      for (const [bookmark, time] of marks) expect(await depot.bookmarkForTime('t', time)).toBe(bookmark)
      expect(await depot.bookmarkForTime('t', new Date(marks[2][1]))).toBe(marks[2][0])
      expect(await codeOf(depot.bookmarkForTime('t', marks[0][1] - 60_000))).toBe('ERR_HISTORY_UNAVAILABLE')
      expect(await codeOf(depot.bookmarkForTime('t', Number.NaN))).toBe('ERR_INVALID_ARGUMENT')
      await depot.close()
    })

    it('a restore is a new commit that fences the writer, and restoring to what it returns undoes it', async () => {
      const depot = ctx.depot
      const db = await depot.openDatabase('r')
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      const good = await db.bookmark()
      await db.exec('INSERT INTO t VALUES (2); DELETE FROM t WHERE v = 1')
      const undo = await depot.restore('r', good)
      expect(await codeOf(db.run('INSERT INTO t VALUES (3)'))).toBe('ERR_FENCED')
      await db.close()
      const again = await depot.openDatabase('r')
      expect(await rows(again)).toEqual([[1]])
      await again.close()
      await depot.restore('r', undo)
      const undone = await depot.openDatabase('r')
      expect(await rows(undone)).toEqual([[2]])
      expect((await depot.history('r')).length).toBe(6)
      expect(await codeOf(depot.restore('r', 'not-a-bookmark'))).toBe('ERR_INVALID_ARGUMENT')
      await depot.close()
    })

    it('a handle opened at a bookmark reads that point while the writer goes on, and refuses writes', async () => {
      const depot = ctx.depot
      const db = await depot.openDatabase('at')
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)')
      const at = await db.bookmark()
      const past = await depot.openDatabase('at', { at })
      await db.exec('DELETE FROM t; INSERT INTO t VALUES (3)')
      expect(await rows(past)).toEqual([[1], [2]])
      expect(await codeOf(past.run('INSERT INTO t VALUES (4)'))).toBe('SQLITE_READONLY')
      expect(await rows(db)).toEqual([[3]])
      await db.run('INSERT INTO t VALUES (5)')
      expect(await rows(past)).toEqual([[1], [2]])
      expect(await codeOf(depot.openDatabase('at', { at, generation: 3 }))).toBe('ERR_INVALID_ARGUMENT')
      await depot.close()
    })

    it('a fork starts from its bookmark and is isolated in both directions', async () => {
      const depot = ctx.depot
      const db = await depot.openDatabase('src')
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      const at = await db.bookmark()
      await db.run('INSERT INTO t VALUES (2)')
      await depot.fork('src', 'copy', { at })
      const copy = await depot.openDatabase('copy')
      expect(await rows(copy)).toEqual([[1]])
      await copy.run('INSERT INTO t VALUES (10)')
      await db.run('INSERT INTO t VALUES (3)')
      expect(await rows(copy)).toEqual([[1], [10]])
      expect(await rows(db)).toEqual([[1], [2], [3]])
      expect(await codeOf(depot.fork('src', 'copy'))).toBe('ERR_INVALID_ARGUMENT')
      await depot.close()
    })

    it('a handle at a bookmark holds its point past the history window until it closes', async () => {
      await ctx.depot.close()
      const depot = await ctx.openDepot({ historyMs: 50 })
      const db = await depot.openDatabase('lease')
      // ~250 pages, and a reader with a 64 KiB cache: its reads go to the store, at its point.
      await db.exec(
        "CREATE TABLE t(v, pad); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO t SELECT 1, randomblob(1000) FROM n",
      )
      const at = await db.bookmark()
      const past = await depot.openDatabase('lease', { at, cacheBytes: 65536 })
      const sum = async (h: typeof db) => (await h.query('SELECT sum(v), count(*) FROM t')).rows
      for (let i = 0; i < 5; i++) {
        await db.run('UPDATE t SET v = v + 1')
        await new Promise((r) => setTimeout(r, 40))
      }
      // The window (50 ms) has passed the bookmark; the handle still reads it, page by page.
      expect(await sum(past)).toEqual([[1000, 1000]])
      expect(await sum(past)).toEqual([[1000, 1000]])
      await past.close()
      await db.run('UPDATE t SET v = v + 1')
      expect(await codeOf(depot.openDatabase('lease', { at }))).toBe('ERR_HISTORY_UNAVAILABLE')
      expect(await sum(db)).toEqual([[7000, 1000]])
      await depot.close()
    })

    it('with historyMs: 0 only the newest state is reachable', async () => {
      await ctx.depot.close()
      const depot = await ctx.openDepot({ historyMs: 0 })
      const db = await depot.openDatabase('n')
      await db.exec('CREATE TABLE t(v)')
      const old = await db.bookmark()
      await db.run('INSERT INTO t VALUES (1)')
      expect(await codeOf(depot.restore('n', old))).toBe('ERR_HISTORY_UNAVAILABLE')
      expect(await codeOf(depot.fork('n', 'copy', { at: old }))).toBe('ERR_HISTORY_UNAVAILABLE')
      expect((await depot.history('n')).map((h) => h.bookmark)).toEqual([await db.bookmark()])
      await depot.fork('n', 'copy')
      const copy = await depot.openDatabase('copy')
      expect((await copy.query('SELECT v FROM t')).rows).toEqual([[1]])
      await depot.close()
    })

    it('databases() lists every database of the store, sorted', async () => {
      const depot = ctx.depot
      expect(await depot.databases()).toEqual([])
      for (const n of ['zeta', 'alpha']) await (await depot.openDatabase(n)).exec('CREATE TABLE t(v)')
      await depot.fork('alpha', 'alpha-copy')
      expect(await depot.databases()).toEqual(['alpha', 'alpha-copy', 'zeta'])
      await depot.close()
      expect(await codeOf(depot.databases())).toBe('ERR_CLOSED')
    })
  })
})
