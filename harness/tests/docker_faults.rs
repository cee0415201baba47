//! Integration tests of the process and packet faults against real containers, driven
//! through the `Nemesis` the way a run drives them: a paused node stops answering and
//! answers again after the heal; a netem delay slows round trips to the node and clearing it
//! restores them (or, on a kernel without sch_netem, the delay is refused as unsupported
//! naming sch_netem, and the nemesis falls back to loss and rate faults); on a raftkv
//! cluster, a per-link loss or rate limit from the leader to one follower holds back that
//! follower only, and clearing it lets the follower catch up.
//!
//! Each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when Docker is
//! unreachable or the base image (or, for raftkv, its binary) cannot be had here. The etcd tests use etcd from the base
//! image as a stand-in HTTP server. Each test creates and tears down only its own run (a
//! fresh run id), so other runs are safe; tests in this binary run one at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::backend::docker::packet::LOSS_CHAIN;
use faultline::backend::docker::{new_run_id, DockerCluster, DockerClusterConfig, PeerLinks};
use faultline::target::{Target, TargetLeader};
use faultline_checker::EventType;
use faultline_nemeses::{
    ActiveFault, Cluster, ClusterError, FaultKind, Figure8Stage, Nemesis, NetemSpec, NodeId,
    PacketFault,
};
use faultline_workloads::raftkv::RaftKvClient;
use faultline_workloads::{Client, Request};

mod support;
use support::docker::{base_image, docker, raftkv_cluster, standalone_etcd, TEST_LIMIT};

/// Runs `test`, failing it past the Docker tests' limit.
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    support::bounded(TEST_LIMIT, test).await;
}

/// One request's time budget in the probes below; a paused node never answers within it.
const PROBE_TIMEOUT_S: u64 = 3;
/// Round trips per measurement; the median is compared, so one slow exec does not decide.
const SAMPLES: usize = 5;
/// How long a follower cut off by a packet fault is watched for progress it must not make.
const STALL_WATCH: Duration = Duration::from_secs(4);
/// How long a follower gets to catch up once its link is clear again.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(20);

/// One test at a time: they share two cores and the daemon.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A started cluster of `nodes` etcd nodes, or None when the test must skip.
async fn cluster_or_skip(nodes: u32) -> Option<Arc<DockerCluster>> {
    let api = docker().await?;
    let image = base_image(&api).await?;
    let config = DockerClusterConfig {
        run_id: new_run_id(),
        image,
        nodes,
        spec: standalone_etcd(),
        peer_links: PeerLinks::Direct,
        clock_faults: true,
    };
    let cluster = DockerCluster::create(api, &config)
        .await
        .expect("cluster starts");
    cluster.wait_listening(30_000).await.expect("nodes listen");
    Some(Arc::new(cluster))
}

/// Milliseconds for one HTTP request (connect, `GET /version`, first bytes of the answer)
/// from `from`'s network namespace to `to`, timed inside the namespace so the exec's own
/// overhead is not counted; None when no answer came within [`PROBE_TIMEOUT_S`].
async fn request_ms(cluster: &DockerCluster, from: NodeId, to: NodeId) -> Option<u64> {
    let addr = cluster.node(to).expect("node").client_addr.clone();
    let (ip, port) = addr.split_once(':').expect("ip:port");
    let script = format!(
        "s=$(date +%s%N); exec 3<>/dev/tcp/{ip}/{port}; \
         printf 'GET /version HTTP/1.0\\r\\n\\r\\n' >&3; \
         head -c 12 <&3 | grep -q '^HTTP/1' || exit 1; \
         e=$(date +%s%N); echo $(( (e - s) / 1000000 ))"
    );
    let timeout = PROBE_TIMEOUT_S.to_string();
    let out = cluster
        .exec_in_netns(from, &["timeout", &timeout, "bash", "-c", &script])
        .await
        .ok()?;
    out.trim().parse().ok()
}

/// Median of [`SAMPLES`] request times; None if any request went unanswered.
async fn median_request_ms(cluster: &DockerCluster, from: NodeId, to: NodeId) -> Option<u64> {
    let mut times = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        times.push(request_ms(cluster, from, to).await?);
    }
    times.sort_unstable();
    Some(times[SAMPLES / 2])
}

