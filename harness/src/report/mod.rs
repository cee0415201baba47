//! Reports a person or a CI system reads: `report.html` (one self-contained page per run
//! or checked history, see [`page`]) and JUnit XML ([`junit`]). Both are built from files
//! alone (`config.json`, `results.json`, `history.jsonl`), so `faultline report` can
//! rebuild them for any results folder, old or new.

pub mod html;
pub mod junit;
pub mod ops;
pub mod page;
pub mod summary;
pub mod svg;

use std::io::Write;
use std::path::{Path, PathBuf};

use faultline_checker::format::{read_path, Format};

pub use page::{render, ReportInput};

/// The report's file name inside a results folder.
pub const REPORT_FILE: &str = "report.html";

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, ReportError> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    serde_json::from_slice(&bytes).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads what a report of the run in `run_dir` needs. `results.json` must exist; a missing
/// `config.json` or an unreadable history gives a report that says so.
pub fn load_run(run_dir: &Path) -> Result<ReportInput, ReportError> {
    let results = crate::results::read_run(&run_dir.join("results.json"))?;
    let config = read_json(&run_dir.join("config.json")).unwrap_or(serde_json::Value::Null);
    let history_path = run_dir.join("history.jsonl");
    let history = read_path(&history_path, Format::Jsonl).map_err(|e| e.to_string());
    let test = results.test.clone();
    let stamp = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files: Vec<String> = [
        "config.json",
        "results.json",
        "history.jsonl",
        "faultline.log",
    ]
    .iter()
    .filter(|f| run_dir.join(f).exists())
    .map(|f| f.to_string())
    .collect();
    if let Ok(nodes) = std::fs::read_dir(run_dir.join("nodes")) {
        let mut logs: Vec<String> = nodes
            .flatten()
            .flat_map(|node| {
                let name = node.file_name().to_string_lossy().into_owned();
                std::fs::read_dir(node.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(move |f| format!("nodes/{name}/{}", f.file_name().to_string_lossy()))
            })
            .collect();
        logs.sort();
        files.extend(logs);
    }
    Ok(ReportInput {
        title: format!("{test} {stamp}").trim().to_string(),
        config,
        results: crate::results::Results::Run(results),
        history,
        files,
    })
}

/// Writes `html` to `path` via a temporary file and a rename, so a browser never opens
/// half a report.
pub fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(io_at(path))
}

/// (Re)builds `report.html` in the results folder `run_dir` and returns its path.
pub fn write_report(run_dir: &Path) -> Result<PathBuf, ReportError> {
    let input = load_run(run_dir)?;
    let path = run_dir.join(REPORT_FILE);
    write_file(&path, &render(&input))?;
    Ok(path)
}

/// The end of a `faultline test` run: writes the report, logging (not failing on) errors,
/// since a run's verdict does not depend on its report.
pub fn after_run(run_dir: &Path) {
    match write_report(run_dir) {
        Ok(path) => tracing::info!("report: {}", path.display()),
        Err(e) => tracing::warn!("report not written: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Event, EventType, Process, Value};
    use serde_json::json;

    fn write_history(dir: &Path, events: &[Event]) {
        let mut text = String::new();
        for (i, e) in events.iter().enumerate() {
            let mut e = e.clone();
            e.index = i as u64;
            e.time_ns = Some(i as u64 * 1_000_000);
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        std::fs::write(dir.join("history.jsonl"), text).unwrap();
    }

    #[test]
    fn report_of_a_run_folder() {
        use EventType::*;
        let dir = tempfile::tempdir().unwrap();
        let ev = |p, k, f: &str, v: Value| Event::new(Process::Client(p), k, f, v).with_key("r0");
        write_history(
            dir.path(),
            &[
                ev(0, Invoke, "write", 1.into()),
                Event::new(Process::Nemesis, Info, "start-kill", Value::Null),
                ev(0, Ok, "write", 1.into()),
                ev(1, Invoke, "read", Value::Null),
                ev(1, Ok, "read", 1.into()),
                Event::new(Process::Nemesis, Info, "heal", Value::Null),
            ],
        );
        std::fs::write(
            dir.path().join("results.json"),
            json!({"schema_version": 2, "verdict": "valid", "test": "t", "run_dir": "r",
                "seed": 7, "total_ms": 10, "judgement": {"verdict": "valid",
                "model": "cas-register", "linearizable": {"verdict": "valid",
                "stats": {"ops": 2}}, "stats": {"ops": 2, "duration_ns": null,
                "groups": [], "bucket_ns": 1, "timeline": []}}})
            .to_string(),
        )
        .unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"seed": 7}"#).unwrap();
        let path = write_report(dir.path()).unwrap();
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains(r#"class="verdict v-valid""#));
        assert!(html.contains(r#"<svg class="plot timeline""#));
        assert!(html.contains(r#"class="nemesis""#));
        assert!(html.contains(r#"href="history.jsonl""#));
        assert!(!html.contains("id=\"counterexample\""));
        assert!(!html.contains("http://") || !html.contains("<link"));
    }

    #[test]
    fn missing_results_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_report(dir.path()).unwrap_err();
        assert!(e.to_string().contains("results.json"), "{e}");
    }
}
