#!/usr/bin/env node
'use strict'
// depot-sqlite [--depot DIR|URL] DATABASE [SQL]
// depot-sqlite [--depot DIR|URL] history|restore|fork|export|import ...
//
// Runs SQL against one database of the embedded file store (default ./.depot), or of a PostgreSQL
// store when --depot is a postgres:// URL, and prints each result's rows as a table (or as CSV or
// JSON with --csv or --json; bin/format.js). Without SQL on the command line, reads the statements
// from stdin; when stdin and stdout are both a terminal, opens the interactive shell instead
// (bin/shell.js).
// SQLite splits the statements (each is prepared from the previous one's tail). The first error
// stops the script and goes to stderr with its code; the exit status is then 1, and no table is
// printed (the statements before the error have run, each in its own transaction unless the SQL
// opened one).
//
// The subcommands reach a database's history (list, restore, fork) and move databases to and from
// plain SQLite files, through the Depot calls of the same names. A first argument that names a
// subcommand is one, unless it comes after `--`: `depot-sqlite -- history` is the database "history".

const { parseArgs: parseArgv } = require('node:util')
const { Depot } = require('../index.js')
const { formatTable, formatResult, formatError } = require('./format.js')
const { Shell } = require('./shell.js')

const USAGE = `usage: depot-sqlite [OPTIONS] DATABASE [SQL] [--json | --csv]
       depot-sqlite [OPTIONS] history DATABASE [--limit N]
       depot-sqlite [OPTIONS] restore DATABASE (BOOKMARK | --time ISO-8601)
       depot-sqlite [OPTIONS] fork SOURCE TARGET [--at BOOKMARK]
       depot-sqlite [OPTIONS] export DATABASE FILE [--at BOOKMARK] [--overwrite]
       depot-sqlite [OPTIONS] import FILE DATABASE [--replace]

Runs SQL (or the statements read from stdin) against DATABASE in the embedded
file store DIR (default ./.depot), or in the PostgreSQL store at URL, and
prints the rows of each query as a table (--csv: as CSV with a header line;
--json: as one line holding a JSON array of objects).

Without SQL, on a terminal, opens an interactive shell: statements end with ;
and may span lines; .help lists its commands (.tables, .schema, .dump, .mode,
.import, .output, .read, .timer, .databases, .quit). The line history is kept
in $DEPOT_SQLITE_HISTORY (default ~/.depot_sqlite_history; empty: none).

  history   the commits of DATABASE, newest first (at most N, default 100)
  restore   makes DATABASE what it was at BOOKMARK, or at the newest commit at
            or before the time; prints the bookmark that undoes the restore
  fork      creates TARGET as SOURCE is now, or was at BOOKMARK
  export    writes DATABASE to FILE, a plain SQLite database file (an existing
            FILE is kept unless --overwrite)
  import    makes the SQLite database FILE the content of DATABASE (a database
            with data is kept unless --replace; restore undoes a replace)

A database named like a subcommand goes after --: depot-sqlite -- history

OPTIONS
  --depot DIR       directory of the store (created if missing)
  --depot URL       postgres://user:password@host:port/dbname[?sslmode=verify-full&sslrootcert=ca.pem]
  --history-ms MS   the history window your application opens the store with
                    (Depot.open({ historyMs })): the points the commands can
                    reach (default 3600000, as Depot.open; 0: the newest commit only)
  --csv, --json     print rows as CSV or JSON (the shell starts in that mode)
  -h, --help        show this help`

const COMMANDS = {
  history: { args: ['DATABASE'], options: ['limit'] },
  restore: { args: ['DATABASE', 'BOOKMARK?'], options: ['time'] },
  fork: { args: ['SOURCE', 'TARGET'], options: ['at'] },
  export: { args: ['DATABASE', 'FILE'], options: ['at', 'overwrite'] },
  import: { args: ['FILE', 'DATABASE'], options: ['replace'] },
}

const OPTIONS = {
  depot: { type: 'string', default: './.depot' },
  'history-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  limit: { type: 'string' },
  time: { type: 'string' },
  at: { type: 'string' },
  overwrite: { type: 'boolean' },
  replace: { type: 'boolean' },
  json: { type: 'boolean' },
  csv: { type: 'boolean' },
}

/**
 * Parses argv into { help } or { depot, historyMs, command, args, options }, where command is
 * null for SQL ({ database, sql, mode } in args), or throws a usage error.
 */
function parseArgs(argv) {
  let parsed
  try {
    parsed = parseArgv({ args: argv, allowPositionals: true, tokens: true, options: OPTIONS })
  } catch (error) {
    throw usageError(error.message)
  }
  const { values, positionals, tokens } = parsed
  if (values.help) return { help: true }
  const historyMs = values['history-ms'] === undefined ? undefined : integer(values['history-ms'], '--history-ms', 0)
  const first = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator')
  const command = first && first.kind === 'positional' && Object.hasOwn(COMMANDS, first.value) ? first.value : null
  const given = Object.keys(values).filter((name) => !['depot', 'history-ms', 'help'].includes(name))
  const allowed = command ? COMMANDS[command].options : ['json', 'csv']
  const stray = given.find((name) => !allowed.includes(name))
  if (stray) throw usageError(`--${stray} does not apply to ${command ? `the ${command} command` : 'SQL'}`)
  if (!command) {
    if (positionals.length === 0) throw usageError('missing DATABASE')
    if (positionals.length > 2) throw usageError('too many arguments (quote the SQL)')
    if (values.json && values.csv) throw usageError('--json and --csv exclude each other')
    const [database, sql] = positionals
    const mode = values.json ? 'json' : values.csv ? 'csv' : 'table'
    return { depot: values.depot, historyMs, command: null, args: { database, sql, mode } }
  }
  const names = COMMANDS[command].args
  const rest = positionals.slice(1)
  const required = names.filter((n) => !n.endsWith('?'))
  if (rest.length < required.length) throw usageError(`${command}: missing ${required[rest.length]}`)
  if (rest.length > names.length) throw usageError(`${command}: too many arguments`)
  const args = Object.fromEntries(names.map((n, i) => [n.replace('?', ''), rest[i]]))
  return { depot: values.depot, historyMs, command, args, options: commandOptions(command, args, values) }
}