#[tokio::test]
async fn paused_node_does_not_answer_until_healed() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(cluster) = cluster_or_skip(3).await else {
            return;
        };
        let mut nemesis = Nemesis::new(cluster.clone(), None, 11);
        let fault = nemesis.start(FaultKind::Pause).await.expect("pause");
        let ActiveFault::Pause { node, leader } = fault else {
            panic!("not a pause: {fault}");
        };
        assert!(!leader, "no leader probe given");
        let other = cluster
            .nodes()
            .iter()
            .map(|n| n.id)
            .find(|&id| id != node)
            .expect("another node");
        // The namespace holder is not paused, so the kernel still accepts the connection;
        // the frozen server never answers the request.
        assert_eq!(
            request_ms(&cluster, other, node).await,
            None,
            "paused {node} answered"
        );
        let healthy = cluster
            .nodes()
            .iter()
            .map(|n| n.id)
            .find(|&id| id != node && id != other)
            .expect("a third node");
        assert!(
            request_ms(&cluster, other, healthy).await.is_some(),
            "unpaused {healthy} answers"
        );
        assert!(!nemesis.is_healed());

        let report = nemesis.heal_all().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.resumed, vec![node]);
        assert!(nemesis.is_healed());
        let ms = request_ms(&cluster, other, node).await;
        assert!(ms.is_some(), "resumed {node} answers");
        eprintln!("resumed {node} answered in {ms:?} ms");

        // Stop (rather than heal) resumes too.
        let fault = nemesis.start(FaultKind::Pause).await.expect("pause");
        nemesis.stop(&fault).await.expect("resume");
        assert!(nemesis.is_healed());
        cluster.teardown().await.expect("teardown");
    })
    .await;
}

/// Whether the node's namespace still has packet-fault state: a root netem or htb qdisc,
/// or a rule in the loss chain.
async fn has_packet_fault(cluster: &DockerCluster, node: NodeId) -> bool {
    let script = format!(
        "tc qdisc show | grep -E '^qdisc (netem|htb) '; \
         iptables -w -S {LOSS_CHAIN} 2>/dev/null | grep -e '-A '; true"
    );
    let out = cluster
        .exec_in_netns(node, &["sh", "-c", &script])
        .await
        .expect("inspect the namespace");
    !out.trim().is_empty()
}

#[tokio::test]
async fn netem_delay_slows_round_trips_and_clear_restores_them() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(cluster) = cluster_or_skip(2).await else {
            return;
        };
        let (n1, n2) = (NodeId(1), NodeId(2));
        let before = median_request_ms(&cluster, n2, n1)
            .await
            .expect("n1 answers");
        assert!(before < 50, "healthy round trip took {before} ms");

        let delay = PacketFault::node_wide(NetemSpec::delay(200));
        match cluster.netem(n1, &delay).await {
            Err(ClusterError::Unsupported { reason, .. }) => {
                // Refused cleanly, naming what is missing: nothing was changed, and
                // clearing and healing still work.
                assert!(reason.contains("sch_netem"), "{reason}");
                assert!(reason.starts_with("delay needs"), "{reason}");
                assert!(!has_packet_fault(&cluster, n1).await);
                cluster.clear_netem(n1).await.expect("clear is a no-op");
                cluster.heal().await.expect("heal");
                // The nemesis draws only what the kernel can do (loss, rate) instead of
                // skipping the kind, and its heal removes it.
                let mut nemesis = Nemesis::new(cluster.clone(), None, 1);
                for _ in 0..3 {
                    let fault = nemesis.start(FaultKind::Netem).await.expect("netem");
                    let ActiveFault::Netem { node, fault: pf } = &fault else {
                        panic!("not netem: {fault}");
                    };
                    eprintln!("nemesis applied {fault}");
                    assert_eq!(pf.spec.delay_ms, 0, "{fault}");
                    assert!(pf.spec.loss_pct > 0 || pf.spec.rate_kbit > 0, "{fault}");
                    assert!(
                        has_packet_fault(&cluster, *node).await,
                        "{fault} left no trace"
                    );
                    // A partition started and stopped meanwhile leaves it on.
                    let cut = nemesis
                        .start(FaultKind::Partition)
                        .await
                        .expect("partition");
                    nemesis.stop(&cut).await.expect("partition stopped");
                    assert!(
                        has_packet_fault(&cluster, *node).await,
                        "stopping {cut} cleared {fault}"
                    );
                    let report = nemesis.heal_all().await;
                    assert!(report.errors.is_empty(), "{:?}", report.errors);
                    assert_eq!(report.netem_cleared, vec![*node]);
                    assert!(
                        !has_packet_fault(&cluster, *node).await,
                        "{fault} not cleared"
                    );
                }
                assert!(nemesis.is_healed());
                assert!(median_request_ms(&cluster, n2, n1).await.is_some());
                cluster.teardown().await.expect("teardown");
                eprintln!("skipping the delay measurement: {reason}");
                return;
            }
            other => other.expect("netem delay"),
        }
        // Both the SYN-ACK and the answer leave n1 through the delayed interface.
        let slow = median_request_ms(&cluster, n2, n1)
            .await
            .expect("n1 answers");
        eprintln!("round trip n2 -> n1: {before} ms healthy, {slow} ms with 200 ms netem");
        assert!(slow > 150, "netem delay 200 ms: round trip only {slow} ms");
        cluster.clear_netem(n1).await.expect("clear");
        cluster.clear_netem(n1).await.expect("clear is idempotent");
        let after = median_request_ms(&cluster, n2, n1)
            .await
            .expect("n1 answers");
        assert!(after < 50, "after clear the round trip took {after} ms");

        // Through the nemesis: a random spec, then the heal clears it.
        let mut nemesis = Nemesis::new(cluster.clone(), None, 3);
        let fault = nemesis.start(FaultKind::Netem).await.expect("netem");
        let ActiveFault::Netem { node, fault: pf } = &fault else {
            panic!("not netem: {fault}");
        };
        eprintln!("nemesis applied {fault}");
        assert!(pf.spec.delay_ms >= 50);
        let report = nemesis.heal_all().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.netem_cleared, vec![*node]);
        let other = if *node == n1 { n2 } else { n1 };
        let healed = median_request_ms(&cluster, other, *node)
            .await
            .expect("answers");
        assert!(healed < 50, "after heal the round trip took {healed} ms");
        cluster.teardown().await.expect("teardown");
    })
    .await;
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// The node's `/status`, or None when it does not answer.
async fn status(
    c: &reqwest::Client,
    cluster: &DockerCluster,
    node: NodeId,
) -> Option<serde_json::Value> {
    let addr = &cluster.node(node).ok()?.client_addr;
    let r = c.get(format!("http://{addr}/status")).send().await.ok()?;
    r.json().await.ok()
}

