// The core's log: `tracing` events on stderr, filtered by DEPOT_SQLITE_LOG (default: warnings).
// A slow call names the database and its duration, never the statement's parameter values.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(__dirname, '..')

/** Runs a call of ~300 ms (slower than the 200 ms slow-call threshold) in a child process. */
function slowCall(env: Record<string, string | undefined>) {
  const script = `
    const { Depot } = require(${JSON.stringify(root)})
    ;(async () => {
      const depot = await Depot.open({ memory: true })
      const db = await depot.openDatabase('slow-actor')
      const started = Date.now()
      let n = 0
      while (Date.now() - started < 300) {
        n = (await db.get("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) AS n, ? AS secret FROM c", ['secret-value-123'])).n
      }
      const { slowCalls } = db.metrics()
      await depot.close()
      console.log('done', n, 'slow', slowCalls)
    })()
  `
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete childEnv[key]
  return spawnSync(process.execPath, ['-e', script], { env: childEnv as NodeJS.ProcessEnv, encoding: 'utf8' })
}

describe('DEPOT_SQLITE_LOG', () => {
  it('by default, a slow call is logged to stderr with the database and duration, without parameter values', () => {
    const run = slowCall({ DEPOT_SQLITE_LOG: undefined })
    expect(run.status).toBe(0)
    // The call was slow (so there is something to log) ...
    expect(run.stdout).toMatch(/^done 3000000 slow [1-9]\d*$/m)
    const line = run.stderr.split('\n').find((l) => l.includes('slow call'))
    expect(line, run.stderr).toBeDefined()
    expect(line).toMatch(/WARN/)
    expect(line).toContain('database=slow-actor')
    expect(line).toMatch(/micros=\d{6,}/)
    expect(run.stderr).not.toContain('secret-value-123')
  })

  it('filters with the env-filter syntax: error hides the warning', () => {
    const run = slowCall({ DEPOT_SQLITE_LOG: 'error' })
    expect(run.status).toBe(0)
    // A slow call happened, and the filter kept its warning out.
    expect(run.stdout).toMatch(/^done 3000000 slow [1-9]\d*$/m)
    expect(run.stderr).not.toContain('slow call')
  })
})
