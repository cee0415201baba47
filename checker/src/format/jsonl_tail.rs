//! [`JsonlTail`]: reads a faultline JSONL history that another writer is still appending
//! to, like `tail -f`. Each call to [`JsonlTail::read_new`] parses the complete lines
//! appended since the last call; a partial last line waits for its newline. Used by
//! `faultline check --follow` and by the online check of `faultline test`.
//!
//! Bounds: a line longer than [`MAX_LINE_BYTES`] is an error, and at most
//! [`READ_CHUNK_BYTES`] are buffered per read call.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::jsonl;
use crate::error::{HistoryError, Location};
use crate::history::History;

/// Longest line accepted.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Bytes read from the file per read call.
pub const READ_CHUNK_BYTES: usize = 1 << 20;

/// A history file being followed: where reading stopped.
pub struct JsonlTail {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    /// The bytes after the last newline read: a line still being written.
    partial: Vec<u8>,
    /// 1-based number of the last complete line read.
    line_no: usize,
}

impl JsonlTail {
    /// Follows `path`, which need not exist yet.
    pub fn new(path: &Path) -> JsonlTail {
        JsonlTail {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            partial: Vec::new(),
            line_no: 0,
        }
    }

    /// The file has been opened (it exists).
    pub fn opened(&self) -> bool {
        self.file.is_some()
    }

    /// The number of the last complete line read.
    pub fn line_no(&self) -> usize {
        self.line_no
    }

    /// Bytes of a line still waiting for its newline.
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Reads what was appended since the last call and appends its events to `history`
    /// (numbered on from `history.events.len()`). True if the file grew. A file that
    /// shrank (it was replaced), a line that is not valid JSONL, and a line longer than
    /// [`MAX_LINE_BYTES`] are errors naming the file, line and field.
    pub fn read_new(&mut self, history: &mut History) -> Result<bool, HistoryError> {
        let path = self.path.clone();
        let io = |source| HistoryError::Io {
            path: path.clone(),
            source,
        };
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                // Not there yet: the writer has not started.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io(e)),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        let len = file.metadata().map_err(io)?.len();
        if len < self.offset {
            return Err(HistoryError::at(
                self.location(self.line_no),
                "file",
                format!(
                    "a file that only grows; it shrank from {} to {len} bytes",
                    self.offset
                ),
            ));
        }
        if len == self.offset {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        let mut grew = false;
        while let Some(file) = self.file.as_mut() {
            let n = file.read(&mut chunk).map_err(io)?;
            if n == 0 {
                break;
            }
            grew = true;
            self.offset += n as u64;
            let mut rest = &chunk[..n];
            while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&rest[..nl]);
                rest = &rest[nl + 1..];
                self.line_no += 1;
                let loc = self.location(self.line_no);
                let text = std::str::from_utf8(&self.partial)
                    .map_err(|_| HistoryError::at(loc.clone(), "line", "UTF-8 text"))?;
                if let Some(mut event) = jsonl::read_line(text, &loc)? {
                    event.index = history.events.len() as u64;
                    history.events.push(event);
                    history.lines.push(self.line_no);
                }
                self.partial.clear();
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE_BYTES {
                return Err(HistoryError::at(
                    self.location(self.line_no + 1),
                    "line",
                    format!("a line of at most {MAX_LINE_BYTES} bytes"),
                ));
            }
        }
        Ok(grew)
    }

    fn location(&self, line: usize) -> Location {
        Location {
            file: Some(self.path.clone()),
            line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_complete_lines_as_they_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut tail = JsonlTail::new(&path);
        let mut h = History::default();
        assert!(!tail.read_new(&mut h).unwrap(), "no file yet");
        assert!(!tail.opened());
        let mut f = File::create(&path).unwrap();
        f.write_all(b"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,")
            .unwrap();
        assert!(tail.read_new(&mut h).unwrap());
        assert_eq!(h.events.len(), 1);
        assert!(tail.partial_len() > 0, "the half line waits");
        f.write_all(b"\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n\n")
            .unwrap();
        assert!(tail.read_new(&mut h).unwrap());
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[1].index, 1);
        assert_eq!(h.lines, vec![1, 2]);
        assert_eq!(tail.line_no(), 3);
        assert!(!tail.read_new(&mut h).unwrap(), "nothing new");
    }

    #[test]
    fn a_bad_line_and_a_shrunk_file_are_errors_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        std::fs::write(
            &path,
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"type\":\"ok\"}\n",
        )
        .unwrap();
        let mut h = History::default();
        let e = JsonlTail::new(&path)
            .read_new(&mut h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("h.jsonl:2") && e.contains("process"), "{e}");

        std::fs::write(
            &path,
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n",
        )
        .unwrap();
        let mut tail = JsonlTail::new(&path);
        let mut h = History::default();
        tail.read_new(&mut h).unwrap();
        std::fs::write(&path, "").unwrap();
        let e = tail.read_new(&mut h).unwrap_err().to_string();
        assert!(e.contains("shrank"), "{e}");
    }
}
