'use strict'
// The interactive shell of depot-sqlite: what `depot-sqlite DATABASE` opens when stdin and stdout are
// a terminal and no SQL is given.
//
// Lines are read with Node's readline (line editing, a history kept in a file). SQL accumulates over
// lines until SQLite says the statement is complete (isCompleteSql), then runs through executeScript
// and its rows print in the current mode. A line starting with `.` where no statement is pending is a
// dot-command. An error prints as `error: CODE: message` and the shell goes on. Ctrl-C drops the
// statement being typed, or interrupts the one that runs; Ctrl-D or .quit leaves.
//
// Rows (and what .tables, .schema, .dump and .databases print) go to the output, the terminal or the
// file of .output; notes such as .timer's go to the terminal, errors to stderr.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { isCompleteSql } = require('../index.js')
const { MODES, formatResult, formatError, parseCsv } = require('./format.js')

/** Lines kept in the history (the file is cut back to them when it grows to twice as many). */
const HISTORY_SIZE = 1000
/** How deep .read may nest (a file that reads itself stops there). */
const MAX_READ_DEPTH = 16

const HELP = `.databases           the databases in the depot
.dump                SQL that recreates this database (schema, then INSERTs)
.help                this list
.import FILE TABLE   inserts the rows of the CSV file FILE into TABLE; a TABLE
                     that does not exist is created from the header row (TEXT
                     columns); a first row naming the columns of an existing
                     TABLE is skipped; all rows or none
.mode [MODE]         shows or sets how rows print: ${MODES.join(', ')}
.output [FILE]       sends the rows to FILE (truncated first); without FILE,
                     back to the terminal
.quit, .exit         leaves (so does Ctrl-D)
.read FILE           runs the SQL and dot-commands of FILE; stops at an error
.schema [TABLE]      the CREATE statements, or those of TABLE and its indexes
                     and triggers
.tables              the tables and views
.timer on|off        prints the time each batch of statements took

SQL runs when a line ends a complete statement (with ;). Ctrl-C drops the
statement being typed, or interrupts the one that runs.
`

/** The history file: $DEPOT_SQLITE_HISTORY (empty: none), else ~/.depot_sqlite_history. */
function historyFile(env = process.env) {
  if (env.DEPOT_SQLITE_HISTORY !== undefined) return env.DEPOT_SQLITE_HISTORY || null
  return path.join(os.homedir(), '.depot_sqlite_history')
}

/** The lines of the history file, newest first (readline's order); cuts the file back when it has grown. */
function loadHistory(file) {
  if (!file) return []
  let lines
  try {
    lines = fs.readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '')
  } catch {
    return []
  }
  if (lines.length > 2 * HISTORY_SIZE) {
    lines = lines.slice(-HISTORY_SIZE)
    try {
      fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 })
    } catch {
      // A history that cannot be rewritten is still read.
    }
  }
  return lines.slice(-HISTORY_SIZE).reverse()
}

/** An SQL identifier, double-quoted. */
function quoteName(name) {
  return `"${String(name).replace(/"/g, '""')}"`
}

/** A value as an SQL literal that reads back as the same value and type (a real stays a real). */
function sqlLiteral(value) {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NULL'
    if (!Number.isFinite(value)) return value > 0 ? '1e999' : '-1e999'
    const text = String(value)
    return /^-?\d+$/.test(text) ? `${text}.0` : text
  }
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex').toUpperCase()}'`
  const text = String(value)
  // A NUL would end the SQL text early: such a string goes in as hex.
  if (text.includes('\0')) return `CAST(X'${Buffer.from(text, 'utf8').toString('hex').toUpperCase()}' AS TEXT)`
  return `'${text.replace(/'/g, "''")}'`
}

/** Whether SQL text holds nothing but whitespace and comments. */
function isBlankSql(sql) {
  return sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, '').trim() === ''
}

/** The words of a dot-command; '...' and "..." quote a word with spaces. */
function splitWords(text) {
  const words = []
  const pattern = /"([^"]*)"|'([^']*)'|(\S+)/g
  let match
  while ((match = pattern.exec(text)) !== null) words.push(match[1] ?? match[2] ?? match[3])
  return words
}

