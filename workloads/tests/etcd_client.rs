//! `EtcdClient` against a real single-member etcd on loopback (the host's `etcd` binary,
//! Debian's etcd-server; CI installs it). Each test skips, printing why, when no etcd binary
//! is on the PATH, and fails instead under `FAULTLINE_REQUIRE=etcd`.

// The harness tests' prerequisite rules, shared as one file.
#[path = "../../harness/tests/support/prereq.rs"]
#[allow(dead_code)]
mod prereq;

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use faultline_checker::{EventType, Value};
use faultline_workloads::{Client, Completion, EtcdClient, EtcdOptions, Fencing, Request};
use tokio::process::{Child, Command};

const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running etcd member, killed on drop.
struct Etcd {
    _child: Child,
    _dir: tempfile::TempDir,
    url: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts etcd on free loopback ports, or returns None when there is none (and it is not
/// required).
async fn etcd() -> Option<Etcd> {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("no etcd binary on the PATH ({e}; apt-get install etcd-server)"));
    prereq::check(prereq::ETCD, found)?;
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args(["--name", "t1", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("t1={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start etcd");
    let e = Etcd {
        _child: child,
        _dir: dir,
        url,
    };
    let c = EtcdClient::new(&[&e.url], EtcdOptions::default()).unwrap();
    for _ in 0..100 {
        if c.leader().await.is_some() {
            return Some(e);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("etcd did not elect itself within 10 s");
}

async fn call(c: &EtcdClient, process: u64, r: Request) -> Completion {
    c.call(process, &r, OP_TIMEOUT).await
}

fn read(key: &str) -> Request {
    Request::Read { key: key.into() }
}

fn acquire(lock: &str, ttl_ms: u64) -> Request {
    Request::Acquire {
        lock: lock.into(),
        owner: "t".into(),
        ttl_ms,
    }
}

fn fenced(key: &str, token: i64, value: i64) -> Request {
    Request::FencedWrite {
        key: key.into(),
        token,
        value,
    }
}

#[tokio::test]
async fn register_ops_map_onto_the_kv_api() {
    let Some(e) = etcd().await else { return };
    for serializable in [false, true] {
        let c = EtcdClient::new(
            &[&e.url],
            EtcdOptions {
                serializable,
                ..EtcdOptions::default()
            },
        )
        .unwrap();
        let key = format!("r-{serializable}");
        assert_eq!(call(&c, 0, read(&key)).await, Completion::ok(Value::Null));
        let w = Request::Write {
            key: key.clone(),
            value: 7,
        };
        assert_eq!(call(&c, 0, w).await.kind, EventType::Ok);
        assert_eq!(call(&c, 1, read(&key)).await, Completion::ok(7.into()));
        let cas = |from, to| Request::Cas {
            key: key.clone(),
            from,
            to,
        };
        let miss = call(&c, 0, cas(3, 9)).await;
        assert_eq!(
            (miss.kind, miss.error.as_deref()),
            (EventType::Fail, Some("cas-failed"))
        );
        assert_eq!(call(&c, 0, cas(7, 9)).await.kind, EventType::Ok);
        assert_eq!(call(&c, 2, read(&key)).await, Completion::ok(9.into()));
    }
    let c = EtcdClient::new(&[&e.url], EtcdOptions::default()).unwrap();
    assert_eq!(c.leader().await, Some(0));
}

#[tokio::test]
async fn lock_tokens_are_create_revisions_and_fence_writes() {
    let Some(e) = etcd().await else { return };
    let c = EtcdClient::new(&[&e.url], EtcdOptions::default()).unwrap();
    let a = call(&c, 0, acquire("l0", 10_000)).await;
    assert_eq!(a.kind, EventType::Ok, "{a:?}");
    let lease = a.lease.clone().unwrap();
    let t1 = lease.token;
    assert_eq!(a.value, Value::Int(t1));
    let held = call(&c, 1, acquire("l0", 10_000)).await;
    assert_eq!(
        (held.kind, held.error.as_deref()),
        (EventType::Fail, Some("lock-held"))
    );
    assert_eq!(call(&c, 0, fenced("l0", t1, 1)).await.kind, EventType::Ok);
    assert_eq!(call(&c, 2, read("l0")).await, Completion::ok(1.into()));
    let release = Request::Release {
        lock: "l0".into(),
        token: t1,
        lease_id: lease.lease_id,
    };
    assert_eq!(call(&c, 0, release.clone()).await.kind, EventType::Ok);
    // Released: a second release proves nothing and fails.
    assert_eq!(
        call(&c, 0, release).await.error.as_deref(),
        Some("not-held")
    );

    let b = call(&c, 1, acquire("l0", 10_000)).await;
    let t2 = b.lease.unwrap().token;
    assert!(t2 > t1, "tokens grow: {t1} then {t2}");
    let stale = call(&c, 0, fenced("l0", t1, 2)).await;
    assert_eq!(
        (stale.kind, stale.error.as_deref()),
        (EventType::Fail, Some("stale-token"))
    );
    assert_eq!(call(&c, 1, fenced("l0", t2, 3)).await.kind, EventType::Ok);
    // Unfenced, the old holder's write lands over the new holder's.
    let unfenced = EtcdClient::new(
        &[&e.url],
        EtcdOptions {
            fencing: Fencing::None,
            ..EtcdOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        call(&unfenced, 0, fenced("l0", t1, 4)).await.kind,
        EventType::Ok
    );
    assert_eq!(call(&c, 2, read("l0")).await, Completion::ok(4.into()));
}

#[tokio::test]
async fn an_expired_lease_loses_the_lock() {
    let Some(e) = etcd().await else { return };
    let c = EtcdClient::new(&[&e.url], EtcdOptions::default()).unwrap();
    let a = call(&c, 0, acquire("l1", 1_000)).await;
    let t1 = a.lease.unwrap().token;
    // etcd's minimum TTL here is 2 s (1.5 election timeouts, rounded up).
    let mut reacquired = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let b = call(&c, 1, acquire("l1", 10_000)).await;
        if b.kind == EventType::Ok {
            reacquired = b.lease;
            break;
        }
    }
    let t2 = reacquired.expect("lease expired within 10 s").token;
    assert!(t2 > t1);
    assert_eq!(
        call(&c, 0, fenced("l1", t1, 5)).await.error.as_deref(),
        Some("stale-token")
    );
}

#[tokio::test]
async fn refused_connections_move_on_and_silence_is_unknown() {
    let Some(e) = etcd().await else { return };
    // Nothing listens on a fresh free port: connection refused, nothing sent.
    let dead = format!("127.0.0.1:{}", free_port());
    let c = EtcdClient::new(&[dead.as_str(), e.url.as_str()], EtcdOptions::default()).unwrap();
    let w = Request::Write {
        key: "m".into(),
        value: 1,
    };
    assert_eq!(call(&c, 0, w.clone()).await.kind, EventType::Ok);
    // A listener that accepts and never answers: the write may have happened.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            conns.push(s);
        }
    });
    let c = EtcdClient::new(&[addr.as_str()], EtcdOptions::default()).unwrap();
    let short = Duration::from_millis(300);
    let info = c.call(0, &w, short).await;
    assert_eq!(
        (info.kind, info.error.as_deref()),
        (EventType::Info, Some("timeout"))
    );
    assert_eq!(c.call(0, &read("m"), short).await.kind, EventType::Fail);
    hold.abort();
}
