// depot-sqlite/drizzle: Drizzle ORM over a database handle. Query builder, exact value round trips,
// batches as one atomic executeBatch, transactions on the handle's interactive transaction
// (savepoints when nested), drizzle-kit migrations, and the errors drizzle hands back.
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { TransactionRollbackError, asc, eq, is, sql } from 'drizzle-orm'
import { blob, integer, real, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { afterEach, describe, expect, it, vi } from 'vitest'

import type * as DrizzleAdapter from '../adapters/drizzle'
import { codeOf, errorOf, forEachBackend, useDepot } from './backends'
import type { Db } from './backends'
import type { OpenDatabaseOptions } from '../index'

const require = createRequire(import.meta.url)
// Through the package's own export, as users load it.
const adapter = require('depot-sqlite/drizzle') as typeof DrizzleAdapter
const { drizzle, migrate } = adapter
// The adapter is CommonJS, so the errors it throws are classes of drizzle-orm's CommonJS build:
// `instanceof` checks take them from there (drizzle's `is()` works with either build).
const drizzleCjs = require('drizzle-orm') as typeof import('drizzle-orm')

const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull().unique(),
  score: real('score'),
  active: integer('active', { mode: 'boolean' }).notNull().default(true),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }),
  avatar: blob('avatar', { mode: 'buffer' }),
  big: blob('big', { mode: 'bigint' }),
})

const counters = sqliteTable('counters', {
  id: integer('id').primaryKey(),
  n: integer('n').notNull(),
})

const schema = { users, counters }

const DDL = `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    score REAL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER,
    avatar BLOB,
    big BLOB
  );
  CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
`

const tick = () => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Where the migration folders of a test go; removed after each test. */
const tempDirs: string[] = []
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

interface MigrationFile {
  tag: string
  when: number
  sql: string
}

