// depot-sqlite/prometheus: the collectors of one depot, scraped as Prometheus text after known work.
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'

import { Registry, register } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { backends, codeOf, setup } from './backends'
import type { Db, Depot } from './backends'

// Loaded by the package's own name, through its `exports` map, as a user would.
const require = createRequire(import.meta.url)
const { depotCollector, DepotCollector } = require('depot-sqlite/prometheus') as typeof import('depot-sqlite/prometheus')

const CREATE = 'CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)'
const INSERT = 'INSERT INTO item (name) VALUES (?)'

/** Every sample of a scrape, keyed `name` or `name{a="x",b="y"}` (labels sorted). */
async function scrape(registry: Registry): Promise<Map<string, number>> {
  const samples = new Map<string, number>()
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`unexpected line: ${line}`)
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, key, value]) => `${key}="${value}"`).sort()
    samples.set(labels.length === 0 ? match[1] : `${match[1]}{${labels.join(',')}}`, Number(match[3]))
  }
  return samples
}

/** The samples whose key starts with `name`. */
const series = (samples: Map<string, number>, name: string) => Object.fromEntries([...samples].filter(([key]) => key === name || key.startsWith(`${name}{`)))

async function insertItems(db: Db, names: string[]) {
  for (const name of names) await db.run(INSERT, [name])
}

/** The workers count every call before its answer reaches JavaScript: nothing to wait for. */
async function settled(...dbs: Db[]) {
  for (const db of dbs) {
    const m = db.metrics()
    expect(m.calls).toBe(m.answered + m.failed)
  }
}

