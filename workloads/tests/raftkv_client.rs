//! The raftkv client and runner against a small in-process imitation of raftkv's HTTP API
//! on loopback: one shared store, several "nodes" (ports), a leader that can move, nodes
//! that stall (to force timeouts) and nodes that are down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline_checker::{Event, EventType, History, Process, Value};
use faultline_workloads::runner::FinalReads;
use faultline_workloads::{
    Client, KeySpace, RaftKvClient, Recorder, Request, Runner, RunnerConfig, Workload,
};
use serde_json::{json, Value as JsonV};
use tokio::sync::watch;

#[derive(Default)]
struct Store {
    kv: HashMap<String, i64>,
    /// Highest fencing token accepted per key.
    fence: HashMap<String, i64>,
    /// lock -> (token, lease_id)
    locks: HashMap<String, (i64, i64)>,
    next_token: i64,
    /// Every mutation applied, to check that refused requests changed nothing.
    applied: usize,
}

struct Cluster {
    store: Mutex<Store>,
    leader: AtomicUsize,
    addrs: Mutex<Vec<String>>,
    /// Nodes that stall every request for `STALL`.
    stalled: Vec<AtomicBool>,
    /// When set, nodes answer not-leader without a hint, whoever they are.
    leaderless: AtomicBool,
    /// When set, the leader answers writes with a 504 `timeout` after applying them.
    timeout_after_apply: AtomicBool,
}

const STALL: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct NodeState {
    id: usize,
    cluster: Arc<Cluster>,
}

fn err(status: StatusCode, body: JsonV) -> Response {
    (status, Json(body)).into_response()
}

impl NodeState {
    /// The common preamble: stall, or refuse when not the leader.
    async fn gate(&self) -> Option<Response> {
        if self.cluster.stalled[self.id].load(Ordering::SeqCst) {
            tokio::time::sleep(STALL).await;
        }
        if self.cluster.leaderless.load(Ordering::SeqCst) {
            return Some(err(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "not-leader", "leader": null}),
            ));
        }
        let leader = self.cluster.leader.load(Ordering::SeqCst);
        if leader != self.id {
            // raftkv names the leader by raft id (1-based) and its peer address, which
            // need not be reachable from the client: give a wrong one to prove the id wins.
            return Some(err(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "not-leader", "leader": leader + 1, "leader_addr": "10.9.9.9:1"}),
            ));
        }
        None
    }

    fn after_write(&self) -> Response {
        if self.cluster.timeout_after_apply.load(Ordering::SeqCst) {
            return err(StatusCode::GATEWAY_TIMEOUT, json!({"error": "timeout"}));
        }
        Json(json!({})).into_response()
    }
}

async fn read(State(n): State<NodeState>, Path(key): Path<String>) -> Response {
    if let Some(r) = n.gate().await {
        return r;
    }
    let v = n
        .cluster
        .store
        .lock()
        .unwrap()
        .kv
        .get(&key)
        .map(i64::to_string);
    Json(json!({ "key": key, "value": v })).into_response()
}

async fn write(
    State(n): State<NodeState>,
    Path(key): Path<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = n.gate().await {
        return r;
    }
    let value: i64 = b["value"].as_str().unwrap().parse().unwrap();
    {
        let mut s = n.cluster.store.lock().unwrap();
        if let Some(token) = b.get("token").and_then(JsonV::as_i64) {
            let max = s.fence.get(&key).copied().unwrap_or(i64::MIN);
            if token < max {
                return err(
                    StatusCode::CONFLICT,
                    json!({"error": "stale-token", "max": max}),
                );
            }
            s.fence.insert(key.clone(), token);
        }
        s.kv.insert(key, value);
        s.applied += 1;
    }
    n.after_write()
}

async fn cas(
    State(n): State<NodeState>,
    Path(key): Path<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = n.gate().await {
        return r;
    }
    let mut s = n.cluster.store.lock().unwrap();
    let cur = s.kv.get(&key).copied();
    if cur.map(|c| c.to_string()).as_deref() != b["from"].as_str() {
        return err(
            StatusCode::CONFLICT,
            json!({"error": "cas-failed", "current": cur}),
        );
    }
    s.kv.insert(key, b["to"].as_str().unwrap().parse().unwrap());
    s.applied += 1;
    drop(s);
    n.after_write()
}

