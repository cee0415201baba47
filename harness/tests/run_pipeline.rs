//! The whole `faultline test` pipeline (results folder, clients, nemesis schedule, heal,
//! final reads, history, checkers, results.json) on an in-process cluster: N loopback HTTP
//! servers speaking raftkv's client API over one shared linearizable store, and a
//! `Cluster` implementation whose partitions and kills change what those servers do.
//! A node cut off from the majority refuses requests (not-leader), unless the stale-read
//! bug is on: then it answers reads from the state it had when it was cut off, which the
//! checker must catch.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline::results::Verdict;
use faultline::run::{run_with_cluster, TestConfig};
use faultline_checker::{Event, EventType, Process};
use faultline_nemeses::{Cluster, ClusterError, FaultKind, Grudge, Node, NodeId};
use faultline_workloads::Workload;
use serde_json::{json, Value as JsonV};
use tokio::sync::watch;

#[derive(Default)]
struct Store {
    kv: HashMap<String, String>,
    fence: HashMap<String, u64>,
    /// lock -> (token, lease_id, expires)
    locks: HashMap<String, (u64, u64, std::time::Instant)>,
    next_token: u64,
}

#[derive(Default)]
struct NodeFlags {
    cut_off: AtomicBool,
    killed: AtomicBool,
    /// What this node had when it was cut off (served by the stale-read bug).
    snapshot: Mutex<HashMap<String, String>>,
}

struct World {
    store: Mutex<Store>,
    nodes: Vec<NodeFlags>,
    stale_read_bug: bool,
}

#[derive(Clone)]
struct Ctx {
    id: usize,
    world: Arc<World>,
}

fn error(status: StatusCode, body: JsonV) -> Response {
    (status, Json(body)).into_response()
}

impl Ctx {
    fn flags(&self) -> &NodeFlags {
        &self.world.nodes[self.id]
    }

    /// A killed node never answers (the client times out); a cut-off node refuses.
    async fn gate(&self) -> Option<Response> {
        if self.flags().killed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        if self.flags().cut_off.load(Ordering::SeqCst) {
            return Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "not-leader", "message": "cut off"}),
            ));
        }
        None
    }
}

async fn get_key(State(c): State<Ctx>, UrlPath(key): UrlPath<String>) -> Response {
    if c.world.stale_read_bug && c.flags().cut_off.load(Ordering::SeqCst) {
        let v = c.flags().snapshot.lock().unwrap().get(&key).cloned();
        return Json(json!({"key": key, "value": v})).into_response();
    }
    if let Some(r) = c.gate().await {
        return r;
    }
    let v = c.world.store.lock().unwrap().kv.get(&key).cloned();
    Json(json!({"key": key, "value": v})).into_response()
}

async fn put_key(
    State(c): State<Ctx>,
    UrlPath(key): UrlPath<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = c.gate().await {
        return r;
    }
    let mut s = c.world.store.lock().unwrap();
    if let Some(token) = b.get("token").and_then(JsonV::as_u64) {
        let max = s.fence.get(&key).copied().unwrap_or(0);
        if token < max {
            return error(StatusCode::CONFLICT, json!({"error": "stale-token"}));
        }
        s.fence.insert(key.clone(), token);
    }
    s.kv.insert(key, b["value"].as_str().unwrap_or_default().to_string());
    Json(json!({"ok": true})).into_response()
}

async fn cas_key(
    State(c): State<Ctx>,
    UrlPath(key): UrlPath<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = c.gate().await {
        return r;
    }
    let mut s = c.world.store.lock().unwrap();
    if s.kv.get(&key).map(String::as_str) != b["from"].as_str() {
        return error(StatusCode::CONFLICT, json!({"error": "cas-failed"}));
    }
    s.kv.insert(key, b["to"].as_str().unwrap_or_default().to_string());
    Json(json!({"ok": true})).into_response()
}

async fn acquire(
    State(c): State<Ctx>,
    UrlPath(name): UrlPath<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = c.gate().await {
        return r;
    }
    let now = std::time::Instant::now();
    let mut s = c.world.store.lock().unwrap();
    if s.locks.get(&name).is_some_and(|l| l.2 > now) {
        return error(StatusCode::CONFLICT, json!({"error": "lock-held"}));
    }
    s.next_token += 1;
    let token = s.next_token;
    let ttl = Duration::from_millis(b["ttl_ms"].as_u64().unwrap_or(1000));
    s.locks.insert(name, (token, token + 500, now + ttl));
    Json(json!({"token": token, "lease_id": token + 500, "expires_at_ms": 0})).into_response()
}

