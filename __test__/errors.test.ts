// Errors are `Error` objects with a stable `code`: SQLite's extended result code names for SQL
// errors, ERR_* for the rest. A failed batch leaves nothing behind.
import { expect, it } from 'vitest'

import { codeOf, errorOf, forEachBackend, useDepot } from './backends'

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  it('a unique violation rejects with SQLITE_CONSTRAINT_UNIQUE', async () => {
    const db = await ctx.depot.openDatabase('e')
    await db.exec('CREATE TABLE t(k TEXT UNIQUE)')
    await db.run('INSERT INTO t VALUES (?)', ['a'])
    const error = await errorOf(db.run('INSERT INTO t VALUES (?)', ['a']))
    expect(error).toBeInstanceOf(Error)
    expect(error.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
    expect(error.message).toMatch(/UNIQUE/i)
    await db.close()
  })

  it('other constraints carry their own extended codes', async () => {
    const db = await ctx.depot.openDatabase('e')
    await db.exec('CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER NOT NULL REFERENCES p(id), n CHECK (n > 0))')
    expect(await codeOf(db.run('INSERT INTO c(p, n) VALUES (NULL, 1)'))).toBe('SQLITE_CONSTRAINT_NOTNULL')
    expect(await codeOf(db.run('INSERT INTO c(p, n) VALUES (99, 1)'))).toBe('SQLITE_CONSTRAINT_FOREIGNKEY')
    await db.run('INSERT INTO p VALUES (1)')
    expect(await codeOf(db.run('INSERT INTO c(p, n) VALUES (1, 0)'))).toBe('SQLITE_CONSTRAINT_CHECK')
    expect(await codeOf(db.run('INSERT INTO p VALUES (1)'))).toBe('SQLITE_CONSTRAINT_PRIMARYKEY')
    await db.close()
  })

  it('syntax errors and unknown tables reject with SQLITE_ERROR', async () => {
    const db = await ctx.depot.openDatabase('e')
    const syntax = await errorOf(db.execute('SELEC 1'))
    expect(syntax.code).toBe('SQLITE_ERROR')
    expect(syntax.message).toMatch(/syntax/i)
    const missing = await errorOf(db.query('SELECT * FROM nowhere'))
    expect(missing.code).toBe('SQLITE_ERROR')
    expect(missing.message).toMatch(/nowhere/)
    // Errors do not poison the handle.
    expect((await db.query('SELECT 1')).rows).toEqual([[1]])
    await db.close()
  })

  it('a failing statement in executeBatch rolls back the whole batch', async () => {
    const db = await ctx.depot.openDatabase('e')
    await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY)')
    await db.run('INSERT INTO t VALUES (1)')
    const code = await codeOf(
      db.executeBatch([
        { sql: 'INSERT INTO t VALUES (2)' },
        { sql: 'INSERT INTO t VALUES (3)' },
        { sql: 'INSERT INTO t VALUES (1)' },
      ]),
    )
    expect(code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY')
    expect((await db.query('SELECT k FROM t ORDER BY k')).rows).toEqual([[1]])
    await db.close()
  })

  it('a failing statement in exec keeps the statements before it (no implicit transaction)', async () => {
    const db = await ctx.depot.openDatabase('e')
    expect(await codeOf(db.exec('CREATE TABLE a(x); CREATE TABLE b(; CREATE TABLE c(x)'))).toBe('SQLITE_ERROR')
    const { rows } = await db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    expect(rows).toEqual([['a']])
    await db.close()
  })

  it('invalid openDatabase and Depot.open options reject with ERR_INVALID_ARGUMENT', async () => {
    const { Depot } = await import('./backends')
    expect(await codeOf(ctx.depot.openDatabase(7 as never))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(ctx.depot.openDatabase('x', { intMode: 'float' as never }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(ctx.depot.openDatabase('x', { generation: -1 }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(ctx.depot.openDatabase('x', { generation: 1.5 }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ memory: true, path: '/tmp/x' }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ path: 3 as never }))).toBe('ERR_INVALID_ARGUMENT')
  })

  it('NativeDatabaseHandle cannot be constructed from JavaScript', async () => {
    const { NativeDatabaseHandle } = await import('./backends')
    expect(() => new (NativeDatabaseHandle as unknown as new () => unknown)()).toThrow(/cannot be constructed directly/)
  })
})
