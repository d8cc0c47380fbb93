// OpenTelemetry (`Depot.open({ telemetry: true })`): one CLIENT span per call with the stable
// database semantic conventions, the `db.client.operation.duration` histogram, nothing at all when
// telemetry is off or `@opentelemetry/api` is missing, and never a parameter value.
import { AsyncLocalStorage } from 'node:async_hooks'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, metrics, trace } from '@opentelemetry/api'
import type { Context, ContextManager } from '@opentelemetry/api'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { Depot, NativeDatabaseHandle, codeOf } from './backends'
import type { Db } from './backends'

const require = createRequire(import.meta.url)
const { Transaction } = require('../index.js') as typeof import('../index')

/** A reader collected by hand. */
class TestReader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}

/** The active context in AsyncLocalStorage (what @opentelemetry/context-async-hooks does). */
class StorageContextManager implements ContextManager {
  #storage = new AsyncLocalStorage<Context>()
  active() {
    return this.#storage.getStore() ?? ROOT_CONTEXT
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A) {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args))
  }
  bind<T>(_ctx: Context, target: T) {
    return target
  }
  enable() {
    return this
  }
  disable() {
    this.#storage.disable()
    return this
  }
}

const exporter = new InMemorySpanExporter()
const reader = new TestReader()

beforeAll(() => {
  context.setGlobalContextManager(new StorageContextManager())
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
})

const spans = () => exporter.getFinishedSpans()
const brief = (span: ReadableSpan) => ({ name: span.name, attributes: span.attributes })

/** The common attributes of database `namespace`'s spans, plus `more`. */
const attrs = (namespace: string, more: Record<string, unknown>) => ({ 'db.system.name': 'sqlite', 'db.namespace': namespace, ...more })

/** The duration histogram's data points of database `namespace`. */
async function durationPoints(namespace: string) {
  const { resourceMetrics, errors } = await reader.collect()
  expect(errors).toEqual([])
  const metric = resourceMetrics.scopeMetrics
    .filter((scope) => scope.scope.name === 'depot-sqlite')
    .flatMap((scope) => scope.metrics)
    .find((m) => m.descriptor.name === 'db.client.operation.duration') as HistogramMetricData | undefined
  // None yet: no call of any telemetry depot has recorded a duration.
  if (metric === undefined) return []
  expect(metric.descriptor.unit).toBe('s')
  return metric.dataPoints.filter((point) => point.attributes['db.namespace'] === namespace)
}

const CREATE = 'CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE, price INTEGER)'
const INSERT = 'INSERT INTO item (name, price) VALUES (?, ?)'

