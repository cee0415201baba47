//! The write-ahead log: segment files of CRC-framed records, group-committed with one
//! write and one fsync per batch.
//!
//! Layout: `DIR/wal-<seq:016>.log`. Only the newest segment is written; when it passes
//! `segment_max_bytes` a new one is started whose first record is the current hard state,
//! so older segments can be deleted wholesale once a snapshot covers their entries.
//! Truncating a conflicting suffix is a logical `Truncate` record (replay drops the
//! entries), which keeps the files append-only.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{self, HardState, LogRecord, Record};
use super::{fsync_dir, StorageError};

/// Tunables for the WAL.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// `false` only for `--bug no-fsync`: writes reach the page cache but are never forced
    /// to disk, so a power loss (or a simulated one) loses acknowledged data.
    pub fsync: bool,
    /// The `--lose-unsynced` file layer: with `fsync` off, `sync` leaves records in
    /// process memory and writes them (still without fsync) only every
    /// `LAZY_WRITE_INTERVAL` or once `LAZY_WRITE_BYTES` are queued, as a kernel's
    /// writeback would. Skipping fsync alone loses data only when the machine loses
    /// power, which a test harness cannot do to a container; keeping the unsynced writes
    /// in the process makes the same loss happen on `kill -9`. With `fsync` on, records
    /// are written and fsynced together, so nothing is ever unsynced and this is a no-op.
    pub lazy_write: bool,
    pub segment_max_bytes: u64,
}

/// `--bug no-fsync`: how long acknowledged records may sit unwritten in memory.
pub const LAZY_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// `--bug no-fsync`: queued bytes that force a write.
pub const LAZY_WRITE_BYTES: usize = 1 << 20;

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fsync: true,
            lazy_write: false,
            segment_max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Highest entry index ever written to this segment (conservative after truncation).
    max_index: u64,
}

/// What a WAL replay produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalState {
    pub hard_state: HardState,
    /// Contiguous entries, in index order.
    pub entries: Vec<LogRecord>,
    /// Index of the last snapshot mark replayed: entries continue after it.
    pub base: Option<u64>,
}

/// Applies one record to the replay state. An entry at or below the last index replaces
/// the suffix from that index (a leader overwrote it).
///
/// Replay may start mid-history: compaction deletes the oldest segments, so the first
/// records seen can refer to entries we no longer have. A jump forward in indexes therefore
/// restarts the log at the new entry instead of failing here; `Storage::open` then checks
/// that what remains follows the snapshot exactly, which catches real gaps.
fn replay(state: &mut WalState, rec: Record) {
    match rec {
        Record::HardState(hs) => state.hard_state = hs,
        Record::Truncate { from } => state.entries.retain(|e| e.index < from),
        Record::SnapshotMark { index, .. } => {
            state.entries.retain(|e| e.index > index);
            state.base = Some(index);
        }
        Record::Entry(e) => {
            if state.base.is_some_and(|b| e.index <= b) {
                // Covered by the snapshot; a correct core never writes these.
                return;
            }
            let expected = state
                .entries
                .last()
                .map(|l| l.index + 1)
                .or(state.base.map(|b| b + 1));
            if expected.is_some_and(|x| e.index > x) {
                state.entries.clear();
            }
            let keep = state.entries.partition_point(|x| x.index < e.index);
            state.entries.truncate(keep);
            state.entries.push(e);
        }
    }
}

