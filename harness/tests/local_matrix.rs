//! The detection matrix on the local backend (`support::matrix::run_matrix`): raftkv nodes
//! as child processes on 127.0.0.x, faults through the in-process link proxies, signals and
//! libfaketime. Needs no Docker.
//!
//! Skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when the raftkv binary is out
//! of reach.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_is_found_and_correct_raftkv_is_valid_on_the_local_backend() {
    let Some(raftkv) = support::raftkv_binary() else {
        return;
    };
    support::matrix::run_matrix("local", &raftkv).await;
}

/// `--seeds 2` on the stale-read cell: both runs (seeds 1000 and 1001) must detect the bug,
/// and `matrix.json` must carry the rate, its interval, each run's time to detect and the
/// faults in effect at the violations. Short runs: about a minute in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_give_the_stale_read_cell_a_detection_rate() {
    let Some(raftkv) = support::raftkv_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("matrix.xml");
    let cell = "stale-read-register-partition";
    let flags = [
        "--backend",
        "local",
        "--seeds",
        "2",
        "--only",
        cell,
        "--time-limit",
        "10s",
        "--seed",
        "1000",
    ];
    let args = support::matrix::test_all_args(&flags, Some(&raftkv), dir.path(), &junit);
    let out = support::cli::run_faultline(&args, std::time::Duration::from_secs(150)).await;
    let described = support::cli::describe(&out);
    assert_eq!(out.status.code(), Some(0), "{described}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with(cell))
        .unwrap_or_else(|| panic!("no table row for {cell}: {described}"));
    assert!(
        row.contains(" found ") && row.contains("2/2") && row.contains("[0.342, 1.000]"),
        "{row}"
    );

    let matrix_json = std::fs::read_dir(dir.path().join("test-all"))
        .expect("test-all folder")
        .filter_map(Result::ok)
        .map(|e| e.path().join("matrix.json"))
        .find(|p| p.is_file())
        .expect("matrix.json");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&matrix_json).expect("read")).expect("JSON");
    assert_eq!(
        (m["seeds"].as_u64(), m["require"].as_u64()),
        (Some(2), Some(2))
    );
    let cells = m["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 1, "{m}");
    let c = &cells[0];
    assert_eq!(c["status"], "met", "{c}");
    let rate = &c["rate"];
    assert_eq!(
        (rate["k"].as_u64(), rate["n"].as_u64()),
        (Some(2), Some(2)),
        "{rate}"
    );
    assert_eq!(rate["skipped_runs"], 0, "{rate}");
    // Wilson's interval for 2 of 2.
    let low = rate["low"].as_f64().expect("low");
    assert!((low - 0.3424).abs() < 1e-3, "{rate}");
    assert_eq!(rate["high"].as_f64(), Some(1.0), "{rate}");

    let tries = c["tries"].as_array().expect("tries");
    let seeds: Vec<u64> = tries.iter().filter_map(|t| t["seed"].as_u64()).collect();
    assert_eq!(seeds, [1000, 1001], "{c}");
    let mut times = Vec::new();
    let mut labels = Vec::new();
    for t in tries {
        assert_eq!(t["verdict"], "invalid", "{t}");
        let d = &t["detection"];
        // The online check catches a stale read while the run goes on: before the end
        // of the 10 s of clients plus the settle and final reads.
        let ms = d["time_to_detect_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("no time to detect: {t}"));
        assert!(ms > 0 && ms < 30_000, "{t}");
        times.push(ms);
        // The violating op is placed in the run's history, and the faults named are the
        // cell's kind, or none.
        assert!(d["op"].as_str().is_some_and(|op| !op.is_empty()), "{t}");
        assert!(d["op_at_ms"].is_u64(), "{t}");
        let faults = d["active_faults"]
            .as_array()
            .unwrap_or_else(|| panic!("unattributed: {t}"));
        assert!(faults.iter().all(|f| f == "partition"), "{t}");
        labels.push(if faults.is_empty() {
            "none"
        } else {
            "partition"
        });
    }
    times.sort_unstable();
    assert_eq!(rate["detect_median_ms"].as_u64(), Some(times[0]), "{rate}");
    assert_eq!(rate["detect_p90_ms"].as_u64(), Some(times[1]), "{rate}");
    assert_eq!(rate["found_at_end"], 0, "{rate}");
    // The tally counts each detecting run once, under the faults in effect.
    let tally = rate["active_faults"].as_object().expect("tally");
    assert_eq!(
        tally.values().filter_map(|v| v.as_u64()).sum::<u64>(),
        2,
        "{rate}"
    );
    for label in labels {
        assert!(tally.contains_key(label), "{label} not in {rate}");
    }

    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("detected in 2/2 runs (95% interval [0.342, 1.000]), 2 required"),
        "{xml}"
    );
}
