#!/usr/bin/env node
// Density (issue 16, hibernation): many open databases in one process, idle, then woken one by one.
//   1. Opens N databases (default 100,000) on one depot, `CONCURRENCY` at a time; each writes a table
//      with one row (one commit) and stays open, with a short `idleMs`.
//   2. Peak OS threads and RSS while opening; then, once every database hibernates, threads and RSS
//      after a GC (and the JS heap, to tell it from native memory).
//   3. Wake latency: 1,000 random hibernating databases, one at a time, each woken by one awaited
//      point select (timed), then the same select on it again right away, awake (timed).
//   4. Closes every handle (timed), then the depot.
//
//   npm run bench:density                                 (file store, 100,000 databases)
//   node bench/density.mjs [--count N] [--store file|memory|postgres] [--idle-ms MS]
//                          [--concurrency N] [--wakes N] [--pg URL] [--out FILE]
//
// --count: databases (default 100000; try 2000 first); --store: file (default, in a temporary
// directory), memory, or postgres (a fresh schema of DEPOT_TEST_PG_URL or --pg, dropped at the end);
// --idle-ms: the databases' idleMs (default 200); --concurrency: databases being opened at once
// (default 64); --wakes: databases woken (default 1000); --out: also write the markdown section to
// FILE, replacing the section of the same title when FILE has one (else appending it).
//
// Why idleMs 200 and not the default 30 s: a database hibernates only after idleMs without a call,
// and the bench wants every database idle within seconds of the last open, not minutes. What is
// measured once they hibernate does not depend on how long they took to get there. It also bounds the
// awake workers while opening: a database opened more than ~idleMs ago has given its thread back.
//
// Threads: `Threads` of /proc/self/status, sampled every 10 ms and after every 100th open (a peak
// between two samples can be missed). RSS peak: VmHWM. Memory mappings: lines of /proc/self/maps,
// checked every 100th open; opening stops `MAP_HEADROOM` short of vm.max_map_count, since past it the
// process aborts instead of reporting. An open, wake or close that fails is reported, not thrown; the
// bench then exits with status 1 (so does a run that stopped opening early). The core logs calls
// slower than 200 ms to stderr (`DEPOT_SQLITE_LOG=error` silences them; the table counts them).
// Linux only. Not part of `npm test`; the addon must be built (`npm run build`).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { commandLine, machineLine, parseArgs, psql, random, saveSection } from './common.mjs'

const require = createRequire(import.meta.url)
const { Depot } = require('../index.js')

const args = parseArgs(process.argv.slice(2))
const COUNT = Number(args.count ?? 100_000)
const STORE = args.store ?? 'file'
const IDLE_MS = Number(args['idle-ms'] ?? 200)
const CONCURRENCY = Number(args.concurrency ?? 64)
const WAKES = Math.min(COUNT, Number(args.wakes ?? 1000))
const PG_URL = args.pg ?? process.env.DEPOT_TEST_PG_URL
const OUT = args.out
const TITLE = `## Density: open databases that hibernate (${STORE} store)`
const TARGET_COUNT = 100_000
const TARGET_THREADS = 1000
const TARGET_RSS = 4 * 1024 ** 3
const TARGET_WAKE_P50_US = 1000
const SELECT = 'SELECT v FROM t WHERE id = 1'
/**
 * Opening stops once the process has this few memory mappings left under vm.max_map_count: past the
 * limit no thread can start and V8 cannot grow its heap, and the process aborts ("JavaScript heap out
 * of memory") instead of reporting. What is left covers the wakes, the closes and the report.
 */
const MAP_HEADROOM = 2000
const KiB = 1024
const MiB = 1024 * 1024