async fn release(
    State(c): State<Ctx>,
    UrlPath(name): UrlPath<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = c.gate().await {
        return r;
    }
    let mut s = c.world.store.lock().unwrap();
    match s.locks.get(&name) {
        Some(l) if Some(l.1) == b["lease_id"].as_u64() && l.2 > std::time::Instant::now() => {
            s.locks.remove(&name);
            Json(json!({"ok": true})).into_response()
        }
        _ => error(StatusCode::CONFLICT, json!({"error": "not-held"})),
    }
}

async fn status(State(c): State<Ctx>) -> Response {
    let leader = c
        .world
        .nodes
        .iter()
        .position(|n| !n.cut_off.load(Ordering::SeqCst) && !n.killed.load(Ordering::SeqCst));
    let role = if leader == Some(c.id) {
        "leader"
    } else {
        "follower"
    };
    Json(json!({"id": c.id + 1, "role": role, "term": 1, "leader": leader.map(|l| l + 1)}))
        .into_response()
}

/// The cluster the nemesis drives: flips the servers' flags.
struct FakeCluster {
    world: Arc<World>,
    nodes: Vec<Node>,
}

#[async_trait]
impl Cluster for FakeCluster {
    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let majority = ids.len() / 2 + 1;
        let store = self.world.store.lock().unwrap();
        for (i, id) in ids.iter().enumerate() {
            let cut = grudge.visible_from(&ids, *id).len() < majority;
            let flags = &self.world.nodes[i];
            if cut && !flags.cut_off.load(Ordering::SeqCst) {
                *flags.snapshot.lock().unwrap() = store.kv.clone();
            }
            flags.cut_off.store(cut, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn heal(&self) -> Result<(), ClusterError> {
        for n in &self.world.nodes {
            n.cut_off.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn pause(&self, node: NodeId) -> Result<(), ClusterError> {
        Err(unsupported("pause", node))
    }

    async fn resume(&self, node: NodeId) -> Result<(), ClusterError> {
        Err(unsupported("resume", node))
    }

    async fn kill(&self, node: NodeId) -> Result<(), ClusterError> {
        self.world.nodes[node.0 as usize - 1]
            .killed
            .store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn start(&self, node: NodeId) -> Result<(), ClusterError> {
        self.world.nodes[node.0 as usize - 1]
            .killed
            .store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn clock(&self, node: NodeId, _offset_ms: i64, _rate: f64) -> Result<(), ClusterError> {
        Err(unsupported("clock", node))
    }

    async fn logs(&self, node: NodeId, dir: &Path) -> Result<(), ClusterError> {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join("server.log"), format!("log of {node}\n")))
            .map_err(|e| ClusterError::Backend {
                op: "logs",
                target: node.to_string(),
                source: Box::new(e),
            })
    }
}

fn unsupported(op: &'static str, node: NodeId) -> ClusterError {
    ClusterError::Unsupported {
        op,
        backend: "the in-process test cluster",
        reason: format!("not simulated ({node})"),
    }
}

async fn start_cluster(n: usize, stale_read_bug: bool) -> Arc<FakeCluster> {
    let world = Arc::new(World {
        store: Mutex::new(Store::default()),
        nodes: (0..n).map(|_| NodeFlags::default()).collect(),
        stale_read_bug,
    });
    let mut nodes = Vec::new();
    for id in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = Router::new()
            .route("/kv/{key}", get(get_key).put(put_key))
            .route("/kv/{key}/cas", post(cas_key))
            .route("/lock/{name}/acquire", post(acquire))
            .route("/lock/{name}/release", post(release))
            .route("/status", get(status))
            .with_state(Ctx {
                id,
                world: world.clone(),
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        nodes.push(Node {
            id: NodeId(id as u32 + 1),
            name: format!("n{}", id + 1),
            client_addr: addr,
        });
    }
    Arc::new(FakeCluster { world, nodes })
}

fn short_config(
    results: &Path,
    workload: Workload,
    nemesis: Vec<FaultKind>,
    seed: u64,
) -> TestConfig {
    TestConfig {
        workload,
        nemesis,
        nemesis_interval_ms: 400,
        nodes: 3,
        time_limit_ms: 3_000,
        rate_per_s: 150.0,
        concurrency: 6,
        op_timeout_ms: 300,
        seed,
        results_dir: results.to_path_buf(),
        quiet_period_ms: 100,
        leader_wait_ms: 5_000,
        final_reads_ms: 5_000,
        check_timeout_ms: 60_000,
        ..TestConfig::default()
    }
}

fn read_history(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn never_cancel() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    // Leak the sender for the test's life so the channel stays open.
    std::mem::forget(tx);
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_cluster_under_partitions_and_kills_is_valid() {
    let results = tempfile::tempdir().unwrap();
    let cluster = start_cluster(3, false).await;
    let config = short_config(
        results.path(),
        Workload::Register,
        vec![FaultKind::Partition, FaultKind::Kill],
        1,
    );
    let outcome = run_with_cluster(config.clone(), cluster.clone(), never_cancel())
        .await
        .unwrap();
    assert_eq!(outcome.verdict, Verdict::Valid, "{}", outcome.summary());
    assert_eq!(outcome.exit_code(), 0);

    // The folder: config, history, results, node logs, latest link.
    let dir = &outcome.run_dir;
    let saved: TestConfig =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved, config);
    let results_json: JsonV =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results_json["verdict"], "valid");
    assert_eq!(
        results_json["judgement"]["linearizable"]["verdict"],
        "valid"
    );
    assert_eq!(results_json["judgement"]["model"], "cas-register");
    for n in ["n1", "n2", "n3"] {
        assert!(dir.join("nodes").join(n).join("server.log").is_file());
    }
    assert_eq!(
        std::fs::canonicalize(results.path().join("latest")).unwrap(),
        std::fs::canonicalize(dir).unwrap()
    );

    // The history: client ops, nemesis starts/stops, a final heal, final reads last.
    let events = read_history(&dir.join("history.jsonl"));
    let x = outcome.exercised.as_ref().unwrap();
    assert_eq!(events.len() as u64, x.events_written);
    assert!(x.counts.ok > 100, "{x:?}");
    let nemesis: Vec<&str> = events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| e.f.as_str())
        .collect();
    assert!(
        nemesis.iter().any(|f| f.starts_with("start-")),
        "{nemesis:?}"
    );
    assert_eq!(nemesis.last(), Some(&"heal"));
    // The online check ran while the test did, and found nothing.
    let online = x
        .online
        .as_ref()
        .expect("the online check is on by default");
    assert!(
        online.checks >= 1 && online.violation.is_none(),
        "{online:?}"
    );
    assert!(!events.iter().any(|e| e.process == Process::Checker));
    assert!(x.final_reads_failed.is_empty(), "{x:?}");
    assert!(x.final_reads_ok >= 3);
    assert!(events.windows(2).all(|w| w[0].index + 1 == w[1].index));
    // Healed at the end: no node left cut off or killed.
    for n in &cluster.world.nodes {
        assert!(!n.cut_off.load(Ordering::SeqCst) && !n.killed.load(Ordering::SeqCst));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reads_under_partitions_are_invalid() {
    let results = tempfile::tempdir().unwrap();
    // Repeat with a few seeds, stop at the first detection.
    let mut detected = None;
    for seed in 1..=4 {
        let cluster = start_cluster(3, true).await;
        let config = short_config(
            results.path(),
            Workload::Register,
            vec![FaultKind::Partition],
            seed,
        );
        let outcome = run_with_cluster(config, cluster, never_cancel())
            .await
            .unwrap();
        assert_ne!(outcome.verdict, Verdict::Error, "{}", outcome.summary());
        if outcome.verdict == Verdict::Invalid {
            detected = Some(outcome);
            break;
        }
    }
    let outcome = detected.expect("stale reads were never detected in 4 seeds");
    assert_eq!(outcome.exit_code(), 1);
    let results_json: JsonV =
        serde_json::from_slice(&std::fs::read(outcome.run_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results_json["verdict"], "invalid");
    assert_eq!(
        results_json["judgement"]["linearizable"]["verdict"],
        "invalid"
    );
}

/// `--stop-on-violation`: the online check finds the stale read while the clients run, the
/// run stops long before its time limit, and still heals, does the final reads, records
/// the finding in the history and the log, and judges the whole history `invalid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_on_violation_ends_the_run_early_and_still_heals_and_judges() {
    let results = tempfile::tempdir().unwrap();
    let mut detected = None;
    for seed in 1..=4 {
        let cluster = start_cluster(3, true).await;
        let config = TestConfig {
            time_limit_ms: 30_000,
            online_check_ms: 200,
            stop_on_violation: true,
            ..short_config(
                results.path(),
                Workload::Register,
                vec![FaultKind::Partition],
                seed,
            )
        };
        let outcome = run_with_cluster(config, cluster.clone(), never_cancel())
            .await
            .unwrap();
        assert_ne!(outcome.verdict, Verdict::Error, "{}", outcome.summary());
        if outcome.verdict == Verdict::Invalid {
            detected = Some((outcome, cluster));
            break;
        }
    }
    let (outcome, cluster) = detected.expect("stale reads were never detected in 4 seeds");
    let x = outcome.exercised.as_ref().unwrap();
    let online = x.online.as_ref().unwrap();
    let v = online
        .violation
        .as_ref()
        .expect("found by the online check");
    assert!(online.stopped_run, "{online:?}");
    assert!(
        x.workload_ms < 30_000,
        "the clients stopped at the violation, not the time limit: {x:?}"
    );
    assert!(v.op.contains("read"), "{v:?}");
    let completed = v.op_completed_at_ms.expect("the op completed");
    assert!(completed <= v.found_at_ms, "{v:?}");
    assert!(x.final_reads_ok >= 3, "final reads still ran: {x:?}");
    for n in &cluster.world.nodes {
        assert!(!n.cut_off.load(Ordering::SeqCst) && !n.killed.load(Ordering::SeqCst));
    }
    let events = read_history(&outcome.run_dir.join("history.jsonl"));
    let found: Vec<&Event> = events
        .iter()
        .filter(|e| e.process == Process::Checker)
        .collect();
    assert_eq!(found.len(), 1, "one violation event in the history");
    assert_eq!(found[0].f, "violation");
    // The counters count client ops only, not the checker's event.
    let client_infos = events
        .iter()
        .filter(|e| matches!(e.process, Process::Client(_)) && e.kind == EventType::Info)
        .count() as u64;
    assert_eq!(x.counts.info, client_infos, "{x:?}");
    let log = std::fs::read_to_string(outcome.run_dir.join("faultline.log")).unwrap();
    assert!(log.contains("violation found by the online check"), "{log}");
    assert!(log.contains("--stop-on-violation"), "{log}");
    let results_json: JsonV =
        serde_json::from_slice(&std::fs::read(outcome.run_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results_json["verdict"], "invalid");
    assert_eq!(
        results_json["exercised"]["online"]["violation"]["op"],
        v.op.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_workload_on_a_correct_cluster_is_valid() {
    let results = tempfile::tempdir().unwrap();
    let cluster = start_cluster(3, false).await;
    let config = short_config(
        results.path(),
        Workload::Lock,
        vec![FaultKind::Partition],
        5,
    );
    let outcome = run_with_cluster(config, cluster, never_cancel())
        .await
        .unwrap();
    assert_eq!(outcome.verdict, Verdict::Valid, "{}", outcome.summary());
    let j = outcome.judgement.as_ref().unwrap();
    let fencing = j.fencing.as_ref().expect("lock runs are fencing-checked");
    assert!(
        fencing.acquires_ok > 0 && fencing.writes_accepted > 0,
        "{fencing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_leader_is_a_run_error() {
    let results = tempfile::tempdir().unwrap();
    let cluster = start_cluster(3, false).await;
    for n in &cluster.world.nodes {
        n.cut_off.store(true, Ordering::SeqCst);
    }
    let mut config = short_config(results.path(), Workload::Register, vec![], 1);
    config.leader_wait_ms = 500;
    let outcome = run_with_cluster(config, cluster, never_cancel())
        .await
        .unwrap();
    assert_eq!(outcome.verdict, Verdict::Error);
    assert_eq!(outcome.exit_code(), 3);
    assert!(
        outcome.error.as_deref().unwrap().contains("no leader"),
        "{outcome:?}"
    );
    let results_json: JsonV =
        serde_json::from_slice(&std::fs::read(outcome.run_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results_json["verdict"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_still_heals_and_judges() {
    let results = tempfile::tempdir().unwrap();
    let cluster = start_cluster(3, false).await;
    let mut config = short_config(results.path(), Workload::Kv, vec![FaultKind::Kill], 2);
    config.time_limit_ms = 60_000;
    config.nemesis_interval_ms = 200;
    let (tx, rx) = watch::channel(false);
    let started = std::time::Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        tx.send(true).unwrap();
        tx
    });
    let outcome = run_with_cluster(config, cluster.clone(), rx).await.unwrap();
    let _tx = canceller.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cancel did not stop the run"
    );
    let x = outcome.exercised.as_ref().unwrap();
    assert!(x.cancelled);
    assert_eq!(x.final_reads_ok, 0, "final reads are skipped on cancel");
    assert_ne!(outcome.verdict, Verdict::Error, "{}", outcome.summary());
    for n in &cluster.world.nodes {
        assert!(
            !n.killed.load(Ordering::SeqCst),
            "a killed node was left down"
        );
    }
}
