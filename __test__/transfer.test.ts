// depot.exportDatabase / depot.importDatabase: a database to and from a plain SQLite file, on every
// backend. The exported file is read back by plain SQLite on the local disk (./plain-sqlite).
// Tests that reach an older point (export `at`, undoing an import) open the depot with a history
// window; the others ask nothing of the store beyond its newest commit.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'

import { type Backend, codeOf, type Db, Depot, dropSchema, errorOf, forEachBackend, freshSchema, pgUrl, useDepot } from './backends'
import { openPlain } from './plain-sqlite'

const HOUR = 3_600_000

/** A depot of `backend` at a fresh location that keeps an hour of history; `close()` removes it. */
async function openWithHistory(backend: Backend): Promise<{ depot: Depot; close(): Promise<void> }> {
  if (backend.name === 'memory') {
    const depot = await Depot.open({ memory: true, historyMs: HOUR })
    return { depot, close: () => depot.close() }
  }
  if (backend.name === 'file') {
    const dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-transfer-'))
    const depot = await Depot.open({ path: join(dir, 'depot'), historyMs: HOUR })
    return { depot, close: async () => (await depot.close(), rmSync(dir, { recursive: true, force: true })) }
  }
  const [url, schema] = [pgUrl(), freshSchema()]
  const depot = await Depot.open({ url, schema, poolSize: 2, historyMs: HOUR })
  return { depot, close: async () => (await depot.close(), await dropSchema(url, schema)) }
}

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-files-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const ROWS = 'SELECT id, i, r, s, b, n FROM t ORDER BY id'

/** Every kind of value, and enough rows (about 700 pages) that an export takes several batches. */
async function fill(db: Db) {
  await db.exec(`
    CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n);
    CREATE INDEX t_s ON t(s);
    WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < 2000)
    INSERT INTO t SELECT x, x * 1000003, x / 7.0, 'row ' || x || ' ' || hex(randomblob(200)), randomblob(x % 900), NULL FROM k;
    INSERT INTO t VALUES (9007199254740993, -9223372036854775808, -0.5, '', x'', NULL)`)
}

/** Rows with blobs as hex strings: comparing thousands of Buffers element by element is slow. */
const comparable = (rows: unknown[][]) =>
  rows.map((row) => row.map((v) => (Buffer.isBuffer(v) ? `X'${v.toString('hex')}'` : v)))

/** The rows through the depot (opened with intMode 'bigint', so that large integers compare exactly). */
async function depotRows(db: Db) {
  return comparable((await db.query(ROWS)).rows)
}

/** The rows of a plain SQLite file, read without depot-sqlite, in the same form. */
function fileRows(file: string, sql = ROWS) {
  const plain = openPlain(file, { readonly: true })
  try {
    expect(plain.integrityCheck()).toBe('ok')
    return comparable(plain.rows(sql))
  } finally {
    plain.close()
  }
}

/** A plain SQLite file made without depot-sqlite, holding `rows` in t(id, v). */
function plainFile(name: string, rows: [number, string][]) {
  const file = join(dir, name)
  const plain = openPlain(file)
  plain.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
  for (const row of rows) plain.run('INSERT INTO t VALUES (?, ?)', ...row)
  plain.close()
  return file
}

