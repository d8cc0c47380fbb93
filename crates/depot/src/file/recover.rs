//! Open: the state rebuilt from the directory's files (the newest base, then the logs after it),
//! leftovers of an unfinished compaction removed, and a writer ready to append.

use std::path::Path;
use std::sync::Arc;

use super::base::{self, sync_dir};
use super::legacy;
use super::record::Record;
use super::segment::{file_name, io_error, parse_name, scan, Kind, Segment, HEADER};
use super::state::State;
use super::writer::Writer;
use crate::history::now_ms;
use crate::{Retention, StoreError};

/// Rebuilds the state from the directory's files and returns it with a writer ready to append.
pub(super) fn recover(dir: &Path, retention: Retention) -> Result<(State, Writer), StoreError> {
    let mut files: Vec<(u32, Kind)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error("cannot list", dir, e))? {
        let entry = entry.map_err(|e| io_error("cannot list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            // A compaction that did not finish.
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(f) = parse_name(&name) {
            files.push(f);
        }
    }
    if files.is_empty() && legacy::import(dir, 1)? {
        files.push((1, Kind::Base));
    }
    files.sort_unstable_by_key(|f| f.0);
    // Replayed keeping everything: a restore or fork record needs the versions and the commit
    // info of its point as they were when it was written, whatever window this store is opened
    // with; the window applies once everything is loaded (`compact_all`).
    let mut state = State::new(Retention::KEEP_ALL);
    let base = files.iter().filter(|f| f.1 == Kind::Base).map(|f| f.0).max();
    let mut base_bytes = 0;
    if let Some(b) = base {
        let segment = Arc::new(Segment::open(dir.join(file_name(b, Kind::Base)), b, Kind::Base)?);
        state.segments.insert(b, segment.clone());
        base::load(&segment, |at, record| state.apply(b, at, &record))?;
        base_bytes = segment.len();
        // A compaction that stopped before deleting what its base replaced.
        for &(n, kind) in files.iter().filter(|f| f.0 < b) {
            let _ = std::fs::remove_file(dir.join(file_name(n, kind)));
        }
    }
    legacy::remove_imported(dir);
    let logs: Vec<u32> = files.iter().filter(|f| f.1 == Kind::Log && Some(f.0) > base).map(|f| f.0).collect();
    let mut last: Option<(Arc<Segment>, u64, bool)> = None;
    let mut sealed_bytes = 0;
    for (i, &n) in logs.iter().enumerate() {
        let segment = Arc::new(Segment::open(dir.join(file_name(n, Kind::Log)), n, Kind::Log)?);
        state.segments.insert(n, segment.clone());
        let mut sealed = false;
        let end = scan(&segment, HEADER, segment.len(), |at, record| {
            sealed |= matches!(record, Record::Seal { .. });
            state.apply(n, at, &record)
        })?;
        if i + 1 < logs.len() {
            if !sealed {
                return Err(StoreError::Corrupt(format!(
                    "{}: the log ends at byte {end} without its seal, and later logs exist",
                    segment.path.display()
                )));
            }
            sealed_bytes += segment.len();
        } else {
            last = Some((segment, end, sealed));
        }
    }
    state.retention = retention;
    state.compact_all(now_ms());
    let max_number = files.iter().map(|f| f.0).max().unwrap_or(0);
    let writer = match last {
        Some((log, end, false)) => {
            let allocated = log.len();
            Writer {
                log,
                end,
                allocated,
                next_number: max_number + 1,
                sealed_bytes,
                base_bytes,
                buf: Vec::new(),
            }
        }
        sealed_last => {
            if let Some((log, _, _)) = sealed_last {
                sealed_bytes += log.len();
            }
            let n = max_number + 1;
            let log = Arc::new(Segment::create(dir.join(file_name(n, Kind::Log)), n, Kind::Log)?);
            sync_dir(dir)?;
            state.segments.insert(n, log.clone());
            Writer {
                log,
                end: HEADER,
                allocated: HEADER,
                next_number: n + 1,
                sealed_bytes,
                base_bytes,
                buf: Vec::new(),
            }
        }
    };
    Ok((state, writer))
}
