// Lifetimes: persistence across close and reopen, use after close, isolation between databases,
// fencing of an older writer, and the counters of `metrics()`.
import { expect, it } from 'vitest'

import { codeOf, forEachBackend, useDepot } from './backends'

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('data survives closing and reopening the database in the same depot', async () => {
    const first = await ctx.depot.openDatabase('keep')
    await first.exec('CREATE TABLE t(v TEXT)')
    await first.run('INSERT INTO t VALUES (?)', ['persisted'])
    await first.close()
    const second = await ctx.depot.openDatabase('keep')
    expect((await second.query('SELECT v FROM t')).rows).toEqual([['persisted']])
    await second.close()
  })

  it(`a new Depot.open of the same location ${backend.durable ? 'sees' : 'does not see'} earlier data`, async () => {
    const db = await ctx.depot.openDatabase('across')
    await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('x')")
    await ctx.depot.close()
    const again = await ctx.openDepot()
    const reopened = await again.openDatabase('across')
    const { rows } = await reopened.query("SELECT count(*) FROM sqlite_master WHERE name = 't'")
    expect(rows).toEqual([[backend.durable ? 1 : 0]])
    if (backend.durable) expect((await reopened.query('SELECT v FROM t')).rows).toEqual([['x']])
    await reopened.close()
  })

  it('every call after close rejects with ERR_CLOSED, and close is idempotent', async () => {
    const db = await ctx.depot.openDatabase('closed')
    await db.exec('CREATE TABLE t(v)')
    const commits = db.metrics().commits
    expect(commits).toBe(1)
    await db.close()
    expect(await codeOf(db.exec('SELECT 1'))).toBe('ERR_CLOSED')
    expect(await codeOf(db.execute('SELECT 1'))).toBe('ERR_CLOSED')
    expect(await codeOf(db.query('SELECT 1'))).toBe('ERR_CLOSED')
    expect(await codeOf(db.run('INSERT INTO t VALUES (1)'))).toBe('ERR_CLOSED')
    expect(await codeOf(db.executeBatch([{ sql: 'SELECT 1' }]))).toBe('ERR_CLOSED')
    await db.close()
    // The counters stay readable after close, and nothing was committed or left queued since.
    expect(db.metrics()).toMatchObject({ commits, queueDepth: 0 })
  })

  it('closing the depot closes its databases and refuses new ones', async () => {
    const a = await ctx.depot.openDatabase('a')
    const b = await ctx.depot.openDatabase('b')
    await ctx.depot.close()
    expect(await codeOf(a.query('SELECT 1'))).toBe('ERR_CLOSED')
    expect(await codeOf(b.exec('SELECT 1'))).toBe('ERR_CLOSED')
    expect(await codeOf(ctx.depot.openDatabase('c'))).toBe('ERR_CLOSED')
    await ctx.depot.close()
  })

  it('two databases in one depot are isolated from each other', async () => {
    const a = await ctx.depot.openDatabase('tenant-a')
    const b = await ctx.depot.openDatabase('tenant-b')
    await a.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('from a')")
    await b.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('from b'), ('b again')")
    expect((await a.query('SELECT v FROM t')).rows).toEqual([['from a']])
    expect((await b.query('SELECT v FROM t ORDER BY v')).rows).toEqual([['b again'], ['from b']])
    await a.exec('DROP TABLE t')
    expect((await b.query('SELECT count(*) FROM t')).rows).toEqual([[2]])
    expect(await codeOf(a.query('SELECT * FROM t'))).toBe('SQLITE_ERROR')
    await a.close()
    await b.close()
  })

  it('opening with a newer generation fences the older writer with ERR_FENCED', async () => {
    const old = await ctx.depot.openDatabase('fenced', { generation: 1 })
    await old.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('before')")
    const newer = await ctx.depot.openDatabase('fenced', { generation: 2n })
    expect(await codeOf(old.run("INSERT INTO t VALUES ('stale')"))).toBe('ERR_FENCED')
    // The fenced handle fails closed; the new writer sees only acknowledged data and can write.
    expect(await codeOf(old.query('SELECT 1'))).toMatch(/^ERR_(FENCED|CLOSED)$/)
    await newer.run("INSERT INTO t VALUES ('after')")
    expect((await newer.query('SELECT v FROM t ORDER BY rowid')).rows).toEqual([['before'], ['after']])
    await newer.close()
    await old.close()
  })

  it('one transaction is one store commit, whatever its size', async () => {
    const db = await ctx.depot.openDatabase('metrics')
    await db.exec('CREATE TABLE t(v BLOB)')
    const before = db.metrics()
    const inserts = Array.from({ length: 200 }, () => ({ sql: 'INSERT INTO t VALUES (?)', params: [Buffer.alloc(4096, 1)] }))
    await db.executeBatch(inserts)
    const after = db.metrics()
    expect(after.commits - before.commits).toBe(1)
    expect(after.lastCallCommits).toBe(1)
    expect(after.pagesCommitted).toBeGreaterThan(before.pagesCommitted + 100)
    expect(after.bytesCommitted).toBeGreaterThan(before.bytesCommitted)
    expect(after.sizePages).toBeGreaterThan(100)
    expect(after.queueDepth).toBe(0)
    for (const value of Object.values(after)) expect(Number.isSafeInteger(value)).toBe(true)
    await db.close()
  })

  it('a cold scan fetches its pages from the store in batched round trips, and counts them', async () => {
    const db = await ctx.depot.openDatabase('reads')
    await db.exec('CREATE TABLE t(v BLOB)')
    await db.executeBatch(Array.from({ length: 300 }, () => ({ sql: 'INSERT INTO t VALUES (?)', params: [Buffer.alloc(4000, 1)] })))
    await db.close()
    // Durable backends read from a brand-new depot; others from a new handle on the same store.
    const depot = backend.durable ? (await ctx.depot.close(), await ctx.openDepot()) : ctx.depot
    const again = await depot.openDatabase('reads')
    expect((await again.query('SELECT sum(length(v)) FROM t')).rows).toEqual([[1_200_000]])
    const m = again.metrics()
    expect(m.pagesFetched).toBeGreaterThanOrEqual(250)
    expect(m.getPagesCalls).toBeGreaterThan(0)
    expect(m.getPagesCalls).toBeLessThan(m.pagesFetched / 4) // read-ahead batches pages
    expect(m.bytesFetched).toBeGreaterThanOrEqual(m.pagesFetched * 512)
    expect(m.commits).toBe(0)
    await again.close()
  })
})
