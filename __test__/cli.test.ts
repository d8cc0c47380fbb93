// The `depot-sqlite` CLI (the main job): runs SQL against the embedded file store, prints tables,
// keeps data between runs, and reports errors with their code and a non-zero exit status.
// It always uses the embedded file store, so it is not part of the backend matrix.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const cli = join(__dirname, '..', 'bin', 'depot-sqlite.js')

describe('depot-sqlite CLI', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-cli-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, [cli, ...args], { cwd: dir, input: input ?? '', encoding: 'utf8' })

  it('runs statements, prints rows as a table, and keeps the data for the next run', () => {
    const first = run(['demo', "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('hello; world'); SELECT id, body FROM notes"])
    expect(first.stderr).toBe('')
    expect(first.status).toBe(0)
    expect(first.stdout).toBe('id | body\n---+-------------\n1  | hello; world\n(1 row)\n')
    const second = run(['demo', "INSERT INTO notes(body) VALUES ('again'); SELECT count(*) AS n FROM notes"])
    expect(second.status).toBe(0)
    expect(second.stdout).toContain('n\n-\n2\n(1 row)')
  })

  it('reads the statements from stdin when no SQL is given, and honours --depot', () => {
    const result = run(['--depot', join(dir, 'elsewhere'), 'db'], "CREATE TABLE x(a); SELECT 1 AS one, NULL AS nil, x'ab' AS blob, 9223372036854775807 AS big;\n")
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("1   | NULL | X'AB' | 9223372036854775807")
    // The table went to the depot named by --depot, not to the default one.
    const count = 'SELECT count(*) AS n FROM sqlite_master'
    expect(run(['--depot', join(dir, 'elsewhere'), 'db', count]).stdout).toBe('n\n-\n1\n(1 row)\n')
    expect(run(['db', count]).stdout).toBe('n\n-\n0\n(1 row)\n')
  })

  it('reports an SQL error on stderr with its code and exits non-zero', () => {
    const result = run(['demo', 'CREATE TABLE t(k UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)'])
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/^error: SQLITE_CONSTRAINT_UNIQUE: /)
    const syntax = run(['demo', 'SELEC 1'])
    expect(syntax.status).toBe(1)
    expect(syntax.stderr).toMatch(/^error: SQLITE_ERROR: .*syntax/)
  })

  it('rejects a missing database name with a usage message', () => {
    const result = run([])
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/usage: depot-sqlite/)
  })
})
