// depot-sqlite/prisma: the driver adapter's contract (queries, values, scripts, transactions,
// errors, ownership), then Prisma's own client over it.
//
// The PrismaClient part needs the `prisma` CLI and `@prisma/client` (devDependencies). It
// generates a client for the schema below into a temporary directory once per run (`prisma
// generate` runs offline: Prisma 7's client compiles queries with a wasm module shipped in
// @prisma/client; generation never runs the schema engine, so a stub stands in for its binary when
// none was downloaded).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

import type { SqlQuery } from '@prisma/driver-adapter-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { forEachBackend, useDepot } from './backends'
import type { Db } from './backends'

// Loaded by the package's own name, through its `exports` map, as a user would.
const require = createRequire(import.meta.url)
const { PrismaDepot, prismaAdapter } = require('depot-sqlite/prisma') as typeof import('depot-sqlite/prisma')
const { ColumnTypeEnum, isDriverAdapterError } = require('@prisma/driver-adapter-utils') as typeof import('@prisma/driver-adapter-utils')

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** An SqlQuery as Prisma sends it: every argument with its ArgType. */
function q(sql: string, args: unknown[] = [], scalarTypes: string[] = []): SqlQuery {
  return {
    sql,
    args,
    argTypes: args.map((arg, i) => ({
      scalarType: (scalarTypes[i] ??
        (typeof arg === 'number' ? (Number.isInteger(arg) ? 'int' : 'float') : 'string')) as SqlQuery['argTypes'][number]['scalarType'],
      arity: 'scalar' as const,
    })),
  }
}

/** The DriverAdapterError's payload (`cause`) a promise rejects with. */
async function causeOf(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise
  } catch (error) {
    if (!isDriverAdapterError(error)) throw new Error(`expected a DriverAdapterError, got: ${String(error)}`)
    return error.cause as Record<string, unknown>
  }
  throw new Error('expected the promise to reject, but it resolved')
}

// The schema of the PrismaClient tests, and the DDL `prisma migrate` makes of it for SQLite.
const SCHEMA = `
generator client {
  provider     = "prisma-client"
  output       = "./generated"
  moduleFormat = "cjs"
}

datasource db {
  provider = "sqlite"
}

model User {
  id      Int      @id @default(autoincrement())
  email   String   @unique
  name    String?
  big     BigInt   @default(0)
  active  Boolean  @default(true)
  born    DateTime @default(now())
  meta    Json?
  avatar  Bytes?
  balance Decimal  @default(0)
  score   Float    @default(0)
  posts   Post[]
}

model Post {
  id       Int    @id @default(autoincrement())
  title    String
  authorId Int
  author   User   @relation(fields: [authorId], references: [id])
}

model Counter {
  id    Int @id
  value Int
}
`
const DDL = `
PRAGMA foreign_keys = ON;
CREATE TABLE "User" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "big" BIGINT NOT NULL DEFAULT 0,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "born" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "meta" JSONB,
    "avatar" BLOB,
    "balance" DECIMAL NOT NULL DEFAULT 0,
    "score" REAL NOT NULL DEFAULT 0
);
CREATE TABLE "Post" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,
    CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE TABLE "Counter" ("id" INTEGER NOT NULL PRIMARY KEY, "value" INTEGER NOT NULL);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
`

/** The generated client module (`generated/client.ts`), generated once for the whole file. */
let generated: Promise<any> | undefined
let generatedDir: string | undefined

