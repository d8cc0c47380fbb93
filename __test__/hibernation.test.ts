// Hibernation from JavaScript, on every store: a database idle for `idleMs` gives back its thread
// and connection, `stats().hibernating` says so, and the next call wakes it with its data, its
// connection settings and its writer generation (a writer that took over meanwhile fences it).
import { describe, expect, it } from 'vitest'

import { codeOf, type Db, forEachBackend, useDepot } from './backends'

async function untilHibernating(db: Db) {
  const deadline = Date.now() + 10_000
  while (!db.stats().hibernating) {
    if (Date.now() > deadline) throw new Error(`never hibernated: ${JSON.stringify(db.metrics())}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

forEachBackend((backend) => {
  describe('hibernation', () => {
    const ctx = useDepot(backend)

    it('an idle database hibernates and the next call wakes it with its data and settings', async () => {
      const db = await ctx.depot.openDatabase('sleepy', { idleMs: 300 })
      await db.exec('PRAGMA foreign_keys = ON; CREATE TABLE t(v); INSERT INTO t VALUES (1)')
      expect(db.stats().hibernating).toBe(false)
      await untilHibernating(db)
      expect(db.metrics().hibernating).toBe(1)
      await db.run('INSERT INTO t VALUES (2)')
      expect((await db.query('SELECT sum(v) FROM t')).rows).toEqual([[3]])
      expect((await db.query('PRAGMA foreign_keys')).rows).toEqual([[1]])
      expect(db.stats().hibernating).toBe(false)
      expect(db.metrics().wakes).toBe(1)
      await db.close()
    })

    it('a writer fenced while it hibernates gets ERR_FENCED on its next write', async () => {
      const db = await ctx.depot.openDatabase('taken', { idleMs: 30 })
      await db.exec('CREATE TABLE t(v)')
      await untilHibernating(db)
      const newer = await ctx.depot.openDatabase('taken', { idleMs: 0 })
      await newer.run('INSERT INTO t VALUES (1)')
      expect(await codeOf(db.run('INSERT INTO t VALUES (2)'))).toBe('ERR_FENCED')
      expect((await newer.query('SELECT count(*) FROM t')).rows).toEqual([[1]])
      await db.close()
      await newer.close()
    })

    it('idleMs 0 never hibernates, and close() of a hibernating database answers at once', async () => {
      const awake = await ctx.depot.openDatabase('awake', { idleMs: 0 })
      const sleepy = await ctx.depot.openDatabase('closing', { idleMs: 20 })
      await awake.exec('CREATE TABLE t(v)')
      await sleepy.exec('CREATE TABLE t(v)')
      await untilHibernating(sleepy)
      await new Promise((r) => setTimeout(r, 100))
      expect(awake.metrics().hibernations).toBe(0)
      await sleepy.close()
      expect(await codeOf(sleepy.exec('SELECT 1'))).toBe('ERR_CLOSED')
      expect(await codeOf(ctx.depot.openDatabase('x', { idleMs: -1 }))).toBe('ERR_INVALID_ARGUMENT')
      await awake.close()
    })
  })
})
