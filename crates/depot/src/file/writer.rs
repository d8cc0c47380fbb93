//! The log being appended to: frames written into preallocated, zeroed space and synced, sealing
//! and starting log files.

use std::path::Path;
use std::sync::Arc;

use super::base::sync_dir;
use super::record::{encode_frame, Record};
use super::segment::{file_name, io_error, Kind, Segment, HEADER};
use crate::StoreError;

/// A log file takes no new commit once it is this long (a bigger commit still goes in whole).
const LOG_BYTES: u64 = 64 << 20;

/// Log files grow by this much zeroed space at a time.
const PREALLOCATE: u64 = 1 << 20;

/// Sealed logs are compacted once they hold at least this much (and at least the base's size).
const COMPACT_MIN: u64 = 64 << 20;

/// The log being appended to.
pub(super) struct Writer {
    pub(super) log: Arc<Segment>,
    /// Where the next frame goes.
    pub(super) end: u64,
    /// Bytes of the log file (zeros past `end`).
    pub(super) allocated: u64,
    /// The number the next new file gets.
    pub(super) next_number: u32,
    /// Bytes of sealed logs not compacted yet, and of the base.
    pub(super) sealed_bytes: u64,
    pub(super) base_bytes: u64,
    pub(super) buf: Vec<u8>,
}

impl Writer {
    /// Appends `records` (each with the page bytes that follow it) as frames, and syncs them;
    /// returns the offset of each frame. Nothing is applied to the state here.
    pub(super) fn append(
        &mut self,
        dir: &Path,
        records: &[(&Record, &[&[u8]])],
    ) -> Result<Vec<u64>, StoreError> {
        let mut offsets = self.encode(records);
        if self.end + self.buf.len() as u64 > LOG_BYTES && self.end > HEADER {
            self.roll(dir)?;
            offsets = self.encode(records);
        }
        let need = self.end + self.buf.len() as u64;
        if need > self.allocated {
            self.preallocate(need)?;
        }
        let log = &self.log;
        use std::os::unix::fs::FileExt;
        log.file.write_all_at(&self.buf, self.end).map_err(|e| io_error("cannot write", &log.path, e))?;
        log.file.sync_data().map_err(|e| io_error("cannot sync", &log.path, e))?;
        // Only a frame that is written and synced moves the end: after a failure the next frame
        // overwrites this one.
        self.end = need;
        Ok(offsets)
    }

    fn encode(&mut self, records: &[(&Record, &[&[u8]])]) -> Vec<u64> {
        self.buf.clear();
        records
            .iter()
            .map(|(record, data)| {
                let at = self.end + self.buf.len() as u64;
                encode_frame(&mut self.buf, self.log.salt, at, record, data);
                at
            })
            .collect()
    }

    /// Extends the log with zeros up to at least `need` bytes, synced (the file size changes).
    fn preallocate(&mut self, need: u64) -> Result<(), StoreError> {
        let target = need.div_ceil(PREALLOCATE) * PREALLOCATE;
        let zeros = vec![0u8; (target - self.allocated) as usize];
        let log = &self.log;
        use std::os::unix::fs::FileExt;
        let written = log.file.write_all_at(&zeros, self.allocated).and_then(|()| log.file.sync_all());
        self.allocated = log.len().max(self.allocated);
        written.map_err(|e| io_error("cannot grow", &log.path, e))?;
        self.allocated = target;
        Ok(())
    }

    /// Seals the current log and starts the next one.
    pub(super) fn roll(&mut self, dir: &Path) -> Result<(), StoreError> {
        let next = self.next_number;
        if self.end > HEADER {
            let seal = Record::Seal { next };
            self.encode(&[(&seal, &[])]);
            let need = self.end + self.buf.len() as u64;
            if need > self.allocated {
                self.preallocate(need)?;
            }
            use std::os::unix::fs::FileExt;
            let log = &self.log;
            log.file
                .write_all_at(&self.buf, self.end)
                .and_then(|()| log.file.sync_data())
                .map_err(|e| io_error("cannot seal", &log.path, e))?;
            self.end = need;
            self.sealed_bytes += self.allocated;
        }
        let log = Segment::create(dir.join(file_name(next, Kind::Log)), next, Kind::Log)?;
        sync_dir(dir)?;
        self.next_number += 1;
        self.log = Arc::new(log);
        self.end = HEADER;
        self.allocated = HEADER;
        Ok(())
    }

    pub(super) fn compaction_due(&self) -> bool {
        self.sealed_bytes >= COMPACT_MIN.max(self.base_bytes)
    }
}