const vRows = async (db: Db) => (await db.query('SELECT id, v FROM t ORDER BY id')).rows

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('export writes a file that plain SQLite reads with the same rows, and importing it round-trips them', async () => {
    const db = await ctx.depot.openDatabase('source', { intMode: 'bigint' })
    await fill(db)
    const rows = await depotRows(db)
    const file = join(dir, 'source.db')
    const bookmark = await ctx.depot.exportDatabase('source', file)
    expect(bookmark).toBe(await db.bookmark())
    expect(fileRows(file)).toEqual(rows)
    expect(readFileSync(file).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0')

    expect(await ctx.depot.importDatabase(file, 'copy')).toBe('0000000000000000')
    const copy = await ctx.depot.openDatabase('copy', { intMode: 'bigint' })
    expect(await depotRows(copy)).toEqual(rows)
    expect((await copy.query('PRAGMA integrity_check')).rows).toEqual([['ok']])
    await copy.run('INSERT INTO t(id, s) VALUES (?, ?)', [-1, 'the copy takes writes'])
    expect((await depotRows(copy)).length).toBe(rows.length + 1)
    expect((await depotRows(db)).length).toBe(rows.length)
    expect(readdirSync(dir)).toEqual(['source.db'])
  })

  it('import refuses a database with a commit unless replace, which fences its writer', async () => {
    const file = plainFile('in.db', [[7, 'seven']])
    const db = await ctx.depot.openDatabase('live')
    await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')")
    const refused = await errorOf(ctx.depot.importDatabase(file, 'live'))
    expect(refused.code).toBe('ERR_INVALID_ARGUMENT')
    expect(refused.message).toMatch(/exists already/)
    // The refusal claimed nothing: the writer goes on.
    await db.run("INSERT INTO t VALUES (2, 'two')")

    await ctx.depot.importDatabase(file, 'live', { replace: true })
    expect(await codeOf(db.run("INSERT INTO t VALUES (3, 'three')"))).toBe('ERR_FENCED')
    const again = await ctx.depot.openDatabase('live')
    expect(await vRows(again)).toEqual([[7, 'seven']])
  })

  it('import rejects a file that is not a SQLite database, or none, with ERR_INVALID_ARGUMENT and creates nothing', async () => {
    const junk = join(dir, 'junk.db')
    writeFileSync(junk, Buffer.alloc(8192, 'x'))
    const error = await errorOf(ctx.depot.importDatabase(junk, 'j'))
    expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    expect(error.message).toContain('is not a SQLite database')
    expect(await codeOf(ctx.depot.importDatabase(join(dir, 'missing.db'), 'j'))).toBe('ERR_INVALID_ARGUMENT')
    expect(existsSync(join(dir, 'missing.db'))).toBe(false)
    expect(await codeOf(ctx.depot.importDatabase(junk, 'j', { replace: 'yes' as never }))).toBe('ERR_INVALID_ARGUMENT')
    // Nothing was created: exporting it finds no commit.
    expect(await codeOf(ctx.depot.exportDatabase('j', join(dir, 'j.db')))).toBe('ERR_INVALID_ARGUMENT')
  })

  it('export refuses an existing file unless overwrite, and a database without a commit', async () => {
    const db = await ctx.depot.openDatabase('x')
    await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')")
    const file = join(dir, 'x.db')
    writeFileSync(file, 'keep me')
    expect(await codeOf(ctx.depot.exportDatabase('x', file))).toBe('ERR_INVALID_ARGUMENT')
    expect(readFileSync(file, 'utf8')).toBe('keep me')
    await ctx.depot.exportDatabase('x', file, { overwrite: true })
    const plain = openPlain(file, { readonly: true })
    expect(plain.rows('SELECT id, v FROM t')).toEqual([[1n, 'one']])
    plain.close()

    await (await ctx.depot.openDatabase('empty')).close()
    expect(await codeOf(ctx.depot.exportDatabase('empty', join(dir, 'empty.db')))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(ctx.depot.exportDatabase('x', join(dir, 'bad.db'), { at: 'not a bookmark' }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(ctx.depot.exportDatabase('x', ''))).toBe('ERR_INVALID_ARGUMENT')
    expect(readdirSync(dir)).toEqual(['x.db'])
  })

  it('with a history window: export at an older bookmark holds that content, and a restore undoes an import', async () => {
    const { depot, close } = await openWithHistory(backend)
    try {
      const db = await depot.openDatabase('h')
      await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'old')")
      const old = await db.bookmark()
      await db.exec("UPDATE t SET v = 'new'; INSERT INTO t VALUES (2, 'later')")
      expect(await depot.exportDatabase('h', join(dir, 'old.db'), { at: old })).toBe(old)
      expect(fileRows(join(dir, 'old.db'), 'SELECT id, v FROM t')).toEqual([[1n, 'old']])
      await depot.exportDatabase('h', join(dir, 'now.db'))
      expect(fileRows(join(dir, 'now.db'), 'SELECT id, v FROM t ORDER BY id')).toEqual([[1n, 'new'], [2n, 'later']])

      const undo = await depot.importDatabase(join(dir, 'old.db'), 'h', { replace: true })
      expect(undo).toBe(await db.bookmark())
      await db.close()
      const replaced = await depot.openDatabase('h')
      expect(await vRows(replaced)).toEqual([[1, 'old']])
      await replaced.close()
      await depot.restore('h', undo)
      const restored = await depot.openDatabase('h')
      expect(await vRows(restored)).toEqual([[1, 'new'], [2, 'later']])
      await restored.close()
    } finally {
      await close()
    }
  })
})
