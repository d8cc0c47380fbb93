// Value round trips: what goes in comes back out, exactly, with the documented JavaScript types.
import { expect, it } from 'vitest'

import { codeOf, errorOf, forEachBackend, useDepot } from './backends'

const MAX_SAFE = Number.MAX_SAFE_INTEGER // 2^53 - 1
const I64_MAX = 9223372036854775807n
const I64_MIN = -9223372036854775808n

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  async function roundTrip(value: unknown, intMode?: 'number' | 'bigint' | 'string') {
    const db = await ctx.depot.openDatabase('values', intMode ? { intMode } : undefined)
    try {
      await db.exec('CREATE TABLE IF NOT EXISTS v(x)')
      await db.run('DELETE FROM v')
      await db.run('INSERT INTO v(x) VALUES (?)', [value as never])
      const { rows } = await db.query('SELECT x, typeof(x) FROM v')
      expect(rows).toHaveLength(1)
      return { value: rows[0][0], type: rows[0][1] }
    } finally {
      await db.close()
    }
  }

  it('text keeps NUL characters and unicode', async () => {
    for (const text of ['a\u0000b', '\u0000', 'héllo wörld', '日本語', '😀 emoji \u{1F680}', 'x'.repeat(100_000)]) {
      expect(await roundTrip(text)).toEqual({ value: text, type: 'text' })
    }
  })

  it('an empty blob stays a blob and an empty string stays text', async () => {
    const blob = await roundTrip(Buffer.alloc(0))
    expect(blob.type).toBe('blob')
    expect(Buffer.isBuffer(blob.value)).toBe(true)
    expect((blob.value as Buffer).length).toBe(0)
    expect(await roundTrip('')).toEqual({ value: '', type: 'text' })
  })

  it('blobs come back as Buffer, from Buffer and Uint8Array alike', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 0, 128])
    const fromBuffer = await roundTrip(bytes)
    expect(Buffer.isBuffer(fromBuffer.value)).toBe(true)
    expect(Buffer.compare(fromBuffer.value as Buffer, bytes)).toBe(0)
    const fromView = await roundTrip(new Uint8Array([9, 8, 7]))
    expect(fromView.type).toBe('blob')
    expect([...(fromView.value as Buffer)]).toEqual([9, 8, 7])
    const big = Buffer.alloc(1 << 20, 7)
    expect(Buffer.compare((await roundTrip(big)).value as Buffer, big)).toBe(0)
  })

  it('integers, reals, booleans and null keep their SQLite types', async () => {
    expect(await roundTrip(42)).toEqual({ value: 42, type: 'integer' })
    expect(await roundTrip(-7)).toEqual({ value: -7, type: 'integer' })
    expect(await roundTrip(1.5)).toEqual({ value: 1.5, type: 'real' })
    expect(await roundTrip(true)).toEqual({ value: 1, type: 'integer' })
    expect(await roundTrip(false)).toEqual({ value: 0, type: 'integer' })
    expect(await roundTrip(null)).toEqual({ value: null, type: 'null' })
    expect(await roundTrip(undefined)).toEqual({ value: null, type: 'null' })
  })

  it('integers up to 2^53 - 1 come back as exact numbers', async () => {
    expect(await roundTrip(MAX_SAFE)).toEqual({ value: MAX_SAFE, type: 'integer' })
    expect(await roundTrip(-MAX_SAFE)).toEqual({ value: -MAX_SAFE, type: 'integer' })
  })

  it("an integer beyond 2^53 - 1 rejects with ERR_INTEGER_OVERFLOW under intMode 'number' instead of rounding", async () => {
    const db = await ctx.depot.openDatabase('overflow')
    await db.exec('CREATE TABLE v(x INTEGER)')
    await db.run('INSERT INTO v VALUES (?)', [BigInt(MAX_SAFE) + 1n])
    expect(await codeOf(db.query('SELECT x FROM v'))).toBe('ERR_INTEGER_OVERFLOW')
    expect(await codeOf(db.query('SELECT -x FROM v'))).toBe('ERR_INTEGER_OVERFLOW')
    // The database is still usable after the rejection.
    expect((await db.query('SELECT x - 1 FROM v')).rows).toEqual([[MAX_SAFE]])
    await db.close()
  })

  it("bigint parameters round-trip exactly under intMode 'bigint' at the i64 limits", async () => {
    for (const n of [I64_MAX, I64_MIN, 0n, -1n, BigInt(MAX_SAFE) + 1n]) {
      expect(await roundTrip(n, 'bigint')).toEqual({ value: n, type: 'integer' })
    }
    // Every INTEGER is a bigint in this mode, small ones included.
    expect(await roundTrip(5, 'bigint')).toEqual({ value: 5n, type: 'integer' })
  })

  it("intMode 'string' returns every integer as its decimal text", async () => {
    expect(await roundTrip(I64_MIN, 'string')).toEqual({ value: '-9223372036854775808', type: 'integer' })
    expect(await roundTrip(12, 'string')).toEqual({ value: '12', type: 'integer' })
    expect(await roundTrip(2.5, 'string')).toEqual({ value: 2.5, type: 'real' })
  })

  it('a bigint outside the 64-bit range is rejected, naming the parameter', async () => {
    const db = await ctx.depot.openDatabase('range')
    const error = await errorOf(db.execute('SELECT ?, ?', [1, I64_MAX + 1n]))
    expect(error.code).toBe('ERR_INTEGER_OVERFLOW')
    expect(error.message).toMatch(/parameter 2/)
    expect(await codeOf(db.execute('SELECT ?', [I64_MIN - 1n]))).toBe('ERR_INTEGER_OVERFLOW')
    await db.close()
  })

  it('lastInsertRowId follows intMode and is null when nothing was inserted', async () => {
    const db = await ctx.depot.openDatabase('rowid', { intMode: 'bigint' })
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)')
    const inserted = await db.execute('INSERT INTO t(id, v) VALUES (?, ?)', [I64_MAX, 'x'])
    expect(inserted.lastInsertRowId).toBe(I64_MAX)
    expect(inserted.changes).toBe(1)
    const selected = await db.execute('SELECT v FROM t')
    expect(selected.lastInsertRowId).toBeNull()
    expect(selected.changes).toBe(0)
    await db.close()
  })

  it('rows are arrays in column order', async () => {
    const db = await ctx.depot.openDatabase('shape')
    const result = await db.execute("SELECT 1 AS a, 'two' AS b, NULL AS c, 4.5 AS d, x'00ff' AS e")
    expect(result.columns).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(result.rows).toEqual([[1, 'two', null, 4.5, Buffer.from([0, 255])]])
    expect(Array.isArray(result.rows[0])).toBe(true)
    await db.close()
  })
})

