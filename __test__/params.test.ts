// Parameter styles: positional `?` and `?NNN`, named `:name`, `@name`, `$name` with keys given
// with or without the prefix, and the rejections for missing, surplus and unbindable values.
import { expect, it } from 'vitest'

import { codeOf, errorOf, forEachBackend, useDepot } from './backends'

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('binds positional ? parameters in order', async () => {
    const db = await ctx.depot.openDatabase('p')
    expect((await db.query('SELECT ?, ?, ?', [1, 'b', null])).rows).toEqual([[1, 'b', null]])
    await db.close()
  })

  it('binds ?NNN parameters by number, reusing one value twice', async () => {
    const db = await ctx.depot.openDatabase('p')
    expect((await db.query('SELECT ?2, ?1, ?2', ['one', 'two'])).rows).toEqual([['two', 'one', 'two']])
    await db.close()
  })

  it('binds :name, @name and $name from keys without the prefix', async () => {
    const db = await ctx.depot.openDatabase('p')
    const result = await db.query('SELECT :a, @b, $c', { a: 1, b: 'two', c: Buffer.from('3') })
    expect(result.rows).toEqual([[1, 'two', Buffer.from('3')]])
    await db.close()
  })

  it('binds named parameters from keys that carry the prefix', async () => {
    const db = await ctx.depot.openDatabase('p')
    const result = await db.query('SELECT :a, @b, $c', { ':a': 1, '@b': 2, $c: 3 })
    expect(result.rows).toEqual([[1, 2, 3]])
    await db.close()
  })

  it('uses named parameters in a real statement (the README example)', async () => {
    const db = await ctx.depot.openDatabase('p')
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)')
    const inserted = await db.execute('INSERT INTO t(v) VALUES (?)', [Buffer.from('x')])
    expect(inserted.lastInsertRowId).toBe(1)
    const q = await db.query('SELECT * FROM t WHERE id = :id', { id: 1 })
    expect(q).toEqual({ columns: ['id', 'v'], rows: [[1, Buffer.from('x')]] })
    const w = await db.run('DELETE FROM t WHERE id = ?', [1])
    expect(w.changes).toBe(1)
    await db.close()
  })

  it('rejects a missing named parameter with ERR_INVALID_ARGUMENT naming it', async () => {
    const db = await ctx.depot.openDatabase('p')
    const error = await errorOf(db.query('SELECT :present, :absent', { present: 1 }))
    expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    expect(error.message).toMatch(/absent/)
    await db.close()
  })

  it('rejects too many positional parameters with ERR_INVALID_ARGUMENT', async () => {
    const db = await ctx.depot.openDatabase('p')
    expect(await codeOf(db.query('SELECT ?', [1, 2]))).toBe('ERR_INVALID_ARGUMENT')
    await db.close()
  })

  it('rejects values that cannot be bound, naming the parameter', async () => {
    const db = await ctx.depot.openDatabase('p')
    const unbindable: unknown[] = [{}, [1], Symbol('s'), () => 1, new Date(0), new Float64Array(2), new Map()]
    for (const value of unbindable) {
      const positional = await errorOf(db.query('SELECT ?, ?', [1, value as never]))
      expect(positional.code).toBe('ERR_INVALID_ARGUMENT')
      expect(positional.message).toMatch(/parameter 2/)
      const named = await errorOf(db.query('SELECT :thing', { thing: value as never }))
      expect(named.code).toBe('ERR_INVALID_ARGUMENT')
      expect(named.message).toMatch(/thing/)
    }
    await db.close()
  })

  it('rejects params that are neither an array nor an object, and non-string SQL', async () => {
    const db = await ctx.depot.openDatabase('p')
    expect(await codeOf(db.query('SELECT ?', 5 as never))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(db.query('SELECT ?', 'x' as never))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(db.execute(42 as never))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(db.exec(undefined as never))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(db.executeBatch('SELECT 1' as never))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(db.executeBatch([{ params: [] }] as never))).toBe('ERR_INVALID_ARGUMENT')
    await db.close()
  })

  it('binds per-statement parameters in executeBatch', async () => {
    const db = await ctx.depot.openDatabase('p')
    const results = await db.executeBatch([
      { sql: 'CREATE TABLE t(a, b)' },
      { sql: 'INSERT INTO t VALUES (?, ?)', params: [1, 'x'] },
      { sql: 'INSERT INTO t VALUES (:a, :b)', params: { a: 2, b: 'y' } },
      { sql: 'SELECT a, b FROM t ORDER BY a' },
    ])
    expect(results).toHaveLength(4)
    expect(results[1].changes).toBe(1)
    expect(results[3].rows).toEqual([
      [1, 'x'],
      [2, 'y'],
    ])
    await db.close()
  })
})
