//! HTTP API behaviour of real `raftkv` processes: forwarding from followers, 307
//! redirects with `--no-forward`, and the JSON error kinds clients depend on.

mod common;

use std::time::Duration;

use common::{client, get, put, wait_leader, Cluster};
use serde_json::{json, Value};

async fn post(c: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_forwards_and_errors_have_kinds() {
    let cluster = Cluster::start(3, &[]);
    let addrs: Vec<String> = cluster.procs.iter().map(|p| p.addr.clone()).collect();
    let c = client();
    let (leader, _) = wait_leader(&c, &addrs, Duration::from_secs(10)).await;
    let follower = addrs[(leader % 3) as usize].clone();

    // Writes and reads through a follower are forwarded to the leader.
    put(&c, &follower, "k", "1")
        .await
        .expect("put via follower");
    assert_eq!(get(&c, &follower, "k").await, Ok(Some("1".into())));
    assert_eq!(get(&c, &follower, "missing").await, Ok(None));

    // CAS failure reports the current value; CAS from null means "absent".
    let (s, b) = post(
        &c,
        format!("http://{follower}/kv/k/cas"),
        json!({"from": "0", "to": "2"}),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str(), b["current"].as_str()),
        (409, Some("cas-failed"), Some("1"))
    );
    let (s, b) = post(
        &c,
        format!("http://{follower}/kv/new/cas"),
        json!({"from": null, "to": "x"}),
    )
    .await;
    assert_eq!((s, &b["ok"]), (200, &json!(true)));

    // Bad requests are rejected before reaching the log.
    let r = c
        .put(format!("http://{follower}/kv/k"))
        .body("not json")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"], "bad-request");

    // Locks: grant, held, fenced writes, keepalive and release by lease id.
    let (s, g) = post(
        &c,
        format!("http://{follower}/lock/L/acquire"),
        json!({"ttl_ms": 30000, "owner": "a"}),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    let (token, lease) = (
        g["token"].as_u64().unwrap(),
        g["lease_id"].as_u64().unwrap(),
    );
    let (s, b) = post(
        &c,
        format!("http://{follower}/lock/L/acquire"),
        json!({"ttl_ms": 30000, "owner": "b"}),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("lock-held")));
    let fenced = |t: u64| json!({"value": format!("by-{t}"), "token": t});
    let r = c
        .put(format!("http://{follower}/kv/res"))
        .json(&fenced(token + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .put(format!("http://{follower}/kv/res"))
        .json(&fenced(token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "stale-token");
    let (s, k) = post(
        &c,
        format!("http://{follower}/lock/L/keepalive"),
        json!({"lease_id": lease}),
    )
    .await;
    assert_eq!((s, k["token"].as_u64()), (200, Some(token)));
    let (s, b) = post(
        &c,
        format!("http://{follower}/lock/L/release"),
        json!({"lease_id": lease + 1000}),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (409, Some("not-held")));
    let (s, _) = post(
        &c,
        format!("http://{follower}/lock/L/release"),
        json!({"lease_id": lease}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, g2) = post(
        &c,
        format!("http://{follower}/lock/L/acquire"),
        json!({"ttl_ms": 1000, "owner": "b"}),
    )
    .await;
    assert_eq!(s, 200);
    assert!(g2["token"].as_u64().unwrap() > token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_forward_redirects_to_the_leader() {
    let cluster = Cluster::start(3, &["--no-forward"]);
    let addrs: Vec<String> = cluster.procs.iter().map(|p| p.addr.clone()).collect();
    let c = client();
    let (leader, _) = wait_leader(&c, &addrs, Duration::from_secs(10)).await;
    let leader_addr = addrs[(leader - 1) as usize].clone();
    let follower = addrs[(leader % 3) as usize].clone();
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let r = no_redirect
        .put(format!("http://{follower}/kv/x"))
        .json(&json!({"value": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("http://{leader_addr}/kv/x"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["error"].as_str(), b["leader"].as_u64()),
        (Some("not-leader"), Some(leader))
    );
    // A client that follows redirects (the default) just works.
    put(&c, &follower, "x", "2")
        .await
        .expect("put via redirect");
    assert_eq!(get(&c, &follower, "x").await, Ok(Some("2".into())));
}
