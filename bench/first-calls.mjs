// The first calls of a fresh process (issue 16): awaited point selects on a database just opened by
// a new Node process, before V8 has optimized anything and before any cache is warm, against
// better-sqlite3 doing the same in a process of its own. `npm run bench` runs it (see run.mjs);
// alone: node bench/first-calls.mjs [--calls N] [--processes N] [--rows N].
//
// Each side runs in PROCESSES child processes, the sides taking turns; a child opens its store,
// times CALLS awaited point selects by primary key (the ids of a seeded PRNG, the same on both
// sides) and prints the mean. The figure is the median of the children's means.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { KV, parseArgs, random } from './common.mjs'

const require = createRequire(import.meta.url)
const here = fileURLToPath(import.meta.url)
const schema = (rows) => `${KV.table}; ${KV.fill(rows)}`

/** The ids of the calls: the same seeded sequence on both sides. */
function ids(count, rows) {
  const next = random(16)
  return Array.from({ length: count }, () => 1 + Math.floor(next() * rows))
}

/** Child: times `calls` point selects on one side; prints { us } (mean µs per call). */
async function child(side, dir, calls, rows) {
  const wanted = ids(calls, rows)
  let t0
  let t1
  if (side === 'ours') {
    const { Depot } = require('../index.js')
    const depot = await Depot.open({ path: join(dir, 'depot') })
    const db = await depot.openDatabase('bench')
    t0 = performance.now()
    for (const id of wanted) await db.query(KV.point, [id])
    t1 = performance.now()
    await depot.close()
  } else {
    const Database = require('better-sqlite3')
    const db = new Database(join(dir, 'better.db'))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    const point = db.prepare(KV.point).raw()
    t0 = performance.now()
    for (const id of wanted) point.get(id)
    t1 = performance.now()
    db.close()
  }
  process.stdout.write(JSON.stringify({ us: ((t1 - t0) * 1000) / calls }))
}

/**
 * Seeds both sides in a temporary directory, then runs `processes` children per side, taking
 * turns. Returns { ours: [µs...], theirs: [µs...] } (each child's mean per call).
 */
export async function firstCalls({ calls = 5000, processes = 3, rows = 20000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bench-first-'))
  try {
    const { Depot } = require('../index.js')
    const depot = await Depot.open({ path: join(dir, 'depot') })
    const db = await depot.openDatabase('bench')
    await db.exec(schema(rows))
    await depot.close()
    const Database = require('better-sqlite3')
    const theirs = new Database(join(dir, 'better.db'))
    theirs.pragma('journal_mode = WAL')
    theirs.exec(schema(rows))
    theirs.close()
    const out = { ours: [], theirs: [] }
    for (let i = 0; i < processes; i++) {
      for (const side of ['ours', 'theirs']) {
        const stdout = execFileSync(process.execPath, [here, '--child', side, dir, String(calls), String(rows)], {
          encoding: 'utf8',
          env: { ...process.env, DEPOT_SQLITE_LOG: 'error' },
        })
        out[side].push(JSON.parse(stdout).us)
      }
    }
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The middle value of `xs`. */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

if (process.argv[1] === here) {
  const argv = process.argv.slice(2)
  if (argv[0] === '--child') {
    await child(argv[1], argv[2], Number(argv[3]), Number(argv[4]))
  } else {
    const args = parseArgs(argv)
    const r = await firstCalls({ calls: Number(args.calls ?? 5000), processes: Number(args.processes ?? 3), rows: Number(args.rows ?? 20000) })
    const ours = median(r.ours)
    const theirs = median(r.theirs)
    console.log(`first calls of a fresh process: ours ${ours.toFixed(1)} µs, better-sqlite3 ${theirs.toFixed(1)} µs, ratio ${(theirs / ours).toFixed(2)}`)
    console.log(JSON.stringify(r))
  }
}
