#!/usr/bin/env node
// Snapshot readers benchmark (issue 13), on the embedded file store, each figure with `readers: 0`
// (every call on the writer, the baseline) and `readers: 1` measured in the same run:
//   - held: point selects issued every 20 ms while an interactive transaction holds the database
//     for --hold-ms (default 1000): latency p50 / p99 / max;
//   - long: point selects issued every 20 ms while one long analytic query runs (about --hold-ms on
//     this machine, calibrated first): latency p50 / p99 / max;
//   - idle: RSS per idle database, --idle databases (default 200) each answering one read, then left
//     alone until their readers ended (readers end after 2 s idle);
//   - throughput: point selects awaited one at a time, 64 point selects in flight and single-row
//     autocommit inserts, readers 0 and 1 and better-sqlite3 12 (WAL, synchronous=FULL, point selects
//     only: it is synchronous, so its "64 in flight" is its plain loop) taking turns for --rounds
//     rounds (default 4) of --round-ms (default 1000) each after a warm-up: whether readers cost the
//     awaited and the writing workloads anything, and what they give the concurrent one;
//   - sporadic: one awaited point select every 1 ms and every 10 ms, readers 1 with and without
//     `readsOnCaller`, and better-sqlite3, taking turns call by call: latency p50 / p99.
//
//   npm run bench:readers                (about 70 s on a 2-core machine)
//   node bench/readers.mjs [--hold-ms N] [--idle N] [--rounds N] [--round-ms N] [--out FILE]
//
// --out: also write the markdown section to FILE, replacing the section of the same title.
// Not part of `npm test`; the addon must be built (`npm run build` for release figures).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { commandLine, machineLine, parseArgs, saveSection } from './common.mjs'

const require = createRequire(import.meta.url)
const { Depot } = require('../index.js')
const Database = require('better-sqlite3')

const args = parseArgs(process.argv.slice(2))
const HOLD_MS = Number(args['hold-ms'] ?? 1000)
const IDLE = Number(args.idle ?? 200)
const ROUNDS = Number(args.rounds ?? 4)
const ROUND_MS = Number(args['round-ms'] ?? 1000)
const OUT = args.out
const EVERY_MS = 20
const ROWS = 10_000
/** Sporadic reads: [interval in ms, calls per side]. */
const SPORADIC = [
  [1, 500],
  [10, 100],
]
const TITLE = '## Snapshot readers: point reads while the writer is busy (file store)'
if (!(HOLD_MS >= 100) || !(IDLE > 0)) throw new Error('--hold-ms must be at least 100 and --idle positive')
if (!(ROUNDS >= 1) || !(ROUND_MS >= 100)) throw new Error('--rounds must be at least 1 and --round-ms at least 100')

const log = (line) => process.stderr.write(`[readers] ${line}\n`)
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
const rssBytes = () => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096

async function seeded(depot, name, readers, options = {}) {
  const db = await depot.openDatabase(name, { readers, ...options })
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
  await db.executeBatch(Array.from({ length: ROWS }, (_, i) => ({ sql: 'INSERT INTO t VALUES (?, ?)', params: [i + 1, `row ${i + 1}`] })))
  return db
}

/** Point selects issued every EVERY_MS while `busy` runs: their latencies, sorted (ms). */
async function pointReadsDuring(db, busy) {
  const latencies = []
  const pending = []
  let running = true
  const work = busy().finally(() => {
    running = false
  })
  let id = 1
  while (running) {
    const t0 = now()
    pending.push(db.query('SELECT v FROM t WHERE id = ?', [(id++ % ROWS) + 1]).then(() => latencies.push(now() - t0)))
    await sleep(EVERY_MS)
  }
  await work
  await Promise.all(pending)
  return latencies.sort((a, b) => a - b)
}

const summary = (sorted) => ({ p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1], n: sorted.length })

/** The recursion depth of a CTE that runs for about HOLD_MS here. */
async function calibrate(db) {
  let n = 100_000
  for (;;) {
    const t0 = now()
    await db.query(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${n}) SELECT count(*) FROM c`)
    const ms = now() - t0
    if (ms >= HOLD_MS / 4) return Math.round((n * HOLD_MS) / ms)
    n *= 4
  }
}

async function busyWriter(depot, readers, depth) {
  const db = await seeded(depot, `busy-${readers}`, readers)
  for (let i = 0; i < 200; i++) await db.query('SELECT v FROM t WHERE id = ?', [i + 1]) // warm
  const held = await pointReadsDuring(db, () =>
    db.transaction(async (tx) => {
      await tx.run('UPDATE t SET v = ? WHERE id = 1', ['held'])
      await sleep(HOLD_MS)
    }),
  )
  const long = await pointReadsDuring(db, () =>
    db.query(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${depth}) SELECT count(*) FROM c`),
  )
  const stats = db.stats()
  await db.close()
  return { held: summary(held), long: summary(long), readerCalls: stats.readerCalls }
}

