//! `report.html` in a real browser: headless Chromium (Debian's `chromium` package) opens
//! reports for a valid history, an invalid one (the Porcupine corpus's etcd_000, from the
//! repository's test data) and a run folder with
//! more ops than the timeline draws. Each must load without script errors (the page's
//! script sets `data-ok` on `<body>` as its last step) and have its key elements;
//! screenshots go to the cargo target dir and their paths are printed.
//!
//! Skips, printing why (or fails, under `FAULTLINE_REQUIRE=chromium`), when `chromium` is
//! not installed.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use faultline_checker::{Event, EventType, Process, Value};
use serde_json::json;

/// Runs headless Chromium on `page` with `mode` (`--dump-dom` or `--screenshot=...`), in
/// a profile of its own so tests can run in parallel.
fn chromium(page: &Path, mode: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--window-size=1400,1000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium")
}

/// Loads `page`, checks that the script finished without errors and that `wanted`
/// elements are in the DOM, saves a screenshot. Returns the DOM.
fn open(page: &Path, name: &str, wanted: &[&str]) -> String {
    let started = Instant::now();
    let out = chromium(page, "--dump-dom");
    let load = started.elapsed();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed on {name}: {log}");
    for line in log.lines() {
        assert!(
            !(line.contains("CONSOLE") && (line.contains("Uncaught") || line.contains("Error"))),
            "script error in {name}: {line}"
        );
    }
    assert!(
        dom.contains(r#"data-ok="1""#),
        "{name}: the page script did not finish (no data-ok on <body>)"
    );
    for w in wanted {
        assert!(dom.contains(w), "{name}: {w:?} missing from the DOM");
    }
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let out = chromium(page, &format!("--screenshot={}", shot.display()));
    assert!(out.status.success(), "{name}: screenshot failed");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "{name}: empty screenshot");
    println!(
        "{name}: loaded in {} ms; screenshot {}",
        load.as_millis(),
        shot.display()
    );
    dom
}

fn ev(p: u64, kind: EventType, f: &str, key: &str, v: Value) -> Event {
    Event::new(Process::Client(p), kind, f, v).with_key(key)
}

