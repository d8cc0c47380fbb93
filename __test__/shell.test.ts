// The interactive shell of the `depot-sqlite` CLI, driven through a real pseudo-terminal: each test
// starts the CLI in a tmux session of its own (its own server socket, 200x50), types keys with
// `send-keys` and reads the screen with `capture-pane`. Every wait polls the screen until the expected
// text is there, failing with the screen after a deadline.
//
// The sessions run on the embedded file store and again on PostgreSQL (DEPOT_TEST_PG_URL, set by
// `npm test`; without it the postgres tests fail, never skip). tmux must be installed: `npm test`
// installs Debian's package when it is missing; without it every test here fails saying so.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { pgUrl } from './backends'

const cli = join(__dirname, '..', 'bin', 'depot-sqlite.js')
const WAIT_MS = 15_000

// Checked before each test, so that each one fails (none is skipped) when tmux is missing.
beforeEach(() => {
  const version = spawnSync('tmux', ['-V'], { encoding: 'utf8' })
  if (version.error || version.status !== 0) {
    throw new Error(
      'tmux is not installed: the shell tests drive the CLI in a pseudo-terminal through tmux. ' +
        '`npm test` installs it (apt-get install tmux); install it, or run `npm test`.',
    )
  }
})

/** A word for `sh -c`, single-quoted. */
const shellWord = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** One tmux server (socket in `dir`) with one session running the CLI. */
class Terminal {
  readonly socket: string
  constructor(
    readonly dir: string,
    readonly database: string,
  ) {
    this.socket = join(dir, 'tmux.sock')
  }

  get prompt() {
    return `${this.database}>`
  }

  get continuation() {
    return `${' '.repeat(Math.max(0, this.database.length - 3))}...>`
  }

  tmux(...args: string[]) {
    const result = spawnSync('tmux', ['-S', this.socket, ...args], { encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${result.stderr || result.error}`)
    return result.stdout
  }

  /**
   * The command line of the CLI in the session. Its exit status is printed after it (tmux's own
   * "Pane is dead" notice waits for a SIGCHLD that tmux 3.3 sometimes misses).
   */
  command(args: string[], env: Record<string, string>) {
    const vars = Object.entries(env).map(([k, v]) => `${k}=${shellWord(v)}`)
    return `env ${vars.join(' ')} ${[process.execPath, cli, ...args, this.database].map(shellWord).join(' ')}; echo "[exited: $?]"`
  }

  /** Starts the CLI (a new session, or a new process in the same pane); the pane stays after it exits. */
  start(args: string[], env: Record<string, string>) {
    const line = this.command(args, env)
    try {
      this.tmux('has-session', '-t', 'shell')
      this.tmux('respawn-pane', '-k', '-t', 'shell', line)
      this.tmux('clear-history', '-t', 'shell')
    } catch {
      // A configuration of its own: a dead pane stays (with its exit status), scrollback is long.
      const config = join(this.dir, 'tmux.conf')
      writeFileSync(config, 'set-option -g remain-on-exit on\nset-option -g history-limit 100000\n')
      this.tmux('-f', config, 'new-session', '-d', '-x', '200', '-y', '50', '-s', 'shell', '-c', this.dir, line)
    }
  }

  /** The lines of the pane, scrollback included, without the empty ones at the end. */
  lines(): string[] {
    const lines = this.tmux('capture-pane', '-p', '-J', '-S', '-', '-E', '-', '-t', 'shell').split('\n').map((l) => l.trimEnd())
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
    return lines
  }

  /** Polls the screen until `ready(lines)` returns a value other than undefined, and returns it. */
  async waitFor<T>(what: string, ready: (lines: string[]) => T | undefined): Promise<T> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const lines = this.lines()
      const value = ready(lines)
      if (value !== undefined) return value
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the screen:\n${lines.join('\n')}`)
      await sleep(25)
    }
  }

  /** Types text as it is (sent as bytes, so that `;` and quotes reach the CLI untouched). */
  type(text: string) {
    this.tmux('send-keys', '-t', 'shell', '-H', ...[...Buffer.from(text, 'utf8')].map((b) => b.toString(16).padStart(2, '0')))
  }

