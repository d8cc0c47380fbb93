#!/usr/bin/env node
// Side-by-side benchmarks: depot-sqlite (memory store and embedded file store) against
// better-sqlite3 12.x on a local file. Bounded in size and time; data goes to bench/.data (removed
// afterwards). Run with `npm run bench` after `npm run build` (release build).
//
//   node bench/run.mjs [rows]      (default 5000 rows per workload)
import { mkdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { Depot } = require('../index.js')
const Database = require('better-sqlite3')

const ROWS = Number(process.argv[2] ?? 5000)
const dataDir = join(dirname(fileURLToPath(import.meta.url)), '.data')
const payload = 'x'.repeat(100)

/** Times `fn` and returns operations per second for `ops` operations. */
async function measure(ops, fn) {
  const start = process.hrtime.bigint()
  await fn()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return Math.round(ops / seconds)
}

/** The workloads, against a uniform async interface. */
async function workloads(db) {
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)')
  const single = await measure(ROWS, async () => {
    for (let i = 0; i < ROWS; i++) await db.run('INSERT INTO t(body) VALUES (?)', [payload])
  })
  const batch = await measure(ROWS, () =>
    db.batch(Array.from({ length: ROWS }, () => ({ sql: 'INSERT INTO t(body) VALUES (?)', params: [payload] }))),
  )
  const point = await measure(ROWS, async () => {
    for (let i = 1; i <= ROWS; i++) await db.query('SELECT body FROM t WHERE id = ?', [i])
  })
  const scan = await measure(10, async () => {
    for (let i = 0; i < 10; i++) await db.query('SELECT count(*), sum(length(body)) FROM t')
  })
  return { 'insert (1 row / txn)': single, 'insert (batch, 1 txn)': batch, 'point select': point, 'full scan': scan }
}

function depotAdapter(db) {
  return {
    exec: (sql) => db.exec(sql),
    run: (sql, params) => db.run(sql, params),
    query: (sql, params) => db.query(sql, params),
    batch: (statements) => db.executeBatch(statements),
  }
}

function betterSqliteAdapter(db) {
  const cache = new Map()
  const prepare = (sql) => cache.get(sql) ?? cache.set(sql, db.prepare(sql)).get(sql)
  return {
    exec: async (sql) => db.exec(sql),
    run: async (sql, params) => prepare(sql).run(...params),
    query: async (sql, params = []) => prepare(sql).raw().all(...params),
    batch: async (statements) => db.transaction(() => statements.forEach((s) => prepare(s.sql).run(...s.params)))(),
  }
}

async function main() {
  rmSync(dataDir, { recursive: true, force: true })
  mkdirSync(dataDir, { recursive: true })
  const results = {}
  try {
    for (const [name, options] of [['depot-sqlite (memory)', { memory: true }], ['depot-sqlite (file)', { path: join(dataDir, 'depot') }]]) {
      const depot = await Depot.open(options)
      const db = await depot.openDatabase('bench')
      results[name] = await workloads(depotAdapter(db))
      await depot.close()
    }
    const native = new Database(join(dataDir, 'better.db'))
    native.pragma('journal_mode = WAL')
    native.pragma('synchronous = NORMAL')
    results['better-sqlite3 (file, WAL)'] = await workloads(betterSqliteAdapter(native))
    native.close()
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
  console.log(`ops/s, ${ROWS} rows per workload (higher is better)`)
  console.table(results)
}

await main()
