#!/usr/bin/env node
// History storage (issue 12): does the storage of a database with a history window level off when
// the same pages are written over and over? One database of 1,000 rows of ~100 bytes; single-row
// updates as fast as they go for `--seconds` (default 60), with `historyMs` = `--history-ms`
// (default 2,000, short so that the window is passed many times in a minute). Samples every 5 s:
//   file store:  bytes on disk (allocated blocks of the depot directory) and the versions the
//                window holds (depot.history(): commits and the pages they wrote);
//   PostgreSQL:  pg_total_relation_size of the schema's pages and commits tables (when
//                DEPOT_TEST_PG_URL or --pg is set; its expiry runs every `expireEveryMs` = 10 s).
// Also prints the pages a single-row update retains, the figure the `historyMs` default rests on.
//
//   npm run bench:storage
//   node bench/storage.mjs [--seconds N] [--history-ms N] [--stores file,postgres] [--pg URL] [--out FILE]
//
// Not part of `npm test`; the addon must be built (`npm run build`).
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { psql, saveSection } from './common.mjs'

const { Depot } = createRequire(import.meta.url)('../index.js')
const args = {}
for (let i = 2; i < process.argv.length; i++) args[process.argv[i].replace(/^--/, '')] = process.argv[++i]
const SECONDS = Number(args.seconds ?? 60)
const HISTORY_MS = Number(args['history-ms'] ?? 2000)
const PG_URL = args.pg ?? process.env.DEPOT_TEST_PG_URL
const STORES = (args.stores ?? (PG_URL ? 'file,postgres' : 'file')).split(',')
const TITLE = '## History storage under rewrites'
const MiB = 1024 * 1024

const allocated = (dir) => readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).blocks * 512, 0)

async function run(store) {
  let dir
  let schema
  let depot
  if (store === 'file') {
    dir = mkdtempSync(join(tmpdir(), 'depot-storage-'))
    depot = await Depot.open({ path: dir, historyMs: HISTORY_MS })
  } else {
    schema = `bench_storage_${process.pid}`
    depot = await Depot.open({ url: PG_URL, schema, historyMs: HISTORY_MS })
  }
  const bytes = () =>
    store === 'file'
      ? allocated(dir)
      : Number(psql(PG_URL, `SELECT pg_total_relation_size('"${schema}".pages') + pg_total_relation_size('"${schema}".commits')`))
  const db = await depot.openDatabase('rewrite', { idleMs: 0 })
  await db.exec(
    "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO t SELECT i, printf('%100d', i) FROM n",
  )
  const samples = []
  const began = performance.now()
  let next = 5000
  let commits = 0
  while (performance.now() - began < SECONDS * 1000) {
    await db.run('UPDATE t SET v = ? WHERE id = ?', [String(commits).padStart(100), 1 + ((commits * 7919) % 1000)])
    commits++
    if (performance.now() - began >= next) {
      const window = await depot.history('rewrite', { limit: 1_000_000 })
      samples.push({ s: next / 1000, commits, bytes: bytes(), window: window.length, pages: window.reduce((n, c) => n + c.pages, 0) })
      next += 5000
    }
  }
  const window = await depot.history('rewrite', { limit: 1_000_000 })
  const pagesPerCommit = window.reduce((n, c) => n + c.pages, 0) / Math.max(1, window.length)
  await depot.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
  if (schema) psql(PG_URL, `DROP SCHEMA "${schema}" CASCADE`)
  return { store, samples, commits, pagesPerCommit }
}

const results = []
for (const store of STORES) results.push(await run(store))
let section = `${TITLE}\n\n\`node bench/storage.mjs --seconds ${SECONDS} --history-ms ${HISTORY_MS}\` (a 2-core shared machine): single-row updates of a 1,000-row table, as fast as they go, with a ${HISTORY_MS} ms history window. Storage is sampled every 5 s; it must level off, not grow with the commits.\n`
for (const r of results) {
  section += `\n${r.store === 'file' ? 'File store, bytes allocated on disk' : 'PostgreSQL, pages + commits tables'}; ${r.commits} commits, ${r.pagesPerCommit.toFixed(2)} pages retained per commit:\n\n| s | commits | storage | commits in the window | pages they wrote |\n| ---: | ---: | ---: | ---: | ---: |\n`
  for (const x of r.samples) section += `| ${x.s} | ${x.commits} | ${(x.bytes / MiB).toFixed(1)} MiB | ${x.window} | ${x.pages} |\n`
}
console.log(section)
if (args.out) saveSection(args.out, TITLE, section)