  press(...keys: string[]) {
    this.tmux('send-keys', '-t', 'shell', ...keys)
  }

  /** Waits for the shell's banner and first prompt on a fresh screen. */
  ready() {
    return this.waitFor('the banner and the first prompt', (lines) =>
      lines.length === 3 && lines[0].startsWith('depot-sqlite ') && lines[2] === this.prompt ? true : undefined,
    )
  }

  /**
   * Types `line` and Enter at a prompt and returns what printed before the next prompt (the main one
   * or the continuation one) as text, lines joined with \n.
   */
  async enter(line: string): Promise<string> {
    const before = this.lines()
    const prompt = before.at(-1)!
    expect([this.prompt, this.continuation], 'enter() is called at a prompt').toContain(prompt)
    this.type(line)
    this.press('Enter')
    const echoed = `${prompt} ${line}`.trimEnd()
    return this.waitFor(`the prompt after ${JSON.stringify(line)}`, (lines) => {
      if (lines.length <= before.length || lines[before.length - 1] !== echoed) return undefined
      const last = lines.at(-1)
      if (last !== this.prompt && last !== this.continuation) return undefined
      return lines.slice(before.length, -1).join('\n')
    })
  }

  /** Waits for the CLI to exit and returns its exit status. */
  exited(): Promise<number> {
    return this.waitFor('the CLI to exit', (lines) => {
      const status = lines.map((l) => /^\[exited: (\d+)\]$/.exec(l)).find(Boolean)
      return status ? Number(status[1]) : undefined
    })
  }

  /** The cursor's column and row. */
  cursor() {
    const [x, y] = this.tmux('display-message', '-p', '-t', 'shell', '#{cursor_x} #{cursor_y}').trim().split(' ').map(Number)
    return { x, y }
  }

  stop() {
    spawnSync('tmux', ['-S', this.socket, 'kill-server'])
  }
}

/** Where a test's shell keeps its pages: the embedded store in the test's directory, or PostgreSQL. */
interface Store {
  name: string
  /** The --depot argument for a test directory. */
  depot(dir: string): string
}

const stores: Store[] = [
  { name: 'file', depot: (dir) => join(dir, 'store') },
  { name: 'postgres', depot: () => pgUrl() },
]

let sessions = 0
/** A database name of its own per test, process and run (the PostgreSQL store is shared). */
const freshName = (prefix: string) => `${prefix}_${process.pid}_${Date.now().toString(36)}_${sessions++}`

