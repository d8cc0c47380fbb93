// The package as a user's project sees it: the `exports` map resolves the main entry and every
// adapter subpath from ES modules and from CommonJS, at run time and for TypeScript under
// `nodenext` resolution (types from the `types` conditions; the ORMs' own declarations are not
// checked: drizzle-orm's do not pass a strict check of their own).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

describe('package exports', () => {
  let project: string
  beforeAll(() => {
    // A project whose node_modules holds depot-sqlite (this checkout) and the type packages.
    project = mkdtempSync(join(tmpdir(), 'depot-sqlite-exports-'))
    mkdirSync(join(project, 'node_modules', '@types'), { recursive: true })
    symlinkSync(root, join(project, 'node_modules', 'depot-sqlite'), 'dir')
    symlinkSync(join(root, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'), 'dir')
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true }))
  })
  afterAll(() => rmSync(project, { recursive: true, force: true }))

  const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: project, encoding: 'utf8' })

  it('loads from an ES module and from CommonJS, main entry and every subpath', () => {
    const esm = node([
      '--input-type=module',
      '-e',
      `import { Depot } from 'depot-sqlite'
       import { DepotDialect } from 'depot-sqlite/kysely'
       import { drizzle, migrate } from 'depot-sqlite/drizzle'
       import { PrismaDepot } from 'depot-sqlite/prisma'
       import { depotCollector } from 'depot-sqlite/prometheus'
       import { durableStorage } from 'depot-sqlite/durable'
       const depot = await Depot.open({ memory: true })
       const db = await depot.openDatabase('esm')
       console.log((await db.get('SELECT 40 + 2 AS n')).n, typeof DepotDialect, typeof drizzle, typeof migrate, typeof PrismaDepot, typeof depotCollector, durableStorage(db).sql.exec('SELECT 1 AS one').one().one)
       await depot.close()`,
    ])
    expect(esm.stderr).toBe('')
    expect(esm.stdout.trim()).toBe('42 function function function function function 1')
    const cjs = node([
      '-e',
      `const { Depot } = require('depot-sqlite')
       const pkg = require('depot-sqlite/package.json')
       ;(async () => {
         const depot = await Depot.open({ memory: true })
         const db = await depot.openDatabase('cjs')
         console.log((await db.get('SELECT 40 + 2 AS n')).n, pkg.name, typeof require('depot-sqlite/kysely').DepotDialect)
         await depot.close()
       })()`,
    ])
    expect(cjs.stderr).toBe('')
    expect(cjs.stdout.trim()).toBe('42 depot-sqlite function')
  })

  it('type-checks under TypeScript nodenext resolution from ESM and CommonJS files', () => {
    writeFileSync(
      join(project, 'esm.mts'),
      `import { Depot, type Metrics, type OpenDatabaseOptions, type ExecuteResult } from 'depot-sqlite'
import { DepotDialect } from 'depot-sqlite/kysely'
import { drizzle, migrate } from 'depot-sqlite/drizzle'
import { PrismaDepot, prismaAdapter } from 'depot-sqlite/prisma'
import { depotCollector } from 'depot-sqlite/prometheus'
import { durableStorage, openDurableStorage, type DurableStorage } from 'depot-sqlite/durable'
const options: OpenDatabaseOptions = { intMode: 'bigint', maxQueue: 8, queryTimeoutMs: 1000 }
const depot: Depot = await Depot.open({ memory: true, telemetry: false })
const db = await depot.openDatabase('types', options)
const result: ExecuteResult = await db.execute('SELECT ?', [1n])
const scripted: ExecuteResult[] = await db.executeScript('SELECT 1; SELECT 2')
const metrics: Metrics = db.metrics()
const calls: number = metrics.calls + metrics.lastCallMicros + metrics.slowCalls
const storage: DurableStorage = durableStorage(db)
const size: number = storage.sql.databaseSize + storage.sql.exec<{ n: number }>('SELECT 1 AS n').one().n
void [result, scripted, calls, size, openDurableStorage, new DepotDialect({ database: db }), drizzle(db), migrate, PrismaDepot, prismaAdapter, depotCollector]
// @ts-expect-error: not an option of openDatabase
await depot.openDatabase('x', { notAnOption: true })
`,
    )
    writeFileSync(
      join(project, 'cjs.cts'),
      `import sqlite = require('depot-sqlite')
import kysely = require('depot-sqlite/kysely')
async function main(): Promise<number> {
  const depot: sqlite.Depot = await sqlite.Depot.open({ path: './.depot' })
  const db: sqlite.NativeDatabaseHandle = await depot.openDatabase('types')
  const dialect = new kysely.DepotDialect({ database: db })
  void dialect
  const r = await db.run('INSERT INTO t VALUES (?)', [1])
  return r.changes
}
void main
`,
    )
    const run = spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', 'esm.mts', 'cjs.cts'],
      { cwd: project, encoding: 'utf8' },
    )
    expect(run.stdout + run.stderr).toBe('')
    expect(run.status).toBe(0)
  }, 60_000)
})
