//! The detection matrix end to end: `faultline test-all` with short runs on one backend.
//! Every correct cell must be `valid` and every planted bug found within its tries, or the
//! exit code is not 0 and the test fails with the table. Also checks what test-all writes:
//! `matrix.json` and the JUnit file (one case per cell, no failures).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The whole matrix, image build included, must finish within this.
const MATRIX_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// Cells left out of the CI matrix on a backend, with why (each one is still in
/// `faultline test-all`).
pub fn left_out(backend: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // Every clock fault would be skipped, and a bug that needs one missed.
    if backend == "local" && super::local::faketime().is_none() {
        out.push((
            "lease-clock",
            "local clock faults need libfaketime".to_string(),
        ));
    }
    out
}

/// `faultline test-all` with `flags`, then the raftkv binary (when given), the results
/// folder and the JUnit file.
pub fn test_all_args(
    flags: &[&str],
    raftkv: Option<&Path>,
    dir: &Path,
    junit: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = std::iter::once("test-all")
        .chain(flags.iter().copied())
        .map(ToString::to_string)
        .collect();
    if let Some(raftkv) = raftkv {
        args.extend(["--raftkv".into(), raftkv.display().to_string()]);
    }
    args.extend(["--results-dir".into(), dir.display().to_string()]);
    args.extend(["--junit".into(), junit.display().to_string()]);
    args
}

/// The cells `faultline test-all --list` lists with `flags`.
fn listed(flags: &[&str]) -> Vec<String> {
    listed_lines(flags)
        .iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// `test-all --list`'s lines: a cell's name, what it expects, its narrowed shapes, and
/// whether it needs Docker.
fn listed_lines(flags: &[&str]) -> Vec<String> {
    let all = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["test-all", "--list"])
        .args(flags)
        .output()
        .expect("faultline test-all --list");
    String::from_utf8_lossy(&all.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs every cell not in [`left_out`] on `backend` (`docker` or `local`) with `raftkv`.
pub async fn run_matrix(backend: &str, raftkv: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("matrix.xml");
    let flags = [
        "--backend",
        backend,
        "--time-limit",
        "15s",
        "--tries",
        "8",
        "--seed",
        "1000",
    ];
    let mut args = test_all_args(&flags, Some(raftkv), dir.path(), &junit);
    let skipped = left_out(backend);
    let cells: Vec<String> = listed(&[])
        .into_iter()
        .filter(|name| !skipped.iter().any(|(left, _)| name.contains(left)))
        .collect();
    assert!(
        cells.len() + skipped.len() >= 15,
        "the matrix lists {} cells",
        cells.len()
    );
    for c in &cells {
        args.extend(["--only".into(), c.clone()]);
    }
    for (cell, why) in &skipped {
        eprintln!("left out of this test: {cell}: {why}");
    }
    run_and_check(&args, cells.len(), dir.path(), &junit).await;
}

/// Runs the target folders' matrix (`--matrix targets`) on `backend`.
pub async fn run_targets_matrix(backend: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("matrix.xml");
    let flags = [
        "--matrix",
        "targets",
        "--backend",
        backend,
        "--time-limit",
        "20s",
        "--tries",
        "6",
        "--seed",
        "2000",
    ];
    // The local backend leaves out the Docker-only cells (`--list` marks them).
    let all = listed_lines(&["--matrix", "targets"]);
    let cells = all
        .iter()
        .filter(|l| backend != "local" || !l.contains("[Docker only]"))
        .count();
    assert!(
        cells >= 3,
        "the targets matrix runs {cells} cells on {backend}"
    );
    let args = test_all_args(&flags, None, dir.path(), &junit);
    run_and_check(&args, cells, dir.path(), &junit).await;
}

/// Runs `faultline args` (a test-all) and checks that every one of its `cells` cells was
/// met, in the table, `matrix.json` and the JUnit file.
async fn run_and_check(args: &[String], cells: usize, dir: &Path, junit: &Path) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start faultline test-all");
    let out = tokio::time::timeout(MATRIX_TIMEOUT, child.wait_with_output())
        .await
        .expect("test-all exceeded its time limit")
        .expect("test-all output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The table goes to the test's output: CI logs show the matrix and its times.
    println!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "test-all failed:\n{stdout}\nstderr (tail):\n{}",
        {
            let err = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = err.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        }
    );

    let matrix_json = std::fs::read_dir(dir.join("test-all"))
        .expect("test-all folder")
        .filter_map(Result::ok)
        .map(|e| e.path().join("matrix.json"))
        .find(|p| p.is_file())
        .expect("matrix.json");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&matrix_json).expect("read")).expect("JSON");
    let outcomes = m["cells"].as_array().expect("cells");
    assert_eq!(outcomes.len(), cells);
    for o in outcomes {
        assert_eq!(o["status"], "met", "{o}");
        let finds = o["cell"]["expect"] != "valid";
        assert_eq!(
            o["time_to_detection_ms"].is_u64(),
            finds,
            "a finding has a time to detection, a correct cell none: {o}"
        );
    }
    let xml = std::fs::read_to_string(junit).expect("junit written");
    assert!(
        xml.contains(&format!("tests=\"{cells}\" failures=\"0\" errors=\"0\"")),
        "{xml}"
    );
}