async fn commit_index(c: &reqwest::Client, cluster: &DockerCluster, node: NodeId) -> u64 {
    let s = status(c, cluster, node).await.expect("status answers");
    s["commit_index"].as_u64().expect("commit_index")
}

/// The leader once one is known (polling for up to 20 s).
async fn leader(c: &reqwest::Client, cluster: &DockerCluster) -> NodeId {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for n in cluster.nodes() {
            if let Some(s) = status(c, cluster, n.id).await {
                if s["role"] == "leader" {
                    return n.id;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn put(c: &reqwest::Client, cluster: &DockerCluster, via: NodeId, key: &str, value: &str) {
    let addr = &cluster.node(via).expect("node").client_addr;
    let r = c
        .put(format!("http://{addr}/kv/{key}"))
        .json(&serde_json::json!({ "value": value }))
        .send()
        .await
        .expect("put answered");
    assert!(r.status().is_success(), "put {key}: {}", r.status());
}

/// Waits until `node`'s commit index reaches `index`; how long that took, or None if it
/// did not within `limit`.
async fn reaches(
    c: &reqwest::Client,
    cluster: &DockerCluster,
    node: NodeId,
    index: u64,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if commit_index(c, cluster, node).await >= index {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_link_packet_faults_hold_back_only_that_follower() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(cluster) = raftkv_cluster(3).await else {
            return;
        };
        let c = http();
        let l = leader(&c, &cluster).await;
        let followers: Vec<NodeId> = cluster
            .nodes()
            .iter()
            .map(|n| n.id)
            .filter(|&n| n != l)
            .collect();
        let (slow, healthy) = (followers[0], followers[1]);
        put(&c, &cluster, l, "warm", "up").await;
        let start = commit_index(&c, &cluster, l).await;
        for n in [slow, healthy] {
            assert!(
                reaches(&c, &cluster, n, start, CATCH_UP_LIMIT)
                    .await
                    .is_some(),
                "{n} did not catch up before the fault"
            );
        }

        // (1) Every packet from the leader to one follower lost.
        let loss = PacketFault::links(NetemSpec::loss(100), &[slow]);
        cluster.netem(l, &loss).await.expect("per-link loss");
        for i in 0..5 {
            put(&c, &cluster, l, &format!("k{i}"), "v").await;
        }
        let target = commit_index(&c, &cluster, l).await;
        assert!(target >= start + 5, "leader commit {target} from {start}");
        let healthy_took = reaches(&c, &cluster, healthy, target, CATCH_UP_LIMIT).await;
        assert!(healthy_took.is_some(), "{healthy} (no fault) fell behind");
        tokio::time::sleep(STALL_WATCH).await;
        let stuck = commit_index(&c, &cluster, slow).await;
        assert!(
            stuck < target,
            "{slow} reached {stuck} of {target} through 100% loss"
        );
        assert_eq!(leader(&c, &cluster).await, l, "the leader changed");
        cluster.clear_netem(l).await.expect("clear");
        assert!(
            !has_packet_fault(&cluster, l).await,
            "loss rules left behind"
        );
        let caught_up = reaches(&c, &cluster, slow, target, CATCH_UP_LIMIT).await;
        eprintln!(
            "100% loss {l}->{slow}: {healthy} reached {target} in {healthy_took:?}, {slow} \
             stuck at {stuck} for {STALL_WATCH:?}, caught up {caught_up:?} after clear"
        );
        assert!(
            caught_up.is_some(),
            "{slow} did not catch up after the clear"
        );

        // (2) The leader's link to that follower limited to 64 kbit/s: a 32 KiB value
        // needs over 4 s on it (and raftkv's 1 s peer timeout cuts every try short).
        let rate = PacketFault::links(NetemSpec::rate(64), &[slow]);
        cluster.netem(l, &rate).await.expect("per-link rate");
        let big = "x".repeat(32 * 1024);
        let put_started = Instant::now();
        put(&c, &cluster, l, "big", &big).await;
        let put_took = put_started.elapsed();
        let target = commit_index(&c, &cluster, l).await;
        let healthy_took = reaches(&c, &cluster, healthy, target, CATCH_UP_LIMIT).await;
        assert!(healthy_took.is_some(), "{healthy} (no fault) fell behind");
        let slow_during = reaches(&c, &cluster, slow, target, STALL_WATCH).await;
        assert_eq!(
            slow_during, None,
            "{slow} got 32 KiB through 64 kbit/s in {slow_during:?}"
        );
        // heal() clears packet faults too.
        cluster.heal().await.expect("heal");
        assert!(!has_packet_fault(&cluster, l).await, "qdisc left behind");
        let caught_up = reaches(&c, &cluster, slow, target, CATCH_UP_LIMIT).await;
        eprintln!(
            "64 kbit/s {l}->{slow}: put of 32 KiB took {put_took:?}, {healthy} had it in \
             {healthy_took:?}, {slow} not within {STALL_WATCH:?}, caught up {caught_up:?} \
             after heal"
        );
        assert!(
            caught_up.is_some(),
            "{slow} did not catch up after the heal"
        );
        assert!(
            put_took < Duration::from_secs(3),
            "the put waited on the slow link"
        );
        cluster.teardown().await.expect("teardown");
    })
    .await;
}

/// With peer traffic through the harness's link proxies, Docker nodes get per-link delay
/// without the kernel's `sch_netem`: the figure8 walk, which delays single links and
/// partitions the rest, runs its elections on five raftkv containers, and its stop
/// reunites them (all five agree on one commit index after a write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_links_give_docker_per_link_delay_for_figure8() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let Some(raftkv) = support::raftkv_binary() else {
            return;
        };
        let image = support::docker::node_image(&api, &raftkv).await;
        // As a run under this fault starts raftkv: one entry per append message.
        let spec = support::spec(Target::Raftkv, &[FaultKind::Figure8], &[]);
        let config = DockerClusterConfig {
            run_id: new_run_id(),
            image,
            nodes: 5,
            spec,
            peer_links: PeerLinks::Proxied,
            clock_faults: true,
        };
        let cluster = Arc::new(
            DockerCluster::create(api, &config)
                .await
                .expect("cluster starts"),
        );
        cluster.wait_listening(30_000).await.expect("nodes listen");
        assert!(cluster.proxied_links());
        let caps = cluster.packet_caps().await.expect("caps");
        assert!(caps.delay && caps.per_link, "{caps}");

        let addrs: Vec<String> = cluster
            .nodes()
            .iter()
            .map(|n| n.client_addr.clone())
            .collect();
        let client = Arc::new(RaftKvClient::new(&addrs).expect("client"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.leader().await.is_none() {
            assert!(Instant::now() < deadline, "no leader through the proxies");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let probe = TargetLeader {
            client: client.clone(),
            ids: cluster.nodes().iter().map(|n| n.id).collect(),
        };
        let mut nemesis = Nemesis::new(cluster.clone(), Some(Arc::new(probe)), 11);
        let fault = nemesis.start(FaultKind::Figure8).await.expect("figure8");
        eprintln!("fault: {fault}");
        let ActiveFault::Figure8 { reached, .. } = fault.clone() else {
            panic!("not a figure8 fault: {fault:?}");
        };
        assert!(
            reached >= Figure8Stage::UsurperElected,
            "the walk elected no usurper: {fault}"
        );
        nemesis.stop(&fault).await.expect("stop");
        assert!(nemesis.is_healed());

        // Reunited: a write commits, and every node catches up to one commit index.
        let write = Request::Write {
            key: "healed".into(),
            value: 1,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done = Client::call(client.as_ref(), 0, &write, Duration::from_secs(2)).await;
            if done.kind == EventType::Ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no write after the stop: {done:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let http = http();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut commits = Vec::new();
            for n in cluster.nodes() {
                if let Some(s) = status(&http, &cluster, n.id).await {
                    commits.push(s["commit_index"].as_u64().unwrap_or(0));
                }
            }
            if commits.len() == addrs.len() && commits.iter().all(|c| *c == commits[0]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the five do not agree after the stop: {commits:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        cluster.teardown().await.expect("teardown");
    })
    .await;
}
