//! raftkv's lease reads and process pauses, on real processes (local backend).
//!
//! A leader holding a read lease is frozen (SIGSTOP) and cut off from its peers; the others
//! elect a new leader and overwrite a key. When the old leader is resumed, still cut off,
//! it must not answer that key from its lease: the lease is counted in ticks, and the node
//! runtime owes the core every tick it missed while frozen. (Before that was fixed, the
//! runtime skipped the missed ticks and the resumed leader served the old value.)
//!
//! Prints "skipping: ..." and returns when the raftkv binary is out of reach.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultline::image::default_raftkv_binary;
use faultline::local::{LocalCluster, LocalClusterConfig, LocalProgram};
use faultline_nemeses::{Cluster, Grudge, NodeId};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

async fn role_and_term(addr: SocketAddr) -> Option<(String, u64)> {
    let s: serde_json::Value = http()
        .get(format!("http://{addr}/status"))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((s["role"].as_str()?.to_string(), s["term"].as_u64()?))
}

/// The leader with the highest term among `among`, waiting up to `within`.
async fn leader(c: &LocalCluster, among: &[NodeId], within: Duration) -> NodeId {
    let deadline = Instant::now() + within;
    loop {
        let mut best: Option<(u64, NodeId)> = None;
        for &id in among {
            let addr = c.member(id).expect("member").addr;
            if let Some((role, term)) = role_and_term(addr).await {
                if role == "leader" && best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, id));
                }
            }
        }
        if let Some((_, id)) = best {
            return id;
        }
        assert!(Instant::now() < deadline, "no leader among {among:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn put(addr: SocketAddr, key: &str, value: &str) -> Result<(), String> {
    let resp = http()
        .put(format!("http://{addr}/kv/{key}"))
        .json(&serde_json::json!({ "value": value }))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("status {}", resp.status()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_leader_does_not_read_from_a_lease_that_expired_while_it_was_frozen() {
    let Some(raftkv) = default_raftkv_binary() else {
        eprintln!("skipping: no raftkv binary beside the test binary (cargo build -p raftkv)");
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut program = LocalProgram::raftkv(&raftkv, &[]);
        program.args.push("--lease-reads".into());
        let config = LocalClusterConfig {
            nodes: 3,
            program,
            root: dir.path().join("nodes"),
            clock_faults: false,
        };
        let c = LocalCluster::create(&config).await.expect("cluster starts");
        c.wait_listening(20_000).await.expect("nodes listen");
        let all = [NodeId(1), NodeId(2), NodeId(3)];
        let old = leader(&c, &all, Duration::from_secs(10)).await;
        let old_addr = c.member(old).expect("member").addr;
        put(old_addr, "k", "v1").await.expect("first write");
        // The write's round renewed the lease; freeze the leader inside it, then cut it off.
        c.pause(old).await.expect("pause");
        c.partition(&Grudge::isolate(&all, old))
            .await
            .expect("partition");
        let others: Vec<NodeId> = all.iter().copied().filter(|&n| n != old).collect();
        let new = leader(&c, &others, Duration::from_secs(15)).await;
        put(c.member(new).expect("member").addr, "k", "v2")
            .await
            .expect("write through the new leader");

        c.resume(old).await.expect("resume");
        let read = http()
            .get(format!("http://{old_addr}/kv/k"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        match read {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                assert!(
                    !(status.is_success() && body.contains("v1")),
                    "the resumed old leader served the overwritten value: {status} {body}"
                );
                eprintln!("resumed old leader answered {status} {body}");
            }
            Err(e) => eprintln!("resumed old leader did not answer (expected): {e}"),
        }
        c.heal().await.expect("heal");
        c.teardown().await.expect("teardown");
    })
    .await
    .expect("test exceeded its time limit");
}
