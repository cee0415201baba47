//! Benchmark: how long headless Chromium takes to open the `report.html` of a 100k-op
//! history (10 keys, 30 clients, 1% info ops), from process start until the page's script
//! has finished (it sets `data-ok` on `<body>` as its last step, which `--dump-dom`
//! waits for). Browser start-up is included: that is what a person opening the file waits
//! for. The report is built once, outside the timed loop, with `faultline check --report`.
//! Run: `cargo bench -p faultline --bench report_load` (needs Debian's `chromium`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use faultline_checker::format::write_jsonl;
use faultline_checker::gen::{kv_history, GenConfig};

const OPS: usize = 100_000;

fn chromium_dump(page: &Path, profile: &Path) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bench_report_load(c: &mut Criterion) {
    if !Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipping report_load: chromium is not installed (apt-get install chromium)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let history = dir.path().join("history.jsonl");
    let events = kv_history(&GenConfig {
        ops: OPS,
        keys: 10,
        clients: 30,
        info_rate: 0.01,
        seed: 7,
    })
    .events;
    let file = std::io::BufWriter::new(std::fs::File::create(&history).expect("create"));
    write_jsonl(file, &events).expect("write history");
    let report = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .arg(&history)
        .args(["--model", "kv", "--report"])
        .arg(&report)
        .output()
        .expect("faultline check");
    assert!(
        report.is_file(),
        "no report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&report).map_or(0, |m| m.len());
    eprintln!("report for {OPS} ops: {:.1} MiB", size as f64 / 1048576.0);
    let profile = dir.path().join("profile");
    // A first load outside the timing creates the profile, as a person's browser has one.
    assert!(chromium_dump(&report, &profile).contains(r#"data-ok="1""#));

    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("open_100k_ops_in_chromium", |b| {
        b.iter(|| {
            let dom = chromium_dump(&report, &profile);
            assert!(
                dom.contains(r#"data-ok="1""#),
                "the page script did not finish"
            );
        })
    });
    group.finish();
}

criterion_group!(benches, bench_report_load);
criterion_main!(benches);
