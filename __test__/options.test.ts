// Depot-level options that every backend shares.
import { describe, expect, it } from 'vitest'

import { codeOf, Depot } from './backends'

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
