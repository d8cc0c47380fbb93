// Actors move between processes: three Node processes share one PostgreSQL depot, and the writer
// generation decides which of them may commit (issue 4). Each process is a small driver script that
// takes commands over IPC, so the test controls the interleaving exactly.
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

import { dropSchema, freshSchema, pgUrl } from './backends'

const indexPath = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'index.js')

/** The driver: one depot and one database per process, commands answered in order. */
const driverSource = `
const { Depot } = require(${JSON.stringify(indexPath)})
let depot, db
const ops = {
  async open({ url, schema, name, generation }) {
    depot = await Depot.open({ url, schema, poolSize: 2 })
    db = await depot.openDatabase(name, { generation })
    return depot.location
  },
  exec: ({ sql }) => db.exec(sql),
  run: ({ sql, params }) => db.run(sql, params),
  query: async ({ sql, params }) => (await db.query(sql, params)).rows,
  async close() {
    await db.close()
    await depot.close()
  },
}
process.on('message', async (message) => {
  try {
    const result = await ops[message.op](message)
    process.send({ id: message.id, ok: true, result: result ?? null })
  } catch (error) {
    process.send({ id: message.id, ok: false, code: error.code, message: error.message })
  }
})
`

interface Reply {
  id: number
  ok: boolean
  result?: unknown
  code?: string
  message?: string
}

/** One Node process driving one database handle. */
class Actor {
  private next = 0
  private waiting = new Map<number, (reply: Reply) => void>()
  readonly child: ChildProcess

  constructor(readonly label: string) {
    this.child = spawn(process.execPath, ['-e', driverSource], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (reply: Reply) => {
      this.waiting.get(reply.id)?.(reply)
      this.waiting.delete(reply.id)
    })
    this.child.on('exit', (code, signal) => {
      for (const answer of this.waiting.values()) {
        answer({ id: -1, ok: false, code: 'PROCESS_EXITED', message: `${label} exited (${code ?? signal})` })
      }
      this.waiting.clear()
    })
  }

  /** Sends a command; resolves with its reply (never rejects). */
  call(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.next++
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.child.send({ id, op, ...args })
    })
  }

  /** Sends a command that must succeed; resolves with its result. */
  async ok(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const reply = await this.call(op, args)
    if (!reply.ok) throw new Error(`${this.label} ${op} failed: ${reply.code}: ${reply.message}`)
    return reply.result
  }

  /** Ends the process and waits for it to be gone. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const gone = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGKILL')
    await gone
  }
}

describe('postgres: one database, three processes', () => {
  const actors: Actor[] = []
  const schemas: string[] = []
  const actor = (label: string) => {
    const a = new Actor(label)
    actors.push(a)
    return a
  }
  afterEach(async () => {
    await Promise.all(actors.splice(0).map((a) => a.stop()))
    await Promise.all(schemas.splice(0).map((s) => dropSchema(pgUrl(), s)))
  })

  it('a newer generation in another process fences the old writer; a third process sees the new writer’s rows', async () => {
    const url = pgUrl()
    const schema = freshSchema()
    schemas.push(schema)
    const open = { url, schema, name: 'actor-1' }
    const rows = 'SELECT who, n FROM t ORDER BY who, n'

    // Process A: generation 1, writes 20 rows in 4 transactions.
    const a = actor('A')
    expect(await a.ok('open', { ...open, generation: 1 })).not.toContain('depot-test') // no password
    await a.ok('exec', { sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT NOT NULL, n INTEGER NOT NULL)' })
    for (let txn = 0; txn < 4; txn++) {
      const values = Array.from({ length: 5 }, (_, i) => `('A', ${txn * 5 + i})`).join(', ')
      await a.ok('exec', { sql: `INSERT INTO t(who, n) VALUES ${values}` })
    }
    const fromA = Array.from({ length: 20 }, (_, n) => ['A', n])

    // Process B: generation 2 sees every row A committed, and writes.
    const b = actor('B')
    await b.ok('open', { ...open, generation: 2 })
    expect(await b.ok('query', { sql: rows })).toEqual(fromA)
    await b.ok('run', { sql: 'INSERT INTO t(who, n) VALUES (?, ?)', params: ['B', 1] })
    await b.ok('exec', { sql: "BEGIN; INSERT INTO t(who, n) VALUES ('B', 2); INSERT INTO t(who, n) VALUES ('B', 3); COMMIT" })

    // A's next write is fenced, and its handle fails closed.
    const late = await a.call('run', { sql: 'INSERT INTO t(who, n) VALUES (?, ?)', params: ['A-late', 1] })
    expect(late).toMatchObject({ ok: false, code: 'ERR_FENCED' })
    const later = await a.call('exec', { sql: "INSERT INTO t(who, n) VALUES ('A-late', 2)" })
    expect(later).toMatchObject({ ok: false, code: 'ERR_FENCED' })

    // Nothing A wrote after B's open is visible to B.
    const fromB = [['B', 1], ['B', 2], ['B', 3]]
    expect(await b.ok('query', { sql: rows })).toEqual([...fromA, ...fromB])
    await b.ok('close')
    await b.stop()

    // Process A': generation 3 sees B's rows (and A's early ones), never A's late writes.
    const a2 = actor("A'")
    await a2.ok('open', { ...open, generation: 3 })
    expect(await a2.ok('query', { sql: rows })).toEqual([...fromA, ...fromB])
    expect(await a2.ok('query', { sql: "SELECT count(*) FROM t WHERE who = 'A-late'" })).toEqual([[0]])
    expect(await a2.ok('query', { sql: 'PRAGMA integrity_check' })).toEqual([['ok']])
    // And it is the writer now; B's generation is fenced too.
    await a2.ok('run', { sql: 'INSERT INTO t(who, n) VALUES (?, ?)', params: ["A'", 1] })
    await a2.ok('close')

    // A process opening with an older generation than the current one is refused.
    const stale = actor('stale')
    expect(await stale.call('open', { ...open, generation: 2 })).toMatchObject({ ok: false, code: 'ERR_FENCED' })
  })

  it('two processes opening a fresh depot at once both migrate it safely', async () => {
    const url = pgUrl()
    const schema = freshSchema()
    schemas.push(schema)
    const [p, q] = [actor('P'), actor('Q')]
    await Promise.all([
      p.ok('open', { url, schema, name: 'p', generation: 1 }),
      q.ok('open', { url, schema, name: 'q', generation: 1 }),
    ])
    await Promise.all([p.ok('exec', { sql: 'CREATE TABLE t(x); INSERT INTO t VALUES (1)' }), q.ok('exec', { sql: 'CREATE TABLE t(x); INSERT INTO t VALUES (2)' })])
    expect(await p.ok('query', { sql: 'SELECT x FROM t' })).toEqual([[1]])
    expect(await q.ok('query', { sql: 'SELECT x FROM t' })).toEqual([[2]])
  })
})
