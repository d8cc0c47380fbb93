// Hostile input through the JS API: every promise settles with a result or a coded error, and the
// process never crashes. Property-based with fast-check (10,000+ cases).
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { Depot, type Db } from './backends'

const CODES = /^(SQLITE_[A-Z_]+|ERR_(OVERLOADED|CLOSED|WORKER_DEAD|FENCED|STORE_UNAVAILABLE|STORE_CORRUPT|CLOSE_TIMEOUT|TIMEOUT|ABORTED|INVALID_ARGUMENT|INTEGER_OVERFLOW|TOO_LARGE))$/

const loneSurrogates = fc.string({ unit: fc.constantFrom('\ud800', '\udfff', 'a', '\u0000', '😀') })
const value = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.string(),
  fc.string({ unit: 'binary' }),
  loneSurrogates,
  fc.boolean(),
  fc.uint8Array(),
  fc.int16Array(),
  fc.float64Array(),
  fc.object(),
  fc.array(fc.anything(), { maxLength: 3 }),
  fc.constant(Symbol('s')),
  fc.func(fc.anything()),
  fc.date(),
  fc.constant(new Map([[1, 2]])),
  fc.constant(Buffer.alloc(0)),
  fc.constant('x'.repeat(1 << 20)),
)
const params = fc.oneof(
  fc.constant(undefined),
  fc.array(value, { maxLength: 4 }),
  fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('a', ':a', '@a', '$a', 'b')), value, { maxKeys: 4 }),
  value,
)
const sql = fc.oneof(
  fc.constantFrom(
    'SELECT ?',
    'SELECT ?, ?2',
    'SELECT :a',
    'SELECT @a, $b',
    'INSERT INTO t(v) VALUES (?)',
    'UPDATE t SET v = :a WHERE rowid = 1',
    'SELECT * FROM t WHERE v = ?',
    'PRAGMA journal_mode = WAL',
    "ATTACH 'x.db' AS x",
    'SELECT 1; SELECT 2',
    '',
  ),
  fc.string(),
  loneSurrogates,
  value,
)

async function settles(promise: unknown): Promise<void> {
  expect(promise).toBeInstanceOf(Promise)
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(Error)
    expect((error as { code: string }).code).toMatch(CODES)
  }
}

describe('fuzz', () => {
  let depot: Awaited<ReturnType<typeof Depot.open>>
  let db: Db
  beforeAll(async () => {
    depot = await Depot.open({ memory: true })
    db = await depot.openDatabase('fuzz', { maxQueue: 100_000 })
    await db.exec('CREATE TABLE t(v)')
  })
  afterAll(async () => {
    await depot.close()
  })

  it('execute, query, run, get, all: every case settles with a result or a coded error', async () => {
    let cases = 0
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('execute', 'query', 'run', 'get', 'all'), sql, params, value, async (method, text, p, options) => {
        cases++
        const call = (db as unknown as Record<string, (...a: unknown[]) => unknown>)[method]
        let promise: unknown
        try {
          promise = call.call(db, text, p, typeof options === 'object' ? options : undefined)
        } catch (error) {
          throw new Error(`${method} threw synchronously: ${String(error)}`)
        }
        await settles(promise)
      }),
      { numRuns: 8_000 },
    )
    expect(cases).toBeGreaterThanOrEqual(8_000)
    expect(await db.get('SELECT 1 AS one')).toEqual({ one: 1 })
  })

  it('exec, executeBatch and openDatabase take any shape', async () => {
    await fc.assert(
      fc.asyncProperty(value, fc.array(fc.record({ sql, params }), { maxLength: 3 }), value, async (text, statements, name) => {
        await settles(db.exec(text as string))
        await settles(db.executeBatch(statements as never))
        await settles(db.executeBatch(text as never))
        await settles(depot.openDatabase(name as string, text as never).then((d) => d.close()))
      }),
      { numRuns: 1_500 },
    )
  })

  it('calls racing with close all settle', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 50 }), async (before, after) => {
        const d = await depot.openDatabase('race')
        const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code: string }) => e.code)
        const calls: Promise<string>[] = []
        for (let i = 0; i < before; i++) calls.push(outcome(d.query('SELECT ?', [i])))
        const closing = d.close()
        for (let i = 0; i < after; i++) calls.push(outcome(d.query('SELECT ?', [i])))
        await closing
        const results = await Promise.all(calls)
        expect(results.slice(before)).toEqual(Array(after).fill('ERR_CLOSED'))
        for (const r of results) expect(r === 'ok' || CODES.test(r)).toBe(true)
      }),
      { numRuns: 500 },
    )
  })
})