for (const store of stores) {
  describe(`depot-sqlite shell (${store.name} store)`, () => {
    let dir: string
    let term: Terminal
    let env: Record<string, string>
    let depot: string

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-shell-'))
      depot = store.depot(dir)
      // The screen is compared line by line: a call slower than 200 ms on a loaded machine would
      // print the core's "slow call" warning (stderr shares the terminal) between the answers.
      env = { HOME: dir, DEPOT_SQLITE_HISTORY: join(dir, 'history'), DEPOT_SQLITE_LOG: 'error' }
      term = new Terminal(dir, freshName('demo'))
    })
    afterEach(() => {
      term.stop()
      rmSync(dir, { recursive: true, force: true })
    })

    /** Starts the shell on `term.database` and waits for its prompt. */
    const open = async (...flags: string[]) => {
      term.start(['--depot', depot, ...flags], env)
      await term.ready()
    }
    /** The CLI without a terminal (SQL from the argument or stdin), on the same store. */
    const batch = (args: string[], input = '') => {
      const env = { ...process.env, DEPOT_SQLITE_LOG: 'error' } // no "slow call" warning on stderr (see above)
      const result = spawnSync(process.execPath, [cli, '--depot', depot, ...args], { cwd: dir, input, env, encoding: 'utf8', timeout: 30_000 })
      expect(result.stderr).toBe('')
      expect(result.status).toBe(0)
      return result.stdout
    }

    it('runs statements typed over several lines and prints their rows in each .mode', async () => {
      await open()
      expect(term.lines()[0]).toMatch(new RegExp(`^depot-sqlite \\d+\\.\\d+\\.\\d+: database ${term.database} in `))
      expect(await term.enter('CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, n REAL);')).toBe('')
      // A statement over two lines: the first gets the continuation prompt, the second runs it.
      expect(await term.enter("INSERT INTO notes(body, n) VALUES ('hello, world', 1.5),")).toBe('')
      expect(term.lines().at(-1)).toBe(term.continuation)
      expect(await term.enter("  ('say \"hi\"', NULL);")).toBe('')
      expect(term.lines().at(-1)).toBe(term.prompt)

      const select = 'SELECT id, body, n FROM notes ORDER BY id;'
      expect(await term.enter(select)).toBe(['id | body         | n', '---+--------------+-----', '1  | hello, world | 1.5', '2  | say "hi"     | NULL', '(2 rows)'].join('\n'))
      expect(await term.enter('.mode csv')).toBe('')
      expect(await term.enter(select)).toBe(['id,body,n', '1,"hello, world",1.5', '2,"say ""hi""",'].join('\n'))
      expect(await term.enter('.mode json')).toBe('')
      expect(await term.enter(select)).toBe('[{"id":1,"body":"hello, world","n":1.5},{"id":2,"body":"say \\"hi\\"","n":null}]')
      expect(await term.enter('.mode line')).toBe('')
      expect(await term.enter(select)).toBe(['  id = 1', 'body = hello, world', '   n = 1.5', '', '  id = 2', 'body = say "hi"', '   n = NULL'].join('\n'))
      expect(await term.enter('.mode')).toBe('line')
      expect(await term.enter('.mode table')).toBe('')
      // Several statements on one line: each query's rows.
      expect(await term.enter('SELECT 1 AS a; SELECT 2 AS b;')).toBe('a\n-\n1\n(1 row)\nb\n-\n2\n(1 row)')

      expect(await term.enter('CREATE INDEX notes_n ON notes(n);')).toBe('')
      expect(await term.enter('CREATE VIEW long_notes AS SELECT * FROM notes WHERE length(body) > 8;')).toBe('')
      expect(await term.enter('.tables')).toBe('long_notes\nnotes')
      expect(await term.enter('.schema notes')).toBe('CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, n REAL);\nCREATE INDEX notes_n ON notes(n);')
      expect(await term.enter('.schema')).toBe(
        [
          'CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, n REAL);',
          'CREATE INDEX notes_n ON notes(n);',
          'CREATE VIEW long_notes AS SELECT * FROM notes WHERE length(body) > 8;',
        ].join('\n'),
      )
      const help = await term.enter('.help')
      for (const command of ['.databases', '.dump', '.import FILE TABLE', '.mode', '.output [FILE]', '.quit', '.read FILE', '.schema [TABLE]', '.tables', '.timer on|off']) {
        expect(help).toContain(command)
      }

      term.type('.quit')
      term.press('Enter')
      expect(await term.exited()).toBe(0)
      // What the shell wrote is in the store: a run without a terminal sees it.
      expect(batch([term.database, 'SELECT count(*) AS n FROM notes'])).toBe('n\n-\n2\n(1 row)\n')
    })

    it('prints errors and goes on: SQL errors, unknown and misused dot-commands, Ctrl-C', async () => {
      await open()
      expect(await term.enter('SELEC 1;')).toMatch(/^error: SQLITE_ERROR: .*syntax error$/)
      expect(await term.enter('CREATE TABLE t(k UNIQUE); INSERT INTO t VALUES (1);')).toBe('')
      expect(await term.enter('INSERT INTO t VALUES (1);')).toMatch(/^error: SQLITE_CONSTRAINT_UNIQUE: /)
      expect(await term.enter('.frobnicate now')).toBe('error: ERR_USAGE: unknown command .frobnicate (.help lists the commands)')
      expect(await term.enter('.mode xml')).toBe('error: ERR_USAGE: unknown mode xml (table, csv, json, line)')
      expect(await term.enter('.timer')).toBe('error: ERR_USAGE: usage: .timer on|off')
      expect(await term.enter('.import only-one-argument')).toBe('error: ERR_USAGE: usage: .import FILE TABLE')
      expect(await term.enter('.schema missing')).toBe('error: ERR_USAGE: no table or view named missing')
      expect(await term.enter('.read no-such-file.sql')).toMatch(/^error: ENOENT: no such file or directory/)

      // Ctrl-C drops a statement being typed (the next line starts a new one).
      expect(await term.enter('SELECT 42')).toBe('')
      expect(term.lines().at(-1)).toBe(term.continuation)
      term.press('C-c')
      await term.waitFor('the main prompt after Ctrl-C', (lines) => (lines.at(-1) === term.prompt ? true : undefined))
      expect(await term.enter('SELECT 7 AS seven;')).toBe('seven\n-----\n7\n(1 row)')

      // Ctrl-C interrupts a statement that runs (one that would never end), and the shell goes on.
      const endless = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;'
      const before = term.lines().length
      term.type(endless)
      term.press('Enter')
      // Running: the line is entered (the cursor is at the start of the next line) and no prompt came.
      await term.waitFor('the endless statement to run', (lines) =>
        lines.length === before && lines[before - 1] === `${term.prompt} ${endless}` && term.cursor().x === 0 ? true : undefined,
      )
      term.press('C-c')
      const interrupted = await term.waitFor('the interrupted statement', (lines) =>
        lines.at(-1) === term.prompt && lines.length > before + 1 ? lines.slice(before, -1).join('\n') : undefined,
      )
      expect(interrupted).toMatch(/^error: ERR_ABORTED: /m)
      expect(await term.enter('SELECT count(*) AS n FROM t;')).toBe('n\n-\n1\n(1 row)')
    })

    it('.import reads a CSV file into a new table or an existing one, all rows or none', async () => {
      writeFileSync(join(dir, 'people.csv'), 'name,note\r\nalice,"likes ""quotes"", and commas"\r\nbob,"two\nlines"\r\n')
      writeFileSync(join(dir, 'more.csv'), 'name,note\ncarol,\n')
      writeFileSync(join(dir, 'ragged.csv'), 'dave,one\nerin,two,three\n')
      writeFileSync(join(dir, 'numbers.csv'), '1,one\n"2",two\n')
      // --json: the shell starts in that mode.
      await open('--json')
      expect(await term.enter('.mode')).toBe('json')
      expect(await term.enter('.import people.csv people')).toBe('imported 2 rows into people')
      expect(await term.enter('.schema people')).toBe('CREATE TABLE "people" ("name" TEXT, "note" TEXT);')
      const everyone = 'SELECT name, note FROM people ORDER BY rowid;'
      expect(await term.enter(everyone)).toBe('[{"name":"alice","note":"likes \\"quotes\\", and commas"},{"name":"bob","note":"two\\nlines"}]')

      // Into the existing table: a first row that names its columns is a header, skipped.
      expect(await term.enter('.import more.csv people')).toBe('imported 1 row into people')
      // A row of the wrong width fails the import as a whole.
      expect(await term.enter('.import ragged.csv people')).toBe('error: ERR_CSV: ragged.csv: row 2 has 3 fields, people takes 2')
      expect(await term.enter('SELECT count(*) AS n FROM people;')).toBe('[{"n":3}]')

      // Without a header, every row is data; the table's column affinities apply.
      expect(await term.enter('CREATE TABLE numbers(n INTEGER, word TEXT);')).toBe('')
      expect(await term.enter('.import numbers.csv numbers')).toBe('imported 2 rows into numbers')
      expect(await term.enter('SELECT n, typeof(n) AS t, word FROM numbers ORDER BY n;')).toBe('[{"n":1,"t":"integer","word":"one"},{"n":2,"t":"integer","word":"two"}]')
      expect(await term.enter('.import missing.csv numbers')).toMatch(/^error: ENOENT: /)
    })

    it('.output sends rows to a file, .read runs a file, .timer times statements, .databases lists the depot', async () => {
      batch([`${term.database}_other`, 'CREATE TABLE x(a)'])
      writeFileSync(
        join(dir, 'script.sql'),
        ['-- a script: SQL over lines, and dot-commands', 'CREATE TABLE r(v);', 'INSERT INTO r VALUES (1),', '  (2);', '.mode csv', 'SELECT sum(v) AS total FROM r;', ''].join('\n'),
      )
      writeFileSync(join(dir, 'failing.sql'), 'INSERT INTO r VALUES (10);\n.nonsense\nINSERT INTO r VALUES (20);\n')
      await open()
      expect(await term.enter('.read script.sql')).toBe('total\n3')
      expect(await term.enter('.read failing.sql')).toBe('error: ERR_USAGE: unknown command .nonsense (.help lists the commands)')
      // The file ran up to the error.
      expect(await term.enter('SELECT group_concat(v) AS vs FROM r;')).toBe('vs\n"1,2,10"')

      expect(await term.enter('.output out.csv')).toBe('')
      expect(await term.enter('SELECT v FROM r ORDER BY v;')).toBe('')
      expect(await term.enter('.tables')).toBe('')
      expect(await term.enter('.output')).toBe('')
      expect(readFileSync(join(dir, 'out.csv'), 'utf8')).toBe('v\n1\n2\n10\nr\n')
      expect(await term.enter('SELECT 5 AS five;')).toBe('five\n5')
      expect(await term.enter('.output no-such-dir/out.csv')).toMatch(/^error: ENOENT: /)
      expect(await term.enter('SELECT 6 AS six;')).toBe('six\n6')

      expect(await term.enter('.timer on')).toBe('')
      expect(await term.enter('SELECT 1 AS one;')).toMatch(/^one\n1\nelapsed: \d+\.\d{3} ms$/)
      expect(await term.enter('.timer off')).toBe('')
      expect(await term.enter('SELECT 1 AS one;')).toBe('one\n1')

      const databases = (await term.enter('.databases')).split('\n')
      expect(databases).toEqual([...databases].sort())
      expect(databases).toContain(term.database)
      expect(databases).toContain(`${term.database}_other`)
      if (store.name === 'file') expect(databases).toEqual([term.database, `${term.database}_other`])
    })

    it('.dump prints SQL that recreates the database', async () => {
      await open()
      const setup = [
        'CREATE TABLE t(id INTEGER PRIMARY KEY, r REAL, s TEXT, b BLOB, big INTEGER, g INTEGER GENERATED ALWAYS AS (id * 10) VIRTUAL);',
        "INSERT INTO t(r, s, b, big) VALUES (2.0, 'it''s', x'00FF', 9223372036854775807), (0.1, 'two' || char(10) || 'lines', NULL, -1), (NULL, NULL, x'', NULL);",
        'CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);',
        "INSERT INTO auto(v) VALUES ('a'), ('b'); DELETE FROM auto WHERE v = 'b';",
        'CREATE INDEX t_s ON t(s);',
        'CREATE VIEW v AS SELECT id, s FROM t;',
        "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO auto(v) VALUES ('trigger'); END;",
        'CREATE VIRTUAL TABLE docs USING fts5(body);',
        "INSERT INTO docs(rowid, body) VALUES (5, 'hello world'), (9, 'goodbye');",
      ]
      for (const sql of setup) expect(await term.enter(sql)).toBe('')
      const dump = await term.enter('.dump')
      const lines = dump.split('\n')
      expect(lines.slice(0, 3)).toEqual(['PRAGMA foreign_keys=OFF;', 'BEGIN TRANSACTION;', setup[0]])
      expect(lines).toContain(`INSERT INTO "t"("id","r","s","b","big") VALUES(1,2.0,'it''s',X'00FF',9223372036854775807);`)
      expect(lines).toContain(`INSERT INTO "auto" VALUES(1,'a');`)
      expect(lines.at(-1)).toBe('COMMIT;')

      expect(await term.enter('.output dump.sql')).toBe('')
      expect(await term.enter('.dump')).toBe('')
      expect(await term.enter('.output')).toBe('')
      expect(readFileSync(join(dir, 'dump.sql'), 'utf8')).toBe(dump + '\n')
      // (The embedded store is one process's at a time: the shell leaves before the runs below.)
      term.type('.quit')
      term.press('Enter')
      expect(await term.exited()).toBe(0)

      // The dump, run into a new database without a terminal, makes the same content.
      const copy = `${term.database}_copy`
      batch([copy], readFileSync(join(dir, 'dump.sql'), 'utf8'))
      const check = [
        'SELECT id, r, typeof(r) AS tr, s, b, big, g FROM t ORDER BY id',
        'SELECT * FROM auto ORDER BY id',
        'SELECT name, seq FROM sqlite_sequence',
        'SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name',
        "SELECT rowid, body FROM docs WHERE docs MATCH 'hello OR goodbye' ORDER BY rowid",
        'SELECT * FROM v ORDER BY id',
      ].join('; ')
      const original = batch(['--json', term.database, check])
      expect(original.split('\n')[0]).toBe(
        '[{"id":1,"r":2,"tr":"real","s":"it\'s","b":"00FF","big":9223372036854775807,"g":10},{"id":2,"r":0.1,"tr":"real","s":"two\\nlines","b":null,"big":-1,"g":20},{"id":3,"r":null,"tr":"null","s":null,"b":"","big":null,"g":30}]',
      )
      expect(batch(['--json', copy, check])).toBe(original)
      // The AUTOINCREMENT counter came along, and so did the trigger.
      batch([copy, "INSERT INTO t(s) VALUES ('new')"])
      expect(batch([copy, 'SELECT id, v FROM auto ORDER BY id'])).toBe('id | v\n---+--------\n1  | a\n3  | trigger\n(2 rows)\n')
    })
  })
}