if (!(COUNT > 0) || !(IDLE_MS > 0) || !(CONCURRENCY > 0) || !(WAKES > 0)) throw new Error('--count, --idle-ms, --concurrency and --wakes must be positive')
if (!['file', 'memory', 'postgres'].includes(STORE)) throw new Error(`unknown store '${STORE}'`)
if (STORE === 'postgres' && !PG_URL) throw new Error('postgres needs --pg URL or DEPOT_TEST_PG_URL')

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const log = (line) => process.stderr.write(`[density] ${line}\n`)
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function procStatus() {
  const status = readFileSync('/proc/self/status', 'utf8')
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? NaN)
  return { threads: field('Threads'), rss: field('VmRSS') * KiB, hwm: field('VmHWM') * KiB }
}

const openFds = () => readdirSync('/proc/self/fd').length

/** Memory mappings of the process: Linux refuses a new one (a thread's stack, say) past vm.max_map_count. */
function mappings() {
  const maps = readFileSync('/proc/self/maps', 'utf8')
  let lines = 0
  for (let at = maps.indexOf('\n'); at >= 0; at = maps.indexOf('\n', at + 1)) lines++
  return lines
}

function maxMapCount() {
  try {
    return Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'))
  } catch {
    return NaN
  }
}

/** Three GCs with pauses, then where memory stands. */
async function settled() {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(100)
  }
  const { heapUsed, heapTotal } = process.memoryUsage()
  return { ...procStatus(), heapUsed, heapTotal, fds: openFds(), maps: mappings() }
}

async function openStore() {
  if (STORE === 'memory') return { depot: await Depot.open({ memory: true }), cleanup: () => {} }
  if (STORE === 'file') {
    const dir = mkdtempSync(join(tmpdir(), 'depot-bench-density-'))
    return { depot: await Depot.open({ path: join(dir, 'depot') }), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
  }
  const schema = `bench_density_${process.pid}_${Date.now().toString(36)}`
  return {
    depot: await Depot.open({ url: PG_URL, schema }),
    cleanup: () => psql(PG_URL, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
    server: psql(PG_URL, 'SHOW server_version'),
  }
}

/** Runs `fn(i)` for i in [0, count), `lanes` at a time; stops taking new ones once `stop()` says so. */
async function inLanes(count, lanes, fn, stop = () => false) {
  let next = 0
  const lane = async () => {
    while (next < count && !stop()) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.min(lanes, count) }, lane))
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
const summary = (us) => {
  const s = [...us].sort((a, b) => a - b)
  return s.length ? { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] } : null
}

/** The first failure of a phase and how many failed: the bench reports them instead of stopping. */
function failures() {
  return {
    count: 0,
    first: null,
    add(error, what) {
      if (this.count++ === 0) this.first = `${what}: ${error.code ? `${error.code}: ` : ''}${error.message}`
    },
  }
}