/** The options of a subcommand, checked and converted. */
function commandOptions(command, args, values) {
  switch (command) {
    case 'history':
      return { limit: values.limit === undefined ? undefined : integer(values.limit, '--limit', 1) }
    case 'restore': {
      if ((args.BOOKMARK === undefined) === (values.time === undefined)) {
        throw usageError('restore: give either BOOKMARK or --time')
      }
      if (values.time === undefined) return {}
      const time = new Date(values.time)
      if (Number.isNaN(time.getTime())) throw usageError(`restore: --time ${values.time} is not an ISO-8601 time`)
      return { time }
    }
    default:
      return { at: values.at, overwrite: values.overwrite === true, replace: values.replace === true }
  }
}

/** A decimal integer of at least `min`, or a usage error. */
function integer(text, what, min) {
  const n = /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(n) || n < min) throw usageError(`${what} must be an integer of at least ${min}`)
  return n
}

/** `--depot` (and `--history-ms`) as Depot.open options: a PostgreSQL URL, or a directory of the embedded store. */
function depotOptions(depot, historyMs) {
  const options = /^postgres(ql)?:\/\//.test(depot) ? { url: depot } : { path: depot }
  return historyMs === undefined ? options : { ...options, historyMs }
}

function usageError(message) {
  const error = new Error(`${message}\n\n${USAGE}`)
  error.code = 'ERR_USAGE'
  return error
}

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk) => (text += chunk))
    process.stdin.on('end', () => resolve(text))
    process.stdin.on('error', reject)
  })
}

/** Runs SQL against a database and prints the rows of each query in `mode` (table, csv or json). */
async function runSql(depot, { database, sql, mode }) {
  const db = await depot.openDatabase(database, { intMode: 'bigint' })
  try {
    for (const result of await db.executeScript(sql)) {
      if (result.columns.length > 0) process.stdout.write(formatResult(mode, result.columns, result.rows))
    }
  } finally {
    await db.close()
  }
}

/** The interactive shell on the terminal, starting in `mode`. */
async function runShell(depot, { database, mode }) {
  const db = await depot.openDatabase(database, { intMode: 'bigint' })
  try {
    await new Shell({ depot, db, database, mode }).run()
  } finally {
    await db.close()
  }
}

/** The subcommands: each runs one Depot call and prints what it did. */
const RUN = {
  async history(depot, { DATABASE }, { limit }) {
    const entries = await depot.history(DATABASE, { limit })
    const rows = entries.map((e) => [e.bookmark, e.time.toISOString(), e.pages, e.bytes])
    process.stdout.write(formatTable(['bookmark', 'time', 'pages', 'bytes'], rows))
  },
  async restore(depot, { DATABASE, BOOKMARK }, { time }) {
    const bookmark = time ? await depot.bookmarkForTime(DATABASE, time) : BOOKMARK
    const undo = await depot.restore(DATABASE, bookmark)
    process.stdout.write(`restored ${DATABASE} to ${bookmark}\nundo bookmark: ${undo}\n`)
  },
  async fork(depot, { SOURCE, TARGET }, { at }) {
    await depot.fork(SOURCE, TARGET, { at })
    process.stdout.write(`forked ${SOURCE}${at ? ` at ${at}` : ''} as ${TARGET}\n`)
  },
  async export(depot, { DATABASE, FILE }, { at, overwrite }) {
    const bookmark = await depot.exportDatabase(DATABASE, FILE, { at, overwrite })
    process.stdout.write(`exported ${DATABASE} at ${bookmark} to ${FILE}\n`)
  },
  async import(depot, { FILE, DATABASE }, { replace }) {
    const undo = await depot.importDatabase(FILE, DATABASE, { replace })
    process.stdout.write(`imported ${FILE} as ${DATABASE}\n${replace ? `undo bookmark: ${undo}\n` : ''}`)
  },
}

async function main(argv) {
  const options = parseArgs(argv)
  if (options.help) {
    console.log(USAGE)
    return 0
  }
  const interactive = options.command === null && options.args.sql === undefined && process.stdin.isTTY && process.stdout.isTTY
  const sql = options.command === null && !interactive ? (options.args.sql ?? (await readStdin())) : undefined
  const depot = await Depot.open(depotOptions(options.depot, options.historyMs))
  try {
    if (interactive) await runShell(depot, options.args)
    else if (options.command === null) await runSql(depot, { ...options.args, sql })
    else await RUN[options.command](depot, options.args, options.options)
  } finally {
    await depot.close()
  }
  return 0
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status
  },
  (error) => {
    process.stderr.write(formatError(error))
    process.exitCode = error && error.code === 'ERR_USAGE' ? 2 : 1
  },
)
