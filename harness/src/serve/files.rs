//! Serving one file of one run. The request names `<test>/<ts>/<file>`; every segment
//! must be a plain name (no `..`, `.`, empty, or absolute parts), and the resolved path,
//! symlinks followed, must still lie inside the results directory. Anything else is 404,
//! so a probe learns nothing about what exists outside.

use std::path::{Component, Path, PathBuf};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Larger files are refused rather than read into memory (413).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// True when `segment` is one plain path component.
fn plain(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.contains(['/', '\\', '\0'])
        && matches!(
            Path::new(segment)
                .components()
                .collect::<Vec<_>>()
                .as_slice(),
            [Component::Normal(_)]
        )
}

/// The file `test/ts/file` names inside `root`, or `None` when the request is not a
/// plain relative path or resolves (through symlinks) outside `root` or to a non-file.
pub fn resolve(root: &Path, test: &str, ts: &str, file: &str) -> Option<PathBuf> {
    if !plain(test) || !plain(ts) || !file.split('/').all(plain) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let mut wanted = root.join(test).join(ts);
    for part in file.split('/') {
        wanted.push(part);
    }
    let real = wanted.canonicalize().ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// The `Content-Type` for a run's file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("log") | Some("txt") | Some("edn") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

pub async fn serve(root: &Path, test: &str, ts: &str, file: &str) -> Response {
    let Some(path) = resolve(root, test, ts, file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response()
        }
        Ok(_) => {}
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
        Err(e) => {
            tracing::warn!("reading {}: {e}", path.display());
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_pass() {
        assert!(plain("report.html"));
        assert!(plain("20261123T125557"));
        for bad in ["", ".", "..", "a/b", "/etc", "a\\b", "x\0"] {
            assert!(!plain(bad), "{bad:?}");
        }
    }

    #[test]
    fn resolve_stays_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("t/20260101T000000");
        std::fs::create_dir_all(run.join("nodes/n1")).unwrap();
        std::fs::write(run.join("report.html"), "x").unwrap();
        std::fs::write(run.join("nodes/n1/server.log"), "x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret"), run.join("escape")).unwrap();

        let root = dir.path();
        assert!(resolve(root, "t", "20260101T000000", "report.html").is_some());
        assert!(resolve(root, "t", "20260101T000000", "nodes/n1/server.log").is_some());
        assert!(resolve(root, "t", "20260101T000000", "nodes").is_none());
        assert!(resolve(root, "t", "20260101T000000", "missing").is_none());
        assert!(resolve(root, "t", "20260101T000000", "escape").is_none());
        assert!(resolve(root, "..", "..", "etc/passwd").is_none());
        assert!(resolve(root, "t", "20260101T000000", "../../../etc/passwd").is_none());
        assert!(resolve(root, "t", "20260101T000000", "/etc/passwd").is_none());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.json")), "application/json");
        assert_eq!(content_type(Path::new("a.jsonl")), "application/x-ndjson");
        assert_eq!(
            content_type(Path::new("a.log")),
            "text/plain; charset=utf-8"
        );
    }
}
