// Depot-level options that every backend shares.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { codeOf, Depot, errorOf } from './backends'

describe('openDatabase options', () => {
  it('maxCommitBytes: a larger transaction rejects ERR_TOO_LARGE and changes nothing', async () => {
    const depot = await Depot.open({ memory: true })
    const db = await depot.openDatabase('limit', { maxCommitBytes: 256 * 1024 })
    await db.exec('CREATE TABLE t(v BLOB); INSERT INTO t VALUES (1)')
    const big = db.exec('INSERT INTO t SELECT zeroblob(4096) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c)')
    expect(await codeOf(big)).toBe('ERR_TOO_LARGE')
    expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 })
    await db.run('INSERT INTO t VALUES (2)')
    await depot.close()
  })
})

describe('replyWaitMicros', () => {
  const point = (db: Awaited<ReturnType<Depot['openDatabase']>>, k: number) => db.get('SELECT v FROM kv WHERE k = ?', [k])

  async function filled(depot: Depot, name: string, options: Record<string, unknown>) {
    const db = await depot.openDatabase(name, options)
    await db.exec('CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)')
    await db.executeBatch(Array.from({ length: 100 }, (_, k) => ({ sql: 'INSERT INTO kv VALUES (?, ?)', params: [k, `v${k}`] })))
    return db
  }

  it('awaited calls are answered by the waiting JS thread, every answer right and in order', async () => {
    const depot = await Depot.open({ memory: true })
    const db = await filled(depot, 'inline', { replyWaitMicros: 5_000 })
    for (let i = 0; i < 300; i++) expect(await point(db, i % 100)).toEqual({ v: `v${i % 100}` })
    // Bursts in flight (never waited for) interleaved with lone calls (waited for).
    for (let round = 0; round < 50; round++) {
      const burst = Array.from({ length: 8 }, (_, j) => point(db, (round + j) % 100))
      expect(await point(db, round)).toEqual({ v: `v${round}` })
      expect(await Promise.all(burst)).toEqual(Array.from({ length: 8 }, (_, j) => ({ v: `v${(round + j) % 100}` })))
    }
    const stats = db.stats()
    expect(stats.answeredInline).toBeGreaterThan(0)
    expect(stats.queued).toBe(0)
    await depot.close()
  })

  it('never settles an answer before the event loop turns: a burst of calls is dispatched in full first', async () => {
    const depot = await Depot.open({ memory: true })
    // The writer alone answers in issue order: with readers, concurrent reads settle as they finish.
    const db = await filled(depot, 'burst', { replyWaitMicros: 10_000, readers: 0 })
    await point(db, 1) // the worker is awake now
    const settled: number[] = []
    const calls = Array.from({ length: 20 }, (_, k) => point(db, k).then(() => settled.push(k)))
    for (let i = 0; i < 50; i++) await Promise.resolve() // microtasks only: no macrotask runs
    expect(settled).toEqual([])
    await Promise.all(calls)
    expect(settled).toEqual(Array.from({ length: 20 }, (_, k) => k))
    await depot.close()
  })

  it('0 turns waiting off: every answer comes through the event loop', async () => {
    const depot = await Depot.open({ memory: true })
    const db = await filled(depot, 'evented', { replyWaitMicros: 0 })
    for (let i = 0; i < 200; i++) expect(await point(db, i % 100)).toEqual({ v: `v${i % 100}` })
    expect(db.stats().answeredInline).toBe(0)
    await depot.close()
  })

  it('a database with waiting off next to one with it on: every answer of both arrives', async () => {
    const depot = await Depot.open({ memory: true })
    const off = await filled(depot, 'off', { replyWaitMicros: 0 })
    const on = await filled(depot, 'on', { replyWaitMicros: 5_000 })
    const loop = async (db: typeof off) => {
      for (let i = 0; i < 300; i++) expect(await point(db, i % 100)).toEqual({ v: `v${i % 100}` })
    }
    await Promise.all([loop(off), loop(on)])
    expect(off.stats().answeredInline).toBe(0)
    await depot.close()
  }, 20_000)

  it('refuses a negative, fractional or event-loop-stalling value', async () => {
    const depot = await Depot.open({ memory: true })
    for (const bad of [-1, 1.5, 10_001, '20']) {
      expect(await codeOf(depot.openDatabase('bad', { replyWaitMicros: bad as never }))).toBe('ERR_INVALID_ARGUMENT')
    }
    await depot.close()
  })
})

describe('Depot.open options', () => {
  it('accepts a store call deadline and refuses a bad one', async () => {
    const depot = await Depot.open({ memory: true, storeTimeoutMs: 5_000 })
    const db = await depot.openDatabase('deadline')
    await db.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)')
    expect(await db.get('SELECT a FROM t')).toEqual({ a: 1 })
    await depot.close()
    expect(await codeOf(Depot.open({ memory: true, storeTimeoutMs: -1 }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ memory: true, storeTimeoutMs: 'soon' as never }))).toBe('ERR_INVALID_ARGUMENT')
  })
})

describe('openDatabase queryTimeoutMs', () => {
  it('is validated natively and becomes every call\'s default deadline', async () => {
    const depot = await Depot.open({ memory: true })
    for (const bad of [-1, Number.NaN, 'soon']) {
      const error = await errorOf(depot.openDatabase('bad', { queryTimeoutMs: bad as never }))
      expect(error.code).toBe('ERR_INVALID_ARGUMENT')
      expect(error.message).toContain('options.queryTimeoutMs')
    }
    const db = await depot.openDatabase('deadline', { queryTimeoutMs: 50 })
    const forever = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'
    expect(await codeOf(db.query(forever))).toBe('ERR_TIMEOUT')
    expect(await db.get('SELECT 1 AS one')).toEqual({ one: 1 })
    await depot.close()
  })
})

describe('README', () => {
  it('lists exactly the keys that metrics() returns, in order', async () => {
    const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8')
    const line = readme.split('\n').find((l) => l.startsWith('- `metrics()` returns'))
    expect(line).toBeDefined()
    const listed = /`\{ ([^}]*) \}`/.exec(line!)![1].split(',').map((k) => k.trim())
    const depot = await Depot.open({ memory: true })
    const db = await depot.openDatabase('metrics-doc')
    expect(listed).toEqual(Object.keys(db.metrics()))
    await depot.close()
  })
})
