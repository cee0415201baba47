//! Snapshot tests (insta) for what CI systems and scripts read: the shape of a run's
//! `results.json`, and the JUnit XML for valid, invalid (linearizability and fencing),
//! unknown and failed runs and for `faultline check`. Also the `faultline report` and
//! `check --report/--junit` commands end to end on small histories.
//!
//! Times and search statistics that vary between machines are zeroed before a snapshot.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use faultline::report::junit;
use faultline::results::{
    Exercised, OnlineSummary, OnlineViolation, Results, RunResults, Verdict, SCHEMA_VERSION,
};
use faultline::run::judge::judge;
use faultline_checker::{Event, EventType, Process, Value};
use faultline_workloads::{CountsSnapshot, Workload};
use serde_json::json;

fn ev(p: u64, kind: EventType, f: &str, key: &str, v: Value) -> Event {
    Event::new(Process::Client(p), kind, f, v).with_key(key)
}

fn write_history(dir: &Path, events: &[Event]) -> PathBuf {
    let path = dir.join("history.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        e.index = i as u64;
        e.time_ns = Some(1_000_000 * (i as u64 + 1));
        serde_json::to_writer(&mut f, &e).unwrap();
        f.write_all(b"\n").unwrap();
    }
    path
}

fn register_events(stale: bool) -> Vec<Event> {
    use EventType::*;
    let mut events = vec![
        ev(0, Invoke, "write", "r0", 1.into()),
        ev(0, Ok, "write", "r0", 1.into()),
        Event::new(
            Process::Nemesis,
            Info,
            "start-partition",
            json!({"shape": "halves"}).to_string().into(),
        ),
        ev(1, Invoke, "read", "r0", Value::Null),
        ev(1, Ok, "read", "r0", 1.into()),
        ev(0, Invoke, "write", "r0", 2.into()),
        ev(0, Ok, "write", "r0", 2.into()),
        Event::new(Process::Nemesis, Info, "heal", Value::Null),
    ];
    if stale {
        events.extend([
            ev(1, Invoke, "read", "r0", Value::Null),
            ev(1, Ok, "read", "r0", 1.into()),
        ]);
    }
    events
}

fn lock_events() -> Vec<Event> {
    use EventType::*;
    let fw = |t: i64, v: i64| Value::List(vec![t.into(), v.into()]);
    vec![
        ev(0, Invoke, "acquire", "l0", Value::Null),
        ev(0, Ok, "acquire", "l0", 1.into()),
        ev(2, Invoke, "acquire", "l0", Value::Null),
        ev(2, Ok, "acquire", "l0", 5.into()),
        ev(2, Invoke, "fenced-write", "l0", fw(5, 11)),
        ev(2, Ok, "fenced-write", "l0", fw(5, 11)),
        ev(3, Invoke, "fenced-write", "l0", fw(1, 12)),
        ev(3, Ok, "fenced-write", "l0", fw(1, 12)),
    ]
}

/// A run's outcome for `events` judged as `workload`, with machine-dependent numbers
/// fixed.
fn outcome(events: &[Event], workload: Workload) -> RunResults {
    let dir = tempfile::tempdir().unwrap();
    let path = write_history(dir.path(), events);
    let mut j = judge(&path, workload, Duration::from_secs(30)).unwrap();
    j.linearizable.stats.elapsed_ms = 0;
    j.linearizable.stats.peak_memory_bytes = 0;
    j.linearizable.stats.states_explored = 0;
    RunResults {
        schema_version: SCHEMA_VERSION,
        verdict: j.verdict,
        test: format!("raftkv-{workload}"),
        run_dir: PathBuf::from(format!("results/raftkv-{workload}/20261123T120000")),
        seed: 42,
        error: None,
        exercised: Some(Exercised {
            counts: CountsSnapshot {
                invoke: 4,
                ok: 4,
                fail: 0,
                info: 0,
                nemesis: 2,
            },
            events_written: events.len() as u64,
            ops_issued: 4,
            final_reads_ok: 1,
            final_reads_failed: Vec::new(),
            faults_started: BTreeMap::from([("partition".to_string(), 1)]),
            faults_skipped: BTreeMap::new(),
            fault_failures: 0,
            heal_errors: Vec::new(),
            restarted_at_heal: Vec::new(),
            log_errors: Vec::new(),
            cancelled: false,
            workload_ms: 1_000,
            online: Some(OnlineSummary {
                checks: 3,
                events_checked: events.len() as u64,
                check_ms: 2,
                unknown_checks: 0,
                violation: (j.verdict == Verdict::Invalid).then(|| OnlineViolation {
                    found_at_ms: 950,
                    events: events.len() as u64,
                    op: "p1 read r0 -> 1".to_string(),
                    key: Some("r0".to_string()),
                    op_completed_at_ms: Some(900),
                    check_ms: 1,
                }),
                stopped_run: false,
                error: None,
            }),
        }),
        judgement: Some(j),
        teardown_error: None,
        total_ms: 1_500,
    }
}