async function idleRss(depot, readers) {
  const dbs = []
  for (let i = 0; i < IDLE; i++) {
    const db = await depot.openDatabase(`idle-${readers}-${i}`, { readers })
    await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')
    dbs.push(db)
  }
  global.gc?.()
  await sleep(2500)
  const before = rssBytes()
  for (const db of dbs) await db.query('SELECT v FROM t')
  await sleep(2500) // readers end after 2 s without a call
  global.gc?.()
  const after = rssBytes()
  const threads = dbs.reduce((sum, db) => sum + db.stats().readers, 0)
  for (const db of dbs) await db.close()
  return { perDbBytes: (after - before) / IDLE, readersLeft: threads }
}

const POINT = 'SELECT v FROM t WHERE id = ?'
const INSERT = 'INSERT INTO t(v) VALUES (?)'

/** Operations per second of `op` run for ROUND_MS by `lanes` loops each awaiting its own. */
async function opsPerSecond(op, lanes) {
  let ops = 0
  const t0 = now()
  const end = t0 + ROUND_MS
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (now() < end) {
        await op(ops)
        ops++
      }
    }),
  )
  return (ops * 1000) / (now() - t0)
}

/** The same for a synchronous `op` (better-sqlite3). */
function opsPerSecondSync(op) {
  let ops = 0
  const t0 = now()
  const end = t0 + ROUND_MS
  while (now() < end) op(ops++)
  return (ops * 1000) / (now() - t0)
}

/** One awaited call of each side every `ms`, the sides taking turns call by call, `samples`
 * calls each: latency from call to answer per side (µs, summarized). */
async function sporadic(sides, ms, samples) {
  const latencies = sides.map(() => [])
  for (let i = 0; i < samples; i++) {
    for (const [k, call] of sides.entries()) {
      await sleep(ms)
      const t0 = process.hrtime.bigint()
      await call(i)
      latencies[k].push(Number(process.hrtime.bigint() - t0) / 1000)
    }
  }
  return latencies.map((xs) => summary(xs.sort((a, b) => a - b)))
}

/** Each workload on each side, the sides taking turns round by round; the median op/s per side. */
async function throughput(depot, dir) {
  const ours = []
  for (const readers of [0, 1]) ours.push({ readers, db: await seeded(depot, `throughput-${readers}`, readers) })
  const theirs = new Database(join(dir, 'better-sqlite3.db'))
  theirs.pragma('journal_mode = WAL')
  theirs.pragma('synchronous = FULL')
  theirs.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
  const fill = theirs.prepare('INSERT INTO t VALUES (?, ?)')
  theirs.transaction(() => {
    for (let i = 1; i <= ROWS; i++) fill.run(i, `row ${i}`)
  })()
  const point = theirs.prepare(POINT).raw()
  const id = (i) => ((i * 7919) % ROWS) + 1
  const workloads = [
    { key: 'point1', lanes: 1, ours: (db) => (i) => db.query(POINT, [id(i)]), theirs: (i) => point.get(id(i)) },
    { key: 'point64', lanes: 64, ours: (db) => (i) => db.query(POINT, [id(i)]), theirs: (i) => point.get(id(i)) },
    { key: 'insert', lanes: 1, ours: (db) => () => db.run(INSERT, ['new row']) },
  ]
  const results = {}
  try {
    for (const w of workloads) {
      const runs = { theirs: [], 0: [], 1: [] }
      for (const o of ours) await opsPerSecond(w.ours(o.db), w.lanes) // warm-up
      for (let round = 0; round < ROUNDS; round++) {
        if (w.theirs) runs.theirs.push(opsPerSecondSync(w.theirs))
        for (const o of ours) runs[o.readers].push(await opsPerSecond(w.ours(o.db), w.lanes))
      }
      const median = (xs) => (xs.length ? xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined)
      results[w.key] = { theirs: median(runs.theirs), 0: median(runs[0]), 1: median(runs[1]) }
      log(`throughput ${w.key}: ${JSON.stringify(results[w.key])}`)
    }
    results.readerCalls = ours[1].db.stats().readerCalls
    // Sporadic reads: readers 1 with and without reads on the JS thread, and better-sqlite3.
    const off = await seeded(depot, 'sporadic-off', 1, { readsOnCaller: false })
    try {
      const on = ours[1].db
      const before = on.stats().callerReads
      const sides = [(i) => point.get(id(i)), (i) => off.query(POINT, [id(i)]), (i) => on.query(POINT, [id(i)])]
      for (const [ms, samples] of SPORADIC) {
        results[`sporadic${ms}`] = await sporadic(sides, ms, samples)
        log(`sporadic every ${ms} ms: ${JSON.stringify(results[`sporadic${ms}`])}`)
      }
      results.callerReads = on.stats().callerReads - before
    } finally {
      await off.close()
    }
  } finally {
    theirs.close()
    for (const o of ours) await o.db.close()
  }
  return results
}

