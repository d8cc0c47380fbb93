'use strict'
// depot-sqlite/durable: Cloudflare Durable Objects' SQLite storage API over a NativeDatabaseHandle,
// so code written for `ctx.storage` runs unchanged. Types: durable.d.ts.
//
//   const storage = durableStorage(handle)          // what `ctx.storage` would be
//   storage.sql.exec('SELECT * FROM t WHERE id = ?', 1).toArray()
//
// `sql.exec` is synchronous there, so it is here: it takes the handle's synchronous call path,
// which blocks the JS thread until the database's worker answers (`executeSync`). That costs the
// event loop the length of each call (a point select: tens of microseconds on the file store, a
// round trip on PostgreSQL when the page is not cached), and it is bounded (the call's deadline).
// A call that could only wait for JavaScript (an interactive transaction of the same database is
// open and awaiting) fails at once with ERR_WOULD_DEADLOCK instead of hanging.
//
// Differences from Cloudflare, each on purpose:
// - A cursor is read whole when `exec` returns (Cloudflare reads lazily); `rowsRead` counts the
//   rows returned, `rowsWritten` the rows changed (Cloudflare counts rows scanned and index writes).
// - `onNextSessionRestoreBookmark` takes effect at the next `openDurableStorage(depot, name)`: the
//   request is a row of `_depot_durable` in the database itself, which the restore then removes.
// - `transaction(closure)` runs `closure` in an interactive transaction; `sql.exec` inside it joins
//   it. Other requests that call `sql.exec` meanwhile join it too (Durable Objects' input gates
//   keep them out; an actor runtime should serialize an actor's requests the same way).

const { codedError, isHandle } = require('../lib/shared.js')

const DEPOT_OF = Symbol.for('depot-sqlite.depot')
const MARKER = '_depot_durable'
/** A statement that starts or ends a transaction, anywhere in the text (comments ignored). */
const CONTROL = /(^|;)\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i
const COMMENTS = /--[^\n]*|\/\*[\s\S]*?(\*\/|$)/g
const BOOKMARK = /^[0-9a-f]{16}$/

/** A BLOB as Durable Objects give it: an ArrayBuffer of its own. */
function value(v) {
  return Buffer.isBuffer(v) ? v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) : v
}

/** Rows of one statement, already read, handed out as Durable Objects' cursor does. */
class SqlStorageCursor {
  #columns
  #rows
  #next = 0
  #rowsRead
  #rowsWritten

  constructor(result) {
    this.#columns = result.columns
    this.#rows = result.rows
    this.#rowsRead = result.rows.length
    this.#rowsWritten = result.columns.length === 0 || result.changes > 0 ? result.changes : 0
  }

  get columnNames() {
    return this.#columns.slice()
  }

  get rowsRead() {
    return this.#rowsRead
  }

  get rowsWritten() {
    return this.#rowsWritten
  }

  #object(row) {
    const o = {}
    for (let c = 0; c < this.#columns.length; c++) o[this.#columns[c]] = value(row[c])
    return o
  }