fn write_history(path: &Path, events: &[Event]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        e.index = i as u64;
        e.time_ns = e.time_ns.or(Some(1_000_000 * (i as u64 + 1)));
        serde_json::to_writer(&mut f, &e).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

/// Writes and reads back, one key per writer/reader pair; `stale` adds a read of an
/// overwritten value at the end.
fn register_history(stale: bool) -> Vec<Event> {
    use EventType::*;
    let mut events = vec![
        Event::new(Process::Nemesis, Info, "start-partition", Value::Null),
        ev(0, Invoke, "write", "r0", 1.into()),
        ev(0, Ok, "write", "r0", 1.into()),
        ev(1, Invoke, "read", "r0", Value::Null),
        ev(1, Ok, "read", "r0", 1.into()),
        Event::new(Process::Nemesis, Info, "stop-partition", Value::Null),
        ev(0, Invoke, "write", "r0", 2.into()),
        ev(1, Invoke, "read", "r0", Value::Null),
        ev(0, Ok, "write", "r0", 2.into()),
        ev(1, Ok, "read", "r0", 2.into()),
        ev(
            2,
            Invoke,
            "cas",
            "r0",
            Value::List(vec![2.into(), 3.into()]),
        ),
        ev(2, Info, "cas", "r0", Value::List(vec![2.into(), 3.into()])),
    ];
    if stale {
        events.extend([
            ev(3, Invoke, "write", "r0", 4.into()),
            ev(3, Ok, "write", "r0", 4.into()),
            ev(1, Invoke, "read", "r0", Value::Null),
            ev(1, Ok, "read", "r0", 1.into()),
        ]);
    }
    events
}

/// `faultline check HISTORY --model cas-register --report NAME.html` and `extra` args.
fn check_report(
    dir: &Path,
    history: &Path,
    name: &str,
    expect_code: i32,
    extra: &[&str],
) -> PathBuf {
    let report = dir.join(format!("{name}.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .arg(history)
        .args(extra)
        .args(["--model", "cas-register", "--report"])
        .arg(&report)
        .output()
        .expect("run faultline check");
    assert_eq!(
        out.status.code(),
        Some(expect_code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

#[test]
fn reports_load_in_chromium() {
    if support::cli::chromium().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    let valid = dir.path().join("valid.jsonl");
    write_history(&valid, &register_history(false));
    let page = check_report(dir.path(), &valid, "valid", 0, &[]);
    let dom = open(
        &page,
        "valid",
        &[
            r#"id="verdict""#,
            r#"class="verdict v-valid""#,
            r#"<svg class="plot timeline""#,
            r#"<svg class="plot latency""#,
            r#"<svg class="plot throughput""#,
            r#"class="nemesis""#,
        ],
    );
    assert!(!dom.contains(r#"id="counterexample""#));

    // Porcupine's etcd log, part of the repository, with the reading its verdict assumes.
    let invalid = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checker/tests/data/porcupine/etcd/etcd_000.log");
    let page = check_report(
        dir.path(),
        &invalid,
        "invalid",
        1,
        &["--reading", "porcupine"],
    );
    open(
        &page,
        "invalid",
        &[
            r#"class="verdict v-invalid""#,
            r#"<svg class="plot timeline""#,
            r#"id="counterexample""#,
            r#"id="cex-timeline""#,
            r#"id="states""#,
            r#"id="prefix""#,
            r#"class="cex-window""#,
        ],
    );
}

/// A run folder with more ops than the timeline draws: the page says it shows a window
/// and a sample, and still renders.
#[test]
fn big_run_report_draws_a_window() {
    if support::cli::chromium().is_none() {
        return;
    }
    use EventType::*;
    const OPS: u64 = 30_000;
    const PROCS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut events = Vec::with_capacity(2 * OPS as usize + 4);
    // Each process issues back to back; ops overlap across processes.
    for i in 0..OPS {
        let p = i % PROCS;
        let t = (i / PROCS) * 2_000_000 + p * 50_000;
        let key = format!("r{}", p % 5);
        let (f, v) = if i % 3 == 0 {
            ("write", Value::Int(i as i64))
        } else {
            ("read", Value::Null)
        };
        let mut a = ev(p, Invoke, f, &key, v.clone());
        a.time_ns = Some(t);
        let mut b = ev(p, if i % 50 == 7 { Fail } else { Ok }, f, &key, v);
        b.time_ns = Some(t + 1_000_000 + (i % 17) * 30_000);
        events.push(a);
        events.push(b);
    }
    events.sort_by_key(|e| e.time_ns);
    let mid = events.len() / 3;
    let mut start = Event::new(Process::Nemesis, Info, "start-kill", Value::Null);
    start.time_ns = events[mid].time_ns;
    events.insert(mid, start);
    write_history(&dir.path().join("history.jsonl"), &events);
    std::fs::write(
        dir.path().join("results.json"),
        json!({"schema_version": 2, "verdict": "unknown", "test": "big", "run_dir": "",
            "seed": 1, "total_ms": 1000,
            "judgement": {"verdict": "unknown", "model": "cas-register",
                "linearizable": {"verdict": "unknown", "limit": "timeout 1s",
                    "stats": {"ops": OPS}},
                "stats": {"ops": OPS, "duration_ns": null, "groups": [], "bucket_ns": 1,
                    "timeline": []}}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"seed": 1}"#).unwrap();
    let started = Instant::now();
    let page = faultline::report::write_report(dir.path()).unwrap();
    println!(
        "big: {OPS} ops, report written in {} ms, {} bytes",
        started.elapsed().as_millis(),
        std::fs::metadata(&page).unwrap().len()
    );
    let dom = open(
        &page,
        "big",
        &[
            r#"class="verdict v-unknown""#,
            r#"id="timeline-window""#,
            r#"id="latency-sample""#,
            r#"data-ops="10000""#,
        ],
    );
    assert!(dom.contains("stopped by timeout 1s"));
}
