//! Integration tests of the clock, disk and graceful-restart faults against real raftkv
//! containers: a skewed node's wall clock reads differently (and only that node's), a
//! rate skew bends the clock without a jump, a reset restores it, and a Go target refuses
//! the fault; a flipped byte in a stopped node's WAL tail is cut off when it starts again
//! and the node rejoins; a graceful stop lets raftkv shut down cleanly (exit 0).
//!
//! Each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when Docker, the base
//! image or the raftkv binary is out of reach. Each test creates and tears down only its own run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultline::backend::docker::{new_run_id, DockerCluster, DockerClusterConfig, PeerLinks};
use faultline::target::Target;
use faultline_nemeses::{Cluster, ClusterError, NodeId};
use serde_json::Value;

mod support;
use support::docker::{base_image, docker, raftkv_cluster, TEST_LIMIT};

/// Runs `test`, failing it past the Docker tests' limit.
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    support::bounded(TEST_LIMIT, test).await;
}

/// One test at a time: they share two cores and the daemon.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

async fn status(c: &reqwest::Client, cluster: &DockerCluster, node: u32) -> Option<Value> {
    let addr = &cluster.node(NodeId(node)).ok()?.client_addr;
    let r = c.get(format!("http://{addr}/status")).send().await.ok()?;
    r.json().await.ok()
}

/// How far the node's wall clock is from ours, in ms (positive: the node is ahead).
async fn skew_ms(c: &reqwest::Client, cluster: &DockerCluster, node: u32) -> i64 {
    let before = now_ms();
    let s = status(c, cluster, node).await.expect("status answers");
    let after = now_ms();
    let theirs = s["wall_clock_ms"].as_i64().expect("wall_clock_ms");
    theirs - (before + after) / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_moves_only_that_nodes_wall_clock_and_reset_restores_it() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(cluster) = raftkv_cluster(3).await else {
            return;
        };
        let c = http();
        for n in 1..=3 {
            let s = skew_ms(&c, &cluster, n).await;
            assert!(s.abs() < 1_000, "n{n} starts {s} ms off");
        }
        // A bump back by 90 s on n1 only.
        cluster.clock(NodeId(1), -90_000, 1.0).await.expect("bump");
        let s1 = skew_ms(&c, &cluster, 1).await;
        assert!(
            (s1 + 90_000).abs() < 1_000,
            "n1 is {s1} ms off, wanted -90000"
        );
        let s2 = skew_ms(&c, &cluster, 2).await;
        assert!(s2.abs() < 1_000, "n2 moved too: {s2} ms");

        // A rate skew bends the clock (no jump at the switch), then it gains 1 s per s.
        cluster.clock(NodeId(1), 0, 2.0).await.expect("rate");
        let start = skew_ms(&c, &cluster, 1).await;
        assert!(
            start.abs() < 1_000,
            "setting a rate jumped the clock by {start} ms"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        let gained = skew_ms(&c, &cluster, 1).await - start;
        assert!(
            (2_000..=4_000).contains(&gained),
            "at x2 for 3 s the clock gained {gained} ms, wanted about 3000"
        );

        // Reset: back to real time, and the cluster still has a leader.
        cluster.clock(NodeId(1), 0, 1.0).await.expect("reset");
        let s1 = skew_ms(&c, &cluster, 1).await;
        assert!(s1.abs() < 1_000, "after reset n1 is {s1} ms off");
        let leader = status(&c, &cluster, 2).await.expect("status")["leader"].clone();
        assert!(leader.is_u64(), "no leader after clock faults: {leader}");
        cluster.teardown().await.expect("teardown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_target_refuses_clock_faults() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let Some(image) = base_image(&api).await else {
            return;
        };
        let config = DockerClusterConfig {
            run_id: new_run_id(),
            image,
            nodes: 1,
            spec: support::spec(Target::Etcd, &[], &[]),
            peer_links: PeerLinks::Direct,
            clock_faults: true,
        };
        let cluster = DockerCluster::create(api, &config)
            .await
            .expect("cluster starts");
        let err = cluster.clock(NodeId(1), 5_000, 1.0).await.unwrap_err();
        assert!(
            matches!(&err, ClusterError::Unsupported { reason, .. } if reason.contains("vDSO")),
            "{err}"
        );
        cluster.teardown().await.expect("teardown");
    })
    .await;
}

