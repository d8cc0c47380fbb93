#!/usr/bin/env node
// A/B of two builds on one latency-bound workload:
// `node bench/ab.mjs DIR_A DIR_B [--rounds 8] [--calls N] [--workload point|insert|scan]`, where each DIR
// is a checkout with its addon built (`npm run build`). `point` (the default, 20,000 calls): awaited
// point selects on a memory depot, the path every call takes. `insert` (2,000): awaited single-row
// autocommit inserts on a file depot, one store commit each. `scan` (20): a full scan of a 20 MiB
// table after closing and reopening the file depot, so every page comes from the store. The two
// sides run in turns, each round in a fresh process, so machine noise falls on both; prints each
// round and the median µs per call of each side.
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const [a, b] = args.filter((x, i) => !x.startsWith('--') && !args[i - 1]?.startsWith('--')).map((d) => resolve(d))
if (!a || !b) {
  console.error('usage: node bench/ab.mjs DIR_A DIR_B [--rounds N] [--calls N]')
  process.exit(2)
}
const rounds = flag('rounds', 8)
const workloadIndex = args.indexOf('--workload')
const workload = workloadIndex >= 0 ? args[workloadIndex + 1] : 'point'
const calls = flag('calls', { point: 20000, insert: 2000, scan: 20 }[workload])

// One round in a child process: a memory depot, 1,000 rows, a warm-up, then `calls` awaited selects.
const point = `
const { Depot } = require(process.argv[1] + '/index.js')
;(async () => {
  const depot = await Depot.open({ memory: true })
  const db = await depot.openDatabase('ab')
  await db.exec('CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)')
  await db.executeBatch(Array.from({ length: 1000 }, (_, i) => ({ sql: 'INSERT INTO kv VALUES (?, ?)', params: [i, 'v' + i] })))
  for (let i = 0; i < 5000; i++) await db.query('SELECT v FROM kv WHERE k = ?', [i % 1000])
  const start = process.hrtime.bigint()
  for (let i = 0; i < ${calls}; i++) await db.query('SELECT v FROM kv WHERE k = ?', [i % 1000])
  const micros = Number(process.hrtime.bigint() - start) / 1000 / ${calls}
  await db.close()
  await depot.close()
  console.log(micros.toFixed(2))
})()
`

// One round: a fresh file depot, a warm-up of 200 inserts, then `calls` awaited inserts.
const insert = `
const { Depot } = require(process.argv[1] + '/index.js')
const fs = require('node:fs'), os = require('node:os'), path = require('node:path')
;(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depot-ab-'))
  const depot = await Depot.open({ path: dir })
  const db = await depot.openDatabase('ab')
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
  const v = 'x'.repeat(100)
  for (let i = 0; i < 200; i++) await db.run('INSERT INTO t(v) VALUES (?)', [v])
  const start = process.hrtime.bigint()
  for (let i = 0; i < ${calls}; i++) await db.run('INSERT INTO t(v) VALUES (?)', [v])
  const micros = Number(process.hrtime.bigint() - start) / 1000 / ${calls}
  await db.close()
  await depot.close()
  fs.rmSync(dir, { recursive: true, force: true })
  console.log(micros.toFixed(2))
})()
`

// One round: a fresh file depot with a 20 MiB table, then the given number of cold scans (each after closing
// and reopening the depot).
const scan = `
const { Depot } = require(process.argv[1] + '/index.js')
const fs = require('node:fs'), os = require('node:os'), path = require('node:path')
;(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depot-ab-'))
  let depot = await Depot.open({ path: dir })
  let db = await depot.openDatabase('ab')
  await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20480) INSERT INTO t SELECT x, randomblob(1000) FROM c")
  let total = 0n
  for (let i = 0; i < ${calls}; i++) {
    await db.close()
    await depot.close()
    depot = await Depot.open({ path: dir })
    db = await depot.openDatabase('ab')
    const start = process.hrtime.bigint()
    await db.query('SELECT sum(length(v)) FROM t')
    total += process.hrtime.bigint() - start
  }
  await db.close()
  await depot.close()
  fs.rmSync(dir, { recursive: true, force: true })
  console.log((Number(total) / 1000 / ${calls}).toFixed(2))
})()
`
const child = { point, insert, scan }[workload]
if (!child) {
  console.error(`unknown workload '${workload}': point, insert or scan`)
  process.exit(2)
}
const results = { a: [], b: [] }
for (let r = 0; r < rounds; r++) {
  for (const [side, dir] of r % 2 ? [['b', b], ['a', a]] : [['a', a], ['b', b]]) {
    results[side].push(Number(execFileSync(process.execPath, ['-e', child, dir], { encoding: 'utf8' }).trim()))
  }
  console.log(`round ${r + 1}: A ${results.a.at(-1)} µs, B ${results.b.at(-1)} µs`)
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
console.log(`median µs per ${workload} call: A ${median(results.a)} (${a}), B ${median(results.b)} (${b}); B/A ${(median(results.b) / median(results.a)).toFixed(2)}`)