/// An open write-ahead log.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    sealed: Vec<Segment>,
    active: Segment,
    file: File,
    file_len: u64,
    /// Encoded records not yet written; flushed by `sync`.
    pending: Vec<u8>,
    hard_state: HardState,
    /// fsync calls made on segment files (0 forever under `--bug no-fsync`).
    fsyncs: u64,
    /// When queued records were last written (for `lazy_write`).
    last_write: std::time::Instant,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` and replays it. A torn tail of the last
    /// segment is cut off the file; corruption anywhere else is an error.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, WalState), StorageError> {
        fs::create_dir_all(dir)?;
        let mut seqs = Vec::new();
        for ent in fs::read_dir(dir)? {
            let ent = ent?;
            if let Some(seq) = ent.file_name().to_str().and_then(parse_segment_name) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut state = WalState::default();
        let mut segments = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            let path = segment_path(dir, seq);
            let buf = fs::read(&path)?;
            let is_last = i + 1 == seqs.len();
            let (records, valid_len) = record::decode_all(&buf, is_last)
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display())))?;
            if valid_len < buf.len() {
                tracing::warn!(
                    segment = %path.display(),
                    valid_len,
                    file_len = buf.len(),
                    "cutting torn WAL tail"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid_len as u64)?;
                f.sync_all()?;
            }
            let mut max_index = 0;
            for rec in records {
                if let Record::Entry(e) = &rec {
                    max_index = max_index.max(e.index);
                }
                replay(&mut state, rec);
            }
            segments.push(Segment {
                seq,
                path,
                max_index,
            });
        }
        let (active, file, file_len) = match segments.pop() {
            Some(seg) => {
                let file = OpenOptions::new().append(true).open(&seg.path)?;
                let len = file.metadata()?.len();
                (seg, file, len)
            }
            None => {
                let seg = Segment {
                    seq: 1,
                    path: segment_path(dir, 1),
                    max_index: 0,
                };
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&seg.path)?;
                if opts.fsync {
                    fsync_dir(dir)?;
                }
                (seg, file, 0)
            }
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            sealed: segments,
            active,
            file,
            file_len,
            pending: Vec::new(),
            hard_state: state.hard_state,
            fsyncs: 0,
            last_write: std::time::Instant::now(),
        };
        Ok((wal, state))
    }

    fn push(&mut self, rec: &Record) -> Result<(), StorageError> {
        if record::encoded_len(rec) > record::HEADER_BYTES + record::MAX_BODY_BYTES {
            return Err(StorageError::TooLarge(record::encoded_len(rec)));
        }
        record::encode(rec, &mut self.pending);
        Ok(())
    }

    /// Queues entries; they are durable after the next `sync`.
    pub fn append(&mut self, entries: &[LogRecord]) -> Result<(), StorageError> {
        for e in entries {
            self.active.max_index = self.active.max_index.max(e.index);
            self.push(&Record::Entry(e.clone()))?;
        }
        Ok(())
    }

    /// Queues a hard-state update (skipped if unchanged).
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError> {
        if hs != self.hard_state {
            self.hard_state = hs;
            self.push(&Record::HardState(hs))?;
        }
        Ok(())
    }

    /// Queues a mark that a snapshot at (`index`, `term`) is durable: replay drops the
    /// entries up to `index`.
    pub fn mark_snapshot(&mut self, index: u64, term: u64) -> Result<(), StorageError> {
        self.push(&Record::SnapshotMark { index, term })
    }

    /// Queues dropping every entry with index >= `from`.
    pub fn truncate_from(&mut self, from: u64) -> Result<(), StorageError> {
        self.push(&Record::Truncate { from })
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Writes queued records and forces them to disk (unless fsync is off). Nothing that
    /// depends on queued state may leave the node before this returns.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.opts.lazy_write
            && !self.opts.fsync
            && self.pending.len() < LAZY_WRITE_BYTES
            && self.last_write.elapsed() < LAZY_WRITE_INTERVAL
        {
            // BUG no-fsync: the caller will acknowledge what is only in our memory.
            return Ok(());
        }
        self.flush()
    }

    /// Writes (and, unless fsync is off, fsyncs) queued records, even in `lazy_write`
    /// mode. Used on clean shutdown and around snapshots.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.last_write = std::time::Instant::now();
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.file_len += self.pending.len() as u64;
            self.pending.clear();
            if self.opts.fsync {
                self.file.sync_data()?;
                self.fsyncs += 1;
            }
        }
        if self.file_len >= self.opts.segment_max_bytes {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one that opens with the hard state.
    fn roll(&mut self) -> Result<(), StorageError> {
        let seq = self.active.seq + 1;
        let path = segment_path(&self.dir, seq);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut buf = Vec::new();
        record::encode(&Record::HardState(self.hard_state), &mut buf);
        file.write_all(&buf)?;
        if self.opts.fsync {
            file.sync_data()?;
            fsync_dir(&self.dir)?;
        }
        let old = std::mem::replace(
            &mut self.active,
            Segment {
                seq,
                path,
                max_index: 0,
            },
        );
        self.sealed.push(old);
        self.file = file;
        self.file_len = buf.len() as u64;
        Ok(())
    }

    /// Deletes sealed segments whose entries are all covered by a durable snapshot at
    /// `snapshot_index`. Only a prefix is deleted, so replay order stays intact.
    pub fn compact(&mut self, snapshot_index: u64) -> Result<usize, StorageError> {
        let n = self
            .sealed
            .iter()
            .take_while(|s| s.max_index <= snapshot_index)
            .count();
        for seg in self.sealed.drain(..n) {
            fs::remove_file(&seg.path)?;
        }
        if n > 0 && self.opts.fsync {
            fsync_dir(&self.dir)?;
        }
        Ok(n)
    }

    /// How many times a segment was fsynced.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs
    }

    /// Number of segment files, for tests and status.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }
}
