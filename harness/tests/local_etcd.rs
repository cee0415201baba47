//! The local backend running etcd (the `etcd` on the PATH) as child processes: every
//! member is given the same `--initial-cluster`, so each member's peer address is a
//! destination proxy that attributes connections to their sender through the kernel's
//! socket table and relays them into the link proxy of that link.
//!
//! - isolating a member (`partition`) makes a linearizable read through that member's
//!   client URL fail while the other two keep serving writes; after `heal` the member
//!   serves again, and reads what the majority wrote meanwhile;
//! - a one-way cut of one link (n2 drops from n1) resets exactly the connections n1's
//!   process opened to n2's peer address, and none of the connections of other links:
//!   the attribution is per sender;
//! - `faultline test --backend local --target etcd` under partition, kill and pause is
//!   `valid`, leaves no etcd behind, and a clock nemesis is refused up front.
//!
//! Each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when there is no
//! `etcd` on the PATH (Debian: `apt-get install etcd-server`). Tests run one at a time and
//! are bounded.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::backend::local::attribute::{read_socket_tables, socket_inodes};
use faultline::backend::local::LocalCluster;
use faultline::target::{Target, TargetClient, TargetLeader};
use faultline_checker::{EventType, Value};
use faultline_nemeses::{Cluster, Grudge, LeaderProbe, NodeId};
use faultline_workloads::{Completion, EtcdClient, EtcdOptions, Request};

mod support;
use support::bounded;
use support::local::{processes_under, Run};

/// Upper bound of one cluster test.
const TEST_TIMEOUT: Duration = Duration::from_secs(150);
/// Upper bound of one `faultline test` child.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Time one client request may take here; etcd gives up on a request it cannot commit
/// after 7 s (5 s plus two election timeouts), so this lets its own answer arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time one attempt of a retried request may take: a write proposed to a leader that was
/// just cut off is only given up by etcd after its 7 s, the retry gets the new leader.
const RETRY_TIMEOUT: Duration = Duration::from_secs(2);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn etcd_or_skip() -> Option<PathBuf> {
    support::local::etcd_binary()
}

const IDS: [u32; 3] = [1, 2, 3];

struct Fixture {
    cluster: Arc<LocalCluster>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(etcd: &Path) -> Fixture {
        let spec = support::spec(Target::Etcd, &[], &[]);
        let (cluster, dir) = support::local::cluster(3, spec, etcd).await;
        Fixture { cluster, _dir: dir }
    }

    /// The etcd client used in runs, speaking to the members `ids` only.
    fn client(&self, ids: &[u32]) -> Arc<dyn TargetClient> {
        let addrs: Vec<String> = ids
            .iter()
            .map(|&id| {
                self.cluster
                    .member(NodeId(id))
                    .expect("member")
                    .addr
                    .to_string()
            })
            .collect();
        // The built-in etcd target's client, as `driver(Target::Etcd)` makes it.
        Arc::new(EtcdClient::new(&addrs, EtcdOptions::default()).expect("etcd client"))
    }

