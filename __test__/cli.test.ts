// The `depot-sqlite` CLI (the main job): runs SQL against the embedded file store, prints tables,
// keeps data between runs, and reports errors with their code and a non-zero exit status.
// It always uses the embedded file store, so it is not part of the backend matrix.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openPlain } from './plain-sqlite'

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

  it('--json and --csv print the rows of each query as JSON or CSV instead of a table', () => {
    const sql =
      `SELECT 1 AS id, 'a,"b"' AS s, 'two' || char(10) || 'lines' AS t, NULL AS n, x'00ff' AS b, 9223372036854775807 AS big, 1.5 AS r; ` +
      'CREATE TABLE e(v); SELECT v AS only FROM e'
    const json = run(['--json', 'demo', sql])
    expect(json.stderr).toBe('')
    expect(json.status).toBe(0)
    // One line per query: a JSON array of objects (integers exact, blobs as hex, NULL as null).
    expect(json.stdout).toBe(String.raw`[{"id":1,"s":"a,\"b\"","t":"two\nlines","n":null,"b":"00FF","big":9223372036854775807,"r":1.5}]` + '\n[]\n')
    expect(JSON.parse(json.stdout.split('\n')[0])[0]).toMatchObject({ s: 'a,"b"', t: 'two\nlines' })

    // From stdin, the flag after the database: a header line, then fields quoted where needed.
    const csv = run(['demo', '--csv'], `${sql.replace('CREATE TABLE e(v); ', '')};`)
    expect(csv.stderr).toBe('')
    expect(csv.status).toBe(0)
    expect(csv.stdout).toBe(`id,s,t,n,b,big,r\n1,"a,""b""","two\nlines",,X'00FF',9223372036854775807,1.5\nonly\n`)
  })

  it('--json and --csv together, or with a command, are usage errors', () => {
    for (const args of [
      ['--json', '--csv', 'demo', 'SELECT 1'],
      ['history', 'demo', '--json'],
      ['--csv', 'export', 'demo', 'file'],
    ]) {
      const result = run(args)
      expect(result.status, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toMatch(
        /^error: ERR_USAGE: (--json and --csv exclude each other|--(json|csv) does not apply to the \w+ command)\n\nusage: depot-sqlite/,
      )
    }
  })

  it('rejects a missing database name with a usage message', () => {
    const result = run([])
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/usage: depot-sqlite/)
  })
})