/** Writes a drizzle-kit migrations folder (journal + one .sql file per entry) and returns its path. */
function writeMigrations(files: MigrationFile[], dir?: string): string {
  const folder = dir ?? mkdtempSync(join(tmpdir(), 'depot-drizzle-migrations-'))
  if (!dir) tempDirs.push(folder)
  mkdirSync(join(folder, 'meta'), { recursive: true })
  const journal = {
    version: '7',
    dialect: 'sqlite',
    entries: files.map((file, idx) => ({ idx, version: '6', when: file.when, tag: file.tag, breakpoints: true })),
  }
  writeFileSync(join(folder, 'meta', '_journal.json'), JSON.stringify(journal, null, 2))
  for (const file of files) writeFileSync(join(folder, `${file.tag}.sql`), file.sql)
  return folder
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

const INIT: MigrationFile = {
  tag: '0000_init',
  when: 1_700_000_000_000,
  sql: [
    'CREATE TABLE `authors` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`name` text NOT NULL\n);',
    'CREATE UNIQUE INDEX `authors_name_unique` ON `authors` (`name`);',
  ].join('\n--> statement-breakpoint\n'),
}
const MORE: MigrationFile = {
  tag: '0001_more',
  when: 1_700_000_100_000,
  sql: [
    'ALTER TABLE `authors` ADD `born` integer;',
    "INSERT INTO `authors` (`id`, `name`, `born`) VALUES (1, 'Ada', 1815);",
  ].join('\n--> statement-breakpoint\n'),
}
const BOOKS_BAD: MigrationFile = {
  tag: '0002_books',
  when: 1_700_000_200_000,
  sql: [
    'CREATE TABLE `books` (`id` integer PRIMARY KEY NOT NULL, `title` text NOT NULL);',
    "INSERT INTO `books` (`id`, `title`) VALUES (1, 'Notes');",
    "UPDATE `authors` SET `born` = 1816 WHERE `id` = 1;",
    "INSERT INTO `no_such_table` VALUES (1);",
  ].join('\n--> statement-breakpoint\n'),
}
const BOOKS_GOOD: MigrationFile = {
  ...BOOKS_BAD,
  sql: [
    'CREATE TABLE `books` (`id` integer PRIMARY KEY NOT NULL, `title` text NOT NULL);',
    "INSERT INTO `books` (`id`, `title`) VALUES (1, 'Notes');",
  ].join('\n--> statement-breakpoint\n'),
}

/** Every table and index of the database, with its SQL. */
async function schemaOf(handle: Db) {
  return handle.all("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
}

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  /** A handle with the test tables and a drizzle database over it. */
  async function open(name: string, options: OpenDatabaseOptions = {}) {
    const handle = await ctx.depot.openDatabase(name, options)
    await handle.exec(DDL)
    const db = drizzle(handle, { schema })
    return { handle, db }
  }

  it('is the package export, and keeps the handle as db.$client', async () => {
    expect(adapter).toBe(require('../adapters/drizzle.js'))
    const { handle, db } = await open('client')
    expect(db.$client).toBe(handle)
    expect(() => drizzle({} as Db)).toThrow(TypeError)
    await handle.close()
  })

  describe('query builder', () => {
    it('inserts, selects, updates and deletes, with returning()', async () => {
      const { handle, db } = await open('crud')

      const inserted = await db.insert(users).values({ name: 'ann', score: 1.5 }).returning()
      expect(inserted).toEqual([{ id: 1, name: 'ann', score: 1.5, active: true, createdAt: null, avatar: null, big: null }])

      const plain = await db.insert(users).values([{ name: 'bob' }, { name: 'cy', active: false }])
      expect(plain.changes).toBe(2)
      expect(plain.lastInsertRowId).toBe(3)

      const rows = await db.select({ id: users.id, name: users.name, active: users.active }).from(users).orderBy(asc(users.id))
      expect(rows).toEqual([
        { id: 1, name: 'ann', active: true },
        { id: 2, name: 'bob', active: true },
        { id: 3, name: 'cy', active: false },
      ])
      expect(await db.select({ name: users.name }).from(users).where(eq(users.id, 2)).get()).toEqual({ name: 'bob' })
      expect(await db.select().from(users).where(eq(users.id, 99)).get()).toBeUndefined()

      const updated = await db.update(users).set({ score: 9.25 }).where(eq(users.name, 'bob')).returning({ id: users.id, score: users.score })
      expect(updated).toEqual([{ id: 2, score: 9.25 }])
      const bumped = await db.update(users).set({ active: false })
      expect(bumped.changes).toBe(3)

      const deleted = await db.delete(users).where(eq(users.id, 1)).returning({ name: users.name })
      expect(deleted).toEqual([{ name: 'ann' }])
      expect(await db.$count(users)).toBe(2)

      // Relational queries (schema given to drizzle()).
      expect(await db.query.users.findFirst({ columns: { name: true, score: true }, where: eq(users.id, 2) })).toEqual({ name: 'bob', score: 9.25 })
      expect((await db.query.users.findMany({ columns: { id: true } })).map((u) => u.id)).toEqual([2, 3])

      // Raw SQL: all/values give row arrays, get one row array, run the handle's ExecuteResult.
      expect(await db.all(sql`SELECT id, name FROM users ORDER BY id`)).toEqual([[2, 'bob'], [3, 'cy']])
      expect(await db.values(sql`SELECT name FROM users ORDER BY id`)).toEqual([['bob'], ['cy']])
      expect(await db.get(sql`SELECT count(*) FROM users`)).toEqual([2])
      const ran = await db.run(sql`DELETE FROM users WHERE name = ${'cy'}`)
      expect(ran).toEqual({ columns: [], rows: [], changes: 1, lastInsertRowId: null })
      expect(await handle.all('SELECT id, name FROM users')).toEqual([{ id: 2, name: 'bob' }])
      await handle.close()
    })

    it('round-trips bigint, Buffer, null, boolean, Date and real exactly', async () => {
      const { handle, db } = await open('types')
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      const when = new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 987))
      const max = 2n ** 63n - 1n
      const min = -(2n ** 63n)
      const huge = 2n ** 100n + 7n
      await db.insert(users).values([
        { name: 'max', big: max, avatar: bytes, createdAt: when, active: false, score: 0.1 + 0.2 },
        { name: 'min', big: min, avatar: Buffer.alloc(0), createdAt: new Date(0), active: true, score: -1e308 },
        { name: 'huge', big: huge },
        { name: 'nulls', big: null, avatar: null, createdAt: null, score: null },
      ])
      const rows = await db.select().from(users).orderBy(asc(users.id))
      expect(rows.map((r) => r.name)).toEqual(['max', 'min', 'huge', 'nulls'])
      const [a, b, c, d] = rows

      expect(a.big).toBe(max)
      expect(typeof a.big).toBe('bigint')
      expect(Buffer.isBuffer(a.avatar)).toBe(true)
      expect(a.avatar!.equals(bytes)).toBe(true)
      expect(a.createdAt).toBeInstanceOf(Date)
      expect(a.createdAt!.getTime()).toBe(when.getTime())
      expect(a.active).toBe(false)
      expect(a.score).toBe(0.1 + 0.2)

      expect(b.big).toBe(min)
      expect(Buffer.isBuffer(b.avatar)).toBe(true)
      expect(b.avatar!.length).toBe(0)
      expect(b.createdAt!.getTime()).toBe(0)
      expect(b.active).toBe(true)
      expect(b.score).toBe(-1e308)

      expect(c.big).toBe(huge)
      expect(c.active).toBe(true)

      expect(d).toEqual({ id: 4, name: 'nulls', score: null, active: true, createdAt: null, avatar: null, big: null })

      // What is stored: booleans as 1/0, timestamps as integer milliseconds, blobs as blobs.
      const raw = await handle.get<{ active: number; created_at: number; t: string; avatar: Buffer }>(
        "SELECT active, created_at, typeof(avatar) AS t, avatar FROM users WHERE name = 'max'",
      )
      expect(raw).toEqual({ active: 0, created_at: when.getTime(), t: 'blob', avatar: bytes })

      // The same values as parameters of a where clause.
      expect((await db.select({ name: users.name }).from(users).where(eq(users.createdAt, when))).map((r) => r.name)).toEqual(['max'])
      expect((await db.select({ name: users.name }).from(users).where(eq(users.avatar, bytes))).map((r) => r.name)).toEqual(['max'])
      await handle.close()
    })
  })

  describe('batch()', () => {
    it('is one executeBatch of the handle, results mapped per statement', async () => {
      const { handle, db } = await open('batch')
      const executeBatch = vi.spyOn(handle, 'executeBatch')
      const execute = vi.spyOn(handle, 'execute')
      const [ins, ret, all, one, missing, rel, raw] = await db.batch([
        db.insert(users).values({ name: 'a' }),
        db.insert(users).values({ name: 'b', active: false }).returning({ id: users.id, active: users.active }),
        db.select({ name: users.name }).from(users).orderBy(asc(users.id)),
        db.query.users.findFirst({ columns: { name: true }, where: eq(users.name, 'b') }),
        db.query.users.findFirst({ where: eq(users.name, 'zz') }),
        db.query.users.findMany({ columns: { id: true } }),
        db.get(sql`SELECT count(*) FROM users`),
      ])
      expect(executeBatch).toHaveBeenCalledTimes(1)
      expect(execute).not.toHaveBeenCalled()
      expect(executeBatch.mock.calls[0][0]).toHaveLength(7)
      expect(ins).toEqual({ columns: [], rows: [], changes: 1, lastInsertRowId: 1 })
      expect(ret).toEqual([{ id: 2, active: false }])
      expect(all).toEqual([{ name: 'a' }, { name: 'b' }])
      expect(one).toEqual({ name: 'b' })
      expect(missing).toBeUndefined()
      expect(rel).toEqual([{ id: 1 }, { id: 2 }])
      expect(raw).toEqual([2])
      await handle.close()
    })

    it('is all or nothing: a failing last statement leaves no row of the batch', async () => {
      const { handle, db } = await open('batch-atomic')
      await db.insert(users).values({ name: 'taken' })
      await db.insert(counters).values({ id: 1, n: 10 })
      const error = await errorOf(
        db.batch([
          db.insert(users).values({ name: 'x1' }),
          db.update(counters).set({ n: 11 }).where(eq(counters.id, 1)),
          db.insert(users).values({ name: 'x2' }),
          db.insert(users).values({ name: 'taken' }),
        ]),
      )
      // The batch's error is the handle's own (drizzle does not wrap batches).
      expect(error.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect(error.message).toContain('UNIQUE constraint failed: users.name')
      expect(await db.select({ name: users.name }).from(users)).toEqual([{ name: 'taken' }])
      expect(await db.select().from(counters)).toEqual([{ id: 1, n: 10 }])
      // And the database works on.
      await db.batch([db.insert(users).values({ name: 'x1' }), db.insert(users).values({ name: 'x2' })])
      expect(await db.$count(users)).toBe(3)
      await handle.close()
    })
  })

  describe('transaction()', () => {
    it('runs on the handle interactive transaction, never BEGIN text on the handle', async () => {
      const { handle, db } = await open('tx-handle')
      const execute = vi.spyOn(handle, 'execute')
      const exec = vi.spyOn(handle, 'exec')
      const begin = vi.spyOn(handle, 'beginTransaction')
      const result = await db.transaction(
        async (tx) => {
          await tx.insert(users).values({ name: 'in-tx' })
          const [row] = await tx.select({ n: sql<number>`count(*)` }).from(users)
          return row.n
        },
        { behavior: 'immediate' },
      )
      expect(result).toBe(1)
      expect(begin).toHaveBeenCalledTimes(1)
      expect(begin.mock.calls[0][0]).toEqual({ behavior: 'immediate' })
      expect(execute).not.toHaveBeenCalled()
      expect(exec).not.toHaveBeenCalled()
      expect(await db.$count(users)).toBe(1)
      await handle.close()
    })

    it('is isolated: a read on db meanwhile answers at once with the committed state, a write waits for the end', async () => {
      const { handle, db } = await open('tx-isolated', { readers: 1 })
      let during: number | undefined
      let written = false
      let write: Promise<unknown> | undefined
      await db.transaction(async (tx) => {
        await tx.insert(counters).values({ id: 1, n: 1 })
        // Awaited inside the transaction: a snapshot reader answers it without the transaction's rows.
        during = await db.$count(counters)
        write = db
          .insert(counters)
          .values({ id: 3, n: 7 })
          .then(() => (written = true))
        await sleep(30)
        expect(written).toBe(false)
        await tx.update(counters).set({ n: 2 })
        await tx.insert(counters).values({ id: 2, n: 5 })
      })
      expect(during).toBe(0)
      await write
      expect(await db.select().from(counters).orderBy(asc(counters.id))).toEqual([
        { id: 1, n: 2 },
        { id: 2, n: 5 },
        { id: 3, n: 7 },
      ])
      await handle.close()
    })

    it('rolls back and rethrows when the function throws', async () => {
      const { handle, db } = await open('tx-throw')
      await db.insert(users).values({ name: 'kept' })
      const boom = new Error('boom')
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(users).values({ name: 'gone' })
          await tx.update(users).set({ score: 3 })
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(await db.select({ name: users.name, score: users.score }).from(users)).toEqual([{ name: 'kept', score: null }])
      await handle.close()
    })

    it('rolls back on tx.rollback() (TransactionRollbackError)', async () => {
      const { handle, db } = await open('tx-rollback')
      const error = await errorOf(
        db.transaction(async (tx) => {
          await tx.insert(users).values({ name: 'gone' })
          tx.rollback()
        }),
      )
      expect(is(error, TransactionRollbackError)).toBe(true)
      expect(error).toBeInstanceOf(drizzleCjs.TransactionRollbackError)
      expect(error.message).toBe('Rollback')
      expect(await db.$count(users)).toBe(0)
      await handle.close()
    })

    it('rolls back when a statement fails, and the error carries the SQLite code in its cause', async () => {
      const { handle, db } = await open('tx-failing')
      await db.insert(users).values({ name: 'taken' })
      const error = await errorOf(
        db.transaction(async (tx) => {
          await tx.insert(users).values({ name: 'new' })
          await tx.insert(users).values({ name: 'taken' })
        }),
      )
      expect(error).toBeInstanceOf(drizzleCjs.DrizzleQueryError)
      expect(error.code).toBeUndefined()
      expect((error.cause as { code?: string }).code).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect((await db.select({ name: users.name }).from(users)).map((r) => r.name)).toEqual(['taken'])
      await handle.close()
    })

    it('nests as savepoints: a failed inner part is undone, the outer work kept', async () => {
      const { handle, db } = await open('tx-nested')
      await db.transaction(async (tx) => {
        await tx.insert(users).values({ name: 'outer' })
        await expect(
          tx.transaction(async (inner) => {
            await inner.insert(users).values({ name: 'inner-throw' })
            throw new Error('undo the inner part')
          }),
        ).rejects.toThrow('undo the inner part')
        const rolled = await errorOf(
          tx.transaction(async (inner) => {
            await inner.insert(users).values({ name: 'inner-rollback' })
            inner.rollback()
          }),
        )
        expect(is(rolled, TransactionRollbackError)).toBe(true)
        await tx.transaction(async (inner) => {
          await inner.insert(users).values({ name: 'inner-kept' })
          await expect(
            inner.transaction(async (deeper) => {
              await deeper.update(users).set({ score: 1 })
              deeper.rollback()
            }),
          ).rejects.toThrow('Rollback')
          await inner.transaction(async (deeper) => {
            await deeper.insert(users).values({ name: 'deeper-kept' })
          })
        })
        await tx.update(users).set({ active: false }).where(eq(users.name, 'outer'))
      })
      expect(await db.select({ name: users.name, score: users.score, active: users.active }).from(users).orderBy(asc(users.id))).toEqual([
        { name: 'outer', score: null, active: false },
        { name: 'inner-kept', score: null, active: true },
        { name: 'deeper-kept', score: null, active: true },
      ])
      await handle.close()
    })

    it('a savepoint rolled back, then the outer transaction thrown: nothing is kept', async () => {
      const { handle, db } = await open('tx-nested-outer-throw')
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(users).values({ name: 'outer' })
          await tx.transaction(async (inner) => {
            await inner.insert(users).values({ name: 'inner' })
          })
          throw new Error('outer fails')
        }),
      ).rejects.toThrow('outer fails')
      expect(await db.$count(users)).toBe(0)
      await handle.close()
    })

    it('two concurrent tasks read-increment-write a counter without losing an update', async () => {
      const { handle, db } = await open('tx-counter')
      await db.insert(counters).values([
        { id: 1, n: 0 },
        { id: 2, n: 0 },
      ])
      const N = 25

      // Each task: N transactions of one read-increment-write each.
      const manyTransactions = async () => {
        for (let i = 0; i < N; i++) {
          await db.transaction(async (tx) => {
            const row = await tx.select({ n: counters.n }).from(counters).where(eq(counters.id, 1)).get()
            await tick()
            await tx.update(counters).set({ n: row!.n + 1 }).where(eq(counters.id, 1))
          })
        }
      }
      // Each task: one transaction of N read-increment-writes.
      const oneTransaction = () =>
        db.transaction(async (tx) => {
          for (let i = 0; i < N; i++) {
            const [row] = await tx.select({ n: counters.n }).from(counters).where(eq(counters.id, 2))
            await tick()
            await tx.update(counters).set({ n: row.n + 1 }).where(eq(counters.id, 2))
          }
        })

      await Promise.all([manyTransactions(), manyTransactions(), oneTransaction(), oneTransaction()])
      expect(await db.select().from(counters).orderBy(asc(counters.id))).toEqual([
        { id: 1, n: 2 * N },
        { id: 2, n: 2 * N },
      ])
      await handle.close()
    })
  })

  describe('errors', () => {
    it('a unique violation: DrizzleQueryError whose cause has code SQLITE_CONSTRAINT_UNIQUE', async () => {
      const { handle, db } = await open('errors')
      await db.insert(users).values({ name: 'dup' })
      const error = await errorOf(db.insert(users).values({ name: 'dup' }))
      expect(error).toBeInstanceOf(drizzleCjs.DrizzleQueryError)
      expect(error.code).toBeUndefined()
      expect(error.message).toContain('Failed query: insert into "users"')
      const cause = error.cause as Error & { code: string }
      expect(cause.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
      expect(cause.message).toContain('UNIQUE constraint failed: users.name')
      // The handle's own call gives the code on the error itself.
      expect(await codeOf(handle.run("INSERT INTO users (name) VALUES ('dup')"))).toBe('SQLITE_CONSTRAINT_UNIQUE')
      await handle.close()
    })
  })

  describe('migrate()', () => {
    it('applies a folder once; a second run is a no-op; recorded like drizzle does', async () => {
      const handle = await ctx.depot.openDatabase('migrate')
      const db = drizzle(handle)
      const folder = writeMigrations([INIT, MORE])

      await migrate(db, { migrationsFolder: folder })
      expect(await handle.all('SELECT id, name, born FROM authors')).toEqual([{ id: 1, name: 'Ada', born: 1815 }])
      const recorded = await handle.all('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at')
      expect(recorded).toEqual([
        { id: null, hash: sha256(INIT.sql), created_at: INIT.when },
        { id: null, hash: sha256(MORE.sql), created_at: MORE.when },
      ])
      const schemaAfter = await schemaOf(handle)
      expect(schemaAfter.map((r) => r.name)).toEqual(['authors_name_unique', '__drizzle_migrations', 'authors'])

      // Again: nothing applied (the seed row of 0001 would fail on its primary key otherwise).
      await migrate(db, { migrationsFolder: folder })
      await migrate(handle, { migrationsFolder: folder })
      expect(await handle.all('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at')).toEqual(recorded)
      expect(await handle.all('SELECT id, name, born FROM authors')).toEqual([{ id: 1, name: 'Ada', born: 1815 }])
      expect(await schemaOf(handle)).toEqual(schemaAfter)

      // A later migration added to the folder: only it runs.
      writeMigrations([INIT, MORE, BOOKS_GOOD], folder)
      await migrate(db, { migrationsFolder: folder })
      expect(await handle.all('SELECT id, title FROM books')).toEqual([{ id: 1, title: 'Notes' }])
      expect(await handle.all('SELECT hash FROM __drizzle_migrations ORDER BY created_at')).toEqual([
        { hash: sha256(INIT.sql) },
        { hash: sha256(MORE.sql) },
        { hash: sha256(BOOKS_GOOD.sql) },
      ])
      await handle.close()
    })

    it('a migration with a bad statement applies nothing of itself', async () => {
      const handle = await ctx.depot.openDatabase('migrate-bad')
      const db = drizzle(handle)
      const folder = writeMigrations([INIT, MORE])
      await migrate(db, { migrationsFolder: folder })
      const schemaBefore = await schemaOf(handle)
      const recordedBefore = await handle.all('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at')
      expect(recordedBefore).toHaveLength(2)

      writeMigrations([INIT, MORE, BOOKS_BAD], folder)
      const error = await errorOf(migrate(db, { migrationsFolder: folder }))
      expect(error.code).toBe('SQLITE_ERROR')
      expect(error.message).toContain('no such table: no_such_table')
      expect(await schemaOf(handle)).toEqual(schemaBefore)
      expect(await handle.all('SELECT id, name, born FROM authors')).toEqual([{ id: 1, name: 'Ada', born: 1815 }])
      expect(await handle.all('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at')).toEqual(recordedBefore)

      // Fixed, it applies.
      writeMigrations([INIT, MORE, BOOKS_GOOD], folder)
      await migrate(db, { migrationsFolder: folder })
      expect(await handle.all('SELECT title FROM books')).toEqual([{ title: 'Notes' }])
      expect(await handle.get('SELECT count(*) AS n FROM __drizzle_migrations')).toEqual({ n: 3 })
      await handle.close()
    })

    it('is all or nothing across migrations: a bad one leaves no earlier one of the run', async () => {
      const handle = await ctx.depot.openDatabase('migrate-atomic')
      const folder = writeMigrations([INIT, MORE, BOOKS_BAD])
      expect(await codeOf(migrate(drizzle(handle), { migrationsFolder: folder }))).toBe('SQLITE_ERROR')
      // Not even the migrations table: it is created in the same transaction.
      expect(await schemaOf(handle)).toEqual([])
      await handle.close()
    })

    it('honours migrationsTable and refuses what is not a database', async () => {
      const handle = await ctx.depot.openDatabase('migrate-table')
      const folder = writeMigrations([INIT])
      await migrate(drizzle(handle), { migrationsFolder: folder, migrationsTable: 'my_migrations' })
      expect(await handle.all('SELECT hash, created_at FROM my_migrations')).toEqual([{ hash: sha256(INIT.sql), created_at: INIT.when }])
      expect(await handle.get("SELECT count(*) AS n FROM sqlite_master WHERE name = '__drizzle_migrations'")).toEqual({ n: 0 })
      await expect(migrate({} as Db, { migrationsFolder: folder })).rejects.toThrow(TypeError)
      await handle.close()
    })
  })
})

