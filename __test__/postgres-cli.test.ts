// `depot-sqlite --depot postgres://...`: the CLI on the PostgreSQL store (schema `depot`, so each run
// of this test uses a database name of its own). Credentials never reach the output.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

import { pgUrl } from './backends'

const cli = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'bin', 'depot-sqlite.js')
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { input: '', encoding: 'utf8', timeout: 30_000 })

describe('depot-sqlite CLI on PostgreSQL', () => {
  it('--depot postgres://... keeps the data between runs', () => {
    const name = `cli-${process.pid}-${Date.now()}`
    const first = run(['--depot', pgUrl(), name, 'CREATE TABLE v(id INTEGER PRIMARY KEY); INSERT INTO v DEFAULT VALUES'])
    expect(first.stderr).toBe('')
    expect(first.status).toBe(0)
    const second = run([`--depot=${pgUrl()}`, name, 'INSERT INTO v DEFAULT VALUES; SELECT count(*) AS n FROM v'])
    expect(second.status).toBe(0)
    expect(second.stdout).toContain('n\n-\n2\n(1 row)')
  })

  it('an unreachable server exits 1 with ERR_STORE_UNAVAILABLE and no password', () => {
    const out = run(['--depot', 'postgres://someone:hunter2@127.0.0.1:1/db', 'x', 'SELECT 1'])
    expect(out.status).toBe(1)
    expect(out.stderr).toMatch(/^error: ERR_STORE_UNAVAILABLE: /)
    expect(out.stderr).not.toContain('hunter2')
  })
})