async function run() {
  const store = await openStore()
  const { depot } = store
  const r = { server: store.server, mapLimit: maxMapCount(), loadBefore: loadavg()[0] }
  const dbs = [] // held: a handle that is garbage-collected gets closed
  const leftOver = [] // opened, but the write failed: closed with the others, not measured
  try {
    r.baseline = await settled()
    log(`baseline: ${r.baseline.threads} threads, RSS ${fmtBytes(r.baseline.rss)}, ${n(r.baseline.maps)} memory mappings (vm.max_map_count ${n(r.mapLimit)})`)

    // 1. Open and write, CONCURRENCY at a time; sample threads meanwhile. The first failure (a
    // thread that cannot start, say) stops the opening: the rest is measured on those open.
    let peakThreads = r.baseline.threads
    const sample = () => {
      const t = procStatus().threads
      if (t > peakThreads) peakThreads = t
    }
    const sampler = setInterval(sample, 10)
    const openFailures = (r.openFailures = failures())
    let opened = 0
    // Time, RSS and mappings at every tenth of the opens: how the cost of an open and of an open
    // database grows with their number.
    const tenth = Math.max(1, Math.floor(COUNT / 10))
    const tenths = (r.tenths = [])
    const t0 = now()
    await inLanes(
      COUNT,
      CONCURRENCY,
      async (i) => {
        let db
        try {
          db = await depot.openDatabase(`d${i}`, { idleMs: IDLE_MS })
          await db.executeBatch([
            { sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)' },
            { sql: 'INSERT INTO t(id, v) VALUES (1, ?)', params: [`value of database ${i}`] },
          ])
        } catch (error) {
          openFailures.add(error, `${db ? 'writing' : 'opening'} database ${n(i + 1)}`)
          if (db) leftOver.push(db)
          return
        }
        dbs.push({ i, db })
        if (++opened % 100 === 0) {
          sample()
          const maps = mappings()
          if (maps > r.mapLimit - MAP_HEADROOM && !r.mapStop) {
            r.mapStop = { opened, maps }
            log(`opening stopped: ${n(maps)} memory mappings, within ${n(MAP_HEADROOM)} of vm.max_map_count`)
          }
        }
        if (opened % tenth === 0) {
          tenths.push({ opened, ms: now() - t0, rss: procStatus().rss, maps: mappings() })
          log(`${n(opened)} open, ${peakThreads} threads at most so far, ${n(tenths.at(-1).maps)} mappings, ${((now() - t0) / 1000).toFixed(1)} s`)
        }
      },
      () => openFailures.count > 0 || r.mapStop !== undefined,
    )
    r.openMs = now() - t0
    r.opened = dbs.length
    sample()
    if (openFailures.count) log(`opening stopped: ${openFailures.first}`)

    // 2. Wait until every database hibernates.
    const t1 = now()
    const deadline = t1 + IDLE_MS + 300_000
    for (;;) {
      let hibernating = 0
      for (const { db } of dbs) if (db.stats().hibernating) hibernating++
      sample()
      r.hibernatingAtEnd = hibernating
      if (hibernating === dbs.length) break
      if (now() > deadline) {
        log(`only ${hibernating} of ${dbs.length} hibernate ${((now() - t1) / 1000).toFixed(0)} s after the last open; measuring anyway`)
        break
      }
      await sleep(100)
    }
    r.untilIdleMs = now() - t1
    clearInterval(sampler)
    r.peakThreads = peakThreads
    r.idle = await settled()
    r.totals = { commits: 0, slowCalls: 0 }
    for (const { db } of dbs) {
      const m = db.metrics()
      for (const k of Object.keys(r.totals)) r.totals[k] += m[k]
    }
    log(`all hibernating ${fmtMs(r.untilIdleMs)} after the last open: ${r.idle.threads} threads, RSS ${fmtBytes(r.idle.rss)}, ${n(r.idle.maps)} mappings (peak ${peakThreads} threads, ${fmtBytes(r.idle.hwm)})`)

    // 3. Wake latency: each picked database woken by one select, then the same select awake.
    const next = random(16)
    const picked = new Set()
    while (picked.size < Math.min(WAKES, dbs.length)) picked.add(Math.floor(next() * dbs.length))
    const wake = []
    const awake = []
    let wakeGetPages = 0
    let notHibernating = 0
    const wakeFailures = (r.wakeFailures = failures())
    for (const k of picked) {
      const { i, db } = dbs[k]
      const wasHibernating = db.stats().hibernating
      if (!wasHibernating) notHibernating++
      const before = db.metrics()
      let t = process.hrtime.bigint()
      let first
      try {
        first = await db.query(SELECT)
      } catch (error) {
        wakeFailures.add(error, `waking database ${n(i + 1)}`)
        continue
      }
      wake.push(Number(process.hrtime.bigint() - t) / 1000)
      const mid = db.metrics()
      t = process.hrtime.bigint()
      const second = await db.query(SELECT)
      awake.push(Number(process.hrtime.bigint() - t) / 1000)
      const after = db.metrics()
      if (first.rows[0]?.[0] !== `value of database ${i}` || second.rows[0]?.[0] !== first.rows[0][0]) throw new Error(`database ${i} read ${JSON.stringify(first.rows)}`)
      if (mid.wakes - before.wakes !== (wasHibernating ? 1 : 0) || after.wakes !== mid.wakes) throw new Error(`database ${i}: wakes ${before.wakes} → ${mid.wakes} → ${after.wakes}`)
      wakeGetPages += mid.getPagesCalls - before.getPagesCalls
    }
    r.picked = picked.size
    r.notHibernating = notHibernating
    r.wake = summary(wake)
    r.awake = summary(awake)
    r.wakeGetPages = wake.length ? wakeGetPages / wake.length : NaN
    if (r.wake) log(`wake + select p50 ${fmtUs(r.wake.p50)}, p99 ${fmtUs(r.wake.p99)}; awake p50 ${fmtUs(r.awake.p50)}, p99 ${fmtUs(r.awake.p99)}`)
    if (wakeFailures.count) log(`${n(wakeFailures.count)} of ${n(picked.size)} wakes failed: ${wakeFailures.first}`)

    // 4. Close every handle, then the depot.
    const closeFailures = (r.closeFailures = failures())
    let t2 = now()
    for (const db of leftOver) dbs.push({ i: Number(db.name.slice(1)), db })
    await inLanes(dbs.length, CONCURRENCY, async (k) => {
      try {
        await dbs[k].db.close()
      } catch (error) {
        closeFailures.add(error, `closing database ${n(dbs[k].i + 1)}`)
      }
    })
    r.closeMs = now() - t2
    t2 = now()
    try {
      await depot.close() // may throw before it returns a promise (no thread to close on)
    } catch (error) {
      r.depotCloseFailure = `${error.code ? `${error.code}: ` : ''}${error.message}`
    }
    r.depotCloseMs = now() - t2
    r.loadAfter = loadavg()[0]
    log(`closed the handles in ${fmtMs(r.closeMs)}${closeFailures.count ? ` (${n(closeFailures.count)} failed: ${closeFailures.first})` : ''}, the depot in ${fmtMs(r.depotCloseMs)}`)
  } finally {
    try {
      await depot.close()
    } catch (error) {
      log(`closing the depot: ${error.message}`)
    }
    try {
      store.cleanup()
    } catch (error) {
      log(`cleaning up: ${error.message}`)
    }
  }
  return r
}

