// Many calls in flight: every promise settles, a full queue rejects at once with ERR_OVERLOADED,
// and closing with calls queued answers every one of them without losing acknowledged writes.
import { expect, it } from 'vitest'

import { forEachBackend, useDepot } from './backends'

type Settled = PromiseSettledResult<unknown>
const codeOfRejection = (r: Settled) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : undefined)

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('1,000 un-awaited calls all settle: resolved or ERR_OVERLOADED', async () => {
    const db = await ctx.depot.openDatabase('flood')
    await db.exec('CREATE TABLE t(i INTEGER)')
    const calls = Array.from({ length: 1000 }, (_, i) => db.run('INSERT INTO t VALUES (?)', [i]))
    const settled = await Promise.allSettled(calls)
    const fulfilled = settled.filter((r) => r.status === 'fulfilled').length
    const rejectedCodes = settled.filter((r) => r.status === 'rejected').map(codeOfRejection)
    // The calls are made in one go and slots come back only on the JS thread: exactly maxQueue
    // (default 128) are admitted.
    expect(fulfilled).toBe(128)
    expect(rejectedCodes).toEqual(Array(872).fill('ERR_OVERLOADED'))
    // Exactly the acknowledged inserts are in the table.
    expect((await db.query('SELECT count(*) FROM t')).rows).toEqual([[fulfilled]])
    await db.close()
  })

  it('closing with calls queued answers every call, and no acknowledged write is lost', async () => {
    const db = await ctx.depot.openDatabase('queued')
    await db.exec('CREATE TABLE t(i INTEGER)')
    const calls = Array.from({ length: 300 }, (_, i) => db.run('INSERT INTO t VALUES (?)', [i]))
    const closing = db.close()
    const settled = await Promise.allSettled(calls)
    await closing
    const acknowledged = settled.filter((r) => r.status === 'fulfilled').length
    for (const r of settled) {
      if (r.status === 'rejected') expect(['ERR_CLOSED', 'ERR_OVERLOADED']).toContain(codeOfRejection(r))
    }
    const reopened = await ctx.depot.openDatabase('queued')
    expect((await reopened.query('SELECT count(*) FROM t')).rows).toEqual([[acknowledged]])
    await reopened.close()
  })

  it('calls on different databases run concurrently and independently', async () => {
    const dbs = await Promise.all(Array.from({ length: 8 }, (_, i) => ctx.depot.openDatabase(`actor-${i}`)))
    await Promise.all(dbs.map((db, i) => db.exec(`CREATE TABLE t(v); INSERT INTO t VALUES (${i})`)))
    const values = await Promise.all(dbs.map((db) => db.query('SELECT v FROM t')))
    expect(values.map((r) => r.rows)).toEqual(dbs.map((_, i) => [[i]]))
    // A statement that runs until its deadline on one database holds up none of the others.
    const order: string[] = []
    const runaway = dbs[0]
      .query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c', [], { timeoutMs: 2_000 })
      .catch((e) => e.code)
      .then((code) => order.push(`runaway ${code}`))
    await Promise.all(dbs.slice(1).map((db) => db.query('SELECT v FROM t').then(() => order.push('other'))))
    await runaway
    expect(order).toEqual([...Array(7).fill('other'), 'runaway ERR_TIMEOUT'])
    await Promise.all(dbs.map((db) => db.close()))
  })
})
