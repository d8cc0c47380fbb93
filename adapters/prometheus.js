'use strict'
// depot-sqlite/prometheus: prom-client collectors for one depot. Types: prometheus.d.ts.
//
//   const collector = depotCollector(depot, { registry })
//
// Every value is read at scrape time, in prom-client's `collect()` callbacks: the counters of the
// depot's open databases (`db.metrics()`, one read per database per scrape) plus those of the
// databases already closed, kept in a running total when they close, so that no counter goes back
// (a handle dropped without close() and collected adds the counters last read from it). Rejected
// calls are counted as they happen, by error code. Labels stay bounded: no label per database
// unless `perDatabase: true` asks for one.

const { codedError } = require('../lib/shared.js')
let prom
try {
  prom = require('prom-client')
} catch (error) {
  if (error?.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes("'prom-client'")) throw error
  throw new Error("depot-sqlite/prometheus needs the 'prom-client' package (npm install prom-client)", { cause: error })
}

// Internal keys of a Depot (index.js): its open databases (WeakRefs), and the subscription to its events.
const DATABASES = Symbol.for('depot-sqlite.databases')
const OBSERVE = Symbol.for('depot-sqlite.observe')

/** Counters: metric name (after the prefix), the field of `db.metrics()`, help. */
const COUNTERS = [
  ['calls_total', 'calls', 'Calls run on the databases\' worker threads.'],
  ['commits_total', 'commits', 'Commits applied to the store (one per write transaction).'],
  ['commit_retries_total', 'commitRetries', 'Commit attempts that failed transiently and were retried.'],
  ['store_round_trips_total', 'getPagesCalls', 'Round trips to the store to read pages.'],
  ['fetched_pages_total', 'pagesFetched', 'Pages read from the store.'],
  ['fetched_bytes_total', 'bytesFetched', 'Bytes read from the store.'],
  ['committed_pages_total', 'pagesCommitted', 'Pages written to the store.'],
  ['committed_bytes_total', 'bytesCommitted', 'Bytes written to the store.'],
  ['cache_hits_total', 'cacheHits', 'Page reads served by the page cache.'],
  ['cache_misses_total', 'cacheMisses', 'Page reads that missed the page cache and went to the store.'],
  ['slow_calls_total', 'slowCalls', 'Calls slower than the slow-call threshold (200 ms).'],
]
const FIELDS = COUNTERS.map(([, field]) => field)

const zeroes = () => Object.fromEntries(FIELDS.map((field) => [field, 0]))

function addInto(totals, metrics) {
  for (const field of FIELDS) totals[field] += metrics[field]
}

function invalid(message) {
  return codedError('ERR_INVALID_ARGUMENT', message)
}

/** The collectors of one depot, registered on one registry. */
class DepotCollector {
  #depot
  #registry
  #perDatabase
  #metrics = []
  #unsubscribe
  // Totals of the databases closed so far: one set, or one per database name (`perDatabase`).
  #closed
  // WeakRef of an open database -> { name, metrics } last read from it.
  #lastRead = new Map()
  // The current scrape's reading, shared by every collector of the scrape (prom-client calls their
  // `collect()` one after another in one synchronous loop); dropped in the next microtask.
  #reading

