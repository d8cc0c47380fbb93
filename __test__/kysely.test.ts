// depot-sqlite/kysely: Kysely's query builder, transactions, savepoints, streaming, introspection and
// migrations over a NativeDatabaseHandle.
import { createRequire } from 'node:module'

import { CompiledQuery, Kysely, Migrator, sql } from 'kysely'
import type { Generated, Migration, MigrationProvider } from 'kysely'
import { describe, expect, it } from 'vitest'

import { codeOf, errorOf, forEachBackend, useDepot } from './backends'
import type { Db } from './backends'

// Loaded by the package's own name, through its `exports` map, as a user would.
const require = createRequire(import.meta.url)
const { DepotDialect } = require('depot-sqlite/kysely') as typeof import('depot-sqlite/kysely')

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const FOREVER = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'

interface PersonTable {
  id: Generated<number>
  name: string
  age: number | null
}

interface PetTable {
  id: Generated<number>
  owner_id: number
  name: string
}

interface Schema {
  person: PersonTable
  pet: PetTable
}

const kyselyOn = <DB = Schema>(database: Db) => new Kysely<DB>({ dialect: new DepotDialect({ database }) })

async function createPeople(k: Kysely<Schema>) {
  await k.schema
    .createTable('person')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('age', 'integer')
    .execute()
}

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  describe('query builder', () => {
    it('inserts, selects, updates and deletes', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('crud'))
      await createPeople(k)

      const inserted = await k
        .insertInto('person')
        .values([
          { name: 'ann', age: 30 },
          { name: 'bob', age: null },
          { name: 'cy', age: 41 },
        ])
        .executeTakeFirstOrThrow()
      expect(inserted.insertId).toBe(3n)
      expect(inserted.numInsertedOrUpdatedRows).toBe(3n)

      expect(await k.selectFrom('person').selectAll().orderBy('id').execute()).toEqual([
        { id: 1, name: 'ann', age: 30 },
        { id: 2, name: 'bob', age: null },
        { id: 3, name: 'cy', age: 41 },
      ])
      expect(await k.selectFrom('person').select('name').where('age', '>', 35).execute()).toEqual([{ name: 'cy' }])
      expect(await k.selectFrom('person').select('id').where('name', '=', 'nobody').executeTakeFirst()).toBeUndefined()

      const updated = await k.updateTable('person').set({ age: 31 }).where('name', '=', 'ann').executeTakeFirstOrThrow()
      expect(updated.numUpdatedRows).toBe(1n)
      const updatedNone = await k.updateTable('person').set({ age: 1 }).where('name', '=', 'nobody').executeTakeFirstOrThrow()
      expect(updatedNone.numUpdatedRows).toBe(0n)

      const deleted = await k.deleteFrom('person').where('age', 'is', null).executeTakeFirstOrThrow()
      expect(deleted.numDeletedRows).toBe(1n)

      const returned = await k.insertInto('person').values({ name: 'dee', age: 5 }).returning(['id', 'name']).executeTakeFirstOrThrow()
      expect(returned).toEqual({ id: 4, name: 'dee' })
      const bumped = await k.updateTable('person').set((eb) => ({ age: eb('age', '+', 1) })).returning(['name', 'age']).execute()
      expect(bumped).toEqual([
        { name: 'ann', age: 32 },
        { name: 'cy', age: 42 },
        { name: 'dee', age: 6 },
      ])

      const count = await k.selectFrom('person').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
      expect(count.n).toBe(3)
      await k.destroy()
    })

    it('gives insertId and numAffectedRows as exact bigints under every intMode', async () => {
      interface Ids {
        t: { id: Generated<bigint>; v: string }
      }
      const beyondDoubles = 2n ** 53n + 1n // not a double: a lossy path would show
      for (const intMode of ['number', 'bigint', 'string'] as const) {
        const k = kyselyOn<Ids>(await ctx.depot.openDatabase(`ids-${intMode}`, { intMode }))
        await k.schema
          .createTable('t')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('v', 'text', (c) => c.unique())
          .execute()

        const one = await k.insertInto('t').values({ id: beyondDoubles, v: 'a' }).executeTakeFirstOrThrow()
        expect(one.insertId).toBe(beyondDoubles)
        expect(one.numInsertedOrUpdatedRows).toBe(1n)
        const next = await k.insertInto('t').values({ v: 'b' }).executeTakeFirstOrThrow()
        expect(next.insertId).toBe(beyondDoubles + 1n)

        const ignored = await k.insertInto('t').orIgnore().values({ v: 'a' }).executeTakeFirstOrThrow()
        expect(ignored.insertId).toBeUndefined()
        expect(ignored.numInsertedOrUpdatedRows).toBe(0n)

        const raw = await sql`INSERT INTO t(v) VALUES (${'c'}), (${'d'})`.execute(k)
        expect(raw.insertId).toBe(beyondDoubles + 3n)
        expect(raw.numAffectedRows).toBe(2n)
        expect(raw.rows).toEqual([])

        const updated = await k.updateTable('t').set({ v: sql`v || '!'` }).where('v', 'in', ['c', 'd']).executeTakeFirstOrThrow()
        expect(updated.numUpdatedRows).toBe(2n)
        const rawUpdate = await sql`UPDATE t SET v = v || '?' WHERE v = 'b'`.execute(k)
        expect(rawUpdate.numAffectedRows).toBe(1n)
        expect(rawUpdate.insertId).toBeUndefined()

        const query = await sql<{ n: unknown }>`SELECT count(*) AS n FROM t`.execute(k)
        expect(query.numAffectedRows).toBeUndefined()
        expect(query.insertId).toBeUndefined()
        expect(String(query.rows[0].n)).toBe('4')
        await k.destroy()
      }
    })

    it('reads and writes bigints, blobs, nulls, booleans and dates', async () => {
      interface Values {
        v: {
          id: Generated<bigint>
          big: bigint
          data: Buffer | Uint8Array
          absent: string | null
          flag: boolean | bigint
          at: Date | string
          ratio: number
        }
      }
      const k = kyselyOn<Values>(await ctx.depot.openDatabase('values', { intMode: 'bigint' }))
      await k.schema
        .createTable('v')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('big', 'integer')
        .addColumn('data', 'blob')
        .addColumn('absent', 'text')
        .addColumn('flag', 'integer')
        .addColumn('at', 'text')
        .addColumn('ratio', 'real')
        .execute()

      const big = 2n ** 62n + 7n
      const when = new Date('2024-02-29T12:34:56.789Z')
      await k
        .insertInto('v')
        .values([
          { big, data: Buffer.from([0, 1, 2, 255]), absent: null, flag: true, at: when, ratio: 1.5 },
          { big: -big, data: new Uint8Array([9, 8]), absent: 'x', flag: false, at: when.toISOString(), ratio: -0.25 },
        ])
        .execute()

      const rows = await k.selectFrom('v').selectAll().orderBy('id').execute()
      expect(rows).toEqual([
        { id: 1n, big, data: Buffer.from([0, 1, 2, 255]), absent: null, flag: 1n, at: '2024-02-29T12:34:56.789Z', ratio: 1.5 },
        { id: 2n, big: -big, data: Buffer.from([9, 8]), absent: 'x', flag: 0n, at: '2024-02-29T12:34:56.789Z', ratio: -0.25 },
      ])
      expect(typeof rows[0].big).toBe('bigint')
      expect(Buffer.isBuffer(rows[1].data)).toBe(true)

      // What SQLite stored: booleans as integers 1/0, dates as ISO 8601 text.
      const stored = await sql<Record<string, string>>`
        SELECT typeof(big) AS big, typeof(data) AS data, typeof(absent) AS absent, typeof(flag) AS flag, typeof(at) AS at
        FROM v WHERE id = 1`.execute(k)
      expect(stored.rows).toEqual([{ big: 'integer', data: 'blob', absent: 'null', flag: 'integer', at: 'text' }])

      // Parameters in WHERE bind the same way.
      expect(await k.selectFrom('v').select('id').where('flag', '=', true).execute()).toEqual([{ id: 1n }])
      expect(await k.selectFrom('v').select('id').where('at', '=', when).execute()).toEqual([{ id: 1n }, { id: 2n }])
      expect(await k.selectFrom('v').select('id').where('big', '<', 0n).execute()).toEqual([{ id: 2n }])

      expect(await codeOf(k.insertInto('v').values({ big: 1n, data: Buffer.alloc(0), absent: null, flag: true, at: new Date(NaN), ratio: 0 }).execute())).toBe(
        'ERR_INVALID_ARGUMENT',
      )
      expect(await k.selectFrom('v').select((eb) => eb.fn.countAll<bigint>().as('n')).executeTakeFirstOrThrow()).toEqual({ n: 2n })
      await k.destroy()
    })

    it('keeps the last of repeated column names, and a column named __proto__ as a plain property', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('columns'))
      await createPeople(k)
      await k.schema.createTable('pet').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('owner_id', 'integer').addColumn('name', 'text').execute()
      await k.insertInto('person').values({ id: 1, name: 'ann', age: 30 }).execute()
      await k.insertInto('pet').values({ id: 7, owner_id: 1, name: 'rex' }).execute()

      // Both tables have `id` and `name`: the columns listed last (pet's) win, as in better-sqlite3.
      const joined = await k.selectFrom('person').innerJoin('pet', 'pet.owner_id', 'person.id').selectAll().execute()
      expect(joined).toEqual([{ id: 7, name: 'rex', age: 30, owner_id: 1 }])

      const { rows } = await sql<Record<string, unknown>>`SELECT 1 AS a, 2 AS a, 3 AS "__proto__"`.execute(k)
      expect(rows).toHaveLength(1)
      const row = rows[0]
      expect(row.a).toBe(2)
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype)
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe(3)
      expect(Object.keys(row)).toEqual(['a', '__proto__'])
      await k.destroy()
    })

    it('passes the handle errors through with their code', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('errors'))
      await createPeople(k)
      await k.insertInto('person').values({ name: 'ann', age: 1 }).execute()

      const error = await errorOf(k.insertInto('person').values({ name: 'ann', age: 2 }).execute())
      expect(error).toBeInstanceOf(Error)
      expect(error.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect(error.message).toContain('UNIQUE constraint failed: person.name')
      expect(await codeOf(sql`SELECT * FROM missing`.execute(k))).toBe('SQLITE_ERROR')

      // Inside a transaction: the same error, and the transaction rolled back.
      const inTx = await errorOf(
        k.transaction().execute(async (trx) => {
          await trx.insertInto('person').values({ name: 'bob', age: 3 }).execute()
          await trx.insertInto('person').values({ name: 'ann', age: 4 }).execute()
        }),
      )
      expect(inTx.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect(await k.selectFrom('person').select('name').execute()).toEqual([{ name: 'ann' }])
      await k.destroy()
    })

    it('takes a function that opens the database; destroy() closes it', async () => {
      let handle: Db | undefined
      let calls = 0
      const k = new Kysely<Schema>({
        dialect: new DepotDialect({
          database: async () => {
            calls++
            handle = await ctx.depot.openDatabase('factory')
            return handle
          },
        }),
      })
      expect(calls).toBe(0)
      await createPeople(k)
      await k.insertInto('person').values({ name: 'ann', age: 1 }).execute()
      expect(await k.selectFrom('person').select('name').execute()).toEqual([{ name: 'ann' }])
      expect(calls).toBe(1)
      await k.destroy()
      expect(await codeOf(handle!.query('SELECT 1'))).toBe('ERR_CLOSED')
    })
  })

  describe('transactions', () => {
    it('commits: the changes persist', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('tx-commit'))
      await createPeople(k)
      const result = await k.transaction().execute(async (trx) => {
        await trx.insertInto('person').values({ name: 'ann', age: 1 }).execute()
        await trx.insertInto('person').values({ name: 'bob', age: 2 }).execute()
        expect(trx.isTransaction).toBe(true)
        return 'done'
      })
      expect(result).toBe('done')
      await k.destroy()

      const again = kyselyOn(await ctx.depot.openDatabase('tx-commit'))
      expect(await again.selectFrom('person').select('name').orderBy('name').execute()).toEqual([{ name: 'ann' }, { name: 'bob' }])
      await again.destroy()
    })

    it('rolls back and rethrows when the function throws', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('tx-throw'))
      await createPeople(k)
      await k.insertInto('person').values({ name: 'kept', age: 0 }).execute()
      const boom = new Error('boom')
      await expect(
        k.transaction().execute(async (trx) => {
          await trx.insertInto('person').values({ name: 'ann', age: 1 }).execute()
          await trx.updateTable('person').set({ age: 99 }).execute()
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(await k.selectFrom('person').selectAll().execute()).toEqual([{ id: 1, name: 'kept', age: 0 }])

      // A controlled transaction rolled back by hand.
      const trx = await k.startTransaction().execute()
      await trx.insertInto('person').values({ name: 'gone', age: 2 }).execute()
      await trx.rollback().execute()
      expect(trx.isRolledBack).toBe(true)
      expect(await k.selectFrom('person').select('name').execute()).toEqual([{ name: 'kept' }])
      await k.destroy()
    })

    it('runs its queries on the transaction; reads outside see the committed state, writes outside wait for the end', async () => {
      const handle = await ctx.depot.openDatabase('tx-wait', { readers: 1 })
      const k = kyselyOn(handle)
      await createPeople(k)
      await k.insertInto('person').values({ name: 'zed', age: 9 }).execute()
      const trx = await k.startTransaction().execute()
      await trx.insertInto('person').values({ name: 'ann', age: 1 }).execute()
      // Kysely outside the transaction, and the handle itself: answered while it is open.
      expect(await k.selectFrom('person').select('name').execute()).toEqual([{ name: 'zed' }])
      expect(await handle.all('SELECT name FROM person')).toEqual([{ name: 'zed' }])
      let ended = false
      const write = k
        .insertInto('person')
        .values({ name: 'cy', age: 3 })
        .execute()
        .then(() => ended)
      await sleep(50)
      await trx.insertInto('person').values({ name: 'bob', age: 2 }).execute()
      expect(await trx.selectFrom('person').select('name').orderBy('name').execute()).toEqual([{ name: 'ann' }, { name: 'bob' }, { name: 'zed' }])
      ended = true
      await trx.commit().execute()
      expect(await write).toBe(true)
      expect(await k.selectFrom('person').select('name').orderBy('name').execute()).toEqual([
        { name: 'ann' },
        { name: 'bob' },
        { name: 'cy' },
        { name: 'zed' },
      ])
      await k.destroy()
    })

    it('rolls back to nested savepoints', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('tx-savepoints'))
      await createPeople(k)
      const names = (db: Kysely<Schema>) =>
        db
          .selectFrom('person')
          .select('name')
          .orderBy('id')
          .execute()
          .then((rows) => rows.map((r) => r.name))

      const trx = await k.startTransaction().execute()
      await trx.insertInto('person').values({ name: 'one', age: 1 }).execute()
      const afterOne = await trx.savepoint('a').execute()
      await afterOne.insertInto('person').values({ name: 'two', age: 2 }).execute()
      // A name that needs quoting: it stays one identifier.
      const odd = 'b "quoted"; RELEASE a'
      const afterTwo = await afterOne.savepoint(odd).execute()
      await afterTwo.insertInto('person').values({ name: 'three', age: 3 }).execute()
      expect(await names(afterTwo)).toEqual(['one', 'two', 'three'])

      const backToTwo = await afterTwo.rollbackToSavepoint(odd).execute()
      expect(await names(backToTwo)).toEqual(['one', 'two'])
      const backToOne = await backToTwo.rollbackToSavepoint('a').execute()
      expect(await names(backToOne)).toEqual(['one'])

      await backToOne.insertInto('person').values({ name: 'four', age: 4 }).execute()
      const released = await backToOne.releaseSavepoint('a').execute()
      await released.commit().execute()
      expect(trx.isCommitted).toBe(true)
      expect(await names(k)).toEqual(['one', 'four'])

      // A savepoint released keeps its changes; an unknown one is SQLite's error.
      const second = await k.startTransaction().execute()
      const sp = await second.savepoint('c').execute()
      await sp.insertInto('person').values({ name: 'five', age: 5 }).execute()
      await sp.releaseSavepoint('c').execute()
      expect(await codeOf(sp.rollbackToSavepoint('c').execute())).toBe('SQLITE_ERROR')
      await second.commit().execute()
      expect(await names(k)).toEqual(['one', 'four', 'five'])
      await k.destroy()
    })

    it('keeps two concurrent transactions from two tasks apart', async () => {
      interface Counter {
        counter: { id: number; n: number }
      }
      const k = kyselyOn<Counter>(await ctx.depot.openDatabase('tx-concurrent'))
      await k.schema.createTable('counter').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('n', 'integer', (c) => c.notNull()).execute()
      await k.insertInto('counter').values({ id: 1, n: 0 }).execute()

      const N = 25
      const log: string[] = []
      const task = async (name: string) => {
        for (let i = 0; i < N; i++) {
          await k.transaction().execute(async (trx) => {
            log.push(`${name}:begin`)
            const { n } = await trx.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow()
            // Give the other task every chance to interleave.
            await new Promise((resolve) => setImmediate(resolve))
            await trx.updateTable('counter').set({ n: n + 1 }).where('id', '=', 1).execute()
            log.push(`${name}:end`)
          })
        }
      }
      await Promise.all([task('a'), task('b')])

      expect(await k.selectFrom('counter').select('n').executeTakeFirstOrThrow()).toEqual({ n: 2 * N })
      // Every transaction ran whole: begin and end of the same task, side by side.
      expect(log).toHaveLength(4 * N)
      for (let i = 0; i < log.length; i += 2) {
        const [task1, what1] = log[i].split(':')
        const [task2, what2] = log[i + 1].split(':')
        expect([what1, what2, task2]).toEqual(['begin', 'end', task1])
      }
      expect(log.filter((entry) => entry === 'a:end')).toHaveLength(N)
      expect(log.filter((entry) => entry === 'b:end')).toHaveLength(N)
      await k.destroy()
    })
  })

  describe('streaming', () => {
    interface Big {
      big: { i: number; label: string }
    }

    async function bigTable(name: string) {
      const handle = await ctx.depot.openDatabase(name)
      const k = kyselyOn<Big>(handle)
      await k.schema.createTable('big').addColumn('i', 'integer', (c) => c.primaryKey()).addColumn('label', 'text').execute()
      const filled = await sql`
        INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500)
        SELECT x, 'row ' || x FROM c`.execute(k)
      expect(filled.numAffectedRows).toBe(2500n)
      return { handle, k }
    }

    it('streams 2,500 rows in chunks', async () => {
      const { handle, k } = await bigTable('stream')

      const seen: number[] = []
      for await (const row of k.selectFrom('big').selectAll().orderBy('i').stream(300)) {
        if (row.label !== `row ${row.i}`) throw new Error(`unexpected row ${JSON.stringify(row)}`)
        seen.push(row.i)
      }
      expect(seen).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1))

      // The chunks as the driver hands them to Kysely: `chunkSize` rows, one round trip each.
      const driver = new DepotDialect({ database: handle }).createDriver()
      await driver.init()
      const connection = await driver.acquireConnection()
      const before = handle.stats().answered
      const sizes: number[] = []
      const firstAndLast: unknown[] = []
      for await (const chunk of connection.streamQuery<{ i: number }>(CompiledQuery.raw('SELECT i FROM big WHERE i > ? ORDER BY i', [0]), 1000)) {
        sizes.push(chunk.rows.length)
        firstAndLast.push(chunk.rows[0].i, chunk.rows[chunk.rows.length - 1].i)
      }
      expect(sizes).toEqual([1000, 1000, 500])
      expect(firstAndLast).toEqual([1, 1000, 1001, 2000, 2001, 2500])
      // One call opens the cursor, then one per chunk (and perhaps one that finds the end).
      const calls = handle.stats().answered - before
      expect(calls).toBeGreaterThanOrEqual(4)
      expect(calls).toBeLessThanOrEqual(5)
      await driver.releaseConnection(connection)
      await k.destroy()
    })

    it('stops early, and streams inside a transaction', async () => {
      const { k } = await bigTable('stream-tx')
      const firstTen: number[] = []
      for await (const row of k.selectFrom('big').select('i').orderBy('i').stream(64)) {
        firstTen.push(row.i)
        if (firstTen.length === 10) break
      }
      expect(firstTen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

      const streamed = await k.transaction().execute(async (trx) => {
        await trx.insertInto('big').values({ i: 2501, label: 'row 2501' }).execute()
        let count = 0
        let last = 0
        for await (const row of trx.selectFrom('big').select('i').orderBy('i').stream(500)) {
          count++
          last = row.i
        }
        return { count, last }
      })
      expect(streamed).toEqual({ count: 2501, last: 2501 })
      expect(await k.selectFrom('big').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).toEqual({ n: 2501 })
      await k.destroy()
    })
  })

  describe('introspection and migrations', () => {
    it('lists tables, views and columns', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('introspect'))
      await createPeople(k)
      await k.schema
        .createTable('pet')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('owner_id', 'integer', (c) => c.notNull().references('person.id'))
        .addColumn('name', 'text', (c) => c.notNull().defaultTo('rex'))
        .execute()
      await k.schema.createView('adult').as(k.selectFrom('person').select('name').where('age', '>=', 18)).execute()

      const tables = await k.introspection.getTables()
      expect(tables.map((t) => [t.name, t.isView])).toEqual([
        ['adult', true],
        ['person', false],
        ['pet', false],
      ])
      const pet = tables.find((t) => t.name === 'pet')!
      expect(pet.columns).toEqual([
        expect.objectContaining({ name: 'id', dataType: 'INTEGER', isAutoIncrementing: true, hasDefaultValue: false }),
        expect.objectContaining({ name: 'owner_id', dataType: 'INTEGER', isNullable: false, isAutoIncrementing: false, hasDefaultValue: false }),
        expect.objectContaining({ name: 'name', dataType: 'TEXT', isNullable: false, hasDefaultValue: true }),
      ])
      expect(tables.find((t) => t.name === 'person')!.columns.map((c) => [c.name, c.isNullable])).toEqual([
        ['id', true],
        ['name', false],
        ['age', true],
      ])
      await k.destroy()
    })

    it('migrates with in-code migrations once; a second run changes nothing', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('migrate'))
      const ran: string[] = []
      const migrations: Record<string, Migration> = {
        '001_person': {
          async up(db: Kysely<any>) {
            ran.push('001 up')
            await db.schema.createTable('person').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text', (c) => c.notNull()).execute()
            await db.insertInto('person').values({ id: 1, name: 'seed' }).execute()
          },
          async down(db: Kysely<any>) {
            await db.schema.dropTable('person').execute()
          },
        },
        '002_person_age': {
          async up(db: Kysely<any>) {
            ran.push('002 up')
            await db.schema.alterTable('person').addColumn('age', 'integer', (c) => c.notNull().defaultTo(0)).execute()
            await db.schema.createIndex('person_age').on('person').column('age').execute()
          },
        },
      }
      const provider: MigrationProvider = { getMigrations: async () => migrations }
      const migrator = new Migrator({ db: k, provider })

      const first = await migrator.migrateToLatest()
      expect(first.error).toBeUndefined()
      expect(first.results).toEqual([
        { migrationName: '001_person', direction: 'Up', status: 'Success' },
        { migrationName: '002_person_age', direction: 'Up', status: 'Success' },
      ])
      const second = await migrator.migrateToLatest()
      expect(second.error).toBeUndefined()
      expect(second.results).toEqual([])
      expect(ran).toEqual(['001 up', '002 up'])

      expect(await k.selectFrom('person').selectAll().execute()).toEqual([{ id: 1, name: 'seed', age: 0 }])
      const applied = await k.selectFrom('kysely_migration' as 'person').select('name').orderBy('name').execute()
      expect(applied).toEqual([{ name: '001_person' }, { name: '002_person_age' }])
      const tables = await k.introspection.getTables({ withInternalKyselyTables: true })
      expect(tables.map((t) => t.name).sort()).toEqual(['kysely_migration', 'kysely_migration_lock', 'person'])
      expect((await migrator.getMigrations()).map((m) => [m.name, m.executedAt instanceof Date])).toEqual([
        ['001_person', true],
        ['002_person_age', true],
      ])
      await k.destroy()
    })

    it('rolls a failing run of migrations back whole', async () => {
      const k = kyselyOn(await ctx.depot.openDatabase('migrate-fail'))
      const provider: MigrationProvider = {
        getMigrations: async () => ({
          '001_ok': {
            async up(db: Kysely<any>) {
              await db.schema.createTable('ok').addColumn('id', 'integer').execute()
            },
          },
          '002_broken': {
            async up(db: Kysely<any>) {
              await db.schema.createTable('ok').addColumn('id', 'integer').execute()
            },
          },
        }),
      }
      const result = await new Migrator({ db: k, provider }).migrateToLatest()
      expect((result.error as { code?: string }).code).toBe('SQLITE_ERROR')
      expect(result.results).toEqual([
        { migrationName: '001_ok', direction: 'Up', status: 'Success' },
        { migrationName: '002_broken', direction: 'Up', status: 'Error' },
      ])
      // The run was one transaction: 001's table and its record are gone with it.
      const tables = await k.introspection.getTables({ withInternalKyselyTables: true })
      expect(tables.map((t) => t.name).sort()).toEqual(['kysely_migration', 'kysely_migration_lock'])
      expect(await sql`SELECT name FROM kysely_migration`.execute(k).then((r) => r.rows)).toEqual([])
      await k.destroy()
    })
  })

  describe('abort', () => {
    // Kysely 0.28 has no AbortSignal on queries (its DatabaseConnection.executeQuery takes none);
    // Kysely 0.29 passes `{ signal }` as the connection's second argument, which the driver forwards.
    it('forwards a signal given to the connection to the handle', async () => {
      const handle = await ctx.depot.openDatabase('abort')
      const driver = new DepotDialect({ database: handle }).createDriver()
      await driver.init()
      const connection = await driver.acquireConnection()
      const forward = connection.executeQuery as (query: CompiledQuery, options: { signal: AbortSignal }) => Promise<unknown>

      expect(await codeOf(forward.call(connection, CompiledQuery.raw('SELECT 1'), { signal: AbortSignal.abort() }))).toBe('ERR_ABORTED')
      const controller = new AbortController()
      const running = forward.call(connection, CompiledQuery.raw(FOREVER), { signal: controller.signal })
      await sleep(50)
      controller.abort()
      expect(await codeOf(running)).toBe('ERR_ABORTED')
      expect(await connection.executeQuery(CompiledQuery.raw('SELECT 2 AS two'))).toEqual({ rows: [{ two: 2 }] })
      await driver.releaseConnection(connection)
      await driver.destroy()
    })
  })
})
