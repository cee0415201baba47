//! Durable storage for one raftkv node: the write-ahead log (`wal`), its record framing
//! (`record`) and the snapshot file (`snapshot`), combined by [`Storage`].
//!
//! Storage is synchronous and owned by the node's Raft thread: the runtime appends,
//! calls [`Storage::sync`] once per batch (group commit), and only then sends the messages
//! and acknowledgements that depend on what was written.

pub mod record;
pub mod snapshot;
pub mod wal;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use record::{HardState, LogRecord};
pub use snapshot::{Snapshot, SnapshotFile};
pub use wal::{Wal, WalOptions};

/// Errors from durable storage. `Corrupt` means data we cannot trust and must not cut.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    #[error("record too large: {0} bytes")]
    TooLarge(usize),
}

/// Forces a directory's entries (file creations, renames, deletions) to disk.
pub fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Everything a node needs to restart: hard state, snapshot, and the log after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Contiguous entries starting at `snapshot.index + 1` (or at the first index if there
    /// is no snapshot).
    pub entries: Vec<LogRecord>,
}

/// The WAL plus the snapshot file in one data directory.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    wal: Wal,
    snapshots: SnapshotFile,
    snapshot_index: u64,
    /// (index, term) of every entry in the log after the snapshot, to decide at snapshot
    /// time whether the log agrees with it (16 bytes per entry; compaction bounds it).
    terms: Vec<(u64, u64)>,
}

impl Storage {
    /// Opens `dir` (creating it), replays the WAL and drops the entries the snapshot
    /// covers. What remains must continue the snapshot exactly, or the data is corrupt.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Storage, Recovered), StorageError> {
        let snapshots = SnapshotFile::new(dir, opts.fsync)?;
        let snapshot = snapshots.load()?;
        let (wal, state) = Wal::open(&dir.join("wal"), opts)?;
        let mut entries = state.entries;
        let snapshot_index = snapshot.as_ref().map_or(0, |s| s.index);
        if state.base.is_some_and(|b| b > snapshot_index) {
            return Err(StorageError::Corrupt(format!(
                "WAL marks a snapshot at {:?} newer than the snapshot file ({snapshot_index})",
                state.base
            )));
        }
        // The file may be newer than the last mark if we crashed between writing the two;
        // a conflicting suffix was already truncated before the file was written.
        entries.retain(|e| e.index > snapshot_index);
        if let Some(first) = entries.first() {
            if first.index != snapshot_index + 1 {
                return Err(StorageError::Corrupt(format!(
                    "log starts at {} but the snapshot ends at {snapshot_index}",
                    first.index
                )));
            }
        }
        let terms = entries.iter().map(|e| (e.index, e.term)).collect();
        let recovered = Recovered {
            hard_state: state.hard_state,
            snapshot,
            entries,
        };
        Ok((
            Storage {
                dir: dir.to_path_buf(),
                wal,
                snapshots,
                snapshot_index,
                terms,
            },
            recovered,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues entries. An entry at an index already in the log replaces it and everything
    /// after it (replay applies the same rule).
    pub fn append(&mut self, entries: &[LogRecord]) -> Result<(), StorageError> {
        for e in entries {
            let keep = self.terms.partition_point(|&(i, _)| i < e.index);
            self.terms.truncate(keep);
            self.terms.push((e.index, e.term));
        }
        self.wal.append(entries)
    }

    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError> {
        self.wal.set_hard_state(hs)
    }

    pub fn hard_state(&self) -> HardState {
        self.wal.hard_state()
    }

    /// Queues removal of all entries with index >= `from`.
    pub fn truncate_from(&mut self, from: u64) -> Result<(), StorageError> {
        self.terms.retain(|&(i, _)| i < from);
        self.wal.truncate_from(from)
    }

    /// Writes and fsyncs everything queued (see `WalOptions::lazy_write` for the bug).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.wal.sync()
    }

    /// Like `sync`, but writes even under `--bug no-fsync` (clean shutdown).
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.wal.flush()
    }

    /// Makes a snapshot durable (taken locally or received from the leader), drops the
    /// log it covers and deletes the WAL segments it makes unnecessary.
    ///
    /// Order matters for crash safety. If the log disagrees with the snapshot (it lacks the
    /// snapshot's last entry with the same term), the conflicting suffix is truncated
    /// first; entries before it stay until the snapshot is durable, so a crash in between
    /// never loses entries we acknowledged. Then the snapshot file, then a mark in the WAL
    /// that drops the covered entries on replay, then segment deletion.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        if snap.index <= self.snapshot_index {
            return Ok(());
        }
        let agrees = self
            .terms
            .binary_search_by_key(&snap.index, |&(i, _)| i)
            .is_ok_and(|at| self.terms[at].1 == snap.term);
        if !agrees {
            self.truncate_from(snap.index)?;
        }
        self.wal.flush()?;
        self.snapshots.save(snap)?;
        self.snapshot_index = snap.index;
        self.wal.mark_snapshot(snap.index, snap.term)?;
        self.wal.flush()?;
        self.terms.retain(|&(i, _)| i > snap.index);
        let removed = self.wal.compact(snap.index)?;
        tracing::debug!(index = snap.index, removed, "snapshot saved, WAL compacted");
        Ok(())
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    pub fn load_snapshot(&self) -> Result<Option<Snapshot>, StorageError> {
        self.snapshots.load()
    }

    /// How many times the WAL was fsynced (0 under `--bug no-fsync`).
    pub fn fsync_count(&self) -> u64 {
        self.wal.fsync_count()
    }

    pub fn segment_count(&self) -> usize {
        self.wal.segment_count()
    }
}

#[cfg(test)]
mod tests;