// The history and file commands, each run as its own process on the same store directory. Every run
// passes --history-ms, as an application that keeps history opens its depot.
describe('depot-sqlite history, restore, fork, export and import', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-cli-history-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const HISTORY = ['--history-ms', String(24 * 3_600_000)]
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...HISTORY, ...args], { cwd: dir, input: '', encoding: 'utf8' })
  const ok = (args: string[]) => {
    const result = run(args)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    return result.stdout
  }
  const count = (database: string) => ok([database, 'SELECT count(*) AS n FROM t']).split('\n')[2]
  /** The rows of `history` as [bookmark, time, pages, bytes]. */
  const history = (database: string, ...more: string[]) => {
    const [header, rule, ...rest] = ok(['history', database, ...more]).trimEnd().split('\n')
    expect(header).toMatch(/^bookmark +\| time +\| pages \| bytes$/)
    expect(rule).toMatch(/^-+-\+-/)
    expect(rest.pop()).toMatch(/^\(\d+ rows?\)$/)
    return rest.map((line) => line.split(' | ').map((cell) => cell.trim()))
  }
  const undoOf = (stdout: string) => /^undo bookmark: ([0-9a-f]{16})$/m.exec(stdout)![1]

  it('history lists commits newest first; restore to a bookmark or a time prints the bookmark that undoes it', () => {
    ok(['db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1)'])
    ok(['db', 'INSERT INTO t VALUES (2)'])
    const commits = history('db')
    expect(commits.length).toBe(3)
    const bookmarks = commits.map((c) => c[0])
    expect(bookmarks).toEqual([...bookmarks].sort().reverse())
    for (const [bookmark, time, pages, bytes] of commits) {
      expect(bookmark).toMatch(/^[0-9a-f]{16}$/)
      expect(new Date(time).toISOString()).toBe(time)
      expect(Number(bytes)).toBe(Number(pages) * 4096)
    }
    expect(history('db', '--limit', '1')).toEqual([commits[0]])

    const restored = ok(['restore', 'db', commits[1][0]])
    expect(restored).toContain(`restored db to ${commits[1][0]}`)
    expect(undoOf(restored)).toBe(commits[0][0])
    expect(count('db')).toBe('1')
    ok(['restore', 'db', undoOf(restored)])
    expect(count('db')).toBe('2')

    // --time: the newest commit at or before that time (the one of the second row, here).
    const byTime = ok(['restore', 'db', '--time', commits[1][1]])
    expect(byTime).toContain(`restored db to ${commits[1][0]}`)
    expect(count('db')).toBe('1')
    ok(['restore', 'db', undoOf(byTime)])
    expect(count('db')).toBe('2')
    expect(history('db').length).toBe(7)
  })

  it('fork copies a database at a bookmark; export and import move one through a plain SQLite file', () => {
    ok(['db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1)'])
    const first = history('db')[0][0]
    ok(['db', 'INSERT INTO t VALUES (2)'])
    expect(ok(['fork', 'db', 'then', '--at', first])).toBe(`forked db at ${first} as then\n`)
    expect(ok(['fork', 'db', 'now'])).toBe('forked db as now\n')
    expect([count('then'), count('now')]).toEqual(['1', '2'])

    const file = join(dir, 'db.sqlite')
    expect(ok(['export', 'db', file])).toMatch(/^exported db at [0-9a-f]{16} to .*db\.sqlite\n$/)
    const plain = openPlain(file, { readonly: true })
    expect(plain.rows('SELECT v FROM t ORDER BY v')).toEqual([[1n], [2n]])
    plain.close()
    const exists = run(['export', 'db', file])
    expect(exists.status).toBe(1)
    expect(exists.stderr).toMatch(/^error: ERR_INVALID_ARGUMENT: .*exists already/)
    ok(['export', 'db', file, '--at', first, '--overwrite'])

    expect(ok(['import', file, 'copy'])).toBe(`imported ${file} as copy\n`)
    expect(count('copy')).toBe('1')
    const refused = run(['import', file, 'db'])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/^error: ERR_INVALID_ARGUMENT: .*exists already/)
    expect(count('db')).toBe('2')
    const replaced = ok(['import', file, 'db', '--replace'])
    expect(count('db')).toBe('1')
    ok(['restore', 'db', undoOf(replaced)])
    expect(count('db')).toBe('2')
  })

  it('a database named like a command is reached after --', () => {
    ok(['--', 'history', 'CREATE TABLE t(v); INSERT INTO t VALUES (1)'])
    expect(ok(['--', 'history', 'SELECT count(*) AS n FROM t'])).toBe('n\n-\n1\n(1 row)\n')
    // `history -- history`: the command, then the database named "history".
    expect(history('--', 'history').length).toBe(2)
  })

  it('usage errors of the commands exit 2 with the usage text', () => {
    for (const args of [
      ['history'],
      ['restore', 'db'],
      ['restore', 'db', '0000000000000001', '--time', '2020-01-01T00:00:00Z'],
      ['restore', 'db', '--time', 'yesterday'],
      ['fork', 'db'],
      ['export', 'db', 'file', 'extra'],
      ['history', 'db', '--replace'],
      ['history', 'db', '--limit', '0'],
      ['db', '--limit', '3', 'SELECT 1'],
    ]) {
      const result = run(args)
      expect(result.status, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toMatch(/^error: ERR_USAGE: .*\n\nusage: depot-sqlite/)
    }
  })
})
