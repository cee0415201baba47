//! The local backend against real raftkv processes: each fault has the effect it claims and
//! heal (or resume, or start) undoes it, then whole `faultline test --backend local` runs:
//! a correct raftkv is `valid` under partition+kill+pause, `--bug stale-read` under
//! partitions is `invalid` within a few seeds, a batch of runs (`--test-count`) writes its
//! summary, and a run without Docker says so.
//!
//! Needs the raftkv binary beside the test binary (`cargo build --release --bin raftkv`);
//! without it each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`). Tests run
//! one at a time (they share the machine's cores) and each is bounded in time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::backend::local::LocalCluster;
use faultline::backend::NodeSpec;
use faultline::target::{Target, TargetLeader};
use faultline_nemeses::{
    ActiveFault, Cluster, ClusterError, FaultKind, Figure8Stage, Grudge, Nemesis, NetemSpec,
    NodeId, PacketFault,
};
use faultline_workloads::raftkv::RaftKvClient;

mod support;
use support::bounded;
use support::local::{processes_under, Run};

/// Upper bound of one fault test.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound of one `faultline test` child.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// A request through a cut link must not be answered within this.
const CUT_PROBE_TIMEOUT: Duration = Duration::from_millis(800);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn raftkv_or_skip() -> Option<PathBuf> {
    support::raftkv_binary()
}