// ---- report ----

const fmtMs = (ms) => (ms >= 100 ? `${Math.round(ms).toLocaleString('en-US')} ms` : `${ms.toFixed(ms >= 10 ? 1 : 2)} ms`)
const fmtUs = (us) => (us >= 1000 ? fmtMs(us / 1000) : `${us.toFixed(us >= 100 ? 0 : 1)} µs`)
const fmtS = (ms) => `${(ms / 1000).toFixed(1)} s`
const fmtBytes = (n) => (Math.abs(n) >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`)
const n = (x) => x.toLocaleString('en-US')

function report(r, seconds) {
  const command = commandLine('bench/density.mjs')
  const { baseline, idle, opened } = r
  const perDb = (bytes) => `${(bytes / opened / KiB).toFixed(1)} KiB`
  const verdict = (ok) => (ok ? 'yes' : '**no**')
  const lines = [TITLE, '']
  lines.push(`- command: \`npm run bench:density\` (\`${command}\`${STORE === 'postgres' && !args.pg ? ', PostgreSQL at `DEPOT_TEST_PG_URL`' : ''}), ${Math.round(seconds)} s in all`)
  lines.push(`- node ${process.version}; machine: ${machineLine()}; vm.max_map_count ${n(r.mapLimit)}; load average (1 min) ${r.loadBefore.toFixed(2)} at the start, ${r.loadAfter.toFixed(2)} at the end${r.server ? `; PostgreSQL ${r.server} on the same machine (a schema made for the run, dropped at the end)` : ''}`)
  lines.push(
    `- ${n(COUNT)} databases opened on one depot, ${CONCURRENCY} at a time, each with \`idleMs: ${IDLE_MS}\`; each writes \`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)\` and one row (one \`executeBatch\`, one commit), then stays open. ` +
      `\`idleMs\` is ${IDLE_MS} ms instead of the default 30 s so that every database reaches the idle state within seconds of the last open; what an idle database costs does not depend on how long it took to get there`,
  )
  lines.push(
    `- threads: \`Threads\` of /proc/self/status, sampled every 10 ms and after every 100th open while opening; RSS: VmRSS, peak VmHWM; memory mappings: lines of /proc/self/maps; "idle": once \`stats().hibernating\` is true on every open database, after 3 GCs; baseline: the depot open, before any database, after 3 GCs`,
  )
  lines.push(
    `- wake: ${n(WAKES)} random databases, one at a time, each timed over one awaited \`${SELECT}\` that wakes it (\`metrics().wakes\` checked), then the same select on it again right away, awake`,
  )
  lines.push('')
  if (r.mapStop) {
    lines.push(
      `**Opening stopped after ${n(opened)} of ${n(COUNT)} databases**: the process had ${n(r.mapStop.maps)} memory mappings, within ${n(MAP_HEADROOM)} of vm.max_map_count (${n(r.mapLimit)}), ` +
        `${((r.mapStop.maps - baseline.maps) / r.mapStop.opened).toFixed(2)} per open database; past the limit no thread starts and V8 cannot grow its heap (the process aborts). Everything below is measured on the ${n(opened)} open ones.`,
    )
    lines.push('')
  }
  if (r.openFailures.count) {
    lines.push(`**Opening stopped after ${n(opened)} of ${n(COUNT)} databases**: ${r.openFailures.first}. Everything below is measured on the ${n(opened)} open ones.`)
    lines.push('')
  }
  lines.push('| measure | value |')
  lines.push('| --- | ---: |')
  lines.push(`| open + write ${n(opened)} databases | ${fmtS(r.openMs)} (${n(Math.round(opened / (r.openMs / 1000)))} a second) |`)
  const [first, last, prev] = [r.tenths[0], r.tenths.at(-1), r.tenths.at(-2)]
  if (prev) {
    const rate = (a, b) => n(Math.round((b.opened - a.opened) / ((b.ms - a.ms) / 1000)))
    lines.push(`| opens a second: first tenth / last tenth | ${n(Math.round(first.opened / (first.ms / 1000)))} / ${rate(prev, last)} |`)
  }
  lines.push(`| commits / calls slower than 200 ms (\`slowCalls\`, summed) | ${n(r.totals.commits)} / ${n(r.totals.slowCalls)} |`)
  lines.push(`| from the last open until all hibernate | ${fmtS(r.untilIdleMs)} (${n(r.hibernatingAtEnd)} of ${n(opened)} hibernating) |`)
  lines.push(`| OS threads: baseline / peak while opening / idle | ${n(baseline.threads)} / ${n(r.peakThreads)} / ${n(idle.threads)} |`)
  lines.push(`| RSS: baseline / peak (VmHWM) / idle | ${fmtBytes(baseline.rss)} / ${fmtBytes(idle.hwm)} / ${fmtBytes(idle.rss)} |`)
  lines.push(`| RSS per database: peak / idle (above the baseline) | ${perDb(idle.hwm - baseline.rss)} / ${perDb(idle.rss - baseline.rss)} |`)
  lines.push(`| JS heap used, idle (above the baseline) | ${fmtBytes(idle.heapUsed - baseline.heapUsed)} (${perDb(idle.heapUsed - baseline.heapUsed)} a database) |`)
  if (prev) lines.push(`| RSS growth per database opened, from the first tenth to the last (VmRSS while opening) | ${((last.rss - first.rss) / (last.opened - first.opened) / KiB).toFixed(1)} KiB |`)
  lines.push(`| memory mappings: baseline / idle (per database) | ${n(baseline.maps)} / ${n(idle.maps)} (${((idle.maps - baseline.maps) / opened).toFixed(2)}) |`)
  lines.push(`| open file descriptors: baseline / idle | ${n(baseline.fds)} / ${n(idle.fds)} |`)
  const us = (s, k) => (s ? fmtUs(s[k]) : 'n/a')
  const triple = (s) => `${us(s, 'p50')} / ${us(s, 'p99')} / ${us(s, 'max')}`
  lines.push(`| wake + point select: p50 / p99 / max (${n(r.picked - r.wakeFailures.count)} of ${n(r.picked)}) | ${triple(r.wake)} |`)
  lines.push(`| same select awake, right after: p50 / p99 / max | ${triple(r.awake)} |`)
  lines.push(`| store page reads (\`getPagesCalls\`) per wake + select | ${Number.isNaN(r.wakeGetPages) ? 'n/a' : r.wakeGetPages.toFixed(2)} |`)
  lines.push(`| close every handle (${CONCURRENCY} at a time) / then the depot | ${fmtMs(r.closeMs)} / ${fmtMs(r.depotCloseMs)} |`)
  lines.push('')
  for (const [what, f] of [['wakes', r.wakeFailures], ['closes', r.closeFailures]]) {
    if (f.count) lines.push(`**${n(f.count)} ${what} failed**; the first: ${f.first}.`, '')
  }
  if (r.depotCloseFailure) lines.push(`**Closing the depot failed**: ${r.depotCloseFailure}.`, '')
  if (r.notHibernating) lines.push(`${n(r.notHibernating)} of the ${n(r.picked)} picked databases were awake when their turn came; their first select is in the wake figures anyway.`, '')
  const smaller = COUNT >= TARGET_COUNT ? '' : ` (the targets are for ${n(TARGET_COUNT)} databases; this run asked for ${n(COUNT)})`
  lines.push(`Issue 16 targets${smaller}:`)
  lines.push('')
  lines.push('| target | this run | met |')
  lines.push('| --- | ---: | :---: |')
  if (COUNT >= TARGET_COUNT) lines.push(`| ${n(TARGET_COUNT)} databases open in one process | ${n(opened)} | ${verdict(opened >= TARGET_COUNT)} |`)
  if (COUNT >= TARGET_COUNT && opened < TARGET_COUNT) {
    // Not measured at the target's size: the figures at this size, and RSS scaled to the target's.
    const projected = baseline.rss + ((idle.rss - baseline.rss) / opened) * TARGET_COUNT
    lines.push(`| at most ${n(TARGET_THREADS)} OS threads once idle | ${n(idle.threads)} with ${n(opened)} open | not measured |`)
    lines.push(`| at most 4 GiB RSS once idle | ${fmtBytes(idle.rss)} with ${n(opened)} open; ${fmtBytes(projected)} at ${n(TARGET_COUNT)} at the same ${perDb(idle.rss - baseline.rss)} a database | not measured |`)
  } else {
    lines.push(`| at most ${n(TARGET_THREADS)} OS threads once idle | ${n(idle.threads)} | ${verdict(idle.threads <= TARGET_THREADS)} |`)
    lines.push(`| at most 4 GiB RSS once idle | ${fmtBytes(idle.rss)} | ${verdict(idle.rss <= TARGET_RSS)} |`)
  }
  const wakeFigure = r.wake ? `${fmtUs(r.wake.p50)} (p99 ${fmtUs(r.wake.p99)})` : 'every wake failed'
  if (STORE === 'file') lines.push(`| waking one: at most 1 ms p50 (p99 reported) | ${wakeFigure} | ${verdict(r.wake && r.wake.p50 <= TARGET_WAKE_P50_US && !r.wakeFailures.count)} |`)
  if (STORE === 'postgres') lines.push(`| waking one: one round trip | ${wakeFigure}; store page reads per wake: ${Number.isNaN(r.wakeGetPages) ? 'n/a' : r.wakeGetPages.toFixed(2)} (the reopen's other store calls are not counted) | not measured |`)
  lines.push('')
  return lines.join('\n')
}

const began = now()
const result = await run()
const section = report(result, (now() - began) / 1000)
console.log('\n' + section)
if (OUT) {
  saveSection(OUT, TITLE, section)
  log(`saved to ${OUT}`)
}
// Handles that could not close keep the event loop alive: end here, and say the run fell short.
const fellShort = result.mapStop || result.openFailures.count + result.wakeFailures.count + result.closeFailures.count > 0 || result.depotCloseFailure
if (fellShort) {
  log('not every database could open, wake or close (see above): exiting with status 1')
  process.exit(1)
}
