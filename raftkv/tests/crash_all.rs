//! Real-process test of durability across a whole-cluster crash: writers keep writing
//! unique keys, every node is killed with SIGKILL at once, the cluster restarts from its
//! data directories, and every acknowledged write is read back. Both clusters run with the
//! `--lose-unsynced` file layer (unsynced writes live in process memory, so a crash loses
//! them as a power cut would). The correct server loses none; under `--bug no-fsync`
//! (acknowledged records are never fsynced, so they wait up to 1 s in memory for the
//! layer's writeback) the writes acknowledged just before the crash are gone.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, get, put, wait_leader, Cluster};

/// Writes for `write_ms` with 4 writers, kills every node, restarts them all, and returns
/// (acknowledged writes, acknowledged writes missing after the restart).
async fn crash_all_once(cluster: &mut Cluster, round: usize, write_ms: u64) -> (usize, usize) {
    let addrs: Vec<String> = cluster.procs.iter().map(|p| p.addr.clone()).collect();
    let c = client();
    let (leader, _) = wait_leader(&c, &addrs, Duration::from_secs(10)).await;
    let leader_addr = addrs[(leader - 1) as usize].clone();
    // Every key is written once, so a lost write reads back as absent.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, addr, acked, stop) = (c.clone(), leader_addr.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let key = format!("r{round}-w{w}-{seq}");
                if put(&c, &addr, &key, "x").await.is_ok() {
                    acked.lock().unwrap().push(key);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(write_ms)).await;
    // Crash while writes are still being acknowledged.
    for p in cluster.procs.iter_mut() {
        p.kill9();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    for p in cluster.procs.iter_mut() {
        p.start();
    }
    let (leader, _) = wait_leader(&c, &addrs, Duration::from_secs(10)).await;
    let leader_addr = addrs[(leader - 1) as usize].clone();
    let acked = acked.lock().unwrap().clone();
    let mut missing = 0;
    for key in &acked {
        let mut tries = 0;
        let value = loop {
            match get(&c, &leader_addr, key).await {
                Ok(v) => break v,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 200, "cannot read {key} after the restart: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        if value.is_none() {
            missing += 1;
        }
    }
    eprintln!(
        "round {round}: {} writes acknowledged, {missing} missing after kill -9 of every node",
        acked.len()
    );
    (acked.len(), missing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_kill9_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3, &["--lose-unsynced"]);
    for round in 0..2 {
        let (acked, missing) = crash_all_once(&mut cluster, round, 800).await;
        if missing > 0 {
            cluster.dump_logs();
        }
        assert!(acked > 0, "no write was acknowledged");
        assert_eq!(missing, 0, "acknowledged writes lost in round {round}");
    }
}

/// Whole-cluster crashes tried before `no_fsync_bug_loses_acknowledged_writes_on_kill9` gives up.
const ROUNDS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fsync_bug_loses_acknowledged_writes_on_kill9() {
    let mut cluster = Cluster::start(3, &["--bug", "no-fsync", "--lose-unsynced"]);
    // A round keeps every acknowledged write if the node elected after the restart had
    // written its buffer out after the last acknowledgement (observed in about a third of
    // the rounds); retry so that a false failure of this test is very unlikely.
    for round in 0..ROUNDS {
        let (acked, missing) = crash_all_once(&mut cluster, round, 500).await;
        assert!(acked > 0, "no write was acknowledged");
        if missing > 0 {
            return;
        }
    }
    panic!("--bug no-fsync lost no acknowledged write in {ROUNDS} whole-cluster crashes");
}