describe("migrate() matches drizzle-orm's own SQLite migrator (sqlite-proxy/migrator)", () => {
  // The reference is drizzle's migrator for remote SQLite, run through a plain proxy callback on a
  // database of its own (a native reference such as better-sqlite3 would tie the suite to the Node
  // version it was compiled for; the suite runs under Node 20, 22 and 24).
  it('same migrations table (schema and rows) and same resulting schema', async () => {
    const { drizzle: drizzleProxy } = require('drizzle-orm/sqlite-proxy') as {
      drizzle: (callback: (sql: string, params: unknown[], method: string) => Promise<{ rows: unknown }>) => unknown
    }
    const { migrate: migrateProxy } = require('drizzle-orm/sqlite-proxy/migrator') as {
      migrate: (db: unknown, callback: (queries: string[]) => Promise<void>, config: { migrationsFolder: string }) => Promise<void>
    }
    const folder = writeMigrations([INIT, MORE, BOOKS_GOOD])
    const query = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"

    const { Depot: ReferenceDepot } = require('../index.js') as typeof import('../index')
    const referenceDepot = await ReferenceDepot.open({ memory: true })
    const reference = await referenceDepot.openDatabase('reference')
    const proxy = drizzleProxy(async (sql, params, method) => {
      const { rows } = await reference.execute(sql, params as never)
      return { rows: method === 'get' ? rows[0] : rows }
    })
    await migrateProxy(proxy, async (queries) => {
      for (const q of queries) await reference.exec(q)
    }, { migrationsFolder: folder })
    const expectedSchema = await reference.all(query)
    const expectedRows = await reference.all('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at')
    await referenceDepot.close()

    const { Depot } = require('../index.js') as typeof import('../index')
    const depot = await Depot.open({ memory: true })
    try {
      const handle = await depot.openDatabase('compare')
      await migrate(drizzle(handle), { migrationsFolder: folder })
      const normalize = (rows: unknown[]) =>
        (rows as Array<Record<string, unknown>>).map((r) => ({ ...r, sql: typeof r.sql === 'string' ? r.sql.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim() : r.sql }))
      expect(normalize(await handle.all(query))).toEqual(normalize(expectedSchema))
      expect(await handle.all('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at')).toEqual(expectedRows)
      expect(expectedRows).toHaveLength(3)
    } finally {
      await depot.close()
    }
  })
})
