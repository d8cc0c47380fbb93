//! Depots written by the SQLite-based layout (one `depot.sqlite3` file in WAL mode, schema
//! versions 1 to 5) open with this build: at open, a directory holding that file and no log or
//! base is migrated to schema 5 in place, then imported into a base file (every page version with
//! its txid, heads, generations, hints, recent commit ids and shrinks). The SQLite files are
//! removed once the base is synced and renamed into place; a crash before that imports again.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::base::BaseWriter;
use super::record::Record;
use crate::{StoreError, PAGE_SIZE};

const STORE_FILE: &str = "depot.sqlite3";
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("importing {STORE_FILE}: {e}"))
}

/// Schema migrations, in order; migration `i` brings the store to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: heads, page versions, the commit log.
    "CREATE TABLE IF NOT EXISTS databases(
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         generation INTEGER NOT NULL,
         head_txid INTEGER NOT NULL,
         size_pages INTEGER NOT NULL,
         page_size INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS pages(
         db INTEGER NOT NULL,
         page INTEGER NOT NULL,
         txid INTEGER NOT NULL,
         checksum INTEGER NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY(db, page, txid));
     CREATE TABLE IF NOT EXISTS commits(
         db INTEGER NOT NULL,
         commit_id BLOB NOT NULL,
         txid INTEGER NOT NULL,
         page_count INTEGER NOT NULL,
         committed_at_ms INTEGER NOT NULL,
         PRIMARY KEY(db, commit_id)) WITHOUT ROWID;",
    // 2: shrinks per txid, compacted once they leave the history window.
    "CREATE TABLE IF NOT EXISTS shrinks(
         db INTEGER NOT NULL,
         txid INTEGER NOT NULL,
         size_pages INTEGER NOT NULL,
         PRIMARY KEY(db, txid)) WITHOUT ROWID;",
    // 3: fewer index writes per commit. The commit log is trimmed by a scan every 256 commits
    // instead of through an index; pages are found by txid through an index only when a history
    // window is on (created at open then).
    "DROP INDEX IF EXISTS commits_by_txid;
     DROP INDEX IF EXISTS pages_by_txid;",
    // 4: the pages a database's last session used first, preloaded by the next open.
    "CREATE TABLE IF NOT EXISTS hints(db INTEGER PRIMARY KEY, pages BLOB NOT NULL);",
    // 5: the newest version of each page keyed by rowid (`db << 32 | page`): a commit overwrites
    // it in place (one b-tree cell, no index), a run of pages is one rowid range. Superseded
    // versions kept for a history window move to page_history, with the txid that superseded them.
    "CREATE TABLE page_data(
         key INTEGER PRIMARY KEY,
         txid INTEGER NOT NULL,
         checksum INTEGER NOT NULL,
         data BLOB NOT NULL);
     CREATE TABLE page_history(
         db INTEGER NOT NULL,
         page INTEGER NOT NULL,
         txid INTEGER NOT NULL,
         until INTEGER NOT NULL,
         checksum INTEGER NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY(db, page, txid));
     CREATE INDEX page_history_by_until ON page_history(db, until);
     INSERT INTO page_data(key, txid, checksum, data)
         SELECT (db << 32) | page, max(txid), checksum, data FROM pages GROUP BY db, page;
     INSERT INTO page_history(db, page, txid, until, checksum, data)
         SELECT p.db, p.page, p.txid,
                (SELECT min(q.txid) FROM pages q WHERE q.db = p.db AND q.page = p.page AND q.txid > p.txid),
                p.checksum, p.data
         FROM pages p
         WHERE p.txid < (SELECT max(q.txid) FROM pages q WHERE q.db = p.db AND q.page = p.page);
     DROP TABLE pages;",
];