function generateClient(): Promise<any> {
  generated ??= (async () => {
    let cli: string
    try {
      cli = require.resolve('prisma/build/index.js')
      require.resolve('@prisma/client/runtime/client')
    } catch (error) {
      throw new Error(
        'the PrismaClient tests need the `prisma` and `@prisma/client` packages (>= 7): npm install -D prisma @prisma/client',
        { cause: error },
      )
    }
    // Outside the repository, with the package's node_modules reachable from the generated code.
    const dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-prisma-'))
    generatedDir = dir
    symlinkSync(resolve(__dirname, '..', 'node_modules'), join(dir, 'node_modules'), 'dir')
    writeFileSync(join(dir, 'schema.prisma'), SCHEMA)
    const stub = join(dir, 'schema-engine-stub')
    writeFileSync(stub, '#!/bin/sh\necho "not needed by prisma generate" >&2\nexit 1\n', { mode: 0o755 })
    execFileSync(process.execPath, [cli, 'generate', '--schema', join(dir, 'schema.prisma')], {
      cwd: dir,
      stdio: 'pipe',
      timeout: 120_000,
      env: {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? stub,
        CHECKPOINT_DISABLE: '1',
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
      },
    })
    return import(join(dir, 'generated', 'client.ts'))
  })()
  return generated
}

afterAll(() => {
  if (generatedDir) rmSync(generatedDir, { recursive: true, force: true })
})

