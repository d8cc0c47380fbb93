#!/usr/bin/env node
'use strict'
// depot-sqlite [--depot DIR|URL] DATABASE [SQL]
//
// Runs SQL against one database of the embedded file store (default ./.depot), or of a PostgreSQL
// store when --depot is a postgres:// URL, and prints each result's rows as a table. Without SQL on the command line, reads the statements from stdin.
// SQLite splits the statements (each is prepared from the previous one's tail). The first error
// stops the script and goes to stderr with its code; the exit status is then 1, and no table is
// printed (the statements before the error have run, each in its own transaction unless the SQL
// opened one).

const { parseArgs: parseArgv } = require('node:util')
const { Depot } = require('../index.js')
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
  let parsed
  try {
    parsed = parseArgv({
      args: argv,
      allowPositionals: true,
      options: { depot: { type: 'string', default: './.depot' }, help: { type: 'boolean', short: 'h' } },
    })
  } catch (error) {
    throw usageError(error.message)
  }
  const { values, positionals } = parsed
  if (values.help) return { help: true }
  if (positionals.length === 0) throw usageError('missing DATABASE')
  if (positionals.length > 2) throw usageError('too many arguments (quote the SQL)')
  const [database, sql] = positionals
  return { depot: values.depot, database, sql }
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
      for (const result of await db.executeScript(sql)) {
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
