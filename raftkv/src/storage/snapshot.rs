//! The snapshot file: one current snapshot, replaced atomically.
//!
//! Format: `magic(8) index(8) term(8) meta_len(8) meta data_len(8) data crc32(4)`, CRC over
//! everything before it. Written to a temp file, fsynced, renamed over the old one, then the
//! directory is fsynced so the rename itself survives a crash. A snapshot is never partially
//! visible, so a bad CRC here is real corruption and an error.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{fsync_dir, StorageError};

const MAGIC: &[u8; 8] = b"RKVSNAP1";
const FILE_NAME: &str = "snapshot.bin";
const TMP_NAME: &str = "snapshot.bin.tmp";

/// A state-machine snapshot with the log position it covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub index: u64,
    pub term: u64,
    /// Opaque to storage: the Raft core's metadata (e.g. membership).
    pub meta: Vec<u8>,
    /// Opaque to storage: the state machine's encoding.
    pub data: Vec<u8>,
}

/// Reads and writes the snapshot file in a directory.
#[derive(Debug)]
pub struct SnapshotFile {
    dir: PathBuf,
    fsync: bool,
}

fn read_u64(buf: &[u8], at: &mut usize) -> Result<u64, StorageError> {
    let bytes = buf
        .get(*at..*at + 8)
        .ok_or_else(|| StorageError::Corrupt("snapshot too short".into()))?;
    *at += 8;
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    Ok(u64::from_le_bytes(a))
}

fn read_bytes(buf: &[u8], at: &mut usize) -> Result<Vec<u8>, StorageError> {
    let len = read_u64(buf, at)? as usize;
    let end = at
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| StorageError::Corrupt("snapshot length out of range".into()))?;
    let v = buf[*at..end].to_vec();
    *at = end;
    Ok(v)
}

impl SnapshotFile {
    pub fn new(dir: &Path, fsync: bool) -> Result<SnapshotFile, StorageError> {
        fs::create_dir_all(dir)?;
        // A leftover temp file is an interrupted save; the old snapshot is still intact.
        let tmp = dir.join(TMP_NAME);
        if tmp.exists() {
            fs::remove_file(&tmp)?;
        }
        Ok(SnapshotFile {
            dir: dir.to_path_buf(),
            fsync,
        })
    }

    pub fn encode(snap: &Snapshot) -> Vec<u8> {
        let mut buf = Vec::with_capacity(snap.data.len() + snap.meta.len() + 48);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&snap.index.to_le_bytes());
        buf.extend_from_slice(&snap.term.to_le_bytes());
        buf.extend_from_slice(&(snap.meta.len() as u64).to_le_bytes());
        buf.extend_from_slice(&snap.meta);
        buf.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
        buf.extend_from_slice(&snap.data);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf
    }

    pub fn decode(buf: &[u8]) -> Result<Snapshot, StorageError> {
        if buf.len() < MAGIC.len() + 4 || &buf[..8] != MAGIC {
            return Err(StorageError::Corrupt("snapshot: bad magic".into()));
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        let mut a = [0u8; 4];
        a.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(a) {
            return Err(StorageError::Corrupt("snapshot: CRC mismatch".into()));
        }
        let mut at = 8;
        let index = read_u64(body, &mut at)?;
        let term = read_u64(body, &mut at)?;
        let meta = read_bytes(body, &mut at)?;
        let data = read_bytes(body, &mut at)?;
        if at != body.len() {
            return Err(StorageError::Corrupt("snapshot: trailing bytes".into()));
        }
        Ok(Snapshot {
            index,
            term,
            meta,
            data,
        })
    }

    /// Loads the current snapshot, if any.
    pub fn load(&self) -> Result<Option<Snapshot>, StorageError> {
        match fs::read(self.dir.join(FILE_NAME)) {
            Ok(buf) => Ok(Some(Self::decode(&buf)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Atomically replaces the snapshot: temp file, fsync, rename, fsync dir.
    pub fn save(&self, snap: &Snapshot) -> Result<(), StorageError> {
        let tmp = self.dir.join(TMP_NAME);
        let mut f = File::create(&tmp)?;
        f.write_all(&Self::encode(snap))?;
        if self.fsync {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, self.dir.join(FILE_NAME))?;
        if self.fsync {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let sf = SnapshotFile::new(dir.path(), true).unwrap();
        assert_eq!(sf.load().unwrap(), None);
        let snap = Snapshot {
            index: 10,
            term: 2,
            meta: b"m".to_vec(),
            data: b"state".to_vec(),
        };
        sf.save(&snap).unwrap();
        assert_eq!(sf.load().unwrap(), Some(snap.clone()));
        let newer = Snapshot { index: 20, ..snap };
        sf.save(&newer).unwrap();
        assert_eq!(sf.load().unwrap(), Some(newer));
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(sf.load(), Err(StorageError::Corrupt(_))));
    }
}