forEachBackend((backend) => {
  const ctx = useDepot(backend)

  /** A database opened as the adapter wants it, with the test schema. */
  async function openDb(name: string): Promise<Db> {
    const db = await ctx.depot.openDatabase(name, { intMode: 'bigint', readers: 1 })
    await db.executeScript(DDL)
    return db
  }

  describe('adapter', () => {
    it('connects as an SqlDriverAdapterFactory; CRUD through queryRaw/executeRaw', async () => {
      const db = await openDb('crud')
      const factory = new PrismaDepot(db)
      expect(factory.provider).toBe('sqlite')
      expect(factory.adapterName).toBe('depot-sqlite')
      expect(prismaAdapter(db)).toBeInstanceOf(PrismaDepot)
      const adapter = await factory.connect()
      expect(adapter.provider).toBe('sqlite')
      expect(adapter.adapterName).toBe('depot-sqlite')
      expect(adapter.getConnectionInfo()).toEqual({ supportsRelationJoins: false })

      const inserted = await adapter.queryRaw(q('INSERT INTO "User"(email, name) VALUES (?, ?)', ['a@x', 'Ann']))
      expect(inserted).toEqual({ columnNames: [], columnTypes: [], rows: [], lastInsertId: '1' })
      expect(await adapter.executeRaw(q('INSERT INTO "User"(email, name) VALUES (?, ?), (?, ?)', ['b@x', 'Bob', 'c@x', null]))).toBe(2)

      const read = await adapter.queryRaw(q('SELECT id, email, name FROM "User" ORDER BY id'))
      expect(read.columnNames).toEqual(['id', 'email', 'name'])
      expect(read.columnTypes).toEqual([ColumnTypeEnum.Int64, ColumnTypeEnum.Text, ColumnTypeEnum.Text])
      expect(read.rows).toEqual([
        ['1', 'a@x', 'Ann'],
        ['2', 'b@x', 'Bob'],
        ['3', 'c@x', null],
      ])
      expect(read.lastInsertId).toBeUndefined()

      const returning = await adapter.queryRaw(q('UPDATE "User" SET name = ? WHERE id = ? RETURNING id, name', ['Cy', 3], ['string', 'int']))
      expect(returning.rows).toEqual([['3', 'Cy']])
      expect(await adapter.executeRaw(q('DELETE FROM "User" WHERE id > ?', [1]))).toBe(2)
      expect(await adapter.executeRaw(q('SELECT 1'))).toBe(0)
      await adapter.dispose()
      await db.close()
    })

    it('maps argument types and result values as Prisma SQLite adapters do', async () => {
      const db = await openDb('types')
      const adapter = await new PrismaDepot(db).connect()
      const big = '9007199254740993' // 2^53 + 1: exact only as a bigint
      await adapter.executeRaw(
        q(
          'INSERT INTO "User"(email, big, active, born, meta, avatar, balance, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
          ['t@x', big, false, '2020-01-02T03:04:05.678Z', { a: [1, 'b'] }, Buffer.from([0, 1, 255]).toString('base64'), '12.5', 1.25],
          ['string', 'bigint', 'boolean', 'datetime', 'json', 'bytes', 'decimal', 'float'],
        ),
      )
      await adapter.executeRaw(
        q(
          'INSERT INTO "User"(email, big, active, born, meta, avatar) VALUES (?, ?, ?, ?, ?, ?)',
          ['u@x', -5n, true, new Date(Date.UTC(2021, 0, 1)), '"text"', new Uint8Array([7])],
          ['string', 'bigint', 'boolean', 'datetime', 'json', 'bytes'],
        ),
      )
      // Stored as Prisma's SQLite adapters store them.
      expect(await db.all('SELECT big, active, born, meta, avatar, balance, score, typeof(balance) AS tb FROM "User" ORDER BY id')).toEqual([
        {
          big: 9007199254740993n,
          active: 0n,
          born: '2020-01-02T03:04:05.678+00:00',
          meta: '{"a":[1,"b"]}',
          avatar: Buffer.from([0, 1, 255]),
          balance: 12.5,
          score: 1.25,
          tb: 'real',
        },
        { big: -5n, active: 1n, born: '2021-01-01T00:00:00.000+00:00', meta: '"text"', avatar: Buffer.from([7]), balance: 0n, score: 0, tb: 'integer' },
      ])

      const result = await adapter.queryRaw(q('SELECT big, active, born, meta, avatar, score, NULL AS empty FROM "User" WHERE email = ?', ['t@x']))
      expect(result.columnTypes).toEqual([
        ColumnTypeEnum.Int64,
        ColumnTypeEnum.Int64,
        ColumnTypeEnum.Text,
        ColumnTypeEnum.Text,
        ColumnTypeEnum.Bytes,
        ColumnTypeEnum.Double,
        ColumnTypeEnum.Int32, // NULL only, as in Prisma's SQLite adapters
      ])
      const [row] = result.rows
      expect(row.slice(0, 4)).toEqual([big, '0', '2020-01-02T03:04:05.678+00:00', '{"a":[1,"b"]}'])
      expect(row[4]).toBeInstanceOf(Uint8Array)
      expect(Buffer.isBuffer(row[4])).toBe(false)
      expect([...(row[4] as Uint8Array)]).toEqual([0, 1, 255])
      expect(row.slice(5)).toEqual([1.25, null])

      // int arguments beyond 2^53 bind exactly; a bad one is InvalidInputValue.
      expect((await adapter.queryRaw(q('SELECT ? AS v', ['-9223372036854775808'], ['int']))).rows).toEqual([['-9223372036854775808']])
      expect(await causeOf(adapter.queryRaw(q('SELECT ?', ['12abc'], ['bigint'])))).toMatchObject({ kind: 'InvalidInputValue' })
      expect(await causeOf(adapter.queryRaw(q('SELECT ?', ['not a date'], ['datetime'])))).toMatchObject({ kind: 'InvalidInputValue' })
      await adapter.dispose()

      // timestampFormat 'unixepoch-ms' writes milliseconds, as Prisma's former engine did.
      const ms = await new PrismaDepot(db, { timestampFormat: 'unixepoch-ms' }).connect()
      const at = '2022-03-04T05:06:07.089Z'
      await ms.executeRaw(q('UPDATE "User" SET born = ? WHERE email = ?', [at, 'u@x'], ['datetime', 'string']))
      expect(await db.get('SELECT born FROM "User" WHERE email = ?', ['u@x'])).toEqual({ born: BigInt(Date.parse(at)) })
      expect(() => new PrismaDepot(db, { timestampFormat: 'nope' as 'iso8601' })).toThrow(TypeError)
      await ms.dispose()
      await db.close()
    })

    it("works with intMode 'number' and refuses 'string'", async () => {
      const numbers = await ctx.depot.openDatabase('ints-number')
      const adapter = await new PrismaDepot(numbers).connect()
      const result = await adapter.queryRaw(q('SELECT 42 AS i, 2.5 AS r'))
      expect(result.columnTypes).toEqual([ColumnTypeEnum.UnknownNumber, ColumnTypeEnum.Double])
      expect(result.rows).toEqual([[42, 2.5]])
      expect(await causeOf(adapter.queryRaw(q('SELECT 9223372036854775807')))).toMatchObject({
        kind: 'ValueOutOfRange',
        originalCode: 'ERR_INTEGER_OVERFLOW',
      })
      await adapter.dispose()
      await numbers.close()

      const strings = await ctx.depot.openDatabase('ints-string', { intMode: 'string' })
      await expect(new PrismaDepot(strings).connect()).rejects.toThrow(/intMode: 'string'/)
      await strings.close()
    })

    it('executeScript runs every statement; the first error stops it, mapped', async () => {
      const db = await openDb('script')
      const adapter = await new PrismaDepot(db).connect()
      await adapter.executeScript(`
        CREATE TABLE log(msg TEXT);
        CREATE TRIGGER user_log AFTER INSERT ON "User" BEGIN INSERT INTO log VALUES ('user; ' || NEW.email); END;
        INSERT INTO "User"(email) VALUES ('s@x');
      `)
      expect(await db.all('SELECT msg FROM log')).toEqual([{ msg: 'user; s@x' }])
      const cause = await causeOf(adapter.executeScript("INSERT INTO log VALUES ('one'); INSERT INTO missing VALUES (1); INSERT INTO log VALUES ('two')"))
      expect(cause).toMatchObject({ kind: 'TableDoesNotExist', table: 'missing' })
      expect((await db.all('SELECT msg FROM log')).map((r) => r.msg)).toEqual(['user; s@x', 'one'])
      await adapter.dispose()
      await db.close()
    })

    it('transactions commit and roll back on the handle, with savepoints', async () => {
      const db = await openDb('tx')
      const adapter = await new PrismaDepot(db).connect()

      const tx = await adapter.startTransaction()
      expect(tx.options).toEqual({ usePhantomQuery: true })
      expect(tx.provider).toBe('sqlite')
      await tx.executeRaw(q('INSERT INTO "Counter" VALUES (1, 10)'))
      // A read outside answers while the transaction is open, from the committed state;
      // a write outside waits until the transaction ends.
      expect((await adapter.queryRaw(q('SELECT count(*) FROM "Counter"'))).rows[0][0]).toBe('0')
      let writeDone = false
      const write = adapter.executeRaw(q('INSERT INTO "Counter" VALUES (2, 20)')).then((n) => ((writeDone = true), n))
      await sleep(30)
      expect(writeDone).toBe(false)
      expect((await tx.queryRaw(q('SELECT value FROM "Counter"'))).rows).toEqual([['10']])
      await tx.commit()
      expect(await write).toBe(1)
      await adapter.executeRaw(q('DELETE FROM "Counter" WHERE id = 2'))

      const rolledBack = await adapter.startTransaction('SERIALIZABLE')
      await rolledBack.executeRaw(q('UPDATE "Counter" SET value = 99'))
      await rolledBack.rollback()
      await rolledBack.rollback() // ended already: nothing to do
      expect((await adapter.queryRaw(q('SELECT value FROM "Counter"'))).rows).toEqual([['10']])
      expect(await causeOf(rolledBack.queryRaw(q('SELECT 1')))).toMatchObject({ kind: 'TransactionAlreadyClosed', originalCode: 'ERR_CLOSED' })

      const nested = await adapter.startTransaction()
      await nested.executeRaw(q('UPDATE "Counter" SET value = 11'))
      await nested.createSavepoint('prisma_sp_0')
      await nested.executeRaw(q('UPDATE "Counter" SET value = 12'))
      await nested.rollbackToSavepoint('prisma_sp_0')
      await nested.releaseSavepoint('prisma_sp_0')
      await nested.commit()
      expect((await adapter.queryRaw(q('SELECT value FROM "Counter"'))).rows).toEqual([['11']])

      expect(await causeOf(adapter.startTransaction('READ COMMITTED'))).toEqual({ kind: 'InvalidIsolationLevel', level: 'READ COMMITTED' })
      await adapter.dispose()
      await db.close()
    })

    it('two concurrent transactions from two tasks never interleave', async () => {
      const db = await openDb('tx-concurrent')
      const adapter = await new PrismaDepot(db).connect()
      await adapter.executeRaw(q('INSERT INTO "Counter" VALUES (1, 0)'))
      const rounds = 25
      const task = async () => {
        for (let i = 0; i < rounds; i++) {
          const tx = await adapter.startTransaction()
          // Read, yield to the other task, write back: lost updates if the two interleaved.
          const [[value]] = (await tx.queryRaw(q('SELECT value FROM "Counter" WHERE id = 1'))).rows
          await sleep(1)
          await tx.executeRaw(q('UPDATE "Counter" SET value = ? WHERE id = 1', [Number(value) + 1]))
          await tx.commit()
        }
      }
      await Promise.all([task(), task()])
      expect((await adapter.queryRaw(q('SELECT value FROM "Counter" WHERE id = 1'))).rows).toEqual([[String(2 * rounds)]])
      await adapter.dispose()
      await db.close()
    })

    it('maps errors as Prisma SQLite adapters do', async () => {
      const db = await openDb('errors')
      const adapter = await new PrismaDepot(db).connect()
      await adapter.executeRaw(q('INSERT INTO "User"(id, email) VALUES (1, ?)', ['a@x']))

      expect(await causeOf(adapter.executeRaw(q('INSERT INTO "User"(email) VALUES (?)', ['a@x'])))).toEqual({
        kind: 'UniqueConstraintViolation',
        constraint: { fields: ['email'] },
        table: 'User',
        originalCode: 'SQLITE_CONSTRAINT_UNIQUE',
        originalMessage: 'UNIQUE constraint failed: User.email',
      })
      expect(await causeOf(adapter.executeRaw(q('INSERT INTO "User"(id, email) VALUES (1, ?)', ['b@x'])))).toMatchObject({
        kind: 'UniqueConstraintViolation',
        constraint: { fields: ['id'] },
        originalCode: 'SQLITE_CONSTRAINT_PRIMARYKEY',
      })
      expect(await causeOf(adapter.executeRaw(q('INSERT INTO "User"(email) VALUES (?)', [null])))).toMatchObject({
        kind: 'NullConstraintViolation',
        constraint: { fields: ['email'] },
        originalCode: 'SQLITE_CONSTRAINT_NOTNULL',
      })
      expect(await causeOf(adapter.executeRaw(q('INSERT INTO "Post"(title, "authorId") VALUES (?, ?)', ['t', 999])))).toMatchObject({
        kind: 'ForeignKeyConstraintViolation',
        constraint: { foreignKey: {} },
        originalCode: 'SQLITE_CONSTRAINT_FOREIGNKEY',
      })
      expect(await causeOf(adapter.queryRaw(q('SELECT * FROM missing')))).toMatchObject({ kind: 'TableDoesNotExist', table: 'missing' })
      expect(await causeOf(adapter.queryRaw(q('SELECT nope FROM "User"')))).toMatchObject({ kind: 'ColumnNotFound', column: 'nope' })
      expect(await causeOf(adapter.executeRaw(q('INSERT INTO "User"(nope) VALUES (1)')))).toMatchObject({ kind: 'ColumnNotFound', column: 'nope' })
      expect(await causeOf(adapter.queryRaw(q('SELEC 1')))).toMatchObject({ kind: 'sqlite', extendedCode: 1, originalCode: 'SQLITE_ERROR' })
      await adapter.executeScript('CREATE TABLE checked(v INTEGER CHECK (v > 0))')
      expect(await causeOf(adapter.executeRaw(q('INSERT INTO checked VALUES (0)')))).toMatchObject({ kind: 'sqlite', extendedCode: 275 })

      // Errors inside a transaction are mapped too, and leave it usable.
      const tx = await adapter.startTransaction()
      expect(await causeOf(tx.executeRaw(q('INSERT INTO "User"(email) VALUES (?)', ['a@x'])))).toMatchObject({ kind: 'UniqueConstraintViolation' })
      await tx.executeRaw(q('INSERT INTO "User"(email) VALUES (?)', ['z@x']))
      await tx.commit()
      expect((await adapter.queryRaw(q('SELECT count(*) FROM "User"'))).rows).toEqual([['2']])
      await adapter.dispose()
      await db.close()
    })

    it('dispose closes nothing it does not own', async () => {
      // A handle passed in stays open.
      const shared = await openDb('shared')
      const adapter = await new PrismaDepot(shared).connect()
      await adapter.dispose()
      await adapter.dispose() // idempotent
      expect(await causeOf(adapter.queryRaw(q('SELECT 1')))).toEqual({ kind: 'ConnectionClosed' })
      expect(await causeOf(adapter.startTransaction())).toEqual({ kind: 'ConnectionClosed' })
      expect(await shared.get('SELECT 1 AS one')).toEqual({ one: 1n })
      await shared.close()

      // A handle the factory function opened is the adapter's: dispose closes it.
      let owned: Db | undefined
      const factory = new PrismaDepot(async () => (owned = await ctx.depot.openDatabase('owned', { intMode: 'bigint' })))
      const ownedAdapter = await factory.connect()
      expect((await ownedAdapter.queryRaw(q('SELECT 1'))).rows).toEqual([['1']])
      await ownedAdapter.dispose()
      await expect(owned!.get('SELECT 1')).rejects.toMatchObject({ code: 'ERR_CLOSED' })

      // A closed handle reports ConnectionClosed.
      const closing = await openDb('closing')
      const stale = await new PrismaDepot(closing).connect()
      await closing.close()
      expect(await causeOf(stale.queryRaw(q('SELECT 1')))).toMatchObject({ kind: 'ConnectionClosed', originalCode: 'ERR_CLOSED' })

      expect(() => new PrismaDepot({} as Db)).toThrow(TypeError)
    })
  })

  describe('PrismaClient', () => {
    let client: any
    beforeAll(async () => {
      client = await generateClient()
    }, 120_000)

    it('creates, reads, updates and deletes, with every scalar type', async () => {
      const { PrismaClient, Prisma } = client
      const db = await openDb('client-crud')
      const prisma = new PrismaClient({ adapter: new PrismaDepot(db) })
      const created = await prisma.user.create({
        data: {
          email: 'a@x',
          name: 'Ann',
          big: 9007199254740993n,
          active: false,
          born: new Date('2020-01-02T03:04:05.678Z'),
          meta: { a: [1, 'b'], n: null },
          avatar: new Uint8Array([0, 1, 255]),
          balance: new Prisma.Decimal('12.5'),
          score: 1.25,
          posts: { create: [{ title: 'first' }, { title: 'second' }] },
        },
        include: { posts: { orderBy: { id: 'asc' } } },
      })
      expect(created).toMatchObject({
        id: 1,
        email: 'a@x',
        name: 'Ann',
        big: 9007199254740993n,
        active: false,
        born: new Date('2020-01-02T03:04:05.678Z'),
        meta: { a: [1, 'b'], n: null },
        score: 1.25,
        posts: [
          { id: 1, title: 'first', authorId: 1 },
          { id: 2, title: 'second', authorId: 1 },
        ],
      })
      expect([...created.avatar]).toEqual([0, 1, 255])
      expect(created.balance.toString()).toBe('12.5')

      const defaults = await prisma.user.create({ data: { email: 'b@x' } })
      expect(defaults).toMatchObject({ id: 2, name: null, big: 0n, active: true, meta: null, avatar: null, score: 0 })
      expect(defaults.born).toBeInstanceOf(Date)

      expect(await prisma.user.findMany({ where: { big: { gt: 1n } }, select: { email: true } })).toEqual([{ email: 'a@x' }])
      expect(await prisma.user.count({ where: { active: true } })).toBe(1)
      await prisma.user.update({ where: { email: 'b@x' }, data: { name: 'Bob', big: { increment: 5n } } })
      expect(await prisma.user.findUnique({ where: { email: 'b@x' }, select: { name: true, big: true } })).toEqual({ name: 'Bob', big: 5n })
      expect(await prisma.$queryRaw`SELECT count(*) AS n FROM "User"`).toEqual([{ n: 2n }])
      expect(await prisma.$executeRaw`UPDATE "User" SET score = ${2.5}`).toBe(2)
      await prisma.post.deleteMany({})
      await prisma.user.delete({ where: { id: 1 } })
      expect(await prisma.user.findMany({ select: { id: true } })).toEqual([{ id: 2 }])
      await prisma.$disconnect()
      await db.close()
    })

    it('reports unique and foreign key violations and a missing table with their Prisma codes', async () => {
      const db = await openDb('client-errors')
      const prisma = new PrismaClient_(client, db)
      await prisma.user.create({ data: { email: 'a@x' } })
      await expect(prisma.user.create({ data: { email: 'a@x' } })).rejects.toMatchObject({ code: 'P2002' })
      await expect(prisma.post.create({ data: { title: 't', authorId: 999 } })).rejects.toMatchObject({ code: 'P2003' })
      await db.exec('DROP TABLE "Counter"')
      await expect(prisma.counter.findMany()).rejects.toMatchObject({ code: 'P2021' })
      await prisma.$disconnect()
      await db.close()
    })

    it('$transaction commits, rolls back, and two concurrent ones never interleave', async () => {
      const db = await openDb('client-tx')
      const prisma = new PrismaClient_(client, db)
      await prisma.counter.create({ data: { id: 1, value: 0 } })
      await prisma.$transaction(async (tx: any) => {
        await tx.counter.update({ where: { id: 1 }, data: { value: 100 } })
      })
      await expect(
        prisma.$transaction(async (tx: any) => {
          await tx.counter.update({ where: { id: 1 }, data: { value: 5 } })
          throw new Error('undo')
        }),
      ).rejects.toThrow('undo')
      expect(await prisma.counter.findUnique({ where: { id: 1 } })).toEqual({ id: 1, value: 100 })

      const rounds = 10
      const task = async () => {
        for (let i = 0; i < rounds; i++) {
          await prisma.$transaction(async (tx: any) => {
            const { value } = await tx.counter.findUniqueOrThrow({ where: { id: 1 } })
            await sleep(1)
            await tx.counter.update({ where: { id: 1 }, data: { value: value + 1 } })
          })
        }
      }
      await Promise.all([task(), task()])
      expect(await prisma.counter.findUnique({ where: { id: 1 } })).toEqual({ id: 1, value: 100 + 2 * rounds })
      // Batch transactions too.
      const [users, counters] = await prisma.$transaction([prisma.user.count(), prisma.counter.count()])
      expect([users, counters]).toEqual([0, 1])
      await prisma.$disconnect()
      // $disconnect disposes the adapter, which leaves the handle it was given open.
      expect(await db.get('SELECT value FROM "Counter"')).toEqual({ value: BigInt(100 + 2 * rounds) })
      await db.close()
    })
  })
})

/** A PrismaClient from the generated module, over `db`. */
function PrismaClient_(client: any, db: Db) {
  return new client.PrismaClient({ adapter: new PrismaDepot(db) })
}
