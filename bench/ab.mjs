#!/usr/bin/env node
// A/B of two builds on the awaited point select (the latency-bound path that every call takes):
// `node bench/ab.mjs DIR_A DIR_B [--rounds 8] [--calls 20000]`, where each DIR is a checkout with its
// addon built (`npm run build`). The two run in turns, each round in a fresh process, so machine
// noise falls on both; prints each round and the median µs per call of each side.
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
const calls = flag('calls', 20000)

// One round in a child process: a memory depot, 1,000 rows, a warm-up, then `calls` awaited selects.
const child = `
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
const results = { a: [], b: [] }
for (let r = 0; r < rounds; r++) {
  for (const [side, dir] of r % 2 ? [['b', b], ['a', a]] : [['a', a], ['b', b]]) {
    results[side].push(Number(execFileSync(process.execPath, ['-e', child, dir], { encoding: 'utf8' }).trim()))
  }
  console.log(`round ${r + 1}: A ${results.a.at(-1)} µs, B ${results.b.at(-1)} µs`)
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
console.log(`median µs per awaited point select: A ${median(results.a)} (${a}), B ${median(results.b)} (${b}); B/A ${(median(results.b) / median(results.a)).toFixed(2)}`)
