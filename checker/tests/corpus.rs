//! Conformance: every history in `tests/data` gets the verdict its source's own tests
//! expect, listed in each corpus's `verdicts.tsv` (file, expected verdict, reading).
//!
//! - `porcupine/`: Porcupine's etcd logs with the cas-register model (initial nil) and its
//!   kv histories with the kv model (initial ""), under the reading Porcupine's models
//!   mean (`porcupine`); every other reading gives the same verdicts there too.
//! - `knossos/`: Knossos's cas-register histories with the cas-register model, initial 0
//!   (as Knossos's `core_test.clj` checks them), under the reading their format gets by
//!   default (Knossos's, for EDN).
//!
//! The data is part of the repository: a missing or unreadable file fails, and so does a
//! file on disk that the manifest leaves out. Any mismatch fails the test, listing every
//! one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_checker::format::{read_path_and_format, Format};
use faultline_checker::{check, Limits, ModelKind, ModelSpec, Reading, Value};

fn data_dir(corpus: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(corpus)
}

/// One row of a `verdicts.tsv`.
struct Row {
    file: String,
    expected: String,
    reading: Reading,
}

/// The rows of `dir/verdicts.tsv`. Panics on a missing manifest, a malformed row, a
/// verdict other than `valid`/`invalid`, an unknown reading, a duplicate row, or a file in
/// one of `subdirs` that the manifest leaves out: the test must cover every row and every
/// file.
fn manifest(dir: &Path, subdirs: &[&str]) -> Vec<Row> {
    let path = dir.join("verdicts.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the corpus is in the repository)", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next().map(str::trim),
        Some("file\texpected\treading"),
        "{}: unexpected header",
        path.display()
    );
    let rows: Vec<Row> = lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let fields: Vec<&str> = l.split('\t').map(str::trim).collect();
            let [file, expected, reading] = fields[..] else {
                panic!(
                    "verdicts.tsv line {}: expected file<TAB>verdict<TAB>reading: {l:?}",
                    i + 2
                );
            };
            assert!(
                matches!(expected, "valid" | "invalid"),
                "verdicts.tsv line {}: verdict {expected:?} is not valid/invalid",
                i + 2
            );
            let reading = reading
                .parse()
                .unwrap_or_else(|e| panic!("verdicts.tsv line {}: {e}", i + 2));
            Row {
                file: file.to_string(),
                expected: expected.to_string(),
                reading,
            }
        })
        .collect();
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(listed.len(), rows.len(), "verdicts.tsv lists a file twice");
    let mut on_disk = BTreeSet::new();
    for sub in subdirs {
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

/// Checks every row's file with `spec(row, format read as)`; returns the mismatches.
fn run(dir: &Path, rows: &[Row], spec: impl Fn(&Row, Format) -> ModelSpec) -> Vec<String> {
    let limits = Limits {
        timeout: Some(Duration::from_secs(60)),
        ..Limits::default()
    };
    let mut mismatches = Vec::new();
    eprintln!("checking {} histories in {}", rows.len(), dir.display());
    for row in rows {
        let file = &row.file;
        let (history, format) = match read_path_and_format(&dir.join(file), Format::Auto) {
            Ok(read) => read,
            Err(e) => {
                mismatches.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        let started = Instant::now();
        match check(&history, &spec(row, format), &limits) {
            Ok(r) if r.verdict.name() == row.expected => {}
            Ok(r) => mismatches.push(format!(
                "{file}: expected {}, got {} ({:?})",
                row.expected,
                r.verdict.name(),
                started.elapsed()
            )),
            Err(e) => mismatches.push(format!("{file}: error: {e}")),
        }
    }
    mismatches
}

fn assert_none(mismatches: Vec<String>) {
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Porcupine's model for a file: cas-register from nil for the etcd logs, kv from "" for
/// the kv histories.
fn porcupine_model(file: &str) -> ModelSpec {
    if file.starts_with("kv/") {
        ModelSpec::new(ModelKind::Kv).with_initial(Value::from(""))
    } else {
        ModelSpec::new(ModelKind::CasRegister)
    }
}

#[test]
fn porcupine_corpus_verdicts() {
    let dir = data_dir("porcupine");
    let rows = manifest(&dir, &["etcd", "kv"]);
    assert!(rows.iter().all(|r| r.reading == Reading::Porcupine));
    assert_none(run(&dir, &rows, |row, _| {
        row.reading.apply(porcupine_model(&row.file))
    }));
}

/// The corpus gives the same verdicts under Knossos's reading (a Jepsen log's default:
/// nil reads are unknown, failed cas did not happen) and faultline's (nil reads saw nil,
/// failed cas did not happen) as under Porcupine's.
#[test]
fn porcupine_corpus_under_the_other_readings() {
    let dir = data_dir("porcupine");
    let rows = manifest(&dir, &["etcd", "kv"]);
    for reading in [Reading::Knossos, Reading::Faultline] {
        let mismatches = run(&dir, &rows, |row, _| {
            reading.apply(porcupine_model(&row.file))
        });
        assert!(
            mismatches.is_empty(),
            "reading {reading}: {} mismatches:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }
}

/// Knossos's model for its cas-register data: `(model/cas-register 0)`.
fn knossos_model() -> ModelSpec {
    ModelSpec::new(ModelKind::CasRegister).with_initial(Value::Int(0))
}

#[test]
fn knossos_cas_register_verdicts() {
    let dir = data_dir("knossos/cas-register");
    let rows = manifest(&dir, &["good", "bad"]);
    for row in &rows {
        let expected = if row.file.starts_with("good/") {
            "valid"
        } else {
            "invalid"
        };
        assert_eq!(
            row.expected, expected,
            "{}: verdict against its folder",
            row.file
        );
    }
    assert_none(run(&dir, &rows, |row, format| {
        // The test is of the default reading for the file's format: the manifest only
        // says which that is.
        let reading = Reading::for_format(format);
        assert_eq!(reading, row.reading, "{}: read as {format}", row.file);
        reading.apply(knossos_model())
    }));
}

/// Under faultline's reading (an ok read of nil saw nil) the good histories whose clients
/// read nil before any write are invalid from 0, as `faultline check --initial 0` called
/// them before EDN got Knossos's reading by default: the reading is what makes them valid,
/// not a looser model. The bad ones stay invalid under every reading.
#[test]
fn knossos_cas_register_under_faultline_reading() {
    let dir = data_dir("knossos/cas-register");
    let rows = manifest(&dir, &["good", "bad"]);
    let limits = Limits::default();
    let verdict = |file: &str, reading: Reading| {
        let (h, _) = read_path_and_format(&dir.join(file), Format::Auto).unwrap();
        let r = check(&h, &reading.apply(knossos_model()), &limits).unwrap();
        r.verdict.name().to_string()
    };
    let invalid_as_faultline: Vec<&str> = rows
        .iter()
        .filter(|r| r.expected == "valid")
        .filter(|r| verdict(&r.file, Reading::Faultline) == "invalid")
        .map(|r| r.file.as_str())
        .collect();
    assert_eq!(
        invalid_as_faultline,
        [
            "good/memstress3-25.edn",
            "good/memstress3-50.edn",
            "good/memstress3-93.edn",
            "good/memstress3-94.edn",
            "good/memstress3-95.edn",
            "good/memstress3-96.edn",
            "good/memstress3-98.edn",
            "good/memstress3-99.edn",
        ]
    );
    for row in rows.iter().filter(|r| r.expected == "invalid") {
        for reading in Reading::ALL {
            assert_eq!(
                verdict(&row.file, reading),
                "invalid",
                "{} {reading}",
                row.file
            );
        }
    }
}