describe('depot-sqlite shell history', () => {
  let dir: string
  let term: Terminal
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-shell-history-'))
    term = new Terminal(dir, 'demo')
  })
  afterEach(() => {
    term.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('keeps the typed lines in the history file; the next session recalls them with the Up arrow', async () => {
    const history = join(dir, 'typed-lines')
    const env = { HOME: dir, DEPOT_SQLITE_HISTORY: history, DEPOT_SQLITE_LOG: 'error' }
    term.start(['--depot', join(dir, 'store')], env)
    await term.ready()
    expect(await term.enter('CREATE TABLE h(v);')).toBe('')
    expect(await term.enter("INSERT INTO h VALUES ('remembered')")).toBe('')
    expect(await term.enter(';')).toBe('')
    expect(await term.enter('SELECT v FROM h;')).toBe('v\n----------\nremembered\n(1 row)')
    // Ctrl-D at an empty prompt leaves, with status 0.
    term.press('C-d')
    expect(await term.exited()).toBe(0)
    expect(readFileSync(history, 'utf8')).toBe(["CREATE TABLE h(v);", "INSERT INTO h VALUES ('remembered')", ';', 'SELECT v FROM h;', ''].join('\n'))

    // A second session: Up shows the newest line of the first, Up again the one before; Enter runs it.
    term.start(['--depot', join(dir, 'store')], env)
    await term.ready()
    term.press('Up')
    await term.waitFor('the newest line recalled', (lines) => (lines.at(-1) === 'demo> SELECT v FROM h;' ? true : undefined))
    term.press('Up', 'Up')
    await term.waitFor('an older line recalled', (lines) => (lines.at(-1) === "demo> INSERT INTO h VALUES ('remembered')" ? true : undefined))
    const before = term.lines().length
    term.press('Down', 'Down', 'Enter')
    const output = await term.waitFor('the recalled statement to run', (lines) =>
      lines.length > before && lines.at(-1) === 'demo>' ? lines.slice(before - 1, -1).join('\n') : undefined,
    )
    expect(output).toBe('demo> SELECT v FROM h;\nv\n----------\nremembered\n(1 row)')
    term.type('.quit')
    term.press('Enter')
    expect(await term.exited()).toBe(0)
    expect(readFileSync(history, 'utf8').trimEnd().split('\n').slice(-2)).toEqual(['SELECT v FROM h;', '.quit'])
  })
})