describe('telemetry: true', () => {
  let depot: Depot
  let db: Db
  let names = 0
  let namespace: string

  beforeEach(async () => {
    depot = await Depot.open({ memory: true, telemetry: true })
    namespace = `shop${names++}`
    db = await depot.openDatabase(namespace)
    await db.exec(CREATE)
    exporter.reset()
  })

  afterEach(async () => {
    await depot.close()
  })

  it('says so on the depot', () => {
    expect(depot.telemetry).toBe(true)
  })

  it('makes one CLIENT span per call, named `{db.operation.name} {db.namespace}`, with the stable attributes', async () => {
    await db.run(INSERT, ['apple', 3])
    await db.execute('INSERT INTO item (name, price) VALUES (:name, :price)', { name: 'pear', price: 4 })
    await db.query('SELECT name FROM item WHERE price > ?', [0])
    await db.get('SELECT name FROM item WHERE name = ?', ['apple'])
    await db.get('SELECT name FROM item WHERE name = ?', ['none'])
    await db.all('  -- every item\n  select * from item')
    await db.exec('update item SET price = price + 1')
    await db.executeScript('UPDATE item SET price = price + 1; SELECT count(*) AS n FROM item')
    await db.execute('INSERT INTO item (name, price) VALUES (?, ?) RETURNING id', ['plum', 5])

    expect(spans().map(brief)).toEqual([
      { name: `INSERT ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'INSERT', 'db.query.text': INSERT }) },
      {
        name: `INSERT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'INSERT', 'db.query.text': 'INSERT INTO item (name, price) VALUES (:name, :price)' }),
      },
      {
        name: `SELECT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT name FROM item WHERE price > ?', 'db.response.returned_rows': 2 }),
      },
      {
        name: `SELECT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT name FROM item WHERE name = ?', 'db.response.returned_rows': 1 }),
      },
      {
        name: `SELECT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT name FROM item WHERE name = ?', 'db.response.returned_rows': 0 }),
      },
      {
        name: `SELECT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': '  -- every item\n  select * from item', 'db.response.returned_rows': 2 }),
      },
      { name: `UPDATE ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'UPDATE', 'db.query.text': 'update item SET price = price + 1' }) },
      {
        name: `UPDATE ${namespace}`,
        attributes: attrs(namespace, {
          'db.operation.name': 'UPDATE',
          'db.query.text': 'UPDATE item SET price = price + 1; SELECT count(*) AS n FROM item',
          'db.response.returned_rows': 1,
        }),
      },
      {
        name: `INSERT ${namespace}`,
        attributes: attrs(namespace, {
          'db.operation.name': 'INSERT',
          'db.query.text': 'INSERT INTO item (name, price) VALUES (?, ?) RETURNING id',
          'db.response.returned_rows': 1,
        }),
      },
    ])
    for (const span of spans()) {
      expect(span.kind).toBe(SpanKind.CLIENT)
      expect(span.status.code).toBe(SpanStatusCode.UNSET)
      expect(span.instrumentationScope.name).toBe('depot-sqlite')
    }
  })

  it('follows the batch rule for executeBatch: BATCH <op> (or BATCH) with db.operation.batch.size', async () => {
    await db.executeBatch([
      { sql: INSERT, params: ['a', 1] },
      { sql: INSERT, params: ['b', 2] },
    ])
    await db.executeBatch([{ sql: INSERT, params: ['c', 3] }, { sql: 'SELECT count(*) AS n FROM item' }])
    await db.executeBatch([{ sql: INSERT, params: ['d', 4] }])
    await db.executeBatch([])

    expect(spans().map(brief)).toEqual([
      {
        name: `BATCH INSERT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'BATCH INSERT', 'db.query.text': INSERT, 'db.operation.batch.size': 2 }),
      },
      {
        name: `BATCH ${namespace}`,
        attributes: attrs(namespace, {
          'db.operation.name': 'BATCH',
          'db.query.text': `${INSERT}; SELECT count(*) AS n FROM item`,
          'db.operation.batch.size': 2,
          'db.response.returned_rows': 1,
        }),
      },
      // One statement is a single operation, not a batch.
      { name: `INSERT ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'INSERT', 'db.query.text': INSERT }) },
      { name: `BATCH ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'BATCH', 'db.operation.batch.size': 0 }) },
    ])
  })

  it('makes one span for a whole iteration, ended when it is done or broken out of', async () => {
    await db.executeBatch(['a', 'b', 'c', 'd', 'e'].map((name, i) => ({ sql: INSERT, params: [name, i] })))
    exporter.reset()

    const all = []
    for await (const row of db.iterate('SELECT name FROM item ORDER BY id', [], { chunkRows: 2 })) all.push(row)
    expect(all).toHaveLength(5)
    expect(spans().map(brief)).toEqual([
      {
        name: `SELECT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT name FROM item ORDER BY id', 'db.response.returned_rows': 5 }),
      },
    ])

    exporter.reset()
    let taken = 0
    for await (const _ of db.iterate('SELECT name FROM item', undefined, { chunkRows: 1 })) {
      if (++taken === 2) break
    }
    expect(spans()).toHaveLength(1)
    expect(spans()[0].attributes['db.response.returned_rows']).toBe(2)
    expect(spans()[0].status.code).toBe(SpanStatusCode.UNSET)

    exporter.reset()
    const failing = db.iterate('SELECT nope FROM item')
    expect(await codeOf(failing.next())).toBe('SQLITE_ERROR')
    expect(spans().map((s) => [s.name, s.attributes['error.type'], s.status.code])).toEqual([[`SELECT ${namespace}`, 'SQLITE_ERROR', SpanStatusCode.ERROR]])
  })

  it('traces transaction begin, commit and rollback as their own operations, and the calls in between', async () => {
    await db.transaction(async (tx) => {
      await tx.run(INSERT, ['fig', 1])
      await tx.transaction(async (sp) => sp.get('SELECT 1 AS one'))
    })
    await expect(
      db.transaction(async (tx) => {
        await tx.run(INSERT, ['kiwi', 2])
        throw new Error('changed my mind')
      }),
    ).rejects.toThrow('changed my mind')
    const tx = await db.beginTransaction({ behavior: 'immediate' })
    await tx.commit()
    expect(await codeOf(tx.commit())).toBe('ERR_CLOSED')

    const op = (name: string) => attrs(namespace, { 'db.operation.name': name })
    expect(spans().map(brief)).toEqual([
      { name: `BEGIN ${namespace}`, attributes: op('BEGIN') },
      { name: `INSERT ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'INSERT', 'db.query.text': INSERT }) },
      { name: `SAVEPOINT ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'SAVEPOINT', 'db.query.text': 'SAVEPOINT depot_sp_1' }) },
      {
        name: `SELECT ${namespace}`,
        attributes: attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT 1 AS one', 'db.response.returned_rows': 1 }),
      },
      { name: `RELEASE ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'RELEASE', 'db.query.text': 'RELEASE depot_sp_1' }) },
      { name: `COMMIT ${namespace}`, attributes: op('COMMIT') },
      { name: `BEGIN ${namespace}`, attributes: op('BEGIN') },
      { name: `INSERT ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'INSERT', 'db.query.text': INSERT }) },
      { name: `ROLLBACK ${namespace}`, attributes: op('ROLLBACK') },
      { name: `BEGIN ${namespace}`, attributes: op('BEGIN') },
      { name: `COMMIT ${namespace}`, attributes: op('COMMIT') },
      { name: `COMMIT ${namespace}`, attributes: attrs(namespace, { 'db.operation.name': 'COMMIT', 'error.type': 'ERR_CLOSED' }) },
    ])
    expect(await db.all('SELECT name FROM item')).toEqual([{ name: 'fig' }])
  })

  it('sets error.type (the error code), db.response.status_code for SQLite errors, and status ERROR', async () => {
    await db.run(INSERT, ['apple', 3])
    expect(await codeOf(db.run(INSERT, ['apple', 4]))).toBe('SQLITE_CONSTRAINT_UNIQUE')
    expect(await codeOf(db.get('SELECT ? AS v', [{ not: 'bindable' }] as never))).toBe('ERR_INVALID_ARGUMENT')

    const [ok, unique, invalid] = spans()
    expect(ok.status).toEqual({ code: SpanStatusCode.UNSET })
    expect(unique.name).toBe(`INSERT ${namespace}`)
    expect(unique.attributes).toEqual(
      attrs(namespace, {
        'db.operation.name': 'INSERT',
        'db.query.text': INSERT,
        'error.type': 'SQLITE_CONSTRAINT_UNIQUE',
        'db.response.status_code': 'SQLITE_CONSTRAINT_UNIQUE',
      }),
    )
    expect(unique.status).toEqual({ code: SpanStatusCode.ERROR })
    expect(unique.events).toEqual([])
    expect(invalid.attributes).toEqual(
      attrs(namespace, { 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT ? AS v', 'error.type': 'ERR_INVALID_ARGUMENT' }),
    )
    expect(invalid.status.code).toBe(SpanStatusCode.ERROR)
  })

  it('records db.client.operation.duration in seconds, by operation and error type', async () => {
    await db.run(INSERT, ['apple', 3])
    await db.run(INSERT, ['pear', 3])
    await codeOf(db.run(INSERT, ['apple', 4]))
    await db.get('SELECT count(*) AS n FROM item')

    const points = await durationPoints(namespace)
    const key = (attributes: Record<string, unknown>) => `${attributes['db.operation.name']} ${attributes['error.type'] ?? ''}`
    const summary = points
      .map((point) => ({ attributes: point.attributes, count: point.value.count }))
      .sort((a, b) => key(a.attributes).localeCompare(key(b.attributes)))
    expect(summary).toEqual([
      { attributes: attrs(namespace, { 'db.operation.name': 'CREATE' }), count: 1 },
      { attributes: attrs(namespace, { 'db.operation.name': 'INSERT' }), count: 2 },
      {
        attributes: attrs(namespace, {
          'db.operation.name': 'INSERT',
          'error.type': 'SQLITE_CONSTRAINT_UNIQUE',
          'db.response.status_code': 'SQLITE_CONSTRAINT_UNIQUE',
        }),
        count: 1,
      },
      { attributes: attrs(namespace, { 'db.operation.name': 'SELECT' }), count: 1 },
    ])
    for (const point of points) {
      // Seconds: a call on a memory depot takes far less than one.
      expect(point.value.sum).toBeGreaterThan(0)
      expect(point.value.sum).toBeLessThan(5)
    }
  })

  it('makes the spans children of the active span', async () => {
    const tracer = trace.getTracer('test')
    await tracer.startActiveSpan('request', async (parent) => {
      await db.run(INSERT, ['apple', 3])
      parent.end()
    })
    const [child, parent] = spans()
    expect(child.name).toBe(`INSERT ${namespace}`)
    expect(child.spanContext().traceId).toBe(parent.spanContext().traceId)
    expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId)
  })

  it('never puts a parameter value in a span or a metric', async () => {
    const secrets = ['secret-text-7f3a9c', 'secret-named-51be0d', 73_913_377, 9_007_199_254_740_993n, 'c2VjcmV0LWJsb2I']
    const intDb = await depot.openDatabase(`${namespace}_ints`)
    await db.run(INSERT, [secrets[0], secrets[2]])
    await db.execute('SELECT * FROM item WHERE name = $name', { name: secrets[1] })
    await db.executeBatch([
      { sql: INSERT, params: [secrets[1], 1] },
      { sql: 'SELECT ? AS b', params: [Buffer.from('secret-blob')] },
    ])
    for await (const _ of db.iterate('SELECT * FROM item WHERE name <> ?', [secrets[0]])) {
      // Drained.
    }
    // Failures whose messages could quote a value: a duplicate, and an integer that does not fit.
    expect(await codeOf(db.run(INSERT, [secrets[0], 1]))).toBe('SQLITE_CONSTRAINT_UNIQUE')
    expect(await codeOf(intDb.get('SELECT ? AS big', [secrets[3]]))).toBe('ERR_INTEGER_OVERFLOW')
    await db.transaction(async (tx) => tx.all('SELECT * FROM item WHERE price = ?', [secrets[2]]))

    const recorded = JSON.stringify(
      {
        spans: spans().map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events, links: s.links })),
        points: (await durationPoints(namespace)).concat(await durationPoints(`${namespace}_ints`)).map((p) => p.attributes),
      },
      (_, value) => (typeof value === 'bigint' ? value.toString() : value),
    )
    const ops = ['INSERT', 'SELECT', 'BATCH', 'SELECT', 'INSERT', 'SELECT _ints', 'BEGIN', 'SELECT', 'COMMIT']
    expect(spans().map((s) => s.name)).toEqual(ops.map((op) => (op.endsWith('_ints') ? `SELECT ${namespace}_ints` : `${op} ${namespace}`)))
    for (const secret of secrets) expect(recorded).not.toContain(String(secret))
    expect(recorded).not.toContain('secret-blob')
  })
})

describe('telemetry off', () => {
  it('makes no span, records nothing, and keeps the plain classes', async () => {
    exporter.reset()
    const depot = await Depot.open({ memory: true })
    try {
      expect(depot.telemetry).toBe(false)
      const db = await depot.openDatabase('quiet')
      expect(Object.getPrototypeOf(db)).toBe(NativeDatabaseHandle.prototype)
      await db.exec(CREATE)
      await db.run(INSERT, ['apple', 3])
      await codeOf(db.run(INSERT, ['apple', 3]))
      await db.transaction(async (tx) => {
        expect(Object.getPrototypeOf(tx)).toBe(Transaction.prototype)
        await tx.all('SELECT * FROM item')
      })
      for await (const _ of db.iterate('SELECT * FROM item')) {
        // Drained.
      }
      expect(spans()).toEqual([])
      expect(await durationPoints('quiet')).toEqual([])
    } finally {
      await depot.close()
    }
  })
})

describe('telemetry: true without @opentelemetry/api', () => {
  it('records nothing, keeps the plain classes and never throws', async () => {
    // A process in which requiring '@opentelemetry/api' fails as if it were not installed.
    const script = `
      const Module = require('node:module')
      const resolve = Module._resolveFilename
      Module._resolveFilename = function (request, ...rest) {
        if (request === '@opentelemetry/api') {
          const error = new Error("Cannot find module '@opentelemetry/api'")
          error.code = 'MODULE_NOT_FOUND'
          throw error
        }
        return resolve.call(this, request, ...rest)
      }
      const { Depot, NativeDatabaseHandle } = require(${JSON.stringify(join(__dirname, '..', 'index.js'))})
      ;(async () => {
        const depot = await Depot.open({ memory: true, telemetry: true })
        const db = await depot.openDatabase('main')
        await db.exec('CREATE TABLE t (x)')
        await db.run('INSERT INTO t VALUES (?)', [1])
        const rows = await db.all('SELECT x FROM t')
        await depot.close()
        process.stdout.write(JSON.stringify({ plain: Object.getPrototypeOf(db) === NativeDatabaseHandle.prototype, rows }))
      })().catch((error) => { console.error(error); process.exit(1) })
    `
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { timeout: 20_000 }, (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)))
    })
    expect(JSON.parse(stdout)).toEqual({ plain: true, rows: [{ x: 1 }] })
  })
})