async fn acquire(
    State(n): State<NodeState>,
    Path(name): Path<String>,
    Json(_b): Json<JsonV>,
) -> Response {
    if let Some(r) = n.gate().await {
        return r;
    }
    let mut s = n.cluster.store.lock().unwrap();
    if s.locks.contains_key(&name) {
        return err(StatusCode::CONFLICT, json!({"error": "lock-held"}));
    }
    s.next_token += 1;
    let token = s.next_token;
    s.locks.insert(name, (token, token + 1000));
    s.applied += 1;
    Json(json!({"token": token, "lease_id": token + 1000, "expires_at_ms": 0})).into_response()
}

async fn release(
    State(n): State<NodeState>,
    Path(name): Path<String>,
    Json(b): Json<JsonV>,
) -> Response {
    if let Some(r) = n.gate().await {
        return r;
    }
    let mut s = n.cluster.store.lock().unwrap();
    match s.locks.get(&name) {
        Some(&(_, lease)) if Some(lease) == b["lease_id"].as_i64() && b.get("token").is_none() => {
            s.locks.remove(&name);
            s.applied += 1;
            Json(json!({})).into_response()
        }
        _ => err(StatusCode::CONFLICT, json!({"error": "not-held"})),
    }
}

async fn status(State(n): State<NodeState>) -> Response {
    let leader = n.cluster.leader.load(Ordering::SeqCst);
    let role = if leader == n.id { "leader" } else { "follower" };
    Json(json!({"id": n.id + 1, "role": role, "term": 1, "leader": leader + 1})).into_response()
}

/// Starts `n` nodes on loopback; returns the cluster and their addresses.
async fn start(n: usize) -> (Arc<Cluster>, Vec<String>) {
    let cluster = Arc::new(Cluster {
        store: Mutex::new(Store::default()),
        leader: AtomicUsize::new(0),
        addrs: Mutex::new(Vec::new()),
        stalled: (0..n).map(|_| AtomicBool::new(false)).collect(),
        leaderless: AtomicBool::new(false),
        timeout_after_apply: AtomicBool::new(false),
    });
    let mut addrs = Vec::new();
    for id in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap().to_string());
        let app = Router::new()
            .route("/kv/{key}", get(read).put(write))
            .route("/kv/{key}/cas", post(cas))
            .route("/lock/{name}/acquire", post(acquire))
            .route("/lock/{name}/release", post(release))
            .route("/status", get(status))
            .with_state(NodeState {
                id,
                cluster: cluster.clone(),
            });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
    }
    *cluster.addrs.lock().unwrap() = addrs.clone();
    (cluster, addrs)
}

/// An address nothing listens on.
async fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

const T: Duration = Duration::from_millis(800);

fn write_req(key: &str, value: i64) -> Request {
    Request::Write {
        key: key.into(),
        value,
    }
}

#[tokio::test]
async fn follows_the_leader_hint_and_reads_back() {
    let (cluster, addrs) = start(3).await;
    cluster.leader.store(2, Ordering::SeqCst);
    let c = RaftKvClient::new(&addrs).unwrap();
    // Process 0 is bound to node 0, a follower: the hint takes it to node 2.
    let w = c.call(0, &write_req("k", 7), T).await;
    assert_eq!(w.kind, EventType::Ok, "{w:?}");
    let r = c.call(1, &Request::Read { key: "k".into() }, T).await;
    assert_eq!((r.kind, r.value), (EventType::Ok, Value::Int(7)));
    let missing = c.call(1, &Request::Read { key: "nope".into() }, T).await;
    assert_eq!((missing.kind, missing.value), (EventType::Ok, Value::Null));
    assert_eq!(c.leader().await, Some(2));
}