for (const backend of backends.filter((b) => b.name === 'memory' || b.name === 'file')) {
  describe(backend.name, () => {
    let ctx: Awaited<ReturnType<typeof setup>>
    let depot: Depot
    let registry: Registry

    beforeEach(async () => {
      ctx = await setup(backend)
      depot = ctx.depot
      registry = new Registry()
    })

    afterEach(async () => {
      await ctx.done()
    })

    it('counts calls and commits exactly, and reads the store counters of the databases', async () => {
      depotCollector(depot, { registry })
      const db = await depot.openDatabase('shop')
      await db.exec(CREATE)
      await insertItems(db, ['a', 'b', 'c', 'd', 'e'])
      await settled(db)

      const samples = await scrape(registry)
      // One call and one commit for the table, one each per insert in autocommit.
      expect(samples.get('depot_sqlite_calls_total')).toBe(6)
      expect(samples.get('depot_sqlite_commits_total')).toBe(6)
      expect(samples.get('depot_sqlite_commit_retries_total')).toBe(0)
      expect(samples.get('depot_sqlite_open_databases')).toBe(1)
      expect(samples.get('depot_sqlite_queue_depth')).toBe(0)
      const m = db.metrics()
      // A call over 200 ms counts as slow: on the file store an fsync of a busy disk can be.
      expect(samples.get('depot_sqlite_slow_calls_total')).toBe(m.slowCalls)
      if (backend.name === 'memory') expect(m.slowCalls).toBe(0)
      expect(m.pagesCommitted).toBeGreaterThan(0)
      expect(samples.get('depot_sqlite_committed_pages_total')).toBe(m.pagesCommitted)
      expect(samples.get('depot_sqlite_committed_bytes_total')).toBe(m.bytesCommitted)
      expect(samples.get('depot_sqlite_store_round_trips_total')).toBe(m.getPagesCalls)
      expect(samples.get('depot_sqlite_fetched_pages_total')).toBe(m.pagesFetched)
      expect(samples.get('depot_sqlite_fetched_bytes_total')).toBe(m.bytesFetched)
      expect(samples.get('depot_sqlite_cache_hits_total')).toBe(m.cacheHits)
      expect(samples.get('depot_sqlite_cache_misses_total')).toBe(m.cacheMisses)
      // No error yet: the counter has no series.
      expect(series(samples, 'depot_sqlite_errors_total')).toEqual({})

      await db.get('SELECT count(*) AS n FROM item')
      await settled(db)
      const again = await scrape(registry)
      expect(again.get('depot_sqlite_calls_total')).toBe(7)
      expect(again.get('depot_sqlite_commits_total')).toBe(6)
    })

    if (backend.durable) {
      it('counts the store reads of a database reopened on a new depot', async () => {
        const db = await depot.openDatabase('shop')
        await db.exec('CREATE TABLE blob (b BLOB)')
        await db.run('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) INSERT INTO blob SELECT randomblob(1000) FROM c')
        await depot.close()

        // Larger than a small page cache: read from the store.
        const reopened = await ctx.openDepot()
        const collector = depotCollector(reopened, { registry })
        const again = await reopened.openDatabase('shop', { cacheBytes: 65536 })
        expect(await again.get('SELECT count(*) AS n, sum(length(b)) AS bytes FROM blob')).toEqual({ n: 2000, bytes: 2_000_000 })
        await settled(again)
        const m = again.metrics()
        expect(m.getPagesCalls).toBeGreaterThan(0)
        expect(m.pagesFetched).toBeGreaterThan(0)
        const samples = await scrape(registry)
        expect(samples.get('depot_sqlite_store_round_trips_total')).toBe(m.getPagesCalls)
        expect(samples.get('depot_sqlite_fetched_pages_total')).toBe(m.pagesFetched)
        expect(samples.get('depot_sqlite_fetched_bytes_total')).toBe(m.bytesFetched)
        expect(samples.get('depot_sqlite_cache_misses_total')).toBe(m.cacheMisses)
        expect(samples.get('depot_sqlite_cache_hits_total')).toBe(m.cacheHits)
        expect(samples.get('depot_sqlite_calls_total')).toBe(1)
        collector.unregister()
      })
    }

    it('counts rejected calls by error code', async () => {
      // Opened before the collector: observed from when it subscribes.
      const db = await depot.openDatabase('shop')
      await db.exec(CREATE)
      depotCollector(depot, { registry })
      await db.run(INSERT, ['apple'])
      expect(await codeOf(db.run(INSERT, ['apple']))).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect(await codeOf(db.get('SELECT nope FROM item'))).toBe('SQLITE_ERROR')
      expect(await codeOf(db.transaction(async (tx) => tx.run(INSERT, ['apple'])))).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect(await codeOf(db.query('SELECT 1', [], { timeoutMs: -1 }))).toBe('ERR_INVALID_ARGUMENT')
      const tx = await db.beginTransaction()
      await tx.rollback()
      expect(await codeOf(tx.commit())).toBe('ERR_CLOSED')
      await db.close()
      expect(await codeOf(db.exec('SELECT 1'))).toBe('ERR_CLOSED')

      const samples = await scrape(registry)
      expect(series(samples, 'depot_sqlite_errors_total')).toEqual({
        'depot_sqlite_errors_total{code="SQLITE_CONSTRAINT_UNIQUE"}': 2,
        'depot_sqlite_errors_total{code="SQLITE_ERROR"}': 1,
        'depot_sqlite_errors_total{code="ERR_INVALID_ARGUMENT"}': 1,
        'depot_sqlite_errors_total{code="ERR_CLOSED"}': 2,
      })
    })

    it('gauges open databases (2 -> 1 -> 0) while the counters of closed ones never go back', async () => {
      depotCollector(depot, { registry })
      const a = await depot.openDatabase('a')
      const b = await depot.openDatabase('b')
      await a.exec(CREATE)
      await insertItems(a, ['x', 'y'])
      await b.exec(CREATE)
      await insertItems(b, ['z'])
      await settled(a, b)

      let samples = await scrape(registry)
      expect(samples.get('depot_sqlite_open_databases')).toBe(2)
      expect(samples.get('depot_sqlite_calls_total')).toBe(5)
      expect(samples.get('depot_sqlite_commits_total')).toBe(5)

      await b.close()
      await b.close()
      samples = await scrape(registry)
      expect(samples.get('depot_sqlite_open_databases')).toBe(1)
      expect(samples.get('depot_sqlite_calls_total')).toBe(5)
      expect(samples.get('depot_sqlite_commits_total')).toBe(5)

      await insertItems(a, ['w'])
      await settled(a)
      samples = await scrape(registry)
      expect(samples.get('depot_sqlite_calls_total')).toBe(6)

      // Closed and never scraped while open: counted all the same.
      const c = await depot.openDatabase('c')
      await c.exec(CREATE)
      await c.close()
      samples = await scrape(registry)
      expect(samples.get('depot_sqlite_open_databases')).toBe(1)
      expect(samples.get('depot_sqlite_calls_total')).toBe(7)
      expect(samples.get('depot_sqlite_commits_total')).toBe(7)

      await depot.close()
      samples = await scrape(registry)
      expect(samples.get('depot_sqlite_open_databases')).toBe(0)
      expect(samples.get('depot_sqlite_calls_total')).toBe(7)
      expect(samples.get('depot_sqlite_queue_depth')).toBe(0)
    })

    it('has no per-database label by default', async () => {
      depotCollector(depot, { registry })
      for (const name of ['a', 'b', 'c']) {
        const db = await depot.openDatabase(name)
        await db.exec(CREATE)
        await codeOf(db.exec('SELECT nope'))
        await settled(db)
      }
      const text = await registry.metrics()
      expect(text).not.toContain('database=')
      expect(text).not.toMatch(/"(a|b|c)"/)
      const samples = await scrape(registry)
      expect(samples.get('depot_sqlite_calls_total')).toBe(6)
      expect(series(samples, 'depot_sqlite_errors_total')).toEqual({ 'depot_sqlite_errors_total{code="SQLITE_ERROR"}': 3 })
    })

    it('labels every series but open_databases by database with perDatabase: true', async () => {
      depotCollector(depot, { registry, perDatabase: true })
      const a = await depot.openDatabase('a')
      const b = await depot.openDatabase('b')
      await a.exec(CREATE)
      await insertItems(a, ['x', 'y'])
      await b.exec(CREATE)
      expect(await codeOf(b.run(INSERT, [{}] as never))).toBe('ERR_INVALID_ARGUMENT')
      await settled(a, b)

      let samples = await scrape(registry)
      expect(series(samples, 'depot_sqlite_calls_total')).toEqual({
        'depot_sqlite_calls_total{database="a"}': 3,
        'depot_sqlite_calls_total{database="b"}': 1,
      })
      expect(series(samples, 'depot_sqlite_commits_total')).toEqual({
        'depot_sqlite_commits_total{database="a"}': 3,
        'depot_sqlite_commits_total{database="b"}': 1,
      })
      expect(series(samples, 'depot_sqlite_queue_depth')).toEqual({
        'depot_sqlite_queue_depth{database="a"}': 0,
        'depot_sqlite_queue_depth{database="b"}': 0,
      })
      expect(series(samples, 'depot_sqlite_errors_total')).toEqual({
        'depot_sqlite_errors_total{code="ERR_INVALID_ARGUMENT",database="b"}': 1,
      })
      expect(series(samples, 'depot_sqlite_open_databases')).toEqual({ depot_sqlite_open_databases: 2 })

      // Closed: its counters stay, its queue goes; reopened, it counts on from there.
      await b.close()
      samples = await scrape(registry)
      expect(series(samples, 'depot_sqlite_calls_total')).toEqual({
        'depot_sqlite_calls_total{database="a"}': 3,
        'depot_sqlite_calls_total{database="b"}': 1,
      })
      expect(series(samples, 'depot_sqlite_queue_depth')).toEqual({ 'depot_sqlite_queue_depth{database="a"}': 0 })
      expect(samples.get('depot_sqlite_open_databases')).toBe(1)

      const b2 = await depot.openDatabase('b')
      await b2.get('SELECT 1 AS one')
      await settled(b2)
      samples = await scrape(registry)
      expect(samples.get('depot_sqlite_calls_total{database="b"}')).toBe(2)
      expect(samples.get('depot_sqlite_queue_depth{database="b"}')).toBe(0)
    })

    it('takes a prefix, refuses a clash, and unregisters', async () => {
      const collector = new DepotCollector(depot, { registry, prefix: 'actors_' })
      expect(collector.registry).toBe(registry)
      expect(() => depotCollector(depot, { registry, prefix: 'actors_' })).toThrow(/already been registered/)
      const db = await depot.openDatabase('a')
      await db.exec(CREATE)
      await codeOf(db.exec(CREATE))
      await settled(db)

      const samples = await scrape(registry)
      expect(samples.get('actors_calls_total')).toBe(2)
      expect(samples.get('actors_errors_total{code="SQLITE_ERROR"}')).toBe(1)
      expect([...samples.keys()].every((key) => key.startsWith('actors_'))).toBe(true)

      expect(Object.hasOwn(db, '_call')).toBe(true)
      collector.unregister()
      collector.unregister()
      expect(await registry.metrics()).toBe('\n')
      // Nobody listens: the handle's calls take its class's path again, with no reporting step.
      expect(Object.hasOwn(db, '_call')).toBe(false)
      // Listening stopped: a new collector counts errors from now on.
      await codeOf(db.exec(CREATE))
      depotCollector(depot, { registry, prefix: 'actors_' })
      await codeOf(db.exec(CREATE))
      expect((await scrape(registry)).get('actors_errors_total{code="SQLITE_ERROR"}')).toBe(1)
    })

    it("registers on prom-client's global registry by default", async () => {
      const collector = depotCollector(depot)
      try {
        const db = await depot.openDatabase('a')
        await db.exec(CREATE)
        await settled(db)
        expect(collector.registry).toBe(register)
        expect((await scrape(register)).get('depot_sqlite_calls_total')).toBe(1)
      } finally {
        collector.unregister()
      }
      expect(await register.getSingleMetric('depot_sqlite_calls_total')).toBeUndefined()
    })

    it('refuses what is not a depot or bad options', () => {
      expect(() => depotCollector({} as never, { registry })).toThrow(/needs a Depot/)
      expect(() => depotCollector(depot, { registry, prefix: 1 as never })).toThrow(/prefix/)
      expect(() => depotCollector(depot, { registry, perDatabase: 'yes' as never })).toThrow(/perDatabase/)
    })
  })
}

