//! Compaction: the live versions of the base and every sealed log, copied into a new base while
//! commits and reads go on; the index then points at the new base and the replaced files go.

use std::collections::HashMap;
use std::sync::Arc;

use super::base::{sync_dir, BaseWriter};
use super::record::Record;
use super::segment::{Kind, Segment};
use super::state::{Loc, State};
use super::Inner;
use crate::{PageNo, StoreError, Txid, PAGE_SIZE};

impl Inner {
    /// Makes one base file of the base and every sealed log, then deletes them.
    pub(super) fn compact(&self) -> Result<(), StoreError> {
        // 1. Seal the current log; take the state the sealed files add up to.
        let (number, replaced, records, versions) = {
            let mut w = self.writer.lock().unwrap();
            let number = w.next_number;
            w.next_number += 1;
            w.roll(&self.dir)?;
            // The new log got the next number: everything before `number` is replaced.
            let state = self.state.read().unwrap();
            let replaced: Vec<Arc<Segment>> =
                state.segments.range(..number).map(|(_, s)| s.clone()).collect();
            let (records, versions) = snapshot(&state);
            (number, replaced, records, versions)
        };
        // 2. Copy the live versions into the new base, without holding a lock.
        let mut base = BaseWriter::create(&self.dir, number)?;
        let files: HashMap<u32, &Arc<Segment>> = replaced.iter().map(|s| (s.number, s)).collect();
        let mut page = vec![0u8; PAGE_SIZE];
        let mut moved = HashMap::with_capacity(versions.len());
        // Versions shared by a restore or a fork are copied once and stay shared.
        let mut copied: HashMap<(u32, u64), u64> = HashMap::with_capacity(versions.len());
        for (id, no, txid, loc) in versions {
            if let Some(&offset) = copied.get(&(loc.file, loc.offset)) {
                moved.insert((id, no, txid), offset);
                base.shared(id, no, txid, loc.checksum, offset);
                continue;
            }
            let source = files
                .get(&loc.file)
                .ok_or_else(|| StoreError::Corrupt(format!("compaction: no file {}", loc.file)))?;
            source.read_exact_at(&mut page, loc.offset)?;
            moved.insert((id, no, txid), base.offset());
            copied.insert((loc.file, loc.offset), base.offset());
            base.page(id, no, txid, loc.checksum, &page)?;
        }
        let segment = Arc::new(base.finish(records)?);
        let base_bytes = segment.len();
        // 3. Point the index at the new base; versions dropped meanwhile are dead space in it.
        {
            let mut state = self.state.write().unwrap();
            state.segments.insert(number, segment.clone());
            for db in state.dbs.values_mut() {
                let id = db.id;
                for (no, txid, loc) in db.timeline.versions.iter_mut() {
                    if loc.file < number {
                        if let Some(offset) = moved.remove(&(id, no, txid)) {
                            *loc = Loc { file: number, offset, checksum: loc.checksum };
                        }
                    }
                }
            }
            segment.add_dead(moved.len() as u64 * PAGE_SIZE as u64);
            for s in &replaced {
                state.segments.remove(&s.number);
            }
        }
        // 4. The replaced files are unreachable now (a reader still holding one reads on).
        let freed: u64 = replaced.iter().filter(|s| s.kind == Kind::Log).map(|s| s.len()).sum();
        for s in &replaced {
            let _ = std::fs::remove_file(&s.path);
        }
        let _ = sync_dir(&self.dir);
        let mut w = self.writer.lock().unwrap();
        w.sealed_bytes = w.sealed_bytes.saturating_sub(freed);
        w.base_bytes = base_bytes;
        Ok(())
    }
}

/// The records that describe every database, and every version, sorted by database and page.
type Snapshot = (Vec<Record>, Vec<(u32, PageNo, Txid, Loc)>);

fn snapshot(state: &State) -> Snapshot {
    let mut records = Vec::new();
    let mut versions = Vec::new();
    let mut ids: Vec<u32> = state.dbs.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let db = &state.dbs[&id];
        let (head, t) = (db.timeline.head, &db.timeline);
        records.push(Record::Database { id, name: db.name.clone() });
        records.push(Record::Head {
            id,
            txid: head.txid,
            size_pages: head.size_pages,
            generation: head.generation,
        });
        if !db.hints.is_empty() {
            records.push(Record::Hints { id, pages: db.hints.clone() });
        }
        for c in t.log.iter() {
            records.push(Record::Logged {
                id,
                txid: c.txid,
                time_ms: c.time_ms,
                pages: c.pages,
                size_pages: c.size_pages,
            });
        }
        for (commit_id, txid) in t.log.ids() {
            records.push(Record::CommitMeta { id, txid, commit_id, time_ms: 0, size_pages: 0 });
        }
        for (txid, size_pages) in t.versions.shrinks() {
            records.push(Record::Shrink { id, txid, size_pages });
        }
        versions.extend(t.versions.iter().map(|(no, txid, loc)| (id, no, txid, *loc)));
    }
    (records, versions)
}
