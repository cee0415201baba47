//! `faultline serve` end to end: a results directory with two hand-written runs (and a
//! `latest` link that must not list a run twice) is served on an ephemeral localhost
//! port; the index lists both runs with their verdicts and links, a report link loads as
//! HTML, and path traversal (plain, dotted, percent-encoded, via a symlink) gets nothing.
//! When `chromium` is installed, headless Chromium loads the index and the run rows must
//! be in its DOM; otherwise the test says it skipped that part (and fails under
//! `FAULTLINE_REQUIRE=chromium`).
//!
//! All traffic stays on 127.0.0.1: the HTTP client ignores proxy settings and Chromium is
//! told to use no proxy and no background networking.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(30);

fn write_run(root: &Path, test: &str, ts: &str, verdict: &str, seed: u64, total_ms: u64) {
    let dir = root.join(test).join(ts);
    std::fs::create_dir_all(dir.join("nodes/n1")).unwrap();
    // Only the fields the index shows; no judgement, as for a run that was cancelled.
    let results = json!({
        "schema_version": 2,
        "verdict": verdict,
        "test": test,
        "run_dir": dir,
        "seed": seed,
        "exercised": {"counts": {"invoke": 120, "ok": 100, "fail": 15, "info": 5,
            "nemesis": 4}},
        "total_ms": total_ms,
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    std::fs::write(
        dir.join("report.html"),
        format!("<!DOCTYPE html><html><body><h1>report {test} {ts}</h1></body></html>"),
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    std::fs::write(dir.join("history.jsonl"), "{}\n").unwrap();
    std::fs::write(dir.join("faultline.log"), "started\n").unwrap();
    std::fs::write(dir.join("nodes/n1/server.log"), "node up\n").unwrap();
}

/// Serves `root` on 127.0.0.1 at an ephemeral port, in the background.
async fn start(root: &Path) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = faultline::serve::router(root);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends `path` verbatim (no client-side normalisation of `..`) and returns the status.
fn raw_status(addr: SocketAddr, path: &str) -> u16 {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line for {path}: {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_index_the_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    write_run(
        &root,
        "raftkv-register",
        "20261123T125557",
        "valid",
        42,
        70_670,
    );
    write_run(&root, "raftkv-set", "20261124T080000", "invalid", 7, 1_500);
    std::os::unix::fs::symlink(
        root.join("raftkv-set/20261124T080000"),
        root.join("raftkv-set/latest"),
    )
    .unwrap();
    std::os::unix::fs::symlink(root.join("raftkv-set"), root.join("latest")).unwrap();
    // A secret beside the results directory, and a symlink inside a run that points at it.
    std::fs::write(dir.path().join("secret.txt"), "do not serve").unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("secret.txt"),
        root.join("raftkv-set/20261124T080000/escape.log"),
    )
    .unwrap();

    let addr = start(&root).await;
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The index: both runs, newest first, with verdicts and links; `latest` not listed.
    let index = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let ctype = index.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let page = index.text().await.unwrap();
    assert_eq!(page.matches(r#"<tr class="run""#).count(), 2, "{page}");
    let set_row = page.find(r#"data-test="raftkv-set""#).unwrap();
    let reg_row = page.find(r#"data-test="raftkv-register""#).unwrap();
    assert!(set_row < reg_row, "newest first");
    assert!(page.contains(r#"data-verdict="valid""#));
    assert!(page.contains(r#"data-verdict="invalid""#));
    assert!(page.contains("2026-11-23 12:55:57"));
    assert!(page.contains(">42<") && page.contains(">120<") && page.contains(">15<"));
    for link in [
        "/runs/raftkv-register/20261123T125557/report.html",
        "/runs/raftkv-set/20261124T080000/report.html",
        "/runs/raftkv-set/20261124T080000/results.json",
        "/runs/raftkv-set/20261124T080000/history.jsonl",
        "/runs/raftkv-set/20261124T080000/nodes/n1/server.log",
    ] {
        assert!(
            page.contains(&format!(r#"href="{link}""#)),
            "{link} in {page}"
        );
    }
    assert!(!page.contains("/latest/"), "latest links are skipped");

    // A report link loads as HTML; other files get their own content types.
    for (file, wanted) in [
        ("report.html", "text/html"),
        ("results.json", "application/json"),
        ("history.jsonl", "application/x-ndjson"),
        ("faultline.log", "text/plain"),
        ("nodes/n1/server.log", "text/plain"),
    ] {
        let reply = client
            .get(format!(
                "{base}/runs/raftkv-register/20261123T125557/{file}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{file}");
        let ctype = reply.headers()["content-type"].to_str().unwrap();
        assert!(ctype.starts_with(wanted), "{file}: {ctype}");
    }
    let report = client
        .get(format!(
            "{base}/runs/raftkv-register/20261123T125557/report.html"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(report.contains("report raftkv-register 20261123T125557"));

    // Traversal, sent verbatim so the client cannot normalise it away.
    for path in [
        "/runs/../../etc/passwd",
        "/runs/raftkv-set/20261124T080000/../../../secret.txt",
        "/runs/raftkv-set/20261124T080000/../../../../../../etc/passwd",
        "/runs/..%2F..%2F/etc/passwd",
        "/runs/%2E%2E/%2E%2E/secret.txt",
        "/runs/raftkv-set/20261124T080000/..%2F..%2F..%2Fsecret.txt",
        "/runs/raftkv-set/20261124T080000/%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "/runs/raftkv-set/20261124T080000/%2Fetc%2Fpasswd",
        "/runs/raftkv-set/20261124T080000//etc/passwd",
        "/runs/raftkv-set/20261124T080000/..%5C..%5Csecret.txt",
        "/runs/raftkv-set/20261124T080000/escape.log",
        "/runs/raftkv-set/20261124T080000/nodes",
        "/runs/raftkv-set/20261124T080000/missing.json",
        "/runs/raftkv-set/20261124T080000/%FF",
    ] {
        let status = raw_status(addr, path);
        assert!(status == 404 || status == 400, "{path}: {status}");
    }

    // A real browser: the rows must be in the DOM Chromium builds from the page.
    if support::cli::chromium().is_none() {
        return;
    }
    let profile = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{base}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let out = tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait_with_output())
        .await
        .expect("chromium finished within 30 s")
        .expect("chromium ran");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dom.matches(r#"class="run""#).count(), 2, "{dom}");
    assert!(dom.contains(r#"data-test="raftkv-register""#), "{dom}");
    assert!(dom.contains(r#"data-verdict="invalid""#), "{dom}");
    assert!(dom.contains("/runs/raftkv-set/20261124T080000/report.html"));
}

#[tokio::test]
async fn an_empty_or_missing_results_dir_lists_no_runs() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir.path().join("not-yet")).await;
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="empty""#), "{page}");
}
