//! Conformance: every history in `../shared/corpus/porcupine` gets the verdict
//! Porcupine's own tests expect (`verdicts.tsv`): etcd logs with the cas-register model
//! (initial nil), kv histories with the kv model (initial ""). Any mismatch fails the
//! test, listing every one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_checker::format::{read_path, Format};
use faultline_checker::{check, Limits, ModelKind, ModelSpec, Value};

/// `$FAULTLINE_CORPUS/porcupine` when set (as `harness/tests/cli_check.rs`), else the
/// shared corpus beside the repository.
fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("FAULTLINE_CORPUS") {
        Some(root) => PathBuf::from(root).join("porcupine"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/porcupine"),
    };
    dir.join("verdicts.tsv").exists().then_some(dir)
}

fn spec_for(file: &str) -> ModelSpec {
    if file.starts_with("kv/") {
        ModelSpec::new(ModelKind::Kv).with_initial(Value::from(""))
    } else {
        ModelSpec::new(ModelKind::CasRegister)
    }
}

/// (file, expected verdict) from the manifest. Panics on a malformed row, a verdict
/// other than `valid`/`invalid`, a duplicate row, or a history file in `etcd/` or `kv/`
/// that the manifest leaves out: the test must cover every row and every file.
fn manifest(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("verdicts.tsv")).expect("read verdicts.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next().map(str::trim),
        Some("file\texpected"),
        "verdicts.tsv: unexpected header"
    );
    let rows: Vec<(String, String)> = lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let Some((file, expected)) = l.split_once('\t') else {
                panic!(
                    "verdicts.tsv line {}: expected file<TAB>verdict: {l:?}",
                    i + 2
                );
            };
            let expected = expected.trim();
            assert!(
                matches!(expected, "valid" | "invalid"),
                "verdicts.tsv line {}: verdict {expected:?} is not valid/invalid",
                i + 2
            );
            (file.to_string(), expected.to_string())
        })
        .collect();
    let listed: BTreeSet<&str> = rows.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(listed.len(), rows.len(), "verdicts.tsv lists a file twice");
    let mut on_disk = BTreeSet::new();
    for sub in ["etcd", "kv"] {
        let rd = std::fs::read_dir(dir.join(sub)).unwrap_or_else(|e| panic!("{sub}/: {e}"));
        for entry in rd {
            let name = entry.expect("read corpus dir").file_name();
            on_disk.insert(format!("{sub}/{}", name.to_string_lossy()));
        }
    }
    let unlisted: Vec<&String> = on_disk
        .iter()
        .filter(|f| !listed.contains(f.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "corpus files missing from verdicts.tsv: {unlisted:?}"
    );
    assert!(!rows.is_empty(), "verdicts.tsv has no rows");
    rows
}

/// Checks every file with `spec_for(file)` changed by `adjust`; returns the mismatches.
fn run(dir: &Path, adjust: impl Fn(ModelSpec) -> ModelSpec) -> Vec<String> {
    let limits = Limits {
        timeout: Some(Duration::from_secs(60)),
        ..Limits::default()
    };
    let mut mismatches = Vec::new();
    let rows = manifest(dir);
    eprintln!("checking {} corpus histories", rows.len());
    for (file, expected) in rows {
        let history = match read_path(&dir.join(&file), Format::Auto) {
            Ok(h) => h,
            Err(e) => {
                mismatches.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        let started = Instant::now();
        let result = check(&history, &adjust(spec_for(&file)), &limits);
        match result {
            Ok(r) if r.verdict.name() == expected => {}
            Ok(r) => mismatches.push(format!(
                "{file}: expected {expected}, got {} ({:?})",
                r.verdict.name(),
                started.elapsed()
            )),
            Err(e) => mismatches.push(format!("{file}: error: {e}")),
        }
    }
    mismatches
}

#[test]
fn porcupine_corpus_verdicts() {
    let Some(dir) = corpus_dir() else {
        panic!(
            "corpus missing: expected {}/../../shared/corpus/porcupine/verdicts.tsv",
            env!("CARGO_MANIFEST_DIR")
        );
    };
    let mismatches = run(&dir, |s| s);
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn porcupine_corpus_with_failed_cas_observed() {
    let Some(dir) = corpus_dir() else {
        panic!("corpus missing");
    };
    let mismatches = run(&dir, |mut s| {
        s.cas_fail_observed = true;
        s
    });
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Knossos reads an `ok` read of nil as "value unknown"; on this corpus that changes no
/// verdict.
#[test]
fn porcupine_corpus_with_knossos_nil_reads() {
    let Some(dir) = corpus_dir() else {
        panic!("corpus missing");
    };
    let mismatches = run(&dir, |mut s| {
        s.nil_read_any = true;
        s
    });
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
