#!/usr/bin/env node
// Memory of many open databases (issue 6): peak and idle RSS for 1,000 open databases, each holding
// a small table, above the baseline RSS measured in the same process before opening them. Each
// store is measured in its own child process so that one does not inflate the other's baseline;
// better-sqlite3 (1,000 connections to 1,000 WAL files) is printed for reference. Not part of `npm test`.
//
//   npm run build && npm run bench:memory
//   node bench/memory.mjs [--count N] [--stores file,memory,better-sqlite3]
//
// Baseline: after loading the addon and opening the depot (the store is shared by all databases,
// not a per-database cost), after a GC. Peak: the highest RSS seen while opening and filling the
// databases (VmHWM from /proc/self/status, and sampled RSS where /proc is missing). Idle: RSS once
// all are open and quiet, after a GC. Each database: CREATE TABLE, 10 rows of 100 bytes, one
// SELECT; then it stays open.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const args = {}
for (let i = 2; i < process.argv.length; i++) args[process.argv[i].replace(/^--/, '')] = process.argv[++i]
const COUNT = Number(args.count ?? 1000)
const CONCURRENCY = 16
const KiB = 1024
const MiB = 1024 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

function procStatus() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? NaN)
    return { hwm: field('VmHWM') * KiB, threads: field('Threads') }
  } catch {
    return { hwm: NaN, threads: NaN }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function settle() {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(100)
  }
  return process.memoryUsage.rss()
}

/** Child: opens COUNT databases on one store and prints its figures as JSON. */
async function child(store) {
  const dir = join(here, '.data-memory', store)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const row = 'x'.repeat(100)
  let open, fill, closeAll
  if (store === 'better-sqlite3') {
    const Database = require('better-sqlite3')
    const dbs = []
    open = async (i) => {
      const db = new Database(join(dir, `db-${i}.db`))
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      dbs.push(db)
      return db
    }
    fill = async (db) => {
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
      const insert = db.prepare('INSERT INTO t(v) VALUES (?)')
      db.transaction(() => { for (let j = 0; j < 10; j++) insert.run(row) })()
      return db.prepare('SELECT count(*) FROM t').pluck().get()
    }
    closeAll = async () => dbs.forEach((db) => db.close())
  } else {
    const { Depot } = require('../index.js')
    const depot = await Depot.open(store === 'file' ? { path: join(dir, 'depot') } : { memory: true })
    const dbs = [] // held: a handle that is garbage-collected gets closed
    open = async (i) => {
      const db = await depot.openDatabase(`db-${i}`)
      dbs.push(db)
      return db
    }
    fill = async (db) => {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
      await db.executeBatch(Array.from({ length: 10 }, () => ({ sql: 'INSERT INTO t(v) VALUES (?)', params: [row] })))
      return (await db.query('SELECT count(*) FROM t')).rows[0][0]
    }
    closeAll = () => depot.close()
  }
  const baseline = await settle()
  const baselineStatus = procStatus()
  let peakSampled = baseline
  const sampler = setInterval(() => { peakSampled = Math.max(peakSampled, process.memoryUsage.rss()) }, 5)
  const t0 = performance.now()
  let next = 0
  const lane = async () => {
    while (next < COUNT) {
      const i = next++
      const db = await open(i)
      if (Number(await fill(db)) !== 10) throw new Error(`database ${i}: wrong row count`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane))
  const openMs = performance.now() - t0
  await sleep(1000) // idle
  const idle = await settle()
  clearInterval(sampler)
  const status = procStatus()
  const peak = Math.max(peakSampled, Number.isNaN(status.hwm) ? 0 : status.hwm)
  const t1 = performance.now()
  await closeAll()
  const closeMs = performance.now() - t1
  rmSync(dir, { recursive: true, force: true })
  process.stdout.write(JSON.stringify({ store, count: COUNT, baseline, peak, idle, threadsBefore: baselineStatus.threads, threads: status.threads, openMs, closeMs }) + '\n')
}

/** Parent: one child per store, then the table. */
function parent() {
  const stores = (args.stores ?? 'file,memory,better-sqlite3').split(',')
  const rows = []
  for (const store of stores) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', store, '--count', String(COUNT)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    })
    rows.push(JSON.parse(out.trim().split('\n').pop()))
  }
  rmSync(join(here, '.data-memory'), { recursive: true, force: true })
  const mib = (b) => (b / MiB).toFixed(1)
  const kib = (b) => (b / KiB).toFixed(0)
  const name = { file: 'depot-sqlite (file store)', memory: 'depot-sqlite (memory store)', 'better-sqlite3': 'better-sqlite3 12 (reference: WAL files)' }
  const lines = [
    `# Memory: ${COUNT.toLocaleString('en-US')} open databases, each with a 10-row table`,
    '',
    `- date: ${new Date().toISOString()}; command: \`npm run bench:memory\` (\`node bench/memory.mjs${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}\`)`,
    `- node ${process.version}; machine: nproc ${cpus().length}, ${cpus()[0]?.model ?? 'unknown CPU'}`,
    '- RSS above the baseline measured in the same process before opening them (addon loaded, depot open, after a GC); one process per store',
    '',
    '| store | baseline RSS | peak RSS | peak above baseline | per database (peak) | idle above baseline | per database (idle) | threads | open + fill all | close all |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) =>
      `| ${name[r.store] ?? r.store} | ${mib(r.baseline)} MiB | ${mib(r.peak)} MiB | ${mib(r.peak - r.baseline)} MiB | ${kib((r.peak - r.baseline) / r.count)} KiB | ${mib(r.idle - r.baseline)} MiB | ${kib((r.idle - r.baseline) / r.count)} KiB | ${r.threadsBefore} → ${r.threads} | ${(r.openMs / 1000).toFixed(1)} s | ${(r.closeMs / 1000).toFixed(1)} s |`),
    '',
    ...rows.filter((r) => r.store !== 'better-sqlite3').map((r) =>
      `Issue 6 target, ${name[r.store]}: at most 200 KiB of RSS per open idle database: ${kib((r.idle - r.baseline) / r.count)} KiB idle, ${kib((r.peak - r.baseline) / r.count)} KiB at peak: ${(r.idle - r.baseline) / r.count <= 200 * KiB ? 'met' : '**missed**'}.`),
  ]
  console.log(lines.join('\n'))
}

if (args.child) await child(args.child)
else parent()