#[test]
fn results_json_shape_valid_run() {
    let o = outcome(&register_events(false), Workload::Register);
    assert_eq!(o.verdict, Verdict::Valid);
    insta::assert_json_snapshot!("results_valid", o);
}

#[test]
fn results_json_shape_invalid_run() {
    let o = outcome(&register_events(true), Workload::Register);
    assert_eq!(o.verdict, Verdict::Invalid);
    insta::assert_json_snapshot!("results_invalid", o);
}

#[test]
fn junit_valid_run() {
    let o = outcome(&register_events(false), Workload::Register);
    let xml = junit::render(&o.test, &Results::Run(o.clone()));
    insta::assert_snapshot!("junit_valid", xml);
}

#[test]
fn junit_invalid_run() {
    let o = outcome(&register_events(true), Workload::Register);
    let xml = junit::render(&o.test, &Results::Run(o.clone()));
    assert!(xml.contains("<failure type=\"invalid\""), "{xml}");
    insta::assert_snapshot!("junit_invalid", xml);
}

#[test]
fn junit_fencing_run() {
    let o = outcome(&lock_events(), Workload::Lock);
    assert_eq!(o.verdict, Verdict::Invalid);
    let xml = junit::render(&o.test, &Results::Run(o.clone()));
    assert!(xml.contains(r#"name="fencing""#), "{xml}");
    insta::assert_snapshot!("junit_fencing", xml);
}

#[test]
fn junit_unknown_and_failed_runs() {
    let unknown = json!({"verdict": "unknown", "test": "raftkv-kv", "seed": 1,
        "run_dir": "", "total_ms": 2000,
        "judgement": {"verdict": "unknown", "model": "kv",
            "linearizable": {"verdict": "unknown", "limit": "timeout 1s",
                "stats": {"elapsed_ms": 1000}},
            "stats": {"ops": 0, "duration_ns": null, "groups": [], "bucket_ns": 1,
                "timeline": []}}});
    let unknown = Results::Run(serde_json::from_value(unknown).unwrap());
    insta::assert_snapshot!("junit_unknown", junit::render("raftkv-kv", &unknown));
    let mut failed = RunResults::failed(
        "raftkv-kv",
        PathBuf::new(),
        1,
        "no leader elected within 30000 ms".into(),
    );
    failed.total_ms = 30_000;
    let failed = Results::Run(failed);
    insta::assert_snapshot!("junit_error", junit::render("raftkv-kv", &failed));
}

fn faultline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

#[test]
fn check_writes_report_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("h");
    std::fs::create_dir(&sub).unwrap();
    let history = write_history(&sub, &register_events(true));
    let report = dir.path().join("report.html");
    let xml = dir.path().join("junit.xml");
    let o = faultline(&[
        "check",
        history.to_str().unwrap(),
        "--model",
        "cas-register",
        "--report",
        report.to_str().unwrap(),
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains(r#"id="counterexample""#));
    assert!(html.contains(r#"class="verdict v-invalid""#));
    let xml = std::fs::read_to_string(&xml).unwrap();
    // The suite is named after the history path, and the times are the check's wall time;
    // both vary: snapshot the rest.
    let xml = without_times(&xml.replace(history.to_str().unwrap(), "HISTORY"));
    insta::assert_snapshot!("junit_check_invalid", xml);
}

/// `xml` with the value of every `time` attribute replaced by `T`.
fn without_times(xml: &str) -> String {
    const ATTR: &str = " time=\"";
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(i) = rest.find(ATTR) {
        out.push_str(&rest[..i + ATTR.len()]);
        out.push('T');
        rest = &rest[i + ATTR.len()..];
        rest = &rest[rest.find('"').unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

#[test]
fn report_command_rebuilds_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), &register_events(true));
    let o = outcome(&register_events(true), Workload::Register);
    std::fs::write(
        dir.path().join("results.json"),
        serde_json::to_string_pretty(&o).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"seed": 42}"#).unwrap();
    let xml = dir.path().join("junit.xml");
    let out = faultline(&[
        "report",
        dir.path().to_str().unwrap(),
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.trim().ends_with("report.html"), "{printed}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains(r#"id="counterexample""#));
    assert!(html.contains(r#"href="history.jsonl""#));
    assert!(std::fs::read_to_string(xml).unwrap().contains("<failure"));
    // No results.json: exit 3 with the path.
    let empty = tempfile::tempdir().unwrap();
    let out = faultline(&["report", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("results.json"));
}