async fn put(c: &reqwest::Client, addr: &str, key: &str, value: &str) -> bool {
    let r = c
        .put(format!("http://{addr}/kv/{key}"))
        .json(&serde_json::json!({ "value": value }))
        .send()
        .await;
    matches!(r, Ok(r) if r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_wal_byte_is_cut_at_restart_and_the_node_rejoins() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(cluster) = raftkv_cluster(3).await else {
            return;
        };
        let c = http();
        let addr = cluster.node(NodeId(2)).expect("n2").client_addr.clone();
        // Wait for a leader (up to 20 s), then write through n2 (forwarded to it).
        for _ in 0..100 {
            if status(&c, &cluster, 2)
                .await
                .is_some_and(|s| s["leader"].is_u64())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut written = 0;
        for i in 0..40 {
            if put(&c, &addr, &format!("k{i}"), &format!("v{i}")).await {
                written += 1;
            }
        }
        assert!(written > 30, "only {written} of 40 writes succeeded");

        // Flipping a byte of a running node's log is refused: it must be down.
        assert!(cluster.corrupt_log_tail(NodeId(3)).await.is_err());
        cluster.kill(NodeId(3)).await.expect("kill");
        let detail = cluster.corrupt_log_tail(NodeId(3)).await.expect("corrupt");
        assert!(detail.contains("wal-") && detail.contains("->"), "{detail}");
        cluster.start(NodeId(3)).await.expect("start");
        cluster.wait_listening(30_000).await.expect("n3 listens");
        // The cut may take the last entry n3 had acknowledged. The leader still counts it
        // as n3's and sends nothing until there is something new (as in any Raft), so
        // write once more: that append finds the gap and fills it.
        let mut wrote_again = false;
        for _ in 0..50 {
            if put(&c, &addr, "after-cut", "x").await {
                wrote_again = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(wrote_again, "no write succeeded after n3's restart");

        // n3 cut the torn record and caught up from the leader.
        let mut caught_up = false;
        for _ in 0..50 {
            let s3 = status(&c, &cluster, 3).await;
            let s2 = status(&c, &cluster, 2).await;
            if let (Some(s3), Some(s2)) = (s3, s2) {
                if s3["applied_index"].as_u64() >= s2["commit_index"].as_u64()
                    && s3["leader"].is_u64()
                {
                    caught_up = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        cluster.logs(NodeId(3), dir.path()).await.expect("logs");
        let log = std::fs::read_to_string(dir.path().join("server.log")).expect("log");
        assert!(
            caught_up,
            "n3 did not rejoin after the corrupted tail ({detail}); n2 {:?}; n3 {:?}; n3's log:\n{}",
            status(&c, &cluster, 2).await,
            status(&c, &cluster, 3).await,
            &log[log.len().saturating_sub(3000)..]
        );
        assert!(
            log.contains("cutting torn WAL tail"),
            "n3's log does not show the cut:\n{}",
            &log[log.len().saturating_sub(3000)..]
        );
        cluster.teardown().await.expect("teardown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_shuts_raftkv_down_cleanly() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(cluster) = raftkv_cluster(3).await else {
            return;
        };
        cluster.terminate(NodeId(1)).await.expect("terminate");
        // Stopping a stopped node is not an error.
        cluster.terminate(NodeId(1)).await.expect("terminate again");
        let dir = tempfile::tempdir().expect("tempdir");
        cluster.logs(NodeId(1), dir.path()).await.expect("logs");
        let log = std::fs::read_to_string(dir.path().join("server.log")).expect("log");
        assert!(log.contains("SIGTERM: shutting down"), "{log}");
        let c = http();
        assert!(status(&c, &cluster, 1).await.is_none(), "n1 still answers");
        cluster.start(NodeId(1)).await.expect("start");
        cluster
            .wait_listening(30_000)
            .await
            .expect("n1 listens again");
        assert!(status(&c, &cluster, 1).await.is_some());
        cluster.teardown().await.expect("teardown");
    })
    .await;
}