  constructor(depot, options = {}) {
    if (depot === null || typeof depot !== 'object' || !(depot[DATABASES] instanceof Set) || typeof depot[OBSERVE] !== 'function') {
      throw invalid('depotCollector(depot) needs a Depot')
    }
    if (options === null || typeof options !== 'object') throw invalid('options must be an object')
    const { registry = prom.register, prefix = 'depot_sqlite_', perDatabase = false } = options
    if (typeof prefix !== 'string') throw invalid('options.prefix must be a string')
    if (typeof perDatabase !== 'boolean') throw invalid('options.perDatabase must be a boolean')
    if (registry === null || typeof registry?.registerMetric !== 'function') throw invalid('options.registry must be a prom-client Registry')
    this.#depot = depot
    this.#registry = registry
    this.#perDatabase = perDatabase
    this.#closed = perDatabase ? new Map() : zeroes()

    const labelNames = perDatabase ? ['database'] : []
    const self = this
    try {
      for (const [name, field, help] of COUNTERS) {
        this.#add(
          new prom.Counter({
            name: prefix + name,
            help,
            labelNames,
            registers: [],
            collect() {
              self.#set(this, (totals) => totals[field])
            },
          }),
        )
      }
      this.#add(
        new prom.Gauge({
          name: `${prefix}queue_depth`,
          help: 'Calls in flight (queued, running, or answered and not yet delivered), summed over the open databases.',
          labelNames,
          registers: [],
          collect() {
            self.#set(this, (totals) => totals.queueDepth, true)
          },
        }),
      )
      this.#add(
        new prom.Gauge({
          name: `${prefix}open_databases`,
          help: 'Databases open on the depot.',
          registers: [],
          collect() {
            this.set(self.#read().open)
          },
        }),
      )
      const errors = this.#add(
        new prom.Counter({
          name: `${prefix}errors_total`,
          help: 'Calls that rejected, by error code.',
          labelNames: perDatabase ? ['code', 'database'] : ['code'],
          registers: [],
        }),
      )
      this.#unsubscribe = depot[OBSERVE]({
        rejected(error, database) {
          const code = typeof error?.code === 'string' ? error.code : '_OTHER'
          errors.inc(perDatabase ? { code, database } : { code })
        },
        closed: (ref, metrics) => {
          this.#lastRead.delete(ref)
          this.#addClosed(ref.deref()?.name, metrics)
        },
      })
    } catch (error) {
      this.unregister()
      throw error
    }
  }

  /** The registry the collectors are registered on. */
  get registry() {
    return this.#registry
  }

  /** Removes the collectors from the registry and stops listening to the depot. Idempotent. */
  unregister() {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    // By the metric's current name: an OpenMetrics registry renames counters when it scrapes.
    for (const metric of this.#metrics) {
      if (this.#registry.getSingleMetric(metric.name) === metric) this.#registry.removeSingleMetric(metric.name)
    }
    this.#metrics = []
  }

  #addClosed(name, metrics) {
    if (!this.#perDatabase) return addInto(this.#closed, metrics)
    let totals = this.#closed.get(name)
    if (totals === undefined) this.#closed.set(name, (totals = zeroes()))
    addInto(totals, metrics)
  }

  #add(metric) {
    this.#registry.registerMetric(metric)
    this.#metrics.push(metric)
    return metric
  }

  /** Sets `metric` from this scrape's reading: one value, or one per database. */
  #set(metric, pick, gauge = false) {
    const { totals: reading } = this.#read()
    metric.reset()
    if (!this.#perDatabase) {
      if (gauge) metric.set(pick(reading))
      else metric.inc(pick(reading))
      return
    }
    for (const [database, totals] of reading) {
      const value = pick(totals)
      // A database with no handle open has counters, but no queue.
      if (value === undefined) continue
      if (gauge) metric.set({ database }, value)
      else metric.inc({ database }, value)
    }
  }

  /**
   * `{ open, totals }`: the open databases, and the counters summed over them and the closed ones
   * (per database name with `perDatabase`).
   */
  #read() {
    if (this.#reading !== undefined) return this.#reading
    // Handles collected without close(): what was last read from them joins the closed totals.
    for (const [ref, last] of this.#lastRead) {
      if (ref.deref() !== undefined) continue
      this.#lastRead.delete(ref)
      this.#addClosed(last.name, last.metrics)
    }
    const open = []
    for (const ref of this.#depot[DATABASES]) {
      const handle = ref.deref()
      if (handle === undefined) continue
      const metrics = handle.metrics()
      const last = this.#lastRead.get(ref)
      if (last === undefined) this.#lastRead.set(ref, { name: handle.name, metrics })
      else last.metrics = metrics
      open.push(this.#lastRead.get(ref))
    }
    let totals
    if (this.#perDatabase) {
      totals = new Map()
      for (const [database, closed] of this.#closed) totals.set(database, { ...closed, queueDepth: undefined })
      for (const { name, metrics } of open) {
        let sum = totals.get(name)
        if (sum === undefined) totals.set(name, (sum = { ...zeroes(), queueDepth: undefined }))
        addInto(sum, metrics)
        sum.queueDepth = (sum.queueDepth ?? 0) + metrics.queueDepth
      }
    } else {
      totals = { ...this.#closed, queueDepth: 0 }
      for (const { metrics } of open) {
        addInto(totals, metrics)
        totals.queueDepth += metrics.queueDepth
      }
    }
    const reading = { open: open.length, totals }
    this.#reading = reading
    queueMicrotask(() => {
      this.#reading = undefined
    })
    return reading
  }
}

/** Registers prom-client collectors for `depot` (see DepotCollector); returns them. */
function depotCollector(depot, options) {
  return new DepotCollector(depot, options)
}

module.exports = { depotCollector, DepotCollector }
