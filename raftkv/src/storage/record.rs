//! On-disk record framing for the write-ahead log.
//!
//! A record is `[len: u32 LE][crc32: u32 LE][body: len bytes]`, where the CRC covers the
//! body. The body starts with a one-byte kind. Framing is kept separate from the WAL's file
//! handling so that the torn-tail rules can be tested byte by byte on plain buffers.

use super::StorageError;

/// Bytes before the body: length and CRC.
pub const HEADER_BYTES: usize = 8;
/// Upper bound on one record's body, so a corrupted length field cannot make us allocate
/// gigabytes, and so a proposal cannot grow without limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Sector size used to recognise a torn write: a zero-filled aligned sector inside an
/// unreadable tail is what a crash during an un-synced write leaves behind.
const SECTOR_BYTES: usize = 512;

const KIND_HARD_STATE: u8 = 1;
const KIND_ENTRY: u8 = 2;
const KIND_TRUNCATE: u8 = 3;
const KIND_SNAPSHOT_MARK: u8 = 4;

/// Raft's persistent per-node state other than the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: u64,
    /// Who we voted for in `term`. Encoded as `u64::MAX` for none (node ids may be 0).
    pub vote: Option<u64>,
    /// Persisted only as a hint; a node may recompute commit from its peers.
    pub commit: u64,
}

/// One log entry as the WAL sees it: position plus opaque payload (the Raft core's encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub index: u64,
    pub term: u64,
    pub data: Vec<u8>,
}

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    HardState(HardState),
    Entry(LogRecord),
    /// Drop every entry with `index >= from`.
    Truncate {
        from: u64,
    },
    /// A snapshot covering `index` (whose entry has `term`) is durable: entries up to
    /// `index` are dropped, and the whole log if it disagrees with the snapshot.
    SnapshotMark {
        index: u64,
        term: u64,
    },
}