fn migrate(c: &Connection) -> Result<(), StoreError> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "depot schema version {version} is newer than this build understands ({SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // Each step is one transaction with its version bump: a crash leaves a whole version.
        c.execute_batch(&format!("BEGIN IMMEDIATE; {sql} PRAGMA user_version = {}; COMMIT;", i + 1))
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Imports `dir`'s `depot.sqlite3`, if there is one, into base file `number`; whether it did.
pub fn import(dir: &Path, number: u32) -> Result<bool, StoreError> {
    let path = dir.join(STORE_FILE);
    if !path.exists() {
        return Ok(false);
    }
    let c = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(unavailable)?;
    c.execute_batch("PRAGMA busy_timeout = 5000;").map_err(unavailable)?;
    migrate(&c)?;
    let mut base = BaseWriter::create(dir, number)?;
    let mut records = Vec::new();
    let mut dbs = c
        .prepare("SELECT id, name, generation, head_txid, size_pages, page_size FROM databases ORDER BY id")
        .map_err(unavailable)?;
    let rows = dbs
        .query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(unavailable)?;
    for row in rows {
        let (id, name, generation, txid, size_pages, page_size) = row.map_err(unavailable)?;
        if page_size as usize != PAGE_SIZE {
            return Err(StoreError::Corrupt(format!(
                "database '{name}' has page size {page_size}, expected {PAGE_SIZE}"
            )));
        }
        records.push(Record::Database { id, name });
        records.push(Record::Head { id, txid: txid as u64, size_pages, generation: generation as u64 });
    }
    let hints = c.prepare("SELECT db, pages FROM hints").and_then(|mut s| {
        s.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))?
            .collect::<Result<Vec<_>, _>>()
    });
    for (id, pages) in hints.map_err(unavailable)? {
        records.push(Record::Hints { id, pages: crate::store::decode_hints(&pages) });
    }
    // Sizes per commit were not kept by that layout: imported commits say 0.
    let commits = c
        .prepare("SELECT db, commit_id, txid, committed_at_ms FROM commits ORDER BY db, txid")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        });
    for (id, commit_id, txid, time_ms) in commits.map_err(unavailable)? {
        let commit_id = u128::from_be_bytes(
            commit_id.try_into().map_err(|_| StoreError::Corrupt("a commit id is not 16 bytes".into()))?,
        );
        records.push(Record::CommitMeta {
            id,
            txid: txid as u64,
            commit_id,
            time_ms: time_ms as u64,
            size_pages: 0,
        });
    }
    let shrinks =
        c.prepare("SELECT db, txid, size_pages FROM shrinks ORDER BY db, txid").and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        });
    for (id, txid, size_pages) in shrinks.map_err(unavailable)? {
        records.push(Record::Shrink { id, txid: txid as u64, size_pages });
    }
    // Newest versions, then those kept for a history window.
    let mut pages = c
        .prepare(
            "SELECT key >> 32, key & 4294967295, txid, checksum, data FROM page_data
             UNION ALL SELECT db, page, txid, checksum, data FROM page_history
             ORDER BY 1, 2, 3",
        )
        .map_err(unavailable)?;
    let mut rows = pages.query([]).map_err(unavailable)?;
    while let Some(r) = rows.next().map_err(unavailable)? {
        let (id, no, txid, checksum) = (
            r.get::<_, u32>(0).map_err(unavailable)?,
            r.get::<_, u32>(1).map_err(unavailable)?,
            r.get::<_, i64>(2).map_err(unavailable)?,
            r.get::<_, u32>(3).map_err(unavailable)?,
        );
        let data = r.get_ref(4).and_then(|v| Ok(v.as_blob()?)).map_err(unavailable)?;
        if data.len() != PAGE_SIZE {
            return Err(StoreError::Corrupt(format!(
                "page {no} of database id {id} is {} bytes",
                data.len()
            )));
        }
        base.page(id, no, txid as u64, checksum, data)?;
    }
    drop(rows);
    drop(pages);
    drop(dbs);
    base.finish(records)?;
    tracing::info!(dir = %dir.display(), "imported the SQLite-based depot into a base file");
    Ok(true)
}

/// Removes the SQLite-based layout's files once a base holds what they held.
pub fn remove_imported(dir: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{STORE_FILE}{suffix}")));
    }
}
