// depot-sqlite/prometheus: prom-client collectors for one depot (prometheus.js).
import type { Registry, RegistryContentType } from 'prom-client'

import type { Depot } from '../index'

export interface DepotCollectorOptions {
  /** The registry to register on (default: prom-client's global `register`). */
  registry?: Registry<RegistryContentType>
  /** Prepended to every metric name (default `'depot_sqlite_'`). */
  prefix?: string
  /**
   * Adds a `database` label (the database's name) to every metric but `open_databases`, one series
   * per database ever opened while collecting. Default `false`: no label per database.
   */
  perDatabase?: boolean
}

/**
 * The collectors of one depot, read at scrape time (names after the prefix):
 *
 * - counters `calls_total`, `commits_total`, `commit_retries_total`, `store_round_trips_total`,
 *   `fetched_pages_total`, `fetched_bytes_total`, `committed_pages_total`,
 *   `committed_bytes_total`, `cache_hits_total`, `cache_misses_total`, `slow_calls_total`: the
 *   databases' `metrics()` summed, those closed since the collector was made included (no counter
 *   goes back when a database closes);
 * - counter `errors_total{code}`: calls that rejected, by error code (`SQLITE_CONSTRAINT_UNIQUE`,
 *   `ERR_TIMEOUT`, ...), counted from when the collector was made;
 * - gauges `queue_depth` (calls in flight, summed over the open databases) and `open_databases`.
 *
 * One collector per depot and registry (the names would clash): give several depots on one
 * registry different prefixes.
 */
export declare class DepotCollector {
  /** Registers the collectors; throws if one of the names is already registered. */
  constructor(depot: Depot, options?: DepotCollectorOptions)
  /** The registry the collectors are registered on. */
  readonly registry: Registry<RegistryContentType>
  /** Removes the collectors from the registry and stops listening to the depot. Idempotent. */
  unregister(): void
}

/** `new DepotCollector(depot, options)`. */
export declare function depotCollector(depot: Depot, options?: DepotCollectorOptions): DepotCollector