// Results cross packed (numbers in one array, a tag per value, other values in another); small and
// large results take different paths on the native side and must read back the same.
forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('results of every size and type read back exactly, in order, each with its own columns array', async () => {
    for (const intMode of ['number', 'bigint', 'string'] as const) {
      const db = await ctx.depot.openDatabase(`packed-${intMode}`, { intMode })
      await db.exec('CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n)')
      const made = Array.from({ length: 300 }, (_, i) => [i - 150, i / 7, `s${i}é`, Buffer.from([i & 255, 7]), i % 3 === 0 ? null : i])
      const inserted = await db.executeBatch(made.map((params) => ({ sql: 'INSERT INTO t VALUES (?, ?, ?, ?, ?)', params })))
      const int = (v: number | null) => (v === null ? null : intMode === 'number' ? v : intMode === 'bigint' ? BigInt(v) : String(v))
      const expected = made.map(([i, r, s, b, n]) => [int(i as number), r, s, b, int(n as number | null)])
      // A large answer: 300 results sharing one (empty) column list.
      expect(inserted).toEqual(made.map((_, i) => ({ columns: [], rows: [], changes: 1, lastInsertRowId: int(i + 1) })))
      for (const limit of [0, 1, 2, 10, 300]) {
        const { columns, rows } = await db.query('SELECT i, r, s, b, n FROM t ORDER BY rowid LIMIT ?', [limit])
        expect(columns).toEqual(['i', 'r', 's', 'b', 'n'])
        expect(rows).toEqual(expected.slice(0, limit))
      }
      const results = await db.executeBatch([
        { sql: 'SELECT i, s FROM t WHERE rowid = 1' },
        { sql: 'INSERT INTO t(i) VALUES (1)' },
        { sql: 'SELECT i, s FROM t WHERE rowid = 2' },
        { sql: 'SELECT count(*) AS c FROM t' },
      ])
      expect(results.map((r) => r.rows)).toEqual([[[int(-150), 's0é']], [], [[int(-149), 's1é']], [[int(301)]]])
      expect(results.map((r) => r.changes)).toEqual([0, 1, 0, 0])
      expect(results[1].lastInsertRowId).toEqual(int(301))
      expect(results.map((r) => r.columns)).toEqual([['i', 's'], [], ['i', 's'], ['c']])
      results[0].columns.push('mutated')
      expect(results[2].columns).toEqual(['i', 's'])
      const streamed = []
      for await (const row of db.iterate('SELECT i, s, n FROM t WHERE rowid <= 300 ORDER BY rowid', [], { chunkRows: 7 })) streamed.push(row)
      expect(streamed).toEqual(expected.map(([i, , s, , n]) => ({ i, s, n })))
      await db.close()
    }
  })
})

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('lastInsertRowId: every rowid of the 64-bit range comes back exactly, in every intMode', async () => {
    const rowids = [I64_MIN, I64_MIN + 1n, -1n, 0n, BigInt(MAX_SAFE), BigInt(MAX_SAFE) + 1n, I64_MAX]
    for (const intMode of ['number', 'bigint', 'string'] as const) {
      const db = await ctx.depot.openDatabase(`rowids-${intMode}`, { intMode })
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY)')
      for (const rowid of rowids) {
        const { lastInsertRowId, changes } = await db.run('INSERT INTO t(id) VALUES (?)', [rowid])
        expect(changes).toBe(1)
        const safe = rowid >= BigInt(-MAX_SAFE) && rowid <= BigInt(MAX_SAFE)
        const expected = intMode === 'string' ? rowid.toString() : intMode === 'number' && safe ? Number(rowid) : rowid
        expect(lastInsertRowId).toStrictEqual(expected)
      }
      // A statement that inserts nothing (here: deletes the i64::MIN row) answers null.
      expect((await db.run('DELETE FROM t WHERE id = ?', [I64_MIN])).lastInsertRowId).toBeNull()
      await db.close()
    }
  })
})
