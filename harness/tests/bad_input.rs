//! Every row of the bad-input table in `docs/bad-input.md`, run as written: the command
//! (with `faultline` this build's binary) must exit with the row's code, and its standard
//! error must contain the row's message. The table is the test's data, so the document
//! and the behaviour cannot drift apart. The commands run in a copy of
//! `harness/tests/data/bad-input/`, which holds the files they name.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest one command may take (the unreachable-endpoints row waits 30 s for a leader).
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// One row: the shell command, the exit code, a part of stderr.
#[derive(Debug)]
struct Row {
    command: String,
    exit: i32,
    message: String,
}

/// The table's rows: the lines `| \`faultline ...\` | N | message |`.
fn rows(doc: &str) -> Vec<Row> {
    doc.lines()
        .filter(|l| l.starts_with("| `faultline"))
        .map(|l| {
            let cols: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cols.len(), 3, "a row has command, exit, message: {l}");
            Row {
                command: cols[0].trim_matches('`').to_string(),
                exit: cols[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("exit code in {l}")),
                message: cols[2].to_string(),
            }
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_bad_input_table_holds() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc =
        std::fs::read_to_string(manifest.join("../docs/bad-input.md")).expect("docs/bad-input.md");
    let rows = rows(&doc);
    assert!(rows.len() >= 40, "the table has {} rows", rows.len());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&manifest.join("tests/data/bad-input"), dir.path());
    let bin: PathBuf = PathBuf::from(env!("CARGO_BIN_EXE_faultline"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut wrong = Vec::new();
    for row in &rows {
        let child = tokio::process::Command::new("sh")
            .args(["-c", &row.command])
            .current_dir(dir.path())
            .env("PATH", &path)
            // Docker is never reached by these rows; the local backend needs no daemon.
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sh");
        let out = tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{} did not end", row.command))
            .expect("output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(row.exit) || !stderr.contains(&row.message) {
            wrong.push(format!(
                "{}\n  want exit {} and {:?}\n  got exit {:?}: {}",
                row.command,
                row.exit,
                row.message,
                out.status.code(),
                stderr.trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "rows that do not hold:\n{}",
        wrong.join("\n")
    );
}
