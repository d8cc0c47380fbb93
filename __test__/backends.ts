// The store backends every suite runs against (the matrix). A suite written once calls
// `forEachBackend` and gets one `describe` block per backend.
//
// To add a backend, append an entry to `backends`: `create()` makes a fresh, isolated location for one
// test, and `open()` opens a depot at that location (calling it twice opens the same location twice,
// which is how persistence is tested).
//
// The PostgreSQL backend needs a server: `DEPOT_TEST_PG_URL` (set by `npm test`, which starts one
// with `scripts/pg.sh start`). Without it every postgres test fails with a message saying so; it is
// never skipped. Each test gets its own PostgreSQL schema, dropped afterwards.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe } from 'vitest'

import type * as Binding from '../index'

const require = createRequire(import.meta.url)
export const { Depot, NativeDatabaseHandle } = require('../index.js') as typeof Binding
export type Depot = Binding.Depot
export type Db = Binding.NativeDatabaseHandle

/** Options a test may add to the location's own (`historyMs`, ...). */
export type ExtraOptions = Omit<NonNullable<Parameters<typeof Depot.open>[0]>, 'memory' | 'path' | 'url' | 'schema'>

/** One test's place in a backend. */
export interface Location {
  /** Opens a depot at this location, with `extra` options (history window, telemetry...). */
  open(extra?: ExtraOptions): Promise<Depot>
  /** Removes whatever the location left behind. */
  cleanup(): Promise<void>
}

export interface Backend {
  name: string
  /** Whether a new `Depot.open` of the same location sees the data of an earlier one. */
  durable: boolean
  /** A fresh, empty location for one test. */
  create(): Location
}

export const backends: Backend[] = [
  {
    name: 'memory',
    durable: false,
    create: () => ({
      open: (extra) => Depot.open({ ...extra, memory: true }),
      cleanup: async () => {},
    }),
  },
  {
    name: 'file',
    durable: true,
    create: () => {
      const dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-test-'))
      return {
        open: (extra) => Depot.open({ ...extra, path: join(dir, 'depot') }),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      }
    },
  },
]

/** The PostgreSQL test server's URL, or a failure that says how to get one. */
export function pgUrl(): string {
  const url = process.env.DEPOT_TEST_PG_URL
  if (!url) {
    throw new Error(
      'DEPOT_TEST_PG_URL is not set: run `npm test`, or `export DEPOT_TEST_PG_URL=$(scripts/pg.sh start)` first',
    )
  }
  return url
}

let schemas = 0
/** A PostgreSQL schema name that no other test, process or earlier run uses. */
export function freshSchema(): string {
  return `v_${process.pid}_${schemas++}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`
}

/** Drops a test's schema with psql (best effort: the test server's data is removed at the end anyway). */
export function dropSchema(url: string, schema: string): Promise<void> {
  return new Promise((resolve) => {
    execFile('psql', [url, '-qc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], { timeout: 10_000 }, () => resolve())
  })
}

backends.push({
  name: 'postgres',
  durable: true,
  create: () => {
    const url = pgUrl()
    const schema = freshSchema()
    return {
      // A small pool: many tests run at once against one server.
      open: (extra) => Depot.open({ poolSize: 2, ...extra, url, schema }),
      cleanup: () => dropSchema(url, schema),
    }
  },
})

/** Defines `body` once per backend, inside `describe(<backend name>)`. */
export function forEachBackend(body: (backend: Backend) => void): void {
  for (const backend of backends) describe(backend.name, () => body(backend))
}

/**
 * Opens a depot at a fresh location and gives the test what it needs; `done()` closes everything
 * and removes the location. Tests call it in a try/finally.
 */
export async function setup(backend: Backend) {
  const location = backend.create()
  const depots: Depot[] = []
  const openDepot = async (extra?: ExtraOptions) => {
    const depot = await location.open(extra)
    depots.push(depot)
    return depot
  }
  const depot = await openDepot()
  return {
    location,
    depot,
    openDepot,
    async done() {
      for (const d of depots) await d.close()
      await location.cleanup()
    },
  }
}

/** Resolves with the rejection's `code`, or fails the test when the promise resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    if (!(error instanceof Error)) throw new Error(`rejected with a non-Error: ${String(error)}`)
    return (error as Error & { code: string }).code
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/** Like `codeOf`, returning the whole error. */
export async function errorOf(promise: Promise<unknown>): Promise<Error & { code: string }> {
  try {
    await promise
  } catch (error) {
    if (!(error instanceof Error)) throw new Error(`rejected with a non-Error: ${String(error)}`)
    return error as Error & { code: string }
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/**
 * Registers hooks that give every test of the enclosing `describe` a fresh depot at a fresh
 * location, closed and removed after the test. Read `ctx.depot` etc. inside the tests.
 */
export function useDepot(backend: Backend) {
  const ctx = {} as Awaited<ReturnType<typeof setup>>
  beforeEach(async () => {
    Object.assign(ctx, await setup(backend))
  })
  afterEach(async () => {
    await ctx.done()
  })
  return ctx
}
