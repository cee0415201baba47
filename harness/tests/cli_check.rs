//! `faultline check` end to end: the built binary on corpus files, on generated fencing
//! histories and on malformed input; exit codes, messages and JSON.
//!
//! Porcupine's corpus (`checker/tests/data/porcupine`, part of the repository) is checked
//! with `--reading porcupine`, the meaning its verdicts assume (its README).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The checker crate's test data, part of the repository.
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../checker/tests/data")
}

fn corpus() -> PathBuf {
    data_dir().join("porcupine")
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run faultline")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn corpus_file(name: &str) -> String {
    corpus().join(name).to_string_lossy().into_owned()
}

fn temp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn invalid_etcd_log_exits_1_with_counterexample() {
    let o = faultline(&[
        "check",
        &corpus_file("etcd/etcd_000.log"),
        "--model",
        "cas-register",
        "--reading",
        "porcupine",
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("cas-register: invalid"), "{out}");
    assert!(
        out.contains("reading: porcupine (--reading porcupine)"),
        "{out}"
    );
    assert!(out.contains("cannot take effect next"), "{out}");
}

#[test]
fn kv_corpus_verdicts_and_json() {
    let ok = faultline(&[
        "check",
        &corpus_file("kv/c10-ok.txt"),
        "--model",
        "kv",
        "--initial",
        "\"\"",
        "--reading",
        "porcupine",
        "--json",
    ]);
    assert_eq!(code(&ok), 0, "{}{}", stdout(&ok), stderr(&ok));
    let j: serde_json::Value = serde_json::from_str(stdout(&ok).trim()).unwrap();
    assert_eq!(j["verdict"], "valid");
    assert_eq!(j["model"], "kv");
    assert_eq!(j["reading"], "porcupine");
    assert_eq!(j["format"], "edn");
    assert_eq!(j["linearizable"]["stats"]["partitions"], 10);

    let bad = faultline(&[
        "check",
        &corpus_file("kv/c01-bad.txt"),
        "--model",
        "kv",
        "--initial",
        "\"\"",
        "--reading",
        "porcupine",
        "--json",
    ]);
    assert_eq!(code(&bad), 1, "{}{}", stdout(&bad), stderr(&bad));
    let j: serde_json::Value = serde_json::from_str(stdout(&bad).trim()).unwrap();
    assert_eq!(j["verdict"], "invalid");
}

#[test]
fn memory_limit_gives_unknown() {
    // etcd_002 needs megabytes of memo; one KiB is not enough.
    let o = faultline(&[
        "check",
        &corpus_file("etcd/etcd_002.log"),
        "--model",
        "cas-register",
        "--reading",
        "porcupine",
        "--max-memory",
        "1KiB",
    ]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("max-memory 1KiB"), "{}", stdout(&o));
}

#[test]
fn malformed_history_exits_3_naming_file_line_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(
        &dir,
        "bad.jsonl",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":1,\"type\":\"ok\",\"f\":3}\n",
    );
    let o = faultline(&["check", &p, "--model", "register"]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(err.contains(&format!("{p}:2: field `f`")), "{err}");

    let p = temp_file(
        &dir,
        "bad.log",
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:okay\t:read\t1\n",
    );
    let o = faultline(&["check", &p, "--model", "register", "--json"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains(&format!("{p}:2: field `type`")),
        "{}",
        stderr(&o)
    );
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "error");

    // Named format that does not match the content.
    let p = temp_file(
        &dir,
        "h.jsonl",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
    );
    let o = faultline(&["check", &p, "--model", "register", "--format", "edn"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("field `"), "{}", stderr(&o));
}

#[test]
fn a_history_cut_off_mid_line_is_checked_up_to_the_cut_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    // A write of 1, then a read of 2: not linearizable. Then a line a killed run left half
    // written.
    let text = concat!(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n",
        "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
        "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":2}\n",
        "{\"process\":0,\"type\":\"inv",
    );
    let p = temp_file(&dir, "cut.jsonl", text);
    let o = faultline(&["check", &p, "--model", "register", "--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{p}:5: the last line has no newline")),
        "{err}"
    );
    assert!(err.contains("checked the 4 events before it"), "{err}");
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "invalid");
    assert_eq!(j["cut_off_line"], 5);
}

