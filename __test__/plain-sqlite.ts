// A plain SQLite file opened without depot-sqlite: to check what export writes and to make what
// import reads. node:sqlite where Node has it (22.5 and later: the suites also run under Node 22
// and 24, where a native devDependency built for the installing Node would not load), else
// better-sqlite3 (Node 20). Integers come back as bigints, BLOBs as Buffers, rows as arrays.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export interface PlainSqlite {
  rows(sql: string): unknown[][]
  exec(sql: string): void
  run(sql: string, ...params: unknown[]): void
  /** `PRAGMA integrity_check`'s first line ('ok' for a sound file). */
  integrityCheck(): string
  close(): void
}

type Row = Record<string, unknown>
interface NodeStatement {
  all(...params: unknown[]): Row[]
  run(...params: unknown[]): unknown
  setReadBigInts(on: boolean): void
}
interface NodeDatabase {
  prepare(sql: string): NodeStatement
  exec(sql: string): void
  close(): void
}

function nodeSqlite(): (new (file: string, options: object) => NodeDatabase) | undefined {
  try {
    return require('node:sqlite').DatabaseSync
  } catch {
    return undefined
  }
}

const asBuffer = (v: unknown) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v) : v)

export function openPlain(file: string, options: { readonly?: boolean } = {}): PlainSqlite {
  const DatabaseSync = nodeSqlite()
  if (DatabaseSync) {
    const db = new DatabaseSync(file, { readOnly: options.readonly ?? false })
    const rows = (sql: string) => {
      const statement = db.prepare(sql)
      statement.setReadBigInts(true)
      return statement.all().map((row) => Object.values(row).map(asBuffer))
    }
    return {
      rows,
      exec: (sql) => db.exec(sql),
      run: (sql, ...params) => void db.prepare(sql).run(...params),
      integrityCheck: () => String(rows('PRAGMA integrity_check')[0][0]),
      close: () => db.close(),
    }
  }
  const Better = require('better-sqlite3')
  const db = new Better(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false })
  return {
    rows: (sql) => db.prepare(sql).raw().safeIntegers().all(),
    exec: (sql) => db.exec(sql),
    run: (sql, ...params) => void db.prepare(sql).run(...params),
    integrityCheck: () => db.pragma('integrity_check', { simple: true }),
    close: () => db.close(),
  }
}