function shellError(code, message) {
  const error = new Error(message)
  error.code = code
  return error
}

const usage = (message) => shellError('ERR_USAGE', message)

class Shell {
  /**
   * `depot` and `db` (opened with intMode 'bigint') stay open after run() returns; the caller closes
   * them. `terminal` is { input, output, error } (process.stdin, stdout and stderr by default).
   */
  constructor({ depot, db, database, mode = 'table', history = historyFile(), terminal = {} }) {
    this.depot = depot
    this.db = db
    this.database = database
    this.mode = mode
    this.historyFile = history
    this.input = terminal.input ?? process.stdin
    this.terminal = terminal.output ?? process.stdout
    this.errors = terminal.error ?? process.stderr
    this.outputFd = null
    this.timer = false
    this.running = null
    this.readDepth = 0
    this.quitting = false
    this.prompt = `${database}> `
    this.continuation = `${' '.repeat(Math.max(0, database.length - 3))}...> `
  }

  /** Reads and runs lines until .quit or Ctrl-D. */
  async run() {
    const rl = readline.createInterface({
      input: this.input,
      output: this.terminal,
      terminal: true,
      history: loadHistory(this.historyFile),
      historySize: HISTORY_SIZE,
      removeHistoryDuplicates: true,
      prompt: this.prompt,
    })
    const typed = { sql: '', blank: true }
    rl.on('SIGINT', () => {
      if (this.running) {
        this.running.abort()
        return
      }
      rl.clearLine()
      typed.sql = ''
      typed.blank = true
      rl.setPrompt(this.prompt)
      rl.prompt()
    })
    const version = require('../package.json').version
    this.tell(`depot-sqlite ${version}: database ${this.database} in ${this.depot.location}\n.help lists the commands; .quit or Ctrl-D leaves.\n`)
    rl.prompt()
    try {
      for await (const line of rl) {
        this.remember(line)
        try {
          await this.feed(typed, line, true)
        } catch (error) {
          typed.sql = ''
          typed.blank = true
          this.errors.write(formatError(error))
        }
        if (this.quitting) break
        rl.setPrompt(typed.sql === '' ? this.prompt : this.continuation)
        rl.prompt()
      }
      if (!this.quitting) this.tell('\n')
    } finally {
      rl.close()
      this.closeOutput()
    }
  }

  /** Appends a typed line to the history file (readline keeps its own copy for this session). */
  remember(line) {
    if (!this.historyFile || line.trim() === '') return
    try {
      fs.appendFileSync(this.historyFile, line + '\n', { mode: 0o600 })
    } catch (error) {
      if (!this.historyWarned) this.errors.write(`warning: history not saved: ${error.message}\n`)
      this.historyWarned = true
    }
  }

  /**
   * Takes one line of input into `state` ({ sql, blank }: the pending SQL, and whether it holds only
   * comments). `eager`: run each statement once it is complete (typing); else gather the SQL up to a
   * dot-command or the end and run it as one script (.read). Throws the error of what it ran.
   */
  async feed(state, line, eager) {
    if (/^\s*\./.test(line) && (state.blank || isCompleteSql(state.sql))) {
      await this.flush(state)
      return this.dot(line.trim())
    }
    state.sql += line + '\n'
    if (state.blank) state.blank = isBlankSql(state.sql)
    if (state.blank) state.sql = ''
    else if (eager && isCompleteSql(state.sql)) await this.flush(state)
  }

  /** Runs the pending SQL of `state`, if any. */
  async flush(state) {
    const { sql, blank } = state
    state.sql = ''
    state.blank = true
    if (!blank) await this.runSql(sql)
  }

  /** Runs statements and prints the rows of each query; Ctrl-C interrupts them (ERR_ABORTED). */
  async runSql(sql) {
    const controller = new AbortController()
    this.running = controller
    const started = process.hrtime.bigint()
    let results
    try {
      results = await this.db.executeScript(sql, { signal: controller.signal })
    } finally {
      this.running = null
    }
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6
    for (const { columns, rows } of results) {
      if (columns.length > 0) this.write(formatResult(this.mode, columns, rows))
    }
    if (this.timer) this.tell(`elapsed: ${elapsed.toFixed(3)} ms\n`)
  }