const dir = mkdtempSync(join(tmpdir(), 'depot-bench-readers-'))
const depot = await Depot.open({ path: dir })
const began = now()
try {
  const probe = await seeded(depot, 'calibrate', 0)
  const depth = await calibrate(probe)
  await probe.close()
  log(`long query: recursion depth ${depth}`)
  const rows = []
  for (const readers of [0, 1]) {
    const r = await busyWriter(depot, readers, depth)
    const idle = await idleRss(depot, readers)
    log(`readers ${readers}: ${JSON.stringify({ ...r, idle })}`)
    rows.push({ readers, ...r, idle })
  }
  const tput = await throughput(depot, dir)
  const f = (ms) => ms.toFixed(1)
  const [base, on] = rows
  const lines = [
    TITLE,
    '',
    `\`${commandLine('bench/readers.mjs')}\`; ${machineLine()}; ${((now() - began) / 1000).toFixed(0)} s. Point selects by`,
    `primary key issued every ${EVERY_MS} ms (not awaited one by one) on a ${ROWS}-row table while the writer is busy for about`,
    `${HOLD_MS} ms; latency in ms from issue to answer. Ratio: readers 0 over readers 1 (higher is better).`,
    '',
    '| busy with | readers | p50 | p99 | max | reads |',
    '|---|---|---|---|---|---|',
  ]
  for (const [key, what] of [['held', 'interactive transaction'], ['long', 'long analytic query']]) {
    for (const r of rows) lines.push(`| ${what} | ${r.readers} | ${f(r[key].p50)} | ${f(r[key].p99)} | ${f(r[key].max)} | ${r[key].n} |`)
    lines.push(`| ${what} | ratio | ${f(base[key].p50 / on[key].p50)}x | ${f(base[key].p99 / on[key].p99)}x | ${f(base[key].max / on[key].max)}x | |`)
  }
  lines.push(
    '',
    `Idle databases: ${IDLE} open, each answering one read, then idle 2.5 s: RSS per database ${(base.idle.perDbBytes / 1024).toFixed(1)} KiB`,
    `with readers 0, ${(on.idle.perDbBytes / 1024).toFixed(1)} KiB with readers 1 (reader threads left running: ${on.idle.readersLeft}).`,
    '',
    `Throughput, op/s (median of ${ROUNDS} rounds of ${ROUND_MS} ms, the sides taking turns): better-sqlite3 12 on a WAL file`,
    '(`synchronous=FULL`) runs the point selects in a plain loop (it is synchronous); ratios are ours / better-sqlite3 and',
    `readers 1 / readers 0 (higher is better). Reads answered by the reader in the readers 1 runs: ${tput.readerCalls}.`,
    '',
    '| workload | better-sqlite3 | readers 0 | readers 1 | readers 0 / better-sqlite3 | readers 1 / better-sqlite3 | readers 1 / readers 0 |',
    '|---|---:|---:|---:|---:|---:|---:|',
  )
  const n = (x) => (x === undefined ? 'n/a' : Math.round(x).toLocaleString('en-US'))
  const ratio = (a, b) => (a === undefined || b === undefined ? 'n/a' : (a / b).toFixed(2))
  for (const [key, what] of [
    ['point1', 'point select, 1 awaited at a time'],
    ['point64', 'point select, 64 in flight'],
    ['insert', 'single-row insert, autocommit'],
  ]) {
    const t = tput[key]
    lines.push(`| ${what} | ${n(t.theirs)} | ${n(t[0])} | ${n(t[1])} | ${ratio(t[0], t.theirs)} | ${ratio(t[1], t.theirs)} | ${ratio(t[1], t[0])} |`)
  }
  const us = (x) => (x < 100 ? x.toFixed(1) : x.toFixed(0))
  const sporadicCalls = SPORADIC.reduce((sum, [, samples]) => sum + samples, 0)
  lines.push(
    '',
    'Sporadic reads: one awaited point select every 1 ms and every 10 ms (an actor answering a request now and then), the',
    'sides taking turns call by call; latency from call to answer in µs. Off: `readsOnCaller: false` (every read wakes',
    'the parked writer and then the event loop); default: a read that would wake the parked writer runs on the JS thread',
    `from the page cache (${tput.callerReads} of ${sporadicCalls} did). Ratios at the median (lower is better).`,
    '',
    '| every | better-sqlite3 p50 / p99 | off p50 / p99 | default p50 / p99 | default / off | default / better-sqlite3 |',
    '|---|---:|---:|---:|---:|---:|',
  )
  for (const [ms] of SPORADIC) {
    const [theirs, off, on] = tput[`sporadic${ms}`]
    const cell = (x) => `${us(x.p50)} / ${us(x.p99)}`
    lines.push(`| ${ms} ms | ${cell(theirs)} | ${cell(off)} | ${cell(on)} | ${(on.p50 / off.p50).toFixed(2)} | ${(on.p50 / theirs.p50).toFixed(2)} |`)
  }
  lines.push('')
  const section = lines.join('\n')
  console.log('\n' + section)
  if (OUT) {
    saveSection(OUT, TITLE, section)
    log(`saved to ${OUT}`)
  }
} finally {
  await depot.close()
  rmSync(dir, { recursive: true, force: true })
}