#[test]
fn unpaired_history_and_missing_file_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(&dir, "h.edn", "{:process 0 :type :ok :f :read :value 1}\n");
    let o = faultline(&["check", &p, "--model", "register"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains(&format!("{p}:1: field `type`")),
        "{}",
        stderr(&o)
    );

    let o = faultline(&["check", "/nonexistent/history.jsonl", "--model", "register"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("/nonexistent/history.jsonl"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_flags_exit_3_and_help_exits_0() {
    let h = corpus_file("etcd/etcd_000.log");
    for args in [
        vec!["check", h.as_str(), "--model", "queue"],
        vec![
            "check",
            h.as_str(),
            "--model",
            "register",
            "--timeout",
            "soon",
        ],
        vec![
            "check",
            h.as_str(),
            "--model",
            "register",
            "--max-memory",
            "lots",
        ],
        vec![
            "check",
            h.as_str(),
            "--model",
            "register",
            "--format",
            "xml",
        ],
        vec!["check", h.as_str()],
        vec!["frobnicate"],
    ] {
        let o = faultline(&args);
        assert_eq!(code(&o), 3, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
    let o = faultline(&["check", "--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("--max-memory"));
}

fn fencing_history(stale_accepted: bool) -> String {
    let mut lines = vec![
        r#"{"process":1,"type":"invoke","f":"acquire","key":"L","time_ns":0}"#.to_string(),
        r#"{"process":1,"type":"ok","f":"acquire","key":"L","value":1,"time_ns":10}"#.into(),
        r#"{"process":2,"type":"invoke","f":"acquire","key":"L","time_ns":20}"#.into(),
        r#"{"process":2,"type":"ok","f":"acquire","key":"L","value":2,"time_ns":30}"#.into(),
        r#"{"process":2,"type":"invoke","f":"fenced-write","key":"L","value":[2,"b"],"time_ns":40}"#.into(),
        r#"{"process":2,"type":"ok","f":"fenced-write","key":"L","value":[2,"b"],"time_ns":50}"#.into(),
        r#"{"process":1,"type":"invoke","f":"fenced-write","key":"L","value":[1,"a"],"time_ns":60}"#.into(),
    ];
    if stale_accepted {
        lines.push(r#"{"process":1,"type":"ok","f":"fenced-write","key":"L","value":[1,"a"],"time_ns":70}"#.into());
    } else {
        lines.push(r#"{"process":1,"type":"fail","f":"fenced-write","key":"L","value":[1,"a"],"error":"stale-token","time_ns":70}"#.into());
    }
    lines.join("\n") + "\n"
}

#[test]
fn fencing_model() {
    let dir = tempfile::tempdir().unwrap();
    let good = temp_file(&dir, "good.jsonl", &fencing_history(false));
    let o = faultline(&["check", &good, "--model", "fencing", "--stats"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("fencing: valid"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("fenced-write"),
        "stats table: {}",
        stdout(&o)
    );

    let bad = temp_file(&dir, "bad.jsonl", &fencing_history(true));
    let o = faultline(&["check", &bad, "--model", "fencing", "--json"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "invalid");
    let v = &j["fencing"]["violations"][0];
    assert_eq!(v["kind"], "stale-write-accepted");
    assert_eq!(v["accepted"]["invoke_index"], 4);
    assert_eq!(v["stale"]["invoke_index"], 6);
}

#[test]
fn stats_flag_adds_latency_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(&dir, "h.jsonl", &fencing_history(false));
    let o = faultline(&["check", &p, "--model", "fencing", "--stats", "--json"]);
    assert_eq!(code(&o), 0);
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let groups = j["op_stats"]["groups"].as_array().unwrap();
    assert!(groups
        .iter()
        .any(|g| g["f"] == "acquire" && g["latency"]["p50_ns"] == 10));
}

#[test]
fn invalid_counterexample_in_text_and_json() {
    let h = corpus_file("etcd/etcd_000.log");
    let o = faultline(&[
        "check",
        &h,
        "--model",
        "cas-register",
        "--reading",
        "porcupine",
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    for part in [
        "longest linearizable prefix:",
        "possible states after it:",
        "cannot take effect next:",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }

    let o = faultline(&[
        "check",
        &h,
        "--model",
        "cas-register",
        "--reading",
        "porcupine",
        "--json",
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "invalid");
    assert_eq!(j["model"], "cas-register");
    assert_eq!(j["reading"], "porcupine");
    assert_eq!(j["schema_version"], 2);
    let lin = &j["linearizable"];
    assert_eq!(lin["verdict"], "invalid");
    let prefix = lin["prefix"].as_array().expect("prefix is an array");
    assert!(!prefix.is_empty());
    assert!(prefix
        .iter()
        .all(|op| op["f"].is_string() && op["id"].is_u64()));
    let states = lin["states"].as_array().expect("states is an array");
    assert!(!states.is_empty() && states.iter().all(|s| s.is_string()));
    assert!(lin["failed"]["f"].is_string() && lin["failed"]["complete"].is_u64());
    assert!(lin["pending"].is_array());
    assert!(lin["stats"]["states_explored"].as_u64().unwrap() > 0);
    assert!(lin["stats"]["peak_memory_bytes"].as_u64().unwrap() > 0);
}

/// A generated, linearizable kv history of `ops` ops as a JSONL file.
fn generated_kv(dir: &tempfile::TempDir, ops: usize) -> String {
    use faultline_checker::gen::{kv_history, GenConfig};
    let h = kv_history(&GenConfig {
        ops,
        keys: 10,
        clients: 30,
        info_rate: 0.01,
        seed: 11,
    });
    let p = dir.path().join("kv.jsonl");
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    faultline_checker::format::write_jsonl(f, &h.events).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn timeout_gives_unknown_and_no_progress_bar_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let p = generated_kv(&dir, 300_000);

    let o = faultline(&["check", &p, "--model", "kv", "--timeout", "1ns", "--json"]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "unknown");
    assert_eq!(j["linearizable"]["limit"], "timeout 1ns");

    // Long enough for the bar's one-second delay in a debug build; stderr is a pipe
    // here, so nothing may be drawn on it.
    let started = std::time::Instant::now();
    let o = faultline(&["check", &p, "--model", "kv", "--timeout", "0"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("kv: valid"), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        "",
        "stderr not empty after {:?}",
        started.elapsed()
    );
}

#[test]
fn nil_read_any_reads_nil_as_unknown() {
    // A read of nil after a completed write: a stale read, unless nil means "unknown".
    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(
        &dir,
        "h.jsonl",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
         {\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n",
    );
    let o = faultline(&["check", &p, "--model", "register"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let o = faultline(&["check", &p, "--model", "register", "--nil-read-any"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

/// A Jepsen EDN history whose only fault is a read of nil after a completed write of 1:
/// Knossos's models take a read of nil as "value unknown", so it is valid under the
/// reading EDN gets by default, and a stale read under faultline's.
const EDN_NIL_READ: &str = "\
[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 0, :type :ok, :f :write, :value 1}
 {:process 1, :type :invoke, :f :read, :value nil}
 {:process 1, :type :ok, :f :read, :value nil}
 {:process 1, :type :invoke, :f :cas, :value [1 2]}
 {:process 1, :type :ok, :f :cas, :value [1 2]}]
";

#[test]
fn a_jepsen_history_gets_knossos_reading_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(&dir, "history.edn", EDN_NIL_READ);

    let o = faultline(&["check", &p, "--model", "cas-register"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("cas-register: valid"), "{out}");
    assert!(
        out.contains("reading: knossos (the default for edn; --reading to change)"),
        "{out}"
    );
    let o = faultline(&["check", &p, "--model", "cas-register", "--json"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "valid");
    assert_eq!(j["reading"], "knossos");
    assert_eq!(j["format"], "edn");

    // faultline's reading: the read saw nil after the write of 1.
    let o = faultline(&[
        "check",
        &p,
        "--model",
        "cas-register",
        "--reading",
        "faultline",
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("cas-register: invalid"), "{out}");
    assert!(
        out.contains("reading: faultline (--reading faultline)"),
        "{out}"
    );
    let o = faultline(&[
        "check",
        &p,
        "--model",
        "cas-register",
        "--reading",
        "faultline",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["verdict"], "invalid");
    assert_eq!(j["reading"], "faultline");

    // The same history as JSONL means faultline's reading by default.
    let h = faultline_checker::format::read_str(EDN_NIL_READ, None, Default::default()).unwrap();
    let mut buf = Vec::new();
    faultline_checker::format::write_jsonl(&mut buf, &h.events).unwrap();
    let jsonl = temp_file(&dir, "history.jsonl", &String::from_utf8(buf).unwrap());
    let o = faultline(&["check", &jsonl, "--model", "cas-register", "--json"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["reading"], "faultline");
    assert_eq!(j["format"], "jsonl");
    let o = faultline(&[
        "check",
        &jsonl,
        "--model",
        "cas-register",
        "--reading",
        "knossos",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

/// The reading in effect goes into `--report`'s config, and a flag over a reading is
/// named with it.
#[test]
fn the_report_config_names_the_reading() {
    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(&dir, "history.edn", EDN_NIL_READ);
    let report = dir.path().join("report.html");
    let o = faultline(&[
        "check",
        &p,
        "--model",
        "cas-register",
        "--cas-fail-observed",
        "--report",
        &report.to_string_lossy(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("reading: knossos+cas-fail-observed (the default for edn; --reading to change, --cas-fail-observed)"),
        "{out}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("knossos+cas-fail-observed"),
        "report lacks the reading"
    );
}

/// Knossos's own cas-register histories (checked by `checker/tests/corpus.rs` too) get
/// Knossos's verdicts from the binary with `--initial 0` and nothing else.
#[test]
fn knossos_histories_get_knossos_verdicts() {
    let dir = data_dir().join("knossos/cas-register");
    for (file, want) in [
        ("good/memstress3-99.edn", 0),
        ("bad/rethink-fail-minimal.edn", 1),
    ] {
        let p = dir.join(file).to_string_lossy().into_owned();
        let o = faultline(&["check", &p, "--model", "cas-register", "--initial", "0"]);
        assert_eq!(code(&o), want, "{file}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("reading: knossos"), "{}", stdout(&o));
    }
}

/// A write of 1 then a read of `read`: valid when `read` is 1.
fn write_then_read(read: i64) -> String {
    format!(
        "{{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}}\n\
         {{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}}\n\
         {{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}}\n\
         {{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":{read}}}\n"
    )
}

#[test]
fn a_folder_of_histories_gates_on_the_worst_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(runs.join("a")).unwrap();
    std::fs::create_dir_all(runs.join("b")).unwrap();
    std::fs::write(runs.join("a/history.jsonl"), write_then_read(1)).unwrap();
    std::fs::write(runs.join("b/history.jsonl"), write_then_read(2)).unwrap();
    // Not histories: a folder stands for its *.jsonl and *.edn files only.
    std::fs::write(runs.join("a/faultline.log"), "started\n").unwrap();
    let extra = temp_file(&dir, "extra.jsonl", &write_then_read(1));
    let runs_arg = runs.to_string_lossy().into_owned();
    let junit = dir.path().join("junit.xml");

    let o = faultline(&[
        "check",
        &runs_arg,
        &extra,
        "--model",
        "register",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "one line per file and the totals: {out}");
    assert!(
        lines[0].contains("a/history.jsonl: register: valid"),
        "{out}"
    );
    assert!(
        lines[1].contains("b/history.jsonl: register: invalid"),
        "{out}"
    );
    assert!(lines[2].contains("extra.jsonl: register: valid"), "{out}");
    assert_eq!(
        lines[3],
        "3 histories: 2 valid, 1 invalid, 0 unknown, 0 error"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    assert!(
        xml.contains(r#"tests="3" failures="1" errors="0""#),
        "{xml}"
    );

    // --json: one object per line, each with its file and verdict.
    let o = faultline(&["check", &runs_arg, "--model", "register", "--json"]);
    assert_eq!(code(&o), 1);
    let objects: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["verdict"], "valid");
    assert_eq!(objects[1]["verdict"], "invalid");
    assert!(objects[1]["history"]
        .as_str()
        .unwrap()
        .ends_with("b/history.jsonl"));

    // An unreadable file among valid ones: exit 3, and the others are still checked.
    let broken = temp_file(&dir, "broken.jsonl", "{\"process\":1,\"type\":\"ok\"\n");
    let o = faultline(&["check", &extra, &broken, "--model", "register"]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("extra.jsonl: register: valid"));
    assert!(stderr(&o).contains("broken.jsonl"), "{}", stderr(&o));

    // A folder with no history, and --report for many files, are refused up front.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = faultline(&["check", empty.to_str().unwrap(), "--model", "register"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("no *.jsonl or *.edn history"),
        "{}",
        stderr(&o)
    );
    let report = dir.path().join("r.html");
    let o = faultline(&[
        "check",
        &runs_arg,
        "--model",
        "register",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("one history"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------
// --follow: a history written in pieces while faultline reads it.

/// `{"process":p,"type":kind,"f":f,"value":v}` lines.
fn line(p: u64, kind: &str, f: &str, v: &str) -> String {
    format!("{{\"process\":{p},\"type\":\"{kind}\",\"f\":\"{f}\",\"value\":{v}}}\n")
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

fn follow(path: &Path, idle: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", "--follow"])
        .arg(path)
        .args([
            "--model",
            "register",
            "--poll",
            "20ms",
            "--check-every",
            "20ms",
        ])
        .args(["--idle-timeout", idle])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run faultline")
}

/// Waits for `child` up to `limit`; kills it and fails the test past that.
fn wait_for(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("faultline check --follow still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn follow_checks_a_history_written_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    // The file appears only after faultline started, and its second piece ends mid-line.
    let child = follow(&path, "1s");
    std::thread::sleep(std::time::Duration::from_millis(200));
    append(
        &path,
        &(line(1, "invoke", "write", "1") + &line(2, "invoke", "read", "null")),
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ok = line(1, "ok", "write", "1");
    append(&path, &ok[..10]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    append(&path, &(ok[10..].to_string() + &line(2, "ok", "read", "1")));
    let o = wait_for(child, std::time::Duration::from_secs(30));
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("register: valid"), "{}", stdout(&o));
    assert!(stdout(&o).contains("4 events"), "{}", stdout(&o));
}

#[test]
fn follow_reports_a_violation_before_the_file_stops_growing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    append(
        &path,
        &(line(1, "invoke", "write", "1") + &line(1, "ok", "write", "1")),
    );
    // An idle timeout far longer than the test waits: only the violation can end it.
    let child = follow(&path, "10m");
    std::thread::sleep(std::time::Duration::from_millis(200));
    append(
        &path,
        &(line(2, "invoke", "read", "null") + &line(2, "ok", "read", "2")),
    );
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        // The file keeps growing after the violation.
        for i in 0..50 {
            append(&writer_path, &line(3, "invoke", "read", "null"));
            append(&writer_path, &line(3, "ok", "read", "1"));
            std::thread::sleep(std::time::Duration::from_millis(20 + i % 2));
        }
    });
    let o = wait_for(child, std::time::Duration::from_secs(20));
    writer.join().unwrap();
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("register: invalid"), "{out}");
    assert!(
        out.contains("cannot take effect next: p2 read -> 2"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("violation found after"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn follow_names_the_file_line_and_field_of_a_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    append(&path, &line(1, "invoke", "write", "1"));
    let child = follow(&path, "10m");
    std::thread::sleep(std::time::Duration::from_millis(100));
    append(
        &path,
        "{\"process\":1,\"type\":\"okay\",\"f\":\"write\",\"value\":1}\n",
    );
    let o = wait_for(child, std::time::Duration::from_secs(20));
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("history.jsonl:2"), "{err}");
    assert!(err.contains("field `type`"), "{err}");
}