  /** Writes to the output: the .output file, else the terminal. */
  write(text) {
    if (this.outputFd === null) this.terminal.write(text)
    else fs.writeSync(this.outputFd, text)
  }

  /** Writes a note to the terminal, whatever .output says. */
  tell(text) {
    this.terminal.write(text)
  }

  closeOutput() {
    if (this.outputFd !== null) fs.closeSync(this.outputFd)
    this.outputFd = null
  }

  /** Runs a dot-command line (starting with `.`). */
  async dot(line) {
    const [name, ...args] = splitWords(line.slice(1))
    const command = name && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : null
    if (!command) throw usage(`unknown command .${name ?? ''} (.help lists the commands)`)
    if (args.length < command.min || args.length > command.max) throw usage(`usage: .${name} ${command.usage}`.trimEnd())
    await command.run.call(this, ...args)
  }

  /** Reads FILE's lines as if typed, SQL gathered into scripts between dot-commands; stops at an error. */
  async read(file) {
    if (this.readDepth >= MAX_READ_DEPTH) throw usage(`.read nested more than ${MAX_READ_DEPTH} deep`)
    const text = fs.readFileSync(file, 'utf8')
    const state = { sql: '', blank: true }
    this.readDepth++
    try {
      for (const line of text.split(/\r?\n/)) {
        await this.feed(state, line, false)
        if (this.quitting) return
      }
      await this.flush(state)
    } finally {
      this.readDepth--
    }
  }

  /** .import: the CSV file's rows into `table`, in one batch (all or nothing). */
  async import(file, table) {
    const records = parseCsv(fs.readFileSync(file, 'utf8'))
    if (records.length === 0) throw shellError('ERR_CSV', `${file} has no rows`)
    const existing = (await this.db.query('SELECT name FROM pragma_table_info(?)', [table])).rows.map(([c]) => c)
    const statements = []
    let first = 0
    if (existing.length === 0) {
      const header = records[0]
      statements.push({ sql: `CREATE TABLE ${quoteName(table)} (${header.map((c) => `${quoteName(c)} TEXT`).join(', ')})` })
      first = 1
    } else if (records[0].length === existing.length && records[0].every((c, i) => c.toLowerCase() === existing[i].toLowerCase())) {
      first = 1
    }
    const width = existing.length || records[0].length
    const insert = `INSERT INTO ${quoteName(table)} VALUES (${new Array(width).fill('?').join(', ')})`
    for (let i = first; i < records.length; i++) {
      if (records[i].length !== width) {
        throw shellError('ERR_CSV', `${file}: row ${i + 1} has ${records[i].length} fields, ${table} takes ${width}`)
      }
      statements.push({ sql: insert, params: records[i] })
    }
    await this.db.executeBatch(statements)
    const n = records.length - first
    this.tell(`imported ${n} ${n === 1 ? 'row' : 'rows'} into ${table}\n`)
  }

  /** .dump: SQL text that recreates the database, in one transaction. */
  async dump() {
    const query = async (sql, params) => (await this.db.query(sql, params)).rows
    const kinds = new Map(await query("SELECT name, type FROM pragma_table_list WHERE schema = 'main'"))
    const objects = await query('SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid')
    const internal = (name) => /^sqlite_/i.test(name)
    const tables = objects.filter(([type, name]) => type === 'table' && !internal(name))
    this.write('PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n')
    for (const [, name, , sql] of tables) {
      if (kinds.get(name) !== 'table') continue
      this.write(`${sql};\n`)
      await this.dumpRows(name)
    }
    // A virtual table makes its shadow tables (with first rows of their own): their rows replace those.
    for (const [, name, , sql] of tables) if (kinds.get(name) === 'virtual') this.write(`${sql};\n`)
    for (const [, name] of tables) {
      if (kinds.get(name) !== 'shadow') continue
      this.write(`DELETE FROM ${quoteName(name)};\n`)
      await this.dumpRows(name)
    }
    if (kinds.has('sqlite_sequence')) {
      this.write('DELETE FROM sqlite_sequence;\n')
      await this.dumpRows('sqlite_sequence')
    }
    for (const [type, name, table, sql] of objects) {
      if (type !== 'table' && !internal(name) && kinds.get(table) !== 'shadow') this.write(`${sql};\n`)
    }
    this.write('COMMIT;\n')
  }