  next() {
    if (this.#next >= this.#rows.length) return { done: true, value: undefined }
    return { done: false, value: this.#object(this.#rows[this.#next++]) }
  }

  [Symbol.iterator]() {
    return this
  }

  /** The rows not read yet, as objects. */
  toArray() {
    const out = []
    for (let r = this.next(); !r.done; r = this.next()) out.push(r.value)
    return out
  }

  /** The one row left; throws unless exactly one is. */
  one() {
    const rows = this.toArray()
    if (rows.length !== 1) {
      throw codedError('ERR_INVALID_ARGUMENT', `one() expects exactly one row, the statement returned ${rows.length === 0 ? 'none' : rows.length}`)
    }
    return rows[0]
  }

  /** The rows not read yet, as arrays (in `columnNames` order). */
  *raw() {
    while (this.#next < this.#rows.length) yield this.#rows[this.#next++].map(value)
  }
}

/**
 * What `ctx.storage` is to a SQLite-backed Durable Object, over `db` (a NativeDatabaseHandle
 * opened by `Depot.openDatabase`, whose depot keeps history when bookmarks are used).
 */
function durableStorage(db) {
  if (!isHandle(db)) throw codedError('ERR_INVALID_ARGUMENT', 'durableStorage(db) needs a NativeDatabaseHandle from Depot#openDatabase()')
  // The transaction `sql.exec` joins, while `transactionSync`/`transaction` run.
  let current = null
  const on = () => current ?? db

  const sql = {
    exec(query, ...bindings) {
      if (typeof query !== 'string') throw codedError('ERR_INVALID_ARGUMENT', 'sql.exec(query) needs a string')
      if (CONTROL.test(query.replace(COMMENTS, ' '))) {
        throw codedError('ERR_INVALID_ARGUMENT', 'transaction statements are not allowed in sql.exec(); use storage.transactionSync() or storage.transaction()')
      }
      const target = on()
      if (bindings.length > 0) return new SqlStorageCursor(target.executeSync(query, bindings))
      const results = target.executeScriptSync(query)
      return new SqlStorageCursor(results[results.length - 1] ?? { columns: [], rows: [], changes: 0 })
    },
    /** Bytes of the database: pages times the page size. */
    get databaseSize() {
      const pages = on().executeSync('PRAGMA page_count').rows[0][0]
      return Number(pages) * 4096
    },
  }

  return {
    sql,

    /** Runs `fn()` in a transaction, synchronously: a throw rolls it back. Nested: a savepoint. */
    transactionSync(fn) {
      if (typeof fn !== 'function') throw codedError('ERR_INVALID_ARGUMENT', 'transactionSync(fn) needs a function')
      const run = (tx) => {
        const outer = current
        current = tx
        try {
          return fn()
        } finally {
          current = outer
        }
      }
      return current ? current.transactionSync(run) : db.transactionSync(run)
    },

    /** Runs the async `closure(txn)` in a transaction; `txn.rollback()` discards its changes. */
    async transaction(closure) {
      if (typeof closure !== 'function') throw codedError('ERR_INVALID_ARGUMENT', 'transaction(closure) needs a function')
      return db.transaction(async (tx) => {
        let rolledBack = false
        const txn = {
          rollback() {
            rolledBack = true
          },
        }
        const outer = current
        current = tx
        try {
          const result = await closure(txn)
          if (rolledBack && tx.active) await tx.rollback()
          return result
        } finally {
          current = outer
        }
      })
    },

    /** The bookmark of the newest commit. */
    getCurrentBookmark() {
      return db.bookmark()
    },

    /** The bookmark of the newest commit at or before `time` (a Date or ms since the epoch). */
    getBookmarkForTime(time) {
      const depot = db[DEPOT_OF]
      if (!depot) return Promise.reject(codedError('ERR_INVALID_ARGUMENT', 'the handle was not opened by Depot#openDatabase()'))
      return depot.bookmarkForTime(db.name, time)
    },

    /**
     * Asks for the database to be restored to `bookmark` at the next `openDurableStorage()`;
     * resolves with the bookmark of the state now, which undoes it the same way.
     */
    async onNextSessionRestoreBookmark(bookmark) {
      if (typeof bookmark !== 'string' || !BOOKMARK.test(bookmark)) throw codedError('ERR_INVALID_ARGUMENT', 'bookmark must be a bookmark string')
      const now = await db.bookmark()
      await db.exec(`CREATE TABLE IF NOT EXISTS ${MARKER}(id INTEGER PRIMARY KEY CHECK (id = 1), restore TEXT NOT NULL)`)
      await db.run(`INSERT INTO ${MARKER}(id, restore) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET restore = excluded.restore`, [bookmark])
      return now
    },
  }
}

/**
 * Opens database `name` of `depot` for a new session and returns its storage, restoring it first
 * when the last session asked for it (`onNextSessionRestoreBookmark`). `options` go to
 * `openDatabase`.
 */
async function openDurableStorage(depot, name, options) {
  let db = await depot.openDatabase(name, options)
  const pending = await pendingRestore(db)
  if (pending) {
    await db.close()
    let failed
    await depot.restore(name, pending).catch((error) => {
      failed = error
    })
    db = await depot.openDatabase(name, options)
    // A failure that may pass (the store unreachable) keeps the request for the next session.
    if (failed && failed.code !== 'ERR_HISTORY_UNAVAILABLE') {
      await db.close()
      throw failed
    }
    // Done (a bookmark newer than the request still holds it), or impossible for good (the point
    // left the history): either way the request goes, so that the next session can start.
    if (await pendingRestore(db)) await db.exec(`DROP TABLE ${MARKER}`)
    if (failed) {
      await db.close()
      throw codedError('ERR_HISTORY_UNAVAILABLE', `the restore the last session asked for (to ${pending}) is no longer possible and was dropped: ${failed.message}`)
    }
  }
  return durableStorage(db)
}

async function pendingRestore(db) {
  const table = await db.query(`SELECT 1 FROM sqlite_schema WHERE name = '${MARKER}'`)
  if (table.rows.length === 0) return null
  const rows = (await db.query(`SELECT restore FROM ${MARKER} WHERE id = 1`)).rows
  return rows.length === 0 ? null : rows[0][0]
}

module.exports = { durableStorage, openDurableStorage, SqlStorageCursor }
