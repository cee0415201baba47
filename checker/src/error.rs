//! Errors for bad input: every one names the file, the line and the field at fault.

use std::fmt;
use std::path::PathBuf;

/// Where in an input something was found. `line` is 1-based; 0 means "not from a file".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(p), 0) => write!(f, "{}", p.display()),
            (Some(p), l) => write!(f, "{}:{l}", p.display()),
            (None, 0) => f.write_str("<history>"),
            (None, l) => write!(f, "line {l}"),
        }
    }
}

/// A history that cannot be read or paired.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// `file:line: field `f`: expected ...`
    #[error("{location}: field `{field}`: expected {expected}")]
    Malformed {
        location: Location,
        field: String,
        expected: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HistoryError {
    pub fn at(location: Location, field: &str, expected: impl Into<String>) -> HistoryError {
        HistoryError::Malformed {
            location,
            field: field.to_string(),
            expected: expected.into(),
        }
    }
}