  /** The rows of one table as INSERT statements (generated columns left out, for SQLite to compute). */
  async dumpRows(table) {
    const columns = (await this.db.query('SELECT name, hidden FROM pragma_table_xinfo(?)', [table])).rows
    const stored = columns.filter(([, hidden]) => Number(hidden) === 0).map(([name]) => name)
    const generated = columns.some(([, hidden]) => Number(hidden) === 2 || Number(hidden) === 3)
    const into = generated ? `${quoteName(table)}(${stored.map(quoteName).join(',')})` : quoteName(table)
    // Positional aliases: the row objects then have keys that no column name can disturb.
    const select = `SELECT ${stored.map((name, i) => `${quoteName(name)} AS c${i}`).join(', ')} FROM ${quoteName(table)}`
    let chunk = ''
    for await (const row of this.db.iterate(select)) {
      chunk += `INSERT INTO ${into} VALUES(${stored.map((_, i) => sqlLiteral(row[`c${i}`])).join(',')});\n`
      if (chunk.length >= 65536) {
        this.write(chunk)
        chunk = ''
      }
    }
    this.write(chunk)
  }
}

/** The dot-commands: their arguments (min, max, usage) and what they do (`this` is the Shell). */
const COMMANDS = {
  databases: {
    min: 0, max: 0, usage: '',
    async run() {
      for (const name of await this.depot.databases()) this.write(`${name}\n`)
    },
  },
  dump: {
    min: 0, max: 0, usage: '',
    run() {
      return this.dump()
    },
  },
  help: {
    min: 0, max: 0, usage: '',
    run() {
      this.tell(HELP)
    },
  },
  import: {
    min: 2, max: 2, usage: 'FILE TABLE',
    run(file, table) {
      return this.import(file, table)
    },
  },
  mode: {
    min: 0, max: 1, usage: MODES.join('|'),
    run(mode) {
      if (mode === undefined) return this.tell(`${this.mode}\n`)
      if (!MODES.includes(mode)) throw usage(`unknown mode ${mode} (${MODES.join(', ')})`)
      this.mode = mode
    },
  },
  output: {
    min: 0, max: 1, usage: '[FILE]',
    run(file) {
      const fd = file === undefined ? null : fs.openSync(file, 'w')
      this.closeOutput()
      this.outputFd = fd
    },
  },
  quit: {
    min: 0, max: 0, usage: '',
    run() {
      this.quitting = true
    },
  },
  exit: {
    min: 0, max: 0, usage: '',
    run() {
      this.quitting = true
    },
  },
  read: {
    min: 1, max: 1, usage: 'FILE',
    run(file) {
      return this.read(file)
    },
  },
  schema: {
    min: 0, max: 1, usage: '[TABLE]',
    async run(table) {
      const filter = table === undefined ? '' : ' AND tbl_name = ? COLLATE NOCASE'
      const sql = `SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'${filter} ORDER BY rowid`
      const rows = (await this.db.query(sql, table === undefined ? [] : [table])).rows
      if (table !== undefined && rows.length === 0) throw usage(`no table or view named ${table}`)
      for (const [text] of rows) this.write(`${text};\n`)
    },
  },
  tables: {
    min: 0, max: 0, usage: '',
    async run() {
      const sql = "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
      for (const [name] of (await this.db.query(sql)).rows) this.write(`${name}\n`)
    },
  },
  timer: {
    min: 1, max: 1, usage: 'on|off',
    run(setting) {
      if (setting !== 'on' && setting !== 'off') throw usage('usage: .timer on|off')
      this.timer = setting === 'on'
    },
  },
}

module.exports = { Shell, historyFile, sqlLiteral, isBlankSql }
