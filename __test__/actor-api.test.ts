// The actor-runtime API: interactive transactions, cancellation, streaming, honest backpressure.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { describe, expect, it } from 'vitest'

import { codeOf, errorOf, forEachBackend, useDepot } from './backends'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const FOREVER = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  describe('transaction()', () => {
    it('keeps other calls out until it ends, then runs them in order', async () => {
      // readers: 0: the writer's queue (with snapshot readers, reads do not wait: readers.test.ts)
      const db = await ctx.depot.openDatabase('tx-order', { readers: 0 })
      await db.exec('CREATE TABLE t(v TEXT)')
      const others: Promise<number>[] = []
      const result = await db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (?)', ['one'])
        for (let i = 0; i < 10; i++) {
          others.push(db.query('SELECT count(*) FROM t').then((r) => Number(r.rows[0][0])))
        }
        await sleep(50)
        await tx.run('INSERT INTO t VALUES (?)', ['two'])
        return 'done'
      })
      expect(result).toBe('done')
      const order: number[] = []
      const counts = await Promise.all(others.map((p, i) => p.then((n) => (order.push(i), n))))
      expect(counts).toEqual(Array(10).fill(2))
      expect(order).toEqual([...Array(10).keys()])
      await db.close()
    })

    it('rolls back and rethrows when the function throws', async () => {
      const db = await ctx.depot.openDatabase('tx-throw')
      await db.exec('CREATE TABLE t(v)')
      const boom = new Error('boom')
      await expect(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO t VALUES (1)')
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 0 })
      await db.close()
    })

    it('times out: rolled back, tx rejects ERR_TIMEOUT, the next call works', async () => {
      const db = await ctx.depot.openDatabase('tx-timeout')
      await db.exec('CREATE TABLE t(v)')
      const outcome = db.transaction(
        async (tx) => {
          await tx.run('INSERT INTO t VALUES (1)')
          await sleep(300)
          await tx.run('INSERT INTO t VALUES (2)')
        },
        { timeoutMs: 100 },
      )
      expect(await codeOf(outcome)).toBe('ERR_TIMEOUT')
      expect(await db.all('SELECT v FROM t')).toEqual([])
      await db.run('INSERT INTO t VALUES (3)')
      expect(await db.all('SELECT v FROM t')).toEqual([{ v: 3 }])
      await db.close()
    })

    it('nests as savepoints', async () => {
      const db = await ctx.depot.openDatabase('tx-nested')
      await db.exec('CREATE TABLE t(v)')
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (1)')
        await expect(
          tx.transaction(async (inner) => {
            await inner.run('INSERT INTO t VALUES (2)')
            throw new Error('undo the inner part')
          }),
        ).rejects.toThrow('undo the inner part')
        await tx.transaction(async (inner) => inner.run('INSERT INTO t VALUES (3)'))
      })
      expect((await db.all('SELECT v FROM t ORDER BY v')).map((r) => r.v)).toEqual([1, 3])
      await db.close()
    })

    it('has an explicit form, and raw BEGIN/COMMIT through exec still works', async () => {
      const db = await ctx.depot.openDatabase('tx-explicit')
      await db.exec('CREATE TABLE t(v)')
      const tx = await db.beginTransaction({ behavior: 'immediate' })
      await tx.exec('INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)')
      expect((await tx.get('SELECT count(*) AS n FROM t'))?.n).toBe(2)
      await tx.rollback()
      expect(tx.active).toBe(false)
      expect(await codeOf(tx.run('INSERT INTO t VALUES (9)'))).toBe('ERR_CLOSED')
      await db.exec('BEGIN; INSERT INTO t VALUES (5); COMMIT;')
      expect(await db.all('SELECT v FROM t')).toEqual([{ v: 5 }])
      await db.close()
    })
  })

  describe('cancellation', () => {
    it('aborts a runaway recursive CTE and the database answers the next call', async () => {
      const db = await ctx.depot.openDatabase('abort')
      const controller = new AbortController()
      const running = db.query(FOREVER, [], { signal: controller.signal })
      await sleep(100)
      controller.abort()
      expect(await codeOf(running)).toBe('ERR_ABORTED')
      expect(await db.get('SELECT 40 + 2 AS n')).toEqual({ n: 42 })
      await db.close()
    })

    it('never runs a call whose signal fired while it was queued', async () => {
      const db = await ctx.depot.openDatabase('abort-queued')
      await db.exec('CREATE TABLE t(v)')
      const tx = await db.beginTransaction()
      const controller = new AbortController()
      const queued = codeOf(db.run('INSERT INTO t VALUES (1)', [], { signal: controller.signal }))
      controller.abort()
      await tx.commit()
      expect(await queued).toBe('ERR_ABORTED')
      expect(await db.all('SELECT v FROM t')).toEqual([])
      expect(await codeOf(db.exec('SELECT 1', { signal: AbortSignal.abort() }))).toBe('ERR_ABORTED')
      await db.close()
    })

    it('times calls out per call and by the database default', async () => {
      const db = await ctx.depot.openDatabase('timeouts', { queryTimeoutMs: 100 })
      expect(await codeOf(db.query(FOREVER))).toBe('ERR_TIMEOUT')
      expect(await codeOf(db.query(FOREVER, [], { timeoutMs: 50 }))).toBe('ERR_TIMEOUT')
      await db.exec('CREATE TABLE t(x)')
      const write = db.exec('BEGIN; INSERT INTO t VALUES (1); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t SELECT x FROM c; COMMIT;')
      expect(await codeOf(write)).toBe('ERR_TIMEOUT')
      await db.exec('ROLLBACK').catch(() => {})
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 0 })
      await db.close()
    })
  })

  describe('iterate()', () => {
    it('streams 1,000,000 rows with bounded memory', async () => {
      const db = await ctx.depot.openDatabase('stream')
      // Live memory only: heapUsed also counts garbage not yet collected, which depends on when
      // V8 collects (it varies between Node versions and with load), not on what is kept.
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as () => void
      gc()
      const before = process.memoryUsage().heapUsed
      let peak = before
      let count = 0
      let sum = 0
      for await (const row of db.iterate<{ x: number; label: string }>(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT x, 'row ' || x AS label FROM c",
        [],
        { chunkRows: 1000 },
      )) {
        count++
        sum += row.x
        if (count % 50_000 === 0) {
          gc()
          peak = Math.max(peak, process.memoryUsage().heapUsed)
        }
      }
      expect(count).toBe(1_000_000)
      expect(sum).toBe(500000500000)
      expect(peak - before).toBeLessThan(50 * 1024 * 1024)
      await db.close()
    })

    it('finalizes the statement when the loop breaks early', async () => {
      const db = await ctx.depot.openDatabase('stream-break')
      await db.exec('CREATE TABLE t(x); INSERT INTO t SELECT value FROM (WITH RECURSIVE c(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM c WHERE value < 5000) SELECT value FROM c)')
      const seen: number[] = []
      for await (const row of db.iterate<{ x: number }>('SELECT x FROM t ORDER BY x', [], { chunkRows: 10 })) {
        seen.push(row.x)
        if (seen.length === 25) break
      }
      expect(seen).toEqual([...Array(25).keys()].map((i) => i + 1))
      // A statement left open on t would make DROP TABLE fail with SQLITE_LOCKED.
      await db.exec('DROP TABLE t')
      await db.close()
    })
  })

  describe('backpressure', () => {
    it('admits exactly maxQueue un-awaited calls; the rest reject ERR_OVERLOADED with depth and limit', async () => {
      const db = await ctx.depot.openDatabase('bp', { maxQueue: 8 })
      const calls = Array.from({ length: 100 }, (_, i) => db.query('SELECT ?', [i]))
      const settled = await Promise.allSettled(calls)
      const fulfilled = settled.filter((s) => s.status === 'fulfilled')
      expect(fulfilled.length).toBe(8)
      const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected')
      expect(rejected.length).toBe(92)
      for (const r of rejected) {
        expect(r.reason.code).toBe('ERR_OVERLOADED')
        expect(r.reason.limit).toBe(8)
        expect(r.reason.depth).toBe(8)
      }
      const stats = db.stats()
      expect(stats).toMatchObject({ queued: 0, running: 0, rejected: 92 })
      expect(stats.answered).toBe(8)
      expect(await db.get('SELECT 1 AS one')).toEqual({ one: 1 })
      await db.close()
    })
  })

  describe('get(), all() and disposal', () => {
    it('returns row objects, undefined for no row', async () => {
      const db = await ctx.depot.openDatabase('objects')
      await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
      expect(await db.get('SELECT * FROM t WHERE id = ?', [2])).toEqual({ id: 2, name: 'b' })
      expect(await db.get('SELECT * FROM t WHERE id = ?', [3])).toBeUndefined()
      expect(await db.all('SELECT name FROM t ORDER BY id')).toEqual([{ name: 'a' }, { name: 'b' }])
      await db.close()
    })

    it('closes with await using', async () => {
      let kept
      {
        await using db = await ctx.depot.openDatabase('dispose')
        kept = db
        await db.exec('CREATE TABLE t(x)')
      }
      expect(await codeOf(kept.exec('SELECT 1'))).toBe('ERR_CLOSED')
      const error = await errorOf(kept.exec('SELECT 1'))
      expect(error).toBeInstanceOf(Error)
    })
  })
})

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('executeScript: SQLite splits the text, every statement answers, the first error stops it', async () => {
    const db = await ctx.depot.openDatabase('script')
    const results = await db.executeScript(
      "CREATE TABLE t(a TEXT); -- a comment; with a semicolon\nINSERT INTO t VALUES ('x;y'); /* ; */ SELECT a FROM t;",
    )
    expect(results.map((r) => r.columns)).toEqual([[], [], ['a']])
    expect(results[1]).toMatchObject({ changes: 1, lastInsertRowId: 1 })
    expect(results[2].rows).toEqual([['x;y']])
    const error = await db.executeScript("INSERT INTO t VALUES ('z'); INSERT INTO nope VALUES (1); INSERT INTO t VALUES ('w')").catch((e) => e)
    expect(error.code).toBe('SQLITE_ERROR')
    expect((await db.query('SELECT a FROM t ORDER BY a')).rows).toEqual([['x;y'], ['z']])
    await db.close()
  })
})

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('a column named __proto__ is a plain property of get, all and iterate rows', async () => {
    const db = await ctx.depot.openDatabase('proto')
    const sql = 'SELECT 1 AS a, 3 AS "__proto__"'
    const rows = [await db.get(sql), ...(await db.all(sql))]
    for await (const row of db.iterate(sql)) rows.push(row)
    expect(rows).toHaveLength(3)
    for (const row of rows as Record<string, unknown>[]) {
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype)
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe(3)
      expect(Object.keys(row)).toEqual(['a', '__proto__'])
    }
    await db.close()
  })
})