/// raftkv's node description as a run with `nemesis` and `bugs` gets it.
fn raftkv_spec(nemesis: &[FaultKind], bugs: &[&str]) -> NodeSpec {
    support::spec(Target::Raftkv, nemesis, bugs)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// `GET /status` at `addr` (a node, or a proxy standing for one), within `timeout`.
async fn status(addr: SocketAddr, timeout: Duration) -> Result<serde_json::Value, String> {
    let resp = http()
        .get(format!("http://{addr}/status"))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    resp.json().await.map_err(|e| e.to_string())
}

fn num(v: &serde_json::Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(0)
}

struct Fixture {
    cluster: Arc<LocalCluster>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(raftkv: &Path, bugs: &[&str]) -> Fixture {
        Fixture::start_spec(raftkv, 3, raftkv_spec(&[], bugs)).await
    }

    async fn start_spec(raftkv: &Path, nodes: u32, spec: NodeSpec) -> Fixture {
        let (cluster, dir) = support::local::cluster(nodes, spec, raftkv).await;
        Fixture { cluster, _dir: dir }
    }

    fn addr(&self, id: u32) -> SocketAddr {
        self.cluster.member(NodeId(id)).expect("member").addr
    }

    /// Waits until some node is leader and a majority agree; returns (leader, term).
    async fn leader(&self, among: &[u32], within: Duration) -> (u32, u64) {
        let deadline = Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            for &id in among {
                if let Ok(s) = status(self.addr(id), Duration::from_millis(500)).await {
                    if s["role"] == "leader" {
                        leaders.push((id, num(&s, "term")));
                    }
                }
            }
            if let Some(&best) = leaders.iter().max_by_key(|(_, t)| *t) {
                return best;
            }
            assert!(Instant::now() < deadline, "no leader among {among:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes `key` through node `via` (followers forward to the leader).
    async fn put(&self, via: u32, key: &str, value: &str) -> Result<(), String> {
        let resp = http()
            .put(format!("http://{}/kv/{key}", self.addr(via)))
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

    /// Writes `key = value` through each of `nodes` in turn, retrying each until it
    /// commits; fails the test if one does not within `within`.
    async fn put_through_each(&self, nodes: &[u32], key: &str, value: &str, within: Duration) {
        for &via in nodes {
            let deadline = Instant::now() + within;
            while let Err(e) = self.put(via, key, value).await {
                assert!(Instant::now() < deadline, "write via n{via}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Cuts `old` off from the others, waits for them to elect a new leader, and writes
    /// `k = v2` through it: the key the cut-off node last saw is now overwritten.
    async fn overwrite_behind(&self, old: u32) {
        let all = [NodeId(1), NodeId(2), NodeId(3)];
        self.cluster
            .partition(&Grudge::isolate(&all, NodeId(old)))
            .await
            .expect("partition");
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|&n| n != old).collect();
        let (new, _) = self.leader(&others, Duration::from_secs(15)).await;
        self.put(new, "k", "v2")
            .await
            .expect("write through the new leader");
    }

    /// `GET /kv/k` at node `id`: its status and body, or why it did not answer. The wait
    /// outlasts raftkv's own request timeout (2 s), so a read it cannot confirm comes back
    /// as its 504 rather than as no answer.
    async fn read_k(&self, id: u32) -> Result<(reqwest::StatusCode, String), String> {
        let resp = http()
            .get(format!("http://{}/kv/k", self.addr(id)))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        Ok((status, resp.text().await.unwrap_or_default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_cuts_peer_links_and_heal_restores_them() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&raftkv, &[]).await;
        let c = &f.cluster;
        let (leader, term) = f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|&n| n != leader).collect();
        let link = |a: u32, b: u32| c.proxy_addr(NodeId(a), NodeId(b)).expect("link");
        // Through every proxy a node answers while the network is whole.
        for (a, b) in [
            (leader, others[0]),
            (others[0], leader),
            (others[0], others[1]),
        ] {
            status(link(a, b), Duration::from_secs(2))
                .await
                .unwrap_or_else(|e| panic!("link n{a} -> n{b} before the fault: {e}"));
        }

        let ids: Vec<NodeId> = [1, 2, 3].map(NodeId).to_vec();
        c.partition(&Grudge::isolate(&ids, NodeId(leader)))
            .await
            .unwrap();
        // The leader's requests to the others and theirs to it get no answer; the majority
        // side still talks, and clients still reach every node directly.
        for (a, b) in [(leader, others[0]), (others[1], leader)] {
            let r = status(link(a, b), CUT_PROBE_TIMEOUT).await;
            assert!(r.is_err(), "n{a} -> n{b} answered through a cut: {r:?}");
        }
        status(link(others[0], others[1]), Duration::from_secs(2))
            .await
            .expect("majority side still connected");
        status(f.addr(leader), Duration::from_secs(2))
            .await
            .expect("client traffic bypasses the proxies");
        // Raft sees it: the majority elects a new leader in a later term.
        let (new_leader, new_term) = f.leader(&others, Duration::from_secs(15)).await;
        assert!(new_term > term && new_leader != leader);

        // One way: the old leader drops packets from one node only. That node's requests
        // to it vanish, and so do its own requests to that node (no answer comes back).
        let mut one_way = Grudge::new();
        one_way.drop_one_way(NodeId(others[0]), NodeId(leader));
        c.partition(&one_way).await.unwrap();
        assert!(status(link(others[0], leader), CUT_PROBE_TIMEOUT)
            .await
            .is_err());
        assert!(status(link(leader, others[0]), CUT_PROBE_TIMEOUT)
            .await
            .is_err());
        status(link(leader, others[1]), Duration::from_secs(2))
            .await
            .expect("links outside the grudge are untouched");

        c.heal().await.unwrap();
        for a in [1, 2, 3] {
            for b in [1, 2, 3] {
                if a != b {
                    status(link(a, b), Duration::from_secs(2))
                        .await
                        .unwrap_or_else(|e| panic!("n{a} -> n{b} after heal: {e}"));
                }
            }
        }
        // Writes commit through any node again.
        f.put_through_each(&[1, 2, 3], "healed", "yes", Duration::from_secs(10))
            .await;
        c.teardown().await.unwrap();
    })
    .await;
}

/// `GET /kv/{key}` at `addr` (a node, or a proxy standing for one); how long until the
/// whole answer was read, and its size in bytes.
async fn timed_get(addr: SocketAddr, key: &str) -> Result<(Duration, usize), String> {
    let started = Instant::now();
    let resp = http()
        .get(format!("http://{addr}/kv/{key}"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((started.elapsed(), body.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_slows_only_its_link_until_cleared() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&raftkv, &[]).await;
        let c = &f.cluster;
        let (leader, _) = f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|&n| n != leader).collect();
        let (a, b) = (others[0], others[1]);
        let link = |x: u32, y: u32| c.proxy_addr(NodeId(x), NodeId(y)).expect("link");
        let value = "x".repeat(32 * 1024);
        f.put(leader, "big", &value).await.expect("put 32 KiB");

        // b's answers to a (they leave b on the link b -> a's requests came in on) are
        // limited to 128 kbit/s: 32 KiB take about 2 s. b's answers to the leader are not.
        let limited = PacketFault::links(NetemSpec::rate(128), &[NodeId(a)]);
        c.netem(NodeId(b), &limited).await.expect("rate limit");
        // Removing a partition (how the nemesis stops one) leaves the limit on.
        let cut = Grudge::isolate(&[NodeId(1), NodeId(2), NodeId(3)], NodeId(leader));
        c.partition(&cut).await.expect("partition");
        c.partition(&Grudge::new()).await.expect("no partition");
        let (slow, bytes) = timed_get(link(a, b), "big").await.expect("read via a -> b");
        assert!(bytes > 32 * 1024, "{bytes} bytes");
        let (other, _) = timed_get(link(leader, b), "big")
            .await
            .expect("read via leader -> b");
        c.clear_netem(NodeId(b)).await.expect("clear");
        let (after, _) = timed_get(link(a, b), "big").await.expect("read after clear");
        eprintln!(
            "32 KiB from n{b}: {slow:?} to n{a} at 128 kbit/s, {other:?} to n{leader} \
             (unlimited), {after:?} to n{a} after the clear"
        );
        assert!(slow >= Duration::from_millis(1_500), "limited read took {slow:?}");
        assert!(other < Duration::from_secs(1), "unlimited link took {other:?}");
        assert!(after < Duration::from_secs(1), "after the clear it took {after:?}");

        // What a stream proxy cannot do is refused, and changes nothing.
        let mut dup = NetemSpec::delay(50);
        dup.duplicate_pct = 5;
        let err = c
            .netem(NodeId(b), &PacketFault::node_wide(dup))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClusterError::Unsupported { reason, .. } if reason.starts_with("duplicate")),
            "{err}"
        );
        assert_eq!(c.link_fault(NodeId(b), NodeId(a)).map(|l| l.forward.netem), Some(None));
        c.teardown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_stops_until_resumed() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&raftkv, &[]).await;
        let c = &f.cluster;
        let (leader, term) = f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|&n| n != leader).collect();
        let pid = c.pid(NodeId(leader)).await.unwrap().expect("running");

        c.pause(NodeId(leader)).await.unwrap();
        assert!(faultline::backend::local::process::is_stopped(pid));
        // Nothing runs in it: the kernel accepts the connection, nobody answers.
        assert!(status(f.addr(leader), CUT_PROBE_TIMEOUT).await.is_err());
        // The rest move on to a later term without it; its own term is frozen.
        let (_, new_term) = f.leader(&others, Duration::from_secs(15)).await;
        assert!(new_term > term);
        assert!(status(f.addr(leader), CUT_PROBE_TIMEOUT).await.is_err());
        // Pausing twice is fine, and so is resuming twice.
        c.pause(NodeId(leader)).await.unwrap();

        c.resume(NodeId(leader)).await.unwrap();
        c.resume(NodeId(leader)).await.unwrap();
        assert_eq!(c.pid(NodeId(leader)).await.unwrap(), Some(pid));
        // It answers again and joins the new term as a follower.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = status(f.addr(leader), Duration::from_secs(1)).await {
                if num(&s, "term") >= new_term && s["role"] == "follower" {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "resumed node did not rejoin");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.teardown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_restarts_on_its_data() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&raftkv, &[]).await;
        let c = &f.cluster;
        f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
        let victim = NodeId(1);
        for i in 0..20 {
            f.put(2, &format!("k{i}"), "v").await.expect("write");
        }
        // Wait until the victim has the writes in its log.
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = loop {
            let s = status(f.addr(1), Duration::from_secs(1)).await.unwrap();
            if num(&s, "keys") >= 20 {
                break num(&s, "last_index");
            }
            assert!(Instant::now() < deadline, "n1 did not replicate: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let pid = c.pid(victim).await.unwrap().expect("running");

        c.kill(victim).await.unwrap();
        assert_eq!(c.pid(victim).await.unwrap(), None);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped");
        assert!(tokio::net::TcpStream::connect(f.addr(1)).await.is_err());
        c.kill(victim).await.unwrap();
        // Cut it off before it comes back, so whatever it knows is from its own disk.
        let ids: Vec<NodeId> = [1, 2, 3].map(NodeId).to_vec();
        c.partition(&Grudge::isolate(&ids, victim)).await.unwrap();
        c.start(victim).await.unwrap();
        c.start(victim).await.unwrap();
        let restarted = c.pid(victim).await.unwrap().expect("running again");
        assert_ne!(restarted, pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        let s = loop {
            match status(f.addr(1), Duration::from_secs(1)).await {
                Ok(s) => break s,
                Err(e) => assert!(Instant::now() < deadline, "restarted n1: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            num(&s, "last_index") >= before,
            "restarted node lost its log: {s} (had {before})"
        );
        c.heal().await.unwrap();

        // A graceful stop: SIGTERM, and raftkv shuts down cleanly within the grace period.
        c.terminate(victim).await.unwrap();
        assert_eq!(c.pid(victim).await.unwrap(), None);
        let log = std::fs::read_to_string(&c.member(victim).unwrap().log).unwrap();
        assert!(log.contains("SIGTERM"), "no graceful shutdown in the log");
        // Disk faults only touch a node that is down.
        c.start(victim).await.unwrap();
        assert!(c.corrupt_log_tail(victim).await.is_err());
        c.kill(victim).await.unwrap();
        let changed = c.corrupt_log_tail(victim).await.unwrap();
        assert!(changed.starts_with("wal-"), "{changed}");

        c.teardown().await.unwrap();
        assert_eq!(c.pid(victim).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skews_only_the_wall_clock_or_is_unsupported() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let f = Fixture::start(&raftkv, &[]).await;
        let c = &f.cluster;
        let hour_ms = 3_600_000i64;
        if let Err(why) = c.clock_support() {
            match c.clock(NodeId(1), hour_ms, 1.0).await {
                Err(ClusterError::Unsupported { reason, .. }) => {
                    assert!(reason.contains("libfaketime"), "{reason}");
                }
                other => panic!("clock without libfaketime: {other:?}"),
            }
            support::prereq::missing::<()>(support::prereq::FAKETIME, why);
            return;
        }
        f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
        c.clock(NodeId(1), hour_ms, 1.0).await.unwrap();
        let skew = |s: &serde_json::Value| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            s["wall_clock_ms"].as_i64().map(|w| w - now)
        };
        let s1 = status(f.addr(1), Duration::from_secs(2)).await.unwrap();
        let s2 = status(f.addr(2), Duration::from_secs(2)).await.unwrap();
        match (skew(&s1), skew(&s2)) {
            (Some(d1), Some(d2)) => {
                assert!((d1 - hour_ms).abs() < 2_000, "n1 skewed by {d1} ms");
                assert!(d2.abs() < 2_000, "n2 untouched, off by {d2} ms");
            }
            _ => {
                // A raftkv without wall_clock_ms in /status: its log lines carry the
                // faked time instead (a restart writes one).
                c.kill(NodeId(1)).await.unwrap();
                c.start(NodeId(1)).await.unwrap();
                c.wait_listening(10_000).await.unwrap();
                let log = std::fs::read_to_string(&c.member(NodeId(1)).unwrap().log).unwrap();
                let hour_ahead = (std::time::SystemTime::now() + Duration::from_secs(3600))
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let hour = (hour_ahead / 3600) % 24;
                assert!(
                    log.lines()
                        .rev()
                        .any(|l| l.contains(&format!("T{hour:02}:"))),
                    "no log line an hour ahead"
                );
            }
        }
        // The monotonic clock is untouched, so raft keeps working on the skewed node.
        f.put(1, "skewed", "ok")
            .await
            .expect("write via the skewed node");
        c.clock(NodeId(1), 0, 1.0).await.unwrap();
        let s1 = status(f.addr(1), Duration::from_secs(2)).await.unwrap();
        if let Some(d1) = skew(&s1) {
            assert!(d1.abs() < 2_000, "reset left {d1} ms");
        }
        c.teardown().await.unwrap();
    })
    .await;
}

/// Runs `faultline test --backend local` (3 nodes, short) with `extra` flags.
async fn run_local(raftkv: &Path, results: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args: Vec<String> = [
        "test",
        "--nodes",
        "3",
        "--rate",
        "60",
        "--concurrency",
        "6",
        "--op-timeout",
        "1s",
        "--nemesis-interval",
        "2s",
        "--check-timeout",
        "60s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--raftkv".into(), raftkv.display().to_string()]);
    // Relative, as the default `results` is: node paths must not depend on the working
    // directory the nodes run in.
    args.extend(["--results-dir".into(), "runs".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"));
    command
        .args(&args)
        .envs(env.iter().copied())
        .current_dir(results);
    Run::wait(command, &results.join("runs").join("latest"), RUN_TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faultline_test_local_is_valid_under_partition_kill_pause() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let results = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let run = run_local(
        &raftkv,
        results.path(),
        &[
            "--backend",
            "local",
            "--nemesis",
            "partition,kill,pause",
            "--time-limit",
            "10s",
            "--seed",
            "1",
        ],
        &[],
    )
    .await;
    eprintln!("local run took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let r = run.results.as_ref().expect("results.json");
    assert_eq!(r["verdict"], "valid", "{}", run.describe());
    let x = &r["exercised"];
    assert!(x["counts"]["ok"].as_u64().unwrap_or(0) > 50, "{r}");
    assert!(
        x["faults_started"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "no fault was injected: {r}"
    );
    let dir = run.run_dir.expect("run folder");
    for n in ["n1", "n2", "n3"] {
        let node = dir.join("nodes").join(n);
        assert!(node.join("server.log").is_file(), "{n} log");
        assert!(
            node.join("data").join("wal").is_dir(),
            "{n} has no WAL in its data dir"
        );
    }
    let log = std::fs::read_to_string(dir.join("faultline.log")).unwrap();
    assert!(log.contains("backend: local"), "{log}");
    assert!(
        processes_under("raftkv", &dir).is_empty(),
        "nodes outlived the run: {:?}",
        processes_under("raftkv", &dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_read_bug_is_found_on_the_local_backend() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let mut verdicts = Vec::new();
    for seed in 1..=4u64 {
        let results = tempfile::tempdir().expect("tempdir");
        let seed = seed.to_string();
        let run = run_local(
            &raftkv,
            results.path(),
            &[
                "--backend",
                "local",
                "--bug",
                "stale-read",
                "--nemesis",
                "partition",
                "--time-limit",
                "10s",
                "--seed",
                &seed,
            ],
            &[],
        )
        .await;
        let verdict = run
            .results
            .as_ref()
            .and_then(|r| r["verdict"].as_str().map(String::from))
            .unwrap_or_default();
        assert_ne!(
            run.code,
            Some(3),
            "the run itself failed: {}",
            run.describe()
        );
        if verdict == "invalid" {
            assert_eq!(run.code, Some(1));
            eprintln!("stale-read found with seed {seed}");
            return;
        }
        verdicts.push(format!("seed {seed}: {verdict}"));
    }
    panic!("stale-read not detected: {verdicts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_runs_writes_its_summary_and_serve_shows_it_as_a_group() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let results = tempfile::tempdir().expect("tempdir");
    let run = run_local(
        &raftkv,
        results.path(),
        &[
            "--backend",
            "local",
            "--nemesis",
            "partition,kill",
            "--time-limit",
            "4s",
            "--seed",
            "5",
            "--test-count",
            "2",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("2 runs: 2 valid"), "{}", run.describe());
    let root = results.path().join("runs");
    let batches = faultline::serve::batches::list(&root);
    assert_eq!(batches.len(), 1, "{}", run.describe());
    let batch = batches[0].results.as_ref().expect("batch.json reads");
    assert_eq!(batch.requested, 2);
    let seeds: Vec<u64> = batch.runs.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, vec![5, 6]);
    for r in &batch.runs {
        assert_eq!(r.verdict, faultline::results::Verdict::Valid, "{r:?}");
        assert!(r.ops > 0 && r.faults > 0, "{r:?}");
        // Relative to the directory faultline ran in, as `--results-dir` was.
        let dir = results.path().join(&r.run_dir);
        assert!(dir.join("results.json").is_file(), "{r:?}");
    }
    let folder = root.join(&batches[0].test).join(&batches[0].folder);
    let junit = std::fs::read_to_string(folder.join("batch.xml")).expect("batch.xml");
    assert_eq!(junit.matches("<testcase").count(), 2, "{junit}");
    let table = std::fs::read_to_string(folder.join("batch.txt")).expect("batch.txt");
    assert!(table.contains("2 runs: 2 valid"), "{table}");
    // The index groups the batch and marks both of its runs with it.
    let runs = faultline::serve::runs::list(&root);
    let page = faultline::serve::runs::render(&root, &runs, &batches);
    assert_eq!(
        page.matches(r#"<details class="batch""#).count(),
        1,
        "{page}"
    );
    assert_eq!(
        page.matches(r#"<tr class="batch-run""#).count(),
        2,
        "{page}"
    );
    let marked = format!(r#"data-batch="{}""#, batches[0].folder);
    assert_eq!(page.matches(&marked).count(), 3, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_docker_the_run_says_so_and_auto_falls_back() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let no_docker = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let results = tempfile::tempdir().expect("tempdir");
    let run = run_local(
        &raftkv,
        results.path(),
        &["--backend", "docker", "--time-limit", "2s"],
        &no_docker,
    )
    .await;
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(
        run.stdout.contains("--backend local"),
        "no hint: {}",
        run.describe()
    );

    let results = tempfile::tempdir().expect("tempdir");
    let run = run_local(
        &raftkv,
        results.path(),
        &[
            "--backend",
            "auto",
            "--nemesis",
            "kill",
            "--time-limit",
            "3s",
        ],
        &no_docker,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(
        run.stderr.contains("using --backend local"),
        "{}",
        run.describe()
    );
}

/// A leader holding a read lease is frozen (SIGSTOP) and cut off; the others elect a new
/// leader and overwrite a key. Resumed, still cut off, the old leader must not answer that
/// key from its lease: the lease is counted in ticks, and the node runtime owes the core
/// every tick it missed while frozen. (Before that was fixed, the runtime skipped the
/// missed ticks and the resumed leader served the old value.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_leader_does_not_read_from_a_lease_that_expired_while_it_was_frozen() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let mut spec = raftkv_spec(&[], &[]);
        spec.args.push("--lease-reads".into());
        let f = Fixture::start_spec(&raftkv, 3, spec).await;
        let c = &f.cluster;
        let (old, _) = f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
        f.put(old, "k", "v1").await.expect("first write");
        // The write's round renewed the lease; freeze the leader inside it, then cut it off.
        c.pause(NodeId(old)).await.expect("pause");
        f.overwrite_behind(old).await;

        c.resume(NodeId(old)).await.expect("resume");
        match f.read_k(old).await {
            Ok((status, body)) => {
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
    .await;
}

/// What the old leader answers for `k` once a new leader overwrote it, after the old
/// leader's wall clock jumped back a minute and it was cut off. Returns the body when the
/// read succeeded.
async fn read_after_clock_jump_and_cut(raftkv: &Path, spec: NodeSpec) -> Option<String> {
    let f = Fixture::start_spec(raftkv, 3, spec).await;
    let c = &f.cluster;
    let (old, term) = f.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    f.put(old, "k", "v1").await.expect("first write");
    // The leader must hold a lease before its clock jumps: a read it answers itself proves
    // a majority acknowledged one of its heartbeat rounds (served from the lease, or after
    // a round it started). Without this the jump could come within milliseconds of the
    // election, before any round was acknowledged; the lease would then count only from
    // the jumped clock and run out at the cut like a correct one (twice in CI). Still
    // leader in the same term afterwards means it did not forward the read.
    let (code, body) = f.read_k(old).await.expect("read before the jump");
    assert!(
        code.is_success() && body.contains("v1"),
        "read before the jump: {code} {body}"
    );
    let s = status(f.addr(old), Duration::from_secs(1))
        .await
        .expect("status");
    assert!(
        s["role"] == "leader" && num(&s, "term") == term,
        "n{old} lost the lead (term {term}) before its clock jumped: {s}"
    );
    c.clock(NodeId(old), -60_000, 1.0).await.expect("clock");
    // A few heartbeat rounds at the new clock reading, then the cut.
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.overwrite_behind(old).await;
    let answer = match f.read_k(old).await {
        Ok((status, body)) if status.is_success() => Some(body),
        Ok((status, _)) => {
            eprintln!("old leader answered {status}");
            None
        }
        Err(e) => {
            eprintln!("old leader did not answer: {e}");
            None
        }
    };
    c.heal().await.expect("heal");
    c.clock(NodeId(old), 0, 1.0).await.expect("clock reset");
    c.teardown().await.expect("teardown");
    answer
}

/// The planted `lease-clock` bug at work on real processes: a leader whose wall clock
/// jumped back a minute, then cut off, keeps serving lease reads after the others elected
/// a new leader and overwrote the key. Correct raftkv with lease reads, the same faults
/// applied, does not (its lease counts ticks of the monotonic clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_clock_jumped_back_serves_stale_reads_only_under_lease_clock() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    if support::local::faketime().is_none() {
        return;
    }
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let buggy = raftkv_spec(&[], &["lease-clock"]);
        let stale = read_after_clock_jump_and_cut(&raftkv, buggy).await;
        assert!(
            stale.as_deref().is_some_and(|b| b.contains("v1")),
            "lease-clock: the cut-off old leader should serve the overwritten value, got {stale:?}"
        );
        let mut correct = raftkv_spec(&[], &[]);
        correct.args.push("--lease-reads".into());
        let answer = read_after_clock_jump_and_cut(&raftkv, correct).await;
        assert!(
            !answer.as_deref().is_some_and(|b| b.contains("v1")),
            "correct raftkv served the overwritten value from a lease: {answer:?}"
        );
    })
    .await;
}

/// The figure8 walk on five correct raftkv nodes, run as the harness runs them under this
/// fault (one entry per append message): the probe sees the elections it plans (the
/// usurper, then the old leader again), the side it leaves in charge (voter, follower,
/// usurper) elects a leader in a later term while the old leader's side cannot commit, and
/// the stop undoes it all: the five agree on one commit index and writes commit through
/// every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure8_walks_its_elections_and_its_stop_reunites_the_cluster() {
    let Some(raftkv) = raftkv_or_skip() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        // As a run under this fault starts raftkv: one entry per append message.
        let spec = raftkv_spec(&[FaultKind::Figure8], &[]);
        let f = Fixture::start_spec(&raftkv, 5, spec).await;
        let all = [1, 2, 3, 4, 5];
        let (_, first_term) = f.leader(&all, Duration::from_secs(10)).await;
        // The probe real runs use: raftkv's `/status`, for the leader and commit index.
        let addrs: Vec<String> = all.iter().map(|&n| f.addr(n).to_string()).collect();
        let probe = TargetLeader {
            client: Arc::new(RaftKvClient::new(&addrs).expect("client")),
            ids: all.iter().map(|&n| NodeId(n)).collect(),
        };
        let mut nemesis = Nemesis::new(f.cluster.clone(), Some(Arc::new(probe)), 11);
        let fault = nemesis.start(FaultKind::Figure8).await.expect("figure8");
        eprintln!("fault: {fault}");
        let ActiveFault::Figure8 { roles, reached, .. } = fault.clone() else {
            panic!("not a figure8 fault: {fault:?}");
        };
        assert!(
            reached >= Figure8Stage::OldReelected,
            "the walk stopped early: {fault}"
        );
        let side = [roles.voter.0, roles.follower.0, roles.usurper.0];
        let (_, term) = f.leader(&side, Duration::from_secs(10)).await;
        assert!(term > first_term, "the last side elected in a later term");
        assert!(
            f.put(roles.old.0, "during", "figure8").await.is_err(),
            "the old leader's side committed a write while cut off"
        );

        nemesis.stop(&fault).await.expect("stop");
        assert!(nemesis.is_healed());
        f.put_through_each(&all, "healed", "yes", Duration::from_secs(15))
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut commits = Vec::new();
            for n in all {
                if let Ok(s) = status(f.addr(n), Duration::from_secs(1)).await {
                    commits.push(num(&s, "commit_index"));
                }
            }
            if commits.len() == all.len() && commits.iter().all(|c| *c == commits[0]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the five do not agree after the stop: {commits:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        f.cluster.teardown().await.unwrap();
    })
    .await;
}
