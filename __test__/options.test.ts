// Depot-level options that every backend shares.
import { describe, expect, it } from 'vitest'

import { codeOf, Depot } from './backends'

describe('openDatabase options', () => {
  it('maxCommitBytes: a larger transaction rejects ERR_TOO_LARGE and changes nothing', async () => {
    const depot = await Depot.open({ memory: true })
    const db = await depot.openDatabase('limit', { maxCommitBytes: 256 * 1024 })
    await db.exec('CREATE TABLE t(v BLOB); INSERT INTO t VALUES (1)')
    const big = db.exec('INSERT INTO t SELECT zeroblob(4096) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c)')
    expect(await codeOf(big)).toBe('ERR_TOO_LARGE')
    expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 })
    await db.run('INSERT INTO t VALUES (2)')
    await depot.close()
  })
})

describe('Depot.open options', () => {
  it('accepts a store call deadline and refuses a bad one', async () => {
    const depot = await Depot.open({ memory: true, storeTimeoutMs: 5_000 })
    const db = await depot.openDatabase('deadline')
    await db.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)')
    expect(await db.get('SELECT a FROM t')).toEqual({ a: 1 })
    await depot.close()
    expect(await codeOf(Depot.open({ memory: true, storeTimeoutMs: -1 }))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(Depot.open({ memory: true, storeTimeoutMs: 'soon' as never }))).toBe('ERR_INVALID_ARGUMENT')
  })
})