#[tokio::test]
async fn not_leader_everywhere_is_a_fail_and_applies_nothing() {
    let (cluster, addrs) = start(3).await;
    cluster.leaderless.store(true, Ordering::SeqCst);
    let c = RaftKvClient::new(&addrs).unwrap();
    let w = c.call(0, &write_req("k", 1), T).await;
    assert_eq!(w.kind, EventType::Fail);
    assert_eq!(w.error.as_deref(), Some("not-leader"));
    assert_eq!(cluster.store.lock().unwrap().applied, 0);
    assert_eq!(c.leader().await, Some(0), "status still names node 0");
}

#[tokio::test]
async fn a_stalled_write_is_info_and_a_stalled_read_is_fail() {
    let (cluster, addrs) = start(1).await;
    cluster.stalled[0].store(true, Ordering::SeqCst);
    let c = RaftKvClient::new(&addrs).unwrap();
    let started = Instant::now();
    let w = c
        .call(0, &write_req("k", 1), Duration::from_millis(300))
        .await;
    assert_eq!(w.kind, EventType::Info, "{w:?}");
    assert_eq!(w.error.as_deref(), Some("timeout"));
    assert!(started.elapsed() < Duration::from_millis(1_000));
    let r = c
        .call(
            0,
            &Request::Read { key: "k".into() },
            Duration::from_millis(300),
        )
        .await;
    assert_eq!(r.kind, EventType::Fail);
    assert_eq!(r.error.as_deref(), Some("timeout"));
}

#[tokio::test]
async fn a_redirect_then_timeout_is_still_info() {
    // The first attempt is refused (not applied), the retry at the leader times out: the
    // write may have happened, so info, never fail.
    let (cluster, addrs) = start(2).await;
    cluster.leader.store(1, Ordering::SeqCst);
    cluster.stalled[1].store(true, Ordering::SeqCst);
    let c = RaftKvClient::new(&addrs).unwrap();
    let w = c
        .call(0, &write_req("k", 1), Duration::from_millis(300))
        .await;
    assert_eq!(w.kind, EventType::Info, "{w:?}");
}

#[tokio::test]
async fn definite_rejections_are_fails() {
    let (cluster, addrs) = start(1).await;
    let c = RaftKvClient::new(&addrs).unwrap();
    assert_eq!(c.call(0, &write_req("k", 1), T).await.kind, EventType::Ok);
    let bad = c
        .call(
            0,
            &Request::Cas {
                key: "k".into(),
                from: 5,
                to: 6,
            },
            T,
        )
        .await;
    assert_eq!(
        (bad.kind, bad.error.as_deref()),
        (EventType::Fail, Some("cas-failed"))
    );
    assert_eq!(bad.value, Value::List(vec![5.into(), 6.into()]));
    let good = c
        .call(
            0,
            &Request::Cas {
                key: "k".into(),
                from: 1,
                to: 6,
            },
            T,
        )
        .await;
    assert_eq!(good.kind, EventType::Ok);

    let acq = Request::Acquire {
        lock: "l0".into(),
        owner: "p0".into(),
        ttl_ms: 1000,
    };
    let a = c.call(0, &acq, T).await;
    assert_eq!((a.kind, a.value.clone()), (EventType::Ok, Value::Int(1)));
    let lease = a.lease.unwrap();
    assert_eq!(lease.lease_id, 1001);
    let held = c.call(1, &acq, T).await;
    assert_eq!(
        (held.kind, held.error.as_deref()),
        (EventType::Fail, Some("lock-held"))
    );

    let fenced = |token, value| Request::FencedWrite {
        key: "res".into(),
        token,
        value,
    };
    assert_eq!(c.call(0, &fenced(5, 10), T).await.kind, EventType::Ok);
    let stale = c.call(0, &fenced(4, 11), T).await;
    assert_eq!(
        (stale.kind, stale.error.as_deref()),
        (EventType::Fail, Some("stale-token"))
    );
    assert_eq!(cluster.store.lock().unwrap().kv["res"], 10);

    let rel = Request::Release {
        lock: "l0".into(),
        token: 1,
        lease_id: lease.lease_id,
    };
    assert_eq!(c.call(0, &rel, T).await.kind, EventType::Ok);
    let again = c.call(0, &rel, T).await;
    assert_eq!(
        (again.kind, again.error.as_deref()),
        (EventType::Fail, Some("not-held"))
    );
}