/// Appends the framed encoding of `record` to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    match record {
        Record::HardState(hs) => {
            out.push(KIND_HARD_STATE);
            out.extend_from_slice(&hs.term.to_le_bytes());
            out.extend_from_slice(&hs.vote.unwrap_or(u64::MAX).to_le_bytes());
            out.extend_from_slice(&hs.commit.to_le_bytes());
        }
        Record::Entry(e) => {
            out.push(KIND_ENTRY);
            out.extend_from_slice(&e.index.to_le_bytes());
            out.extend_from_slice(&e.term.to_le_bytes());
            out.extend_from_slice(&e.data);
        }
        Record::Truncate { from } => {
            out.push(KIND_TRUNCATE);
            out.extend_from_slice(&from.to_le_bytes());
        }
        Record::SnapshotMark { index, term } => {
            out.push(KIND_SNAPSHOT_MARK);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&term.to_le_bytes());
        }
    }
    let body_len = out.len() - start - HEADER_BYTES;
    let crc = crc32fast::hash(&out[start + HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Size of a record's encoding, to check limits before encoding.
pub fn encoded_len(record: &Record) -> usize {
    HEADER_BYTES
        + 1
        + match record {
            Record::HardState(_) => 24,
            Record::Entry(e) => 16 + e.data.len(),
            Record::Truncate { .. } => 8,
            Record::SnapshotMark { .. } => 16,
        }
}

/// Result of decoding one record at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A valid record and the offset just past it.
    Record(Record, usize),
    /// Clean end of buffer.
    End,
    /// The bytes from this offset on look like an interrupted write: cut them.
    TornTail,
    /// Unreadable bytes that are not explainable by a torn write.
    Corrupt(String),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn decode_body(body: &[u8]) -> Result<Record, String> {
    let (&kind, rest) = body.split_first().ok_or("empty body")?;
    match kind {
        KIND_HARD_STATE if rest.len() == 24 => Ok(Record::HardState(HardState {
            term: u64_at(rest, 0),
            vote: Some(u64_at(rest, 8)).filter(|&v| v != u64::MAX),
            commit: u64_at(rest, 16),
        })),
        KIND_ENTRY if rest.len() >= 16 => Ok(Record::Entry(LogRecord {
            index: u64_at(rest, 0),
            term: u64_at(rest, 8),
            data: rest[16..].to_vec(),
        })),
        KIND_TRUNCATE if rest.len() == 8 => Ok(Record::Truncate {
            from: u64_at(rest, 0),
        }),
        KIND_SNAPSHOT_MARK if rest.len() == 16 => Ok(Record::SnapshotMark {
            index: u64_at(rest, 0),
            term: u64_at(rest, 8),
        }),
        _ => Err(format!(
            "unknown record kind {kind} or bad length {}",
            rest.len()
        )),
    }
}

/// True if `tail` (the unreadable bytes from a bad record to end of file) contains an
/// all-zero sector-aligned block (relative to `file_offset`), the signature of a write the
/// crash cut short, or is itself all zeros.
fn looks_torn(tail: &[u8], file_offset: usize) -> bool {
    if tail.iter().all(|&b| b == 0) {
        return true;
    }
    let first_aligned = file_offset.div_ceil(SECTOR_BYTES) * SECTOR_BYTES - file_offset;
    let mut at = first_aligned;
    while at + SECTOR_BYTES <= tail.len() {
        if tail[at..at + SECTOR_BYTES].iter().all(|&b| b == 0) {
            return true;
        }
        at += SECTOR_BYTES;
    }
    false
}

/// Decodes the record at `offset` of `buf` (a whole segment file).
///
/// Rules for a bad record: a record that claims to extend past the end of the buffer, or
/// whose CRC fails while being the very last record in the buffer, or that is followed by
/// zero-filled sectors, is a torn tail (the write was never acknowledged, since we fsync
/// before acknowledging). Any other bad record has valid-looking data after it, which a torn
/// write cannot produce, so it is corruption and must not be silently cut.
pub fn decode_at(buf: &[u8], offset: usize) -> Decoded {
    let remaining = buf.len() - offset;
    if remaining == 0 {
        return Decoded::End;
    }
    if remaining < HEADER_BYTES {
        return Decoded::TornTail;
    }
    let len = u32::from_le_bytes(buf[offset..offset + 4].try_into().unwrap_or([0; 4])) as usize;
    let crc = u32::from_le_bytes(buf[offset + 4..offset + 8].try_into().unwrap_or([0; 4]));
    let tail = &buf[offset..];
    if len == 0 || len > MAX_BODY_BYTES {
        if looks_torn(tail, offset) || HEADER_BYTES + len > remaining {
            return Decoded::TornTail;
        }
        return Decoded::Corrupt(format!("invalid record length {len} at offset {offset}"));
    }
    if HEADER_BYTES + len > remaining {
        return Decoded::TornTail;
    }
    let end = offset + HEADER_BYTES + len;
    let body = &buf[offset + HEADER_BYTES..end];
    if crc32fast::hash(body) != crc {
        if end == buf.len() || looks_torn(tail, offset) {
            return Decoded::TornTail;
        }
        return Decoded::Corrupt(format!("CRC mismatch at offset {offset}"));
    }
    match decode_body(body) {
        Ok(r) => Decoded::Record(r, end),
        Err(e) => Decoded::Corrupt(format!("{e} at offset {offset}")),
    }
}

/// Decodes a whole segment. Returns the records and the length of the valid prefix.
/// `is_last` says whether a torn tail is acceptable (only the segment being written when
/// the process died may have one).
pub fn decode_all(buf: &[u8], is_last: bool) -> Result<(Vec<Record>, usize), StorageError> {
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        match decode_at(buf, offset) {
            Decoded::Record(r, next) => {
                records.push(r);
                offset = next;
            }
            Decoded::End => return Ok((records, offset)),
            Decoded::TornTail if is_last => return Ok((records, offset)),
            Decoded::TornTail => {
                return Err(StorageError::Corrupt(format!(
                    "truncated record at offset {offset} in a sealed segment"
                )))
            }
            Decoded::Corrupt(msg) => return Err(StorageError::Corrupt(msg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::HardState(HardState {
                term: 3,
                vote: Some(2),
                commit: 7,
            }),
            Record::Entry(LogRecord {
                index: 1,
                term: 1,
                data: b"hello".to_vec(),
            }),
            Record::Truncate { from: 1 },
            Record::Entry(LogRecord {
                index: 1,
                term: 3,
                data: vec![],
            }),
            Record::SnapshotMark { index: 1, term: 3 },
        ]
    }

    #[test]
    fn roundtrip() {
        let mut buf = Vec::new();
        for r in sample() {
            let before = buf.len();
            encode(&r, &mut buf);
            assert_eq!(buf.len() - before, encoded_len(&r));
        }
        let (records, valid) = decode_all(&buf, false).unwrap();
        assert_eq!(records, sample());
        assert_eq!(valid, buf.len());
    }

    #[test]
    fn truncation_at_every_offset_of_last_record_is_torn() {
        let mut buf = Vec::new();
        for r in sample() {
            encode(&r, &mut buf);
        }
        let mut last = Vec::new();
        encode(
            &Record::Entry(LogRecord {
                index: 2,
                term: 3,
                data: vec![7; 100],
            }),
            &mut last,
        );
        let prefix = buf.len();
        buf.extend_from_slice(&last);
        for cut in prefix..buf.len() {
            let (records, valid) = decode_all(&buf[..cut], true).unwrap();
            assert_eq!(records, sample(), "cut at {cut}");
            assert_eq!(valid, prefix);
            assert!(decode_all(&buf[..cut], false).is_err() || cut == prefix);
        }
    }

    #[test]
    fn flipped_byte_in_last_record_is_torn_but_in_middle_is_corrupt() {
        let mut buf = Vec::new();
        for r in sample() {
            encode(&r, &mut buf);
        }
        let last_start = buf.len() - encoded_len(sample().last().unwrap());
        // Flip a body byte of the last record: cut.
        let mut tail_flip = buf.clone();
        let at = tail_flip.len() - 1;
        tail_flip[at] ^= 0x40;
        let (records, valid) = decode_all(&tail_flip, true).unwrap();
        assert_eq!(valid, last_start);
        assert_eq!(records.len(), 4);
        // Flip a body byte of the second record: valid records follow, so it is an error.
        let mut mid_flip = buf.clone();
        mid_flip[40] ^= 0x01;
        assert!(matches!(
            decode_all(&mid_flip, true),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut buf = Vec::new();
        for r in sample() {
            encode(&r, &mut buf);
        }
        let good = buf.len();
        buf.extend_from_slice(&[0u8; 1000]);
        let (records, valid) = decode_all(&buf, true).unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(valid, good);
    }
}
