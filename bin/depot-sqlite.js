#!/usr/bin/env node
'use strict'
// depot-sqlite [--depot DIR|URL] DATABASE [SQL]
//
// Runs SQL against one database of the embedded file store (default ./.depot), or of a PostgreSQL
// store when --depot is a postgres:// URL, and prints each result's rows as a table. Without SQL on the command line, reads the statements from stdin.
// Stops at the first error, which goes to stderr with its code; the exit status is then 1.

const { Depot } = require('../index.js')
const { splitStatements } = require('./split.js')
const { formatTable } = require('./table.js')

const USAGE = `usage: depot-sqlite [--depot DIR|URL] DATABASE [SQL]

Runs SQL (or the statements read from stdin) against DATABASE in the embedded
file store DIR (default ./.depot), or in the PostgreSQL store at URL, and
prints the rows of each query as a table.

  --depot DIR   directory of the store (created if missing)
  --depot URL   postgres://user:password@host:port/dbname[?sslmode=verify-full&sslrootcert=ca.pem]
  -h, --help    show this help`

/** Parses argv into { depot, database, sql } or throws a usage error. */
function parseArgs(argv) {
  const options = { depot: './.depot', database: undefined, sql: undefined }
  const positional = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') return { help: true }
    if (arg === '--depot') {
      if (i + 1 >= argv.length) throw usageError('--depot needs a directory or a postgres:// URL')
      options.depot = argv[++i]
    } else if (arg.startsWith('--depot=')) {
      options.depot = arg.slice('--depot='.length)
    } else if (arg === '--') {
      positional.push(...argv.slice(i + 1))
      break
    } else if (arg.startsWith('-') && arg !== '-') {
      throw usageError(`unknown option ${arg}`)
    } else {
      positional.push(arg)
    }
  }
  if (positional.length === 0) throw usageError('missing DATABASE')
  if (positional.length > 2) throw usageError('too many arguments (quote the SQL)')
  ;[options.database, options.sql] = positional
  return options
}

/** `--depot` as Depot.open options: a PostgreSQL URL, or a directory of the embedded store. */
function depotOptions(depot) {
  return /^postgres(ql)?:\/\//.test(depot) ? { url: depot } : { path: depot }
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

async function main(argv) {
  const options = parseArgs(argv)
  if (options.help) {
    console.log(USAGE)
    return 0
  }
  const sql = options.sql ?? (await readStdin())
  const depot = await Depot.open(depotOptions(options.depot))
  try {
    const db = await depot.openDatabase(options.database, { intMode: 'bigint' })
    try {
      for (const statement of splitStatements(sql)) {
        const result = await db.execute(statement)
        if (result.columns.length > 0) process.stdout.write(formatTable(result.columns, result.rows))
      }
    } finally {
      await db.close()
    }
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
    const code = error && error.code ? error.code : 'ERR_UNKNOWN'
    const message = error && error.message ? error.message : String(error)
    process.stderr.write(`error: ${code}: ${message}\n`)
    process.exitCode = code === 'ERR_USAGE' ? 2 : 1
  },
)