describe('a handle dropped without close()', () => {
  it('is not kept alive by the depot, and its counters stay in the totals once collected', async () => {
    // In a process with `gc()`: the dropped handle must be collectable (the depot holds it weakly).
    const root = join(__dirname, '..')
    const script = `
      const { Registry } = require('prom-client')
      const { Depot } = require(${JSON.stringify(root)})
      const { depotCollector } = require(${JSON.stringify(join(root, 'adapters', 'prometheus.js'))})
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
      ;(async () => {
        const depot = await Depot.open({ memory: true })
        const registry = new Registry()
        depotCollector(depot, { registry })
        const kept = await depot.openDatabase('kept')
        await kept.exec('CREATE TABLE t (x)')
        await (async () => {
          const dropped = await depot.openDatabase('dropped')
          await dropped.exec('CREATE TABLE t (x)')
          await dropped.run('INSERT INTO t VALUES (1)')
        })()
        const sample = async () => {
          const text = await registry.metrics()
          const value = (name) => Number(new RegExp('^' + name + ' ([0-9.]+)$', 'm').exec(text)[1])
          return { open: value('depot_sqlite_open_databases'), calls: value('depot_sqlite_calls_total'), commits: value('depot_sqlite_commits_total') }
        }
        const before = await sample()
        const databases = depot[Symbol.for('depot-sqlite.databases')]
        for (let i = 0; i < 200 && databases.size > 1; i++) {
          gc()
          await sleep(10)
        }
        const after = await sample()
        await depot.close()
        process.stdout.write(JSON.stringify({ before, after }))
      })().catch((error) => { console.error(error); process.exit(1) })
    `
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', '-e', script], { cwd: root, timeout: 20_000 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out),
      )
    })
    expect(JSON.parse(stdout)).toEqual({
      before: { open: 2, calls: 3, commits: 3 },
      after: { open: 1, calls: 3, commits: 3 },
    })
  })
})
