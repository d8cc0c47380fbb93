// Several actors at once: N databases on one depot, each awaited by its own loop of point selects
// (how an actor runtime uses depot-sqlite). Prints the aggregate time per call for N = 1, 2, 4, 16
// (best and median of 3 runs of 300 ms each). Not part of `npm test`.
//
//   npm run bench:actors            # memory store
//   node bench/actors.mjs --file    # embedded file store (in a temporary directory)
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const { Depot } = createRequire(import.meta.url)('../index.js')
const file = process.argv.includes('--file')
const dir = file ? mkdtempSync(join(tmpdir(), 'depot-actors-')) : null
const depot = await Depot.open(file ? { path: dir } : { memory: true })
try {
  for (const n of [1, 2, 4, 16]) {
    const dbs = []
    for (let i = 0; i < n; i++) {
      const db = await depot.openDatabase(`actors-${n}-${i}`)
      await db.exec("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO kv VALUES (1, 'x')")
      dbs.push(db)
    }
    const times = []
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now()
      let calls = 0
      await Promise.all(
        dbs.map(async (db) => {
          while (performance.now() - t0 < 300) {
            calls++
            await db.query('SELECT v FROM kv WHERE id = 1')
          }
        }),
      )
      times.push(((performance.now() - t0) * 1000) / calls)
    }
    times.sort((a, b) => a - b)
    console.log(`${String(n).padStart(2)} actors: ${times[0].toFixed(2)} µs a call (best), ${times[1].toFixed(2)} (median)`)
    for (const db of dbs) await db.close()
  }
} finally {
  await depot.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
}
