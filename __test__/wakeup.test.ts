// Answers reach the JS thread through one event-loop wake-up per Node environment, shared by every
// database (src/reply/wakeup.rs): libuv looks at each of a loop's async handles at every wake-up,
// so one per database made each wake-up cost more the more databases were open.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { Depot } from '../index.js'

const entry = JSON.stringify(join(__dirname, '..', 'index.js'))

/** Runs `body` in a fresh Node process with `Depot` in scope; returns its stdout, checked for a clean exit. */
function inProcess(body: string): string {
  const script = `const { Depot } = require(${entry});\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(2) });`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 })
  expect(r.signal).toBeNull()
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}

describe('event-loop wake-up', () => {
  it('every database of a process shares one threadsafe function for its answers', () => {
    // napi announces each threadsafe function to async_hooks under the name it was made with.
    const out = inProcess(`
      let made = 0
      require('node:async_hooks').createHook({ init(id, type) { if (type === 'depot-sqlite reply') made++ } }).enable()
      const depot = await Depot.open({ memory: true })
      const dbs = []
      for (let i = 0; i < 200; i++) dbs.push(await depot.openDatabase('d' + i))
      const answers = await Promise.all(dbs.map((db, i) => db.query('SELECT ?', [i])))
      if (!answers.every((a, i) => a.rows[0][0] === i)) throw new Error('wrong answer')
      await depot.close()
      console.log(JSON.stringify({ made }))
    `)
    expect(JSON.parse(out)).toEqual({ made: 1 })
  })

  it('answers of 300 databases in flight at once all settle, each with its own result', async () => {
    const depot = await Depot.open({ memory: true })
    try {
      // Half of them never hand answers to a waiting JS thread: every one of theirs wakes the loop.
      // Writers only (no reader threads): 300 threads, not up to 900, on a 2-core machine.
      const dbs = await Promise.all(Array.from({ length: 300 }, (_, i) => depot.openDatabase(`d${i}`, { replyWaitMicros: i % 2 === 0 ? 0 : 50, readers: 0 })))
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(dbs.flatMap((db, i) => [db.query('SELECT ?, ?', [i, round]), db.query('SELECT ?', [-i - 1])]))
        expect(answers.map((a) => a.rows[0])).toEqual(dbs.flatMap((_, i) => [[i, round], [-i - 1]]))
      }
    } finally {
      await depot.close()
    }
  }, 60_000)

  it('a call in flight keeps the process alive until it is answered, and an idle open database does not', () => {
    // No timer and no await keep the loop alive here: only the outstanding call does. Once it is
    // answered the process exits by itself, though its database is never closed.
    const out = inProcess(`
      const depot = await Depot.open({ memory: true })
      const db = await depot.openDatabase('slow')
      globalThis.keep = [depot, db]
      db.query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT count(*) FROM c', [])
        .then((r) => console.log(JSON.stringify(r.rows)))
    `)
    expect(JSON.parse(out)).toEqual([[300000]])
  })
})
