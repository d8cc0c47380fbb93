#!/usr/bin/env node
// The PostgreSQL store under load (issue 4): commits per second for 1-row and 100-row transactions,
// point reads after a cold open, and the PostgreSQL round trips each costs.
//
//   node bench/postgres.mjs [commits]        (default 5000 one-row commits, a tenth as many 100-row ones)
//
// Against DEPOT_BENCH_PG_URL when set; otherwise it starts its own server with scripts/pg.sh (port
// 54349, pg_stat_statements loaded) and stops it at the end. Build first: `npm run build`.
//
// Round trips are counted twice: by the client (`metrics()`: store commits and get_pages calls, each
// one statement) and by the server (pg_stat_statements: every statement executed in the depot's
// database during the phase, whoever sent it). Not part of `npm test`.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { Depot } = require('../index.js')

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const ONE_ROW = Number(process.argv[2] ?? 5000)
const HUNDRED_ROWS = Math.max(1, Math.round(ONE_ROW / 10))
const POINT_READS = 2000
const payload = 'x'.repeat(100)

const pgEnv = { ...process.env, DEPOT_PG_PORT: process.env.DEPOT_PG_PORT ?? '54349' }
const pgSh = (command) =>
  execFileSync('bash', [join(root, 'scripts', 'pg.sh'), command], { env: pgEnv, encoding: 'utf8' }).trim()

const ownServer = !process.env.DEPOT_BENCH_PG_URL
const url = process.env.DEPOT_BENCH_PG_URL ?? pgSh('start')
const psql = (sql) => execFileSync('psql', [url, '-qtAc', sql], { encoding: 'utf8' }).trim()

let statements = false
try {
  psql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
  psql('SELECT pg_stat_statements_reset()')
  statements = true
} catch {
  console.error('pg_stat_statements is not available: counting round trips from metrics() only')
}

/** Resets the server's statement counters. */
function resetStatements() {
  if (statements) psql('SELECT pg_stat_statements_reset()')
}

/** Statements executed in this database since the last reset, by kind (ours excluded). */
function countStatements() {
  if (!statements) return null
  const rows = psql(`SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND query NOT ILIKE '%pg_stat_statements%'`)
  const kinds = {}
  let total = 0
  for (const line of rows.split('\n').filter(Boolean)) {
    const [calls, ...rest] = line.split('|')
    const query = rest.join('|')
    const kind = /^\s*WITH prev AS/.test(query)
      ? 'commit'
      : /LEFT JOIN LATERAL/.test(query)
        ? 'get_pages'
        : query.trim().split(/\s+/).slice(0, 2).join(' ')
    kinds[kind] = (kinds[kind] ?? 0) + Number(calls)
    total += Number(calls)
  }
  return { total, kinds }
}

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9
const delta = (after, before, key) => Number(after[key]) - Number(before[key])

async function main() {
  const schema = `bench_${Date.now().toString(36)}`
  const results = []
  const kinds = []
  const report = (name, ops, secs, trips, before, after, unit = 'commit') => {
    const store = delta(after, before, 'commits') + delta(after, before, 'getPagesCalls')
    results.push({
      workload: name,
      [`${unit}s/s`]: Math.round(ops / secs),
      'ms each': +((secs * 1000) / ops).toFixed(2),
      [`store calls/${unit}`]: +(store / ops).toFixed(2),
      [`pg statements/${unit}`]: trips ? +(trips.total / ops).toFixed(2) : 'n/a',
    })
    if (trips) kinds.push(`${name}: ${JSON.stringify(trips.kinds)}`)
  }

  let depot = await Depot.open({ url, schema })
  let db = await depot.openDatabase('bench', { generation: 1 })
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)')

  // 1-row transactions.
  let before = db.metrics()
  resetStatements()
  let start = process.hrtime.bigint()
  for (let i = 0; i < ONE_ROW; i++) await db.run('INSERT INTO t(body) VALUES (?)', [payload])
  let secs = seconds(start)
  report('commit, 1 row', ONE_ROW, secs, countStatements(), before, db.metrics())

  // 100-row transactions (one executeBatch = one SQLite transaction = one store commit).
  const hundred = Array.from({ length: 100 }, () => ({ sql: 'INSERT INTO t(body) VALUES (?)', params: [payload] }))
  before = db.metrics()
  resetStatements()
  start = process.hrtime.bigint()
  for (let i = 0; i < HUNDRED_ROWS; i++) await db.executeBatch(hundred)
  secs = seconds(start)
  report('commit, 100 rows', HUNDRED_ROWS, secs, countStatements(), before, db.metrics())
  const rows = ONE_ROW + HUNDRED_ROWS * 100
  const sizePages = Number(db.metrics().sizePages)
  await db.close()
  await depot.close()

  // Point reads after a cold open: a new depot (empty caches, new connections), random ids.
  depot = await Depot.open({ url, schema })
  resetStatements()
  start = process.hrtime.bigint()
  db = await depot.openDatabase('bench', { generation: 2 })
  const openMs = seconds(start) * 1000
  before = db.metrics()
  start = process.hrtime.bigint()
  const first = await db.query('SELECT body FROM t WHERE id = ?', [1 + Math.floor(Math.random() * rows)])
  const firstMs = seconds(start) * 1000
  if (first.rows.length !== 1) throw new Error('point read found no row')
  for (let i = 1; i < POINT_READS; i++) await db.query('SELECT body FROM t WHERE id = ?', [1 + Math.floor(Math.random() * rows)])
  secs = seconds(start)
  report('point read, cold open', POINT_READS, secs, countStatements(), before, db.metrics(), 'read')
  const after = db.metrics()
  await db.close()
  await depot.close()
  psql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)

  console.log(`PostgreSQL store at ${new URL(url).host} (${psql('SHOW server_version')}), ${rows} rows, ${sizePages} pages`)
  console.table(results)
  console.log('pg statements by kind:\n  ' + kinds.join('\n  '))
  console.log(
    `cold open (openDatabase) ${openMs.toFixed(1)} ms; first point read ${firstMs.toFixed(1)} ms; ` +
      `reads fetched ${delta(after, before, 'pagesFetched')} pages in ${delta(after, before, 'getPagesCalls')} get_pages calls`,
  )
  console.log('pg statements of the read phase include the cold open (one transaction: BEGIN, 3-4 statements, COMMIT).')
}

try {
  await main()
} finally {
  if (ownServer) pgSh('stop')
}
