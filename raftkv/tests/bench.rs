//! Throughput/latency benchmark of a three-node `raftkv` cluster on loopback: puts and
//! linearizable (ReadIndex) gets with 1 and 32 concurrent clients, each client sending to
//! the leader. Ignored by default; run with
//! `cargo test --release -p raftkv --test bench -- --ignored --nocapture`.
//! Set `RAFTKV_BENCH_SECS` to change the duration of each phase (default 5).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, status, wait_leader, Cluster};
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Put,
    Get,
}

async fn phase(
    addr: &str,
    kind: Kind,
    clients: usize,
    secs: u64,
) -> (f64, Duration, Duration, u64) {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let addr = Arc::new(addr.to_string());
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (c, addr) = (c.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let key = format!("b{w}-{}", i % 100);
                let start = Instant::now();
                let r = match kind {
                    Kind::Put => {
                        c.put(format!("http://{addr}/kv/{key}"))
                            .json(&json!({ "value": format!("v{i}") }))
                            .send()
                            .await
                    }
                    Kind::Get => c.get(format!("http://{addr}/kv/{key}")).send().await,
                };
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        lat.push(start.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (all.len() as f64 / elapsed, q(0.5), q(0.99), errors)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark; run explicitly with --ignored --nocapture"]
async fn throughput_and_latency() {
    let secs: u64 = std::env::var("RAFTKV_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let cluster = Cluster::start(3, &[]);
    let addrs: Vec<String> = cluster.procs.iter().map(|p| p.addr.clone()).collect();
    let c = client();
    let (leader, _) = wait_leader(&c, &addrs, Duration::from_secs(10)).await;
    let leader_addr = addrs[(leader - 1) as usize].clone();
    // Seed the keys the gets will read.
    phase(&leader_addr, Kind::Put, 32, 1).await;
    eprintln!("| op | clients | ops/s | p50 | p99 | errors |");
    eprintln!("|---|---|---|---|---|---|");
    for (kind, clients) in [
        (Kind::Put, 1),
        (Kind::Put, 32),
        (Kind::Get, 1),
        (Kind::Get, 32),
    ] {
        let (tput, p50, p99, errors) = phase(&leader_addr, kind, clients, secs).await;
        eprintln!(
            "| {kind:?} | {clients} | {tput:.0} | {:.2} ms | {:.2} ms | {errors} |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    let s = status(&c, &leader_addr).await.expect("status");
    eprintln!("leader status after bench: {s}");
}
