//! History file formats: faultline JSONL (read and write), Jepsen `history.edn` and Jepsen
//! text logs (read). [`read_path`] and [`read_str`] pick the reader, by name or by looking
//! at the file: its extension first (`.jsonl`/`.json`, `.edn`, `.log`), else its first
//! non-blank line (`{"` is JSONL; `{ [ ( # ;` is EDN; a `jepsen.util` line is a log).
//!
//! [`read_path_and_format`] also says which format it read, for the reading that format
//! means ([`crate::Reading::for_format`]).
//!
//! Every reader returns [`HistoryError::Malformed`] naming file, line and field for bad
//! input, and none panics on any input (tests/readers.rs throws random bytes at them).

pub mod edn;
pub mod jepsen_edn;
pub mod jepsen_log;
pub mod jsonl;
pub mod jsonl_tail;
mod jsonl_writer;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use jsonl_writer::{write_jsonl, JsonlWriter};

use crate::error::{HistoryError, Location};
use crate::history::History;

/// A history file format; `Auto` detects it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    #[default]
    Auto,
    Jsonl,
    Edn,
    JepsenLog,
}

impl Format {
    pub const NAMES: &'static str = "auto, jsonl, edn, jepsen-log";

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown format name.
#[derive(Debug, thiserror::Error)]
#[error("unknown history format {0:?}: expected one of {names}", names = Format::NAMES)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "auto" => Ok(Format::Auto),
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "jepsen-log" | "log" => Ok(Format::JepsenLog),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

/// Reads the history at `path`.
pub fn read_path(path: &Path, format: Format) -> Result<History, HistoryError> {
    read_path_and_format(path, format).map(|(history, _)| history)
}

/// Reads the history at `path`, and says which format it was read as (never `Auto`):
/// the format names the reading its writers meant (`Reading::for_format`).
pub fn read_path_and_format(
    path: &Path,
    format: Format,
) -> Result<(History, Format), HistoryError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            return Err(HistoryError::at(
                Location {
                    file: Some(path.to_path_buf()),
                    line,
                },
                "text",
                "UTF-8 text",
            ));
        }
    };
    let format = match format {
        Format::Auto => by_extension(path).unwrap_or(Format::Auto),
        f => f,
    };
    read_str_and_format(&text, Some(path), format)
}

/// Reads a history from `text`; `source` names it in errors.
pub fn read_str(
    text: &str,
    source: Option<&Path>,
    format: Format,
) -> Result<History, HistoryError> {
    read_str_and_format(text, source, format).map(|(history, _)| history)
}

/// Reads a history from `text`, and says which format it was read as (never `Auto`).
pub fn read_str_and_format(
    text: &str,
    source: Option<&Path>,
    format: Format,
) -> Result<(History, Format), HistoryError> {
    let format = match format {
        Format::Auto => detect(text, source)?,
        f => f,
    };
    let history = match format {
        Format::Jsonl | Format::Auto => jsonl::read(text, source),
        Format::Edn => jepsen_edn::read(text, source),
        Format::JepsenLog => jepsen_log::read(text, source),
    }?;
    let format = if format == Format::Auto {
        Format::Jsonl
    } else {
        format
    };
    Ok((history, format))
}

/// The format a file name says (`.jsonl`, `.json`, `.ndjson`, `.edn`, `.log`).
pub fn by_extension(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "jsonl" | "json" | "ndjson" => Some(Format::Jsonl),
        "edn" => Some(Format::Edn),
        "log" => Some(Format::JepsenLog),
        _ => None,
    }
}

/// Guesses the format from the first non-blank line. An empty text is an empty JSONL
/// history.
pub fn detect(text: &str, source: Option<&Path>) -> Result<Format, HistoryError> {
    let Some((i, first)) = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .find(|(_, l)| !l.is_empty())
    else {
        return Ok(Format::Jsonl);
    };
    if first.starts_with("{\"")
        || first.starts_with("{ \"")
        || first == "{" && text.contains("\"type\"")
    {
        return Ok(Format::Jsonl);
    }
    if first.starts_with(['{', '[', '(', '#', ';']) {
        return Ok(Format::Edn);
    }
    // Logs often begin with other loggers' lines; any op line makes it a log.
    if text.lines().any(|l| l.contains("jepsen.util")) {
        return Ok(Format::JepsenLog);
    }
    Err(HistoryError::at(
        Location {
            file: source.map(Path::to_path_buf),
            line: i + 1,
        },
        "format",
        "a faultline JSONL, Jepsen EDN or Jepsen log history (or name the format)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;

    #[test]
    fn format_names() {
        for f in [Format::Auto, Format::Jsonl, Format::Edn, Format::JepsenLog] {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        let e = "xml".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("jepsen-log"), "{e}");
    }

    #[test]
    fn detects_each_format() {
        let jsonl = r#"{"process":0,"type":"invoke","f":"read"}"#;
        let edn = "{:process 0, :type :invoke, :f :read}";
        let log = "INFO  jepsen.core - start\nINFO  jepsen.util - 0\t:invoke\t:read\tnil";
        assert_eq!(detect(jsonl, None).unwrap(), Format::Jsonl);
        assert_eq!(detect(&format!("\n  \n{edn}"), None).unwrap(), Format::Edn);
        assert_eq!(detect("[{:process 0}]", None).unwrap(), Format::Edn);
        assert_eq!(detect(log, None).unwrap(), Format::JepsenLog);
        assert_eq!(detect("", None).unwrap(), Format::Jsonl);
        let e = detect("\nhello", Some(Path::new("a.txt")))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.txt:2: field `format`"), "{e}");
        for (text, format) in [
            (jsonl, Format::Jsonl),
            (edn, Format::Edn),
            (log, Format::JepsenLog),
        ] {
            let (h, read_as) = read_str_and_format(text, None, Format::Auto).unwrap();
            assert_eq!(h.events.len(), 1);
            assert_eq!(h.events[0].kind, EventType::Invoke);
            assert_eq!(read_as, format);
        }
        assert_eq!(
            read_str_and_format("", None, Format::Auto).unwrap().1,
            Format::Jsonl
        );
    }

    #[test]
    fn read_path_reports_io_and_utf8_errors() {
        let e = read_path(Path::new("/nonexistent/h.jsonl"), Format::Auto).unwrap_err();
        assert!(matches!(e, HistoryError::Io { .. }), "{e}");
        let dir = std::env::temp_dir().join(format!("faultline-fmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.edn");
        std::fs::write(&p, b"{:process 0}\n{:f \xff}").unwrap();
        let e = read_path(&p, Format::Auto).unwrap_err().to_string();
        assert!(
            e.ends_with("bad.edn:2: field `text`: expected UTF-8 text"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
