// Snapshot readers from JavaScript, on every store: a read never waits for an open transaction,
// keeps program order with the handle's writes, and `readers: 0` keeps every call on the writer.
import { setTimeout as sleep } from 'node:timers/promises'

import { describe, expect, it } from 'vitest'

import { codeOf, forEachBackend, useDepot } from './backends'

forEachBackend((backend) => {
  describe('snapshot readers', () => {
    const ctx = useDepot(backend)

    for (const readsOnCaller of [false, true]) {
      const where = readsOnCaller ? 'the JS thread (from the page cache) or a reader' : 'a reader'
      it(`a point read answers while an interactive transaction holds the database, with the last commit, on ${where}`, async () => {
        const db = await ctx.depot.openDatabase(`held-${readsOnCaller}`, { readers: 1, readsOnCaller })
        await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
        const events: string[] = []
        let offWriter = { readerCalls: 0, callerReads: 0 }
        await db.transaction(async (tx) => {
          await tx.run('INSERT INTO t VALUES (2)')
          const before = db.stats()
          // Awaited inside the transaction: on the writer's queue this would wait for good.
          const seen = await db.query('SELECT count(*) FROM t')
          const after = db.stats()
          offWriter = { readerCalls: after.readerCalls - before.readerCalls, callerReads: after.callerReads - before.callerReads }
          events.push(`read ${seen.rows[0][0]}`)
          events.push('transaction ends')
        })
        events.push(`after ${(await db.query('SELECT count(*) FROM t')).rows[0][0]}`)
        expect(events).toEqual(['read 1', 'transaction ends', 'after 2'])
        // The read inside the transaction ran off the writer, exactly once: on a reader, or on the
        // JS thread when allowed; the one after it found the writer idle.
        expect(offWriter.readerCalls + offWriter.callerReads).toBe(1)
        if (!readsOnCaller) expect(offWriter).toEqual({ readerCalls: 1, callerReads: 0 })
        expect(db.metrics().readerCalls).toBe(db.stats().readerCalls)
        await db.close()
      })
    }

    it('a read issued after a write that is not awaited sees it', async () => {
      const db = await ctx.depot.openDatabase('order', { readers: 1 })
      await db.exec('CREATE TABLE t(v)')
      for (let i = 1; i <= 50; i++) {
        const write = db.run('INSERT INTO t VALUES (?)', [i])
        const read = db.query('SELECT count(*) FROM t')
        expect((await read).rows[0][0]).toBe(i)
        await write
        expect((await db.query('SELECT max(v) FROM t')).rows[0][0]).toBe(i)
      }
      await db.close()
    })

    for (const readsOnCaller of [false, true]) {
      it(`a read that finds the writer idle runs there, and a later read does not wait for it (readsOnCaller ${readsOnCaller})`, async () => {
        const db = await ctx.depot.openDatabase(`idle-writer-${readsOnCaller}`, { readers: 1, readsOnCaller })
        await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (7)')
        const ac = new AbortController()
        const endless = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n'
        const events: string[] = []
        const long = db.query(endless, [], { signal: ac.signal }).then(
          () => events.push('long answered'),
          (e) => events.push(`long ${e.code}`),
        )
        // The long read took the idle writer; this one finds it busy and goes to a reader, or is
        // answered on the JS thread from the page cache.
        const point = await db.query('SELECT v FROM t')
        events.push(`point ${point.rows[0][0]}`)
        ac.abort()
        await long
        expect(events).toEqual(['point 7', 'long ERR_ABORTED'])
        const { readerCalls, callerReads } = db.stats()
        expect(readerCalls + callerReads).toBe(1)
        if (!readsOnCaller) expect(readerCalls).toBe(1)
        await db.close()
      })
    }

    it('a read that would wake the parked writer is answered on the JS thread, after every earlier commit', async () => {
      const db = await ctx.depot.openDatabase('caller', { readers: 1 })
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      for (let i = 2; i <= 4; i++) {
        await db.run('INSERT INTO t VALUES (?)', [i])
        const before = db.stats().callerReads
        // The writer parks 50 µs after its last call; a read after a pause then runs here.
        let onCaller = false
        for (let tries = 0; tries < 100 && !onCaller; tries++) {
          await sleep(5)
          expect((await db.query('SELECT count(*) FROM t')).rows[0][0]).toBe(i)
          onCaller = db.stats().callerReads > before
        }
        expect(onCaller).toBe(true)
      }
      expect(db.metrics().callerReads).toBe(db.stats().callerReads)
      await db.close()
    })

    it('readsOnCaller: false keeps every read off the JS thread, and a bad value is refused', async () => {
      const db = await ctx.depot.openDatabase('not-on-caller', { readers: 1, readsOnCaller: false })
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      for (let i = 0; i < 5; i++) {
        await sleep(5)
        expect((await db.query('SELECT v FROM t')).rows[0][0]).toBe(1)
      }
      expect(db.stats().callerReads).toBe(0)
      await db.close()
      // @ts-expect-error: not a boolean
      expect(await codeOf(ctx.depot.openDatabase('bad', { readsOnCaller: 1 }))).toBe('ERR_INVALID_ARGUMENT')
    })

    it('iterate on the database holds one snapshot across awaits while writes commit', async () => {
      const db = await ctx.depot.openDatabase('cursor', { readers: 1 })
      await db.exec('CREATE TABLE t(v); CREATE TABLE log(n)')
      await db.executeBatch(Array.from({ length: 200 }, (_, i) => ({ sql: 'INSERT INTO t VALUES (?)', params: [i] })))
      const seen: number[] = []
      let writes = 0
      for await (const row of db.iterate<{ v: number }>('SELECT v FROM t ORDER BY v', [], { chunkRows: 16 })) {
        seen.push(row.v)
        if (row.v % 16 === 0) {
          // Awaited inside the loop: the writer commits while the cursor holds its snapshot.
          await db.run('DELETE FROM t WHERE v = ?', [row.v + 1])
          await db.run('INSERT INTO log VALUES (?)', [++writes])
        }
      }
      expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i))
      expect(writes).toBe(13)
      expect((await db.query('SELECT count(*) FROM t')).rows[0][0]).toBe(200 - 13)
      expect(db.stats().readerCalls).toBeGreaterThanOrEqual(14)
      await db.close()
    })

    it('readers: 0 runs every call on the writer, and a bad count is refused', async () => {
      const db = await ctx.depot.openDatabase('writer-only', { readers: 0 })
      await db.exec('CREATE TABLE t(v)')
      await db.query('SELECT count(*) FROM t')
      expect(db.stats()).toMatchObject({ readerCalls: 0, readers: 0 })
      await db.close()
      expect(await codeOf(ctx.depot.openDatabase('bad', { readers: -1 }))).toBe('ERR_INVALID_ARGUMENT')
      expect(await codeOf(ctx.depot.openDatabase('bad', { readers: 65 }))).toBe('ERR_INVALID_ARGUMENT')
    })

    it('close() ends the readers and fails later reads with ERR_CLOSED', async () => {
      // Reads only ever on reader threads: a transaction holds the writer, and none runs on the
      // JS thread.
      const db = await ctx.depot.openDatabase('closing', { readers: 2, readsOnCaller: false })
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (2)')
        const seen = await Promise.all(Array.from({ length: 20 }, () => db.query('SELECT count(*) FROM t')))
        expect(seen.map((r) => r.rows[0][0])).toEqual(Array(20).fill(1))
        expect(db.stats().readers).toBeGreaterThanOrEqual(1)
        expect(db.stats().readerCalls).toBe(20)
      })
      await db.close()
      expect(db.stats().readers).toBe(0)
      expect(await codeOf(db.query('SELECT v FROM t'))).toBe('ERR_CLOSED')
    })
  })
})
