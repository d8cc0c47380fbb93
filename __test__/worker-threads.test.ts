// The addon in Node worker threads: each thread is an environment of its own (its own waits, its
// own way of making answers), and one that ends must leave nothing behind for the next.
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

import { describe, expect, it } from 'vitest'

const entry = join(__dirname, '..', 'index.js')

// Opens a memory depot in the worker, answers one query of every value kind, closes.
const body = `
const { parentPort } = require('node:worker_threads')
const { Depot } = require(${JSON.stringify(entry)})
;(async () => {
  const depot = await Depot.open({ memory: true })
  const db = await depot.openDatabase('w')
  const r = await db.query("SELECT 1, 2.5, 'text', x'0102', NULL", [])
  const many = await db.query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) SELECT x FROM c', [])
  await depot.close()
  parentPort.postMessage({ row: r.rows[0].map((v) => (v instanceof Uint8Array ? [...v] : v)), columns: r.columns, count: many.rows.length })
})().catch((e) => parentPort.postMessage({ error: String(e) }))
`

function runWorker(): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(body, { eval: true })
    worker.once('message', (m) => {
      resolve(m)
      void worker.terminate()
    })
    worker.once('error', reject)
  })
}

describe('worker threads', () => {
  it('answers in worker threads one after another and side by side, every value kind intact', async () => {
    const expected = { row: [1, 2.5, 'text', [1, 2], null], columns: ['1', '2.5', "'text'", "x'0102'", 'NULL'], count: 100 }
    for (let i = 0; i < 3; i++) expect(await runWorker()).toEqual(expected)
    expect(await Promise.all([runWorker(), runWorker()])).toEqual([expected, expected])
  })
})
