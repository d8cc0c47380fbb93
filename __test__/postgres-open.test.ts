// `Depot.open({ url })`: the PostgreSQL store's options, and credentials kept out of every message.
import { describe, expect, it } from 'vitest'

import { codeOf, Depot, dropSchema, errorOf, freshSchema, pgUrl } from './backends'

describe('postgres: Depot.open({ url })', () => {
  it('opens off the JS thread, and location names the server without credentials', async () => {
    const url = pgUrl()
    const schema = freshSchema()
    const depot = await Depot.open({ url, schema })
    try {
      const { username, password, hostname, port, pathname } = new URL(url)
      expect(depot.location).toBe(`postgres://${hostname}:${port}${pathname}`)
      expect(depot.location).not.toContain(password)
      expect(depot.location).not.toContain(`${username}:${password}`)
      const db = await depot.openDatabase('x', { generation: 1 })
      await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (42)')
      expect((await db.query('SELECT v FROM t')).rows).toEqual([[42]])
      await db.close()
    } finally {
      await depot.close()
      await dropSchema(url, schema)
    }
  })

  it('url excludes path and memory; bad urls and options reject with ERR_INVALID_ARGUMENT', async () => {
    const url = pgUrl()
    expect(await codeOf(Depot.open({ url, memory: true }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url, path: '/tmp/x' }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url: 42 as never }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url: 'mysql://u:secret@h/db' }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url: 'postgres://u:secret@h:notaport/db' }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url, schema: 'Bad-Schema!' }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url, poolSize: 0 }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ url, retryMs: -1 }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ memory: true, schema: 'x' }))).toBe('ERR_INVALID_ARGUMENT')
    const bad = await errorOf(Depot.open({ url: 'postgres://u:hunter2secret@h:notaport/db' }))
    expect(bad.message).not.toContain('hunter2secret')
  })

  it('a wrong password or an unreachable server rejects with ERR_STORE_UNAVAILABLE, never showing the password', async () => {
    const url = new URL(pgUrl())
    url.password = 'wrong-hunter2'
    const wrong = await errorOf(Depot.open({ url: url.href, schema: freshSchema(), retryMs: 500 }))
    expect(wrong.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(wrong.message).not.toContain('wrong-hunter2')
    expect(wrong.message).toMatch(/postgres:\/\/127\.0\.0\.1/)

    const started = Date.now()
    const nobody = await errorOf(
      Depot.open({ url: 'postgres://u:hunter2@127.0.0.1:1/db', schema: freshSchema(), retryMs: 500 }),
    )
    expect(nobody.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(nobody.message).not.toContain('hunter2')
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})