    async fn leader(&self, within: Duration) -> u32 {
        let client = self.client(&IDS);
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = client.leader().await {
                return IDS[i];
            }
            assert!(
                Instant::now() < deadline,
                "no etcd leader within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn pid(&self, id: u32) -> i32 {
        self.cluster
            .pid(NodeId(id))
            .await
            .expect("member")
            .expect("running")
    }
}

async fn call(
    client: &Arc<dyn TargetClient>,
    request: &Request,
    timeout: Duration,
) -> (Completion, Duration) {
    let started = Instant::now();
    let c = client.call(0, request, timeout).await;
    (c, started.elapsed())
}

/// Retries `request` (each attempt bounded by [`RETRY_TIMEOUT`]) until it is `ok` or
/// `within` passes; returns the ok and how long it took.
async fn until_ok(
    client: &Arc<dyn TargetClient>,
    request: &Request,
    within: Duration,
) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (c, _) = call(client, request, RETRY_TIMEOUT).await;
        if c.kind == EventType::Ok {
            return (c.value, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "{request:?} not ok within {within:?}: last {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write(value: i64) -> Request {
    Request::Write {
        key: "k".into(),
        value,
    }
}

fn read() -> Request {
    Request::Read { key: "k".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_member_stops_serving_until_heal_while_the_majority_writes() {
    let Some(etcd) = etcd_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&etcd).await;
        let c = &f.cluster;
        // No libfaketime in etcd: it could not skew a Go program's clock anyway.
        for id in IDS {
            let env = std::fs::read(format!("/proc/{}/environ", f.pid(id).await)).unwrap();
            assert!(
                !String::from_utf8_lossy(&env).contains("LD_PRELOAD"),
                "n{id} was started with a preload"
            );
        }
        assert!(c.clock(NodeId(1), 5_000, 1.0).await.is_err());

        let leader = f.leader(Duration::from_secs(20)).await;
        let all = f.client(&IDS);
        until_ok(&all, &write(1), Duration::from_secs(10)).await;
        // The leader is the harder one to isolate: it must notice it lost its quorum.
        let isolated = leader;
        let majority: Vec<u32> = IDS.into_iter().filter(|&n| n != isolated).collect();
        let ids: Vec<NodeId> = IDS.map(NodeId).to_vec();
        c.partition(&Grudge::isolate(&ids, NodeId(isolated)))
            .await
            .unwrap();

        let alone = f.client(&[isolated]);
        let rest = f.client(&majority);
        let (probe, second) = (read(), write(2));
        let (stuck, written) = tokio::join!(
            call(&alone, &probe, REQUEST_TIMEOUT),
            until_ok(&rest, &second, Duration::from_secs(20))
        );
        let (read_alone, hung) = stuck;
        eprintln!(
            "isolated n{isolated}: linearizable read {:?} ({:?}) after {:.2} s; majority \
             {majority:?} wrote after {:.2} s",
            read_alone.kind,
            read_alone.error,
            hung.as_secs_f64(),
            written.1.as_secs_f64()
        );
        assert_ne!(
            read_alone.kind,
            EventType::Ok,
            "the isolated member answered a linearizable read: {read_alone:?}"
        );
        assert!(
            hung >= Duration::from_secs(1),
            "refused at once ({hung:?}), not cut off: {read_alone:?}"
        );
        assert!(
            written.1 < hung,
            "the majority wrote ({:?}) only after the isolated read gave up ({hung:?})",
            written.1
        );
        // The leader probe's commit index (the status's raftIndex): the majority's moved
        // past anything the isolated member can know.
        let probe = TargetLeader {
            client: f.client(&IDS),
            ids: ids.clone(),
        };
        let cut_off = probe.commit_index(NodeId(isolated)).await;
        let moved_on = probe.commit_index(NodeId(majority[0])).await;
        eprintln!(
            "commit index: isolated n{isolated} {cut_off:?}, n{} {moved_on:?}",
            majority[0]
        );
        assert!(
            matches!((cut_off, moved_on), (Some(a), Some(b)) if a > 0 && a < b),
            "commit indexes: isolated {cut_off:?}, majority {moved_on:?}"
        );
        c.heal().await.unwrap();
        let (value, back) = until_ok(&alone, &read(), Duration::from_secs(30)).await;
        eprintln!(
            "after heal n{isolated} served a linearizable read after {:.2} s: {value:?}",
            back.as_secs_f64()
        );
        assert_eq!(
            value,
            Value::Int(2),
            "it caught up with the majority's write"
        );
        until_ok(&alone, &write(3), Duration::from_secs(10)).await;
    })
    .await;
}

/// The inodes of `pid`'s established TCP sockets connected to `remote`.
fn sockets_to(pid: i32, remote: SocketAddr) -> BTreeSet<u64> {
    let held = socket_inodes(pid);
    read_socket_tables()
        .expect("socket tables")
        .into_iter()
        // 1: established.
        .filter(|e| e.state == 1 && e.remote == remote && held.contains(&e.inode))
        .map(|e| e.inode)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_cut_resets_only_the_connections_its_sender_opened() {
    let Some(etcd) = etcd_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&etcd).await;
        let c = &f.cluster;
        f.leader(Duration::from_secs(20)).await;
        until_ok(&f.client(&IDS), &write(1), Duration::from_secs(10)).await;
        let pairs: Vec<(u32, u32)> = IDS
            .iter()
            .flat_map(|&a| IDS.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
            .collect();
        let mut pids = std::collections::BTreeMap::new();
        for id in IDS {
            pids.insert(id, f.pid(id).await);
        }
        let dest = |b: u32| c.destination_addr(NodeId(b)).expect("shared peering");
        // etcd keeps streams open to every peer: wait until each member holds one to
        // every other member's peer address.
        let deadline = Instant::now() + Duration::from_secs(15);
        let before = loop {
            let now: Vec<BTreeSet<u64>> = pairs
                .iter()
                .map(|&(a, b)| sockets_to(pids[&a], dest(b)))
                .collect();
            if now.iter().all(|s| !s.is_empty()) {
                break now;
            }
            assert!(Instant::now() < deadline, "streams never opened: {now:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        eprintln!("connections per link before the cut: {before:?}");

        // n2 stops hearing n1: the link n1 -> n2 is cut forward, n2 -> n1 holds n1's
        // answers; the other links are untouched.
        let mut grudge = Grudge::new();
        grudge.drop_one_way(NodeId(1), NodeId(2));
        c.partition(&grudge).await.unwrap();
        for &(a, b) in &pairs {
            let fault = c.link_fault(NodeId(a), NodeId(b)).expect("link");
            assert_eq!(
                (fault.forward.cut, fault.backward.cut),
                ((a, b) == (1, 2), (a, b) == (2, 1)),
                "link n{a} -> n{b}: {fault:?}"
            );
        }
        let cut = pairs.iter().position(|&p| p == (1, 2)).unwrap();
        let started = Instant::now();
        loop {
            let left: Vec<u64> = sockets_to(pids[&1], dest(2))
                .intersection(&before[cut])
                .copied()
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "n1's connections to n2 survived the cut: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let reset_after = started.elapsed();
        // Connections of links the grudge does not touch are the same sockets as before.
        for (i, &(a, b)) in pairs.iter().enumerate() {
            if a == 2 && b == 1 || i == cut {
                continue;
            }
            let now = sockets_to(pids[&a], dest(b));
            let kept = now.intersection(&before[i]).count();
            assert!(
                kept > 0,
                "n{a} -> n{b}: none of {:?} survived an unrelated cut (now {now:?})",
                before[i]
            );
        }
        eprintln!(
            "{} connection(s) n1 -> n2 reset within {:.0} ms; other links kept theirs",
            before[cut].len(),
            reset_after.as_secs_f64() * 1000.0
        );

        c.heal().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while sockets_to(pids[&1], dest(2)).is_empty() {
            assert!(Instant::now() < deadline, "n1 never reconnected to n2");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        until_ok(&f.client(&[2]), &read(), Duration::from_secs(20)).await;
    })
    .await;
}

/// `faultline test --backend local --target etcd` (3 nodes) with `extra` flags, results
/// under `results`.
async fn run_local_etcd(results: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = [
        "test",
        "--backend",
        "local",
        "--target",
        "etcd",
        "--nodes",
        "3",
        "--rate",
        "60",
        "--concurrency",
        "6",
        "--op-timeout",
        "1s",
        "--nemesis-interval",
        "3s",
        "--check-timeout",
        "60s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--results-dir".into(), results.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"));
    command.args(&args);
    Run::wait(command, &results.join("latest"), RUN_TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faultline_test_local_etcd_is_valid_under_partition_kill_pause() {
    let Some(_etcd) = etcd_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let results = tempfile::tempdir().expect("tempdir");

    // Refused before anything starts: libfaketime cannot reach a Go program's clock.
    let refused = run_local_etcd(results.path(), &["--nemesis", "clock"]).await;
    assert_eq!(refused.code, Some(3), "{}", refused.describe());
    assert!(
        refused.stderr.contains("vDSO"),
        "the refusal says why: {}",
        refused.describe()
    );

    let started = Instant::now();
    let run = run_local_etcd(
        results.path(),
        &[
            "--nemesis",
            "partition,kill,pause",
            "--time-limit",
            "15s",
            "--seed",
            "7",
        ],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let r = run.results.as_ref().expect("results.json");
    assert_eq!(r["verdict"], "valid", "{}", run.describe());
    let x = &r["exercised"];
    let ok = x["counts"]["ok"].as_u64().unwrap_or(0);
    // A connection whose opener died before the lookup (a kill) is reset and logged;
    // anything else unattributed would be a bug in the lookup.
    let unattributed = run.stderr.matches("peer address reset").count();
    eprintln!(
        "local etcd run: {:.1} s, verdict {}, {ok} ok ops, faults {}, {unattributed} \
         unattributed peer connection(s)",
        took.as_secs_f64(),
        r["verdict"],
        x["faults_started"]
    );
    assert!(ok > 50, "only {ok} ok ops in a 15 s run: {r}");
    assert!(
        x["faults_started"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "no fault was injected: {r}"
    );
    let dir = run.run_dir.expect("run folder");
    for n in ["n1", "n2", "n3"] {
        let node = dir.join("nodes").join(n);
        let log = std::fs::read_to_string(node.join("server.log")).expect("server.log");
        assert!(log.contains("etcdserver"), "{n}'s log is etcd's");
        assert!(
            node.join("data").join("member").join("wal").is_dir(),
            "{n} has no etcd WAL in its data folder"
        );
    }
    let log = std::fs::read_to_string(dir.join("faultline.log")).unwrap();
    assert!(log.contains("backend: local"), "{log}");
    assert!(log.contains("attributed per sender"), "{log}");
    assert!(
        processes_under("etcd", &dir).is_empty(),
        "members outlived the run: {:?}",
        processes_under("etcd", &dir)
    );
}