#[tokio::test]
async fn a_server_side_timeout_is_info() {
    let (cluster, addrs) = start(1).await;
    cluster.timeout_after_apply.store(true, Ordering::SeqCst);
    let c = RaftKvClient::new(&addrs).unwrap();
    let w = c.call(0, &write_req("k", 3), T).await;
    assert_eq!(
        (w.kind, w.error.as_deref()),
        (EventType::Info, Some("timeout"))
    );
    assert_eq!(cluster.store.lock().unwrap().kv["k"], 3, "it did apply");
}

#[tokio::test]
async fn a_down_node_is_skipped_and_all_down_is_a_fail() {
    let (_cluster, addrs) = start(1).await;
    let dead = dead_addr().await;
    let c = RaftKvClient::new(&[dead.clone(), addrs[0].clone()]).unwrap();
    // Process 0 is bound to the dead node; the request never left, so it may move on.
    let w = c.call(0, &write_req("k", 1), T).await;
    assert_eq!(w.kind, EventType::Ok, "{w:?}");
    let all_dead = RaftKvClient::new(&[dead]).unwrap();
    let f = all_dead.call(0, &write_req("k", 2), T).await;
    assert_eq!(
        (f.kind, f.error.as_deref()),
        (EventType::Fail, Some("unavailable"))
    );
}

fn read_history(path: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn runner_records_paired_ops_and_moves_on_after_info() {
    let (cluster, addrs) = start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let recorder = Recorder::create(&path, Instant::now()).unwrap();
    let client = Arc::new(RaftKvClient::new(&addrs).unwrap());
    let keys = KeySpace::new(Workload::Register);
    let config = RunnerConfig {
        concurrency: 4,
        rate_per_s: 400.0,
        op_timeout: Duration::from_millis(150),
        seed: 11,
    };
    let runner = Runner::new(client, keys, recorder.handle(), config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let cl = cluster.clone();
    let faults = tokio::spawn(async move {
        // Stall the leader for a while: writes bound for it time out (info).
        tokio::time::sleep(Duration::from_millis(150)).await;
        cl.stalled[0].store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        cl.stalled[0].store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop_tx.send(true).unwrap();
    });
    let report = runner.run(stop_rx).await;
    faults.await.unwrap();
    let FinalReads { read, unread } = runner
        .final_reads(report.next_process, Duration::from_secs(5))
        .await;
    assert!(unread.is_empty(), "{unread:?}");
    assert!(!read.is_empty());
    assert_eq!(
        recorder.close().await.unwrap() as usize,
        read_history(&path).len()
    );

    let events = read_history(&path);
    let history = History::from_events(events.clone());
    let ops = history.ops().unwrap();
    assert!(report.ops >= 50, "{report:?}");
    // Every op completed (stopping waits for in-flight requests).
    assert!(ops.iter().all(|o| o.complete.is_some()));
    // A process that got info never invokes again.
    let mut infos = std::collections::HashSet::new();
    for op in &ops {
        assert!(
            !infos.contains(&op.process),
            "process {} reused after info",
            op.process
        );
        if op.outcome == faultline_checker::Outcome::Info {
            infos.insert(op.process);
        }
    }
    assert!(!infos.is_empty(), "the stall must have produced info ops");
    // Final reads are the last ops, one per key, by fresh processes.
    let last: Vec<_> = ops.iter().rev().take(read.len()).collect();
    assert!(last
        .iter()
        .all(|o| o.f == "read" && o.process >= report.next_process));
    // Final read values match the store.
    let store = cluster.store.lock().unwrap();
    for op in last {
        if op.outcome == faultline_checker::Outcome::Ok {
            let want = store.kv.get(op.key.as_deref().unwrap()).copied();
            assert_eq!(op.output, want.map(Value::Int).unwrap_or(Value::Null));
        }
    }
    assert!(events.iter().all(|e| e.process != Process::Nemesis));
}
