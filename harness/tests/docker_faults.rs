//! Integration tests of the process and packet faults against real containers, driven
//! through the `Nemesis` the way a run drives them: a paused node stops answering and
//! answers again after the heal; a netem delay slows round trips to the node and clearing it
//! restores them (or, on a kernel without sch_netem, the fault is refused as unsupported and
//! nothing is left behind).
//!
//! Each test prints "skipping: ..." and returns when Docker is unreachable or the base image
//! cannot be built here. Nodes run etcd from the base image as a stand-in HTTP server. Each
//! test creates and tears down only its own run (a fresh run id), so other runs are safe.

use std::sync::Arc;

use faultline::docker::{new_run_id, DockerCluster, DockerClusterConfig};
use faultline_nemeses::nemesis::ActiveFault;
use faultline_nemeses::{Cluster, ClusterError, FaultKind, Nemesis, NetemSpec, NodeId};

mod common;
use common::{base_image_or_skip, bounded, docker_or_skip, etcd_program};

/// One request's time budget in the probes below; a paused node never answers within it.
const PROBE_TIMEOUT_S: u64 = 3;
/// Round trips per measurement; the median is compared, so one slow exec does not decide.
const SAMPLES: usize = 5;

/// A started cluster of `nodes` etcd nodes, or None when the test must skip.
async fn cluster_or_skip(nodes: u32) -> Option<Arc<DockerCluster>> {
    let api = docker_or_skip().await?;
    let image = base_image_or_skip(&api).await?;
    let config = DockerClusterConfig {
        run_id: new_run_id(),
        image,
        nodes,
        program: etcd_program(),
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

#[tokio::test]
async fn netem_delay_slows_round_trips_and_clear_restores_them() {
    bounded(async {
        let Some(cluster) = cluster_or_skip(2).await else {
            return;
        };
        let (n1, n2) = (NodeId(1), NodeId(2));
        let before = median_request_ms(&cluster, n2, n1)
            .await
            .expect("n1 answers");
        assert!(before < 50, "healthy round trip took {before} ms");

        match cluster.netem(n1, &NetemSpec::delay(200)).await {
            Err(ClusterError::Unsupported { reason, .. }) => {
                // Refused cleanly: clearing and healing still work, nothing was changed,
                // and the nemesis reports the kind as unsupported without tracking a fault.
                cluster.clear_netem(n1).await.expect("clear is a no-op");
                cluster.heal().await.expect("heal");
                let mut nemesis = Nemesis::new(cluster.clone(), None, 1);
                let err = nemesis.start(FaultKind::Netem).await.expect_err("refused");
                assert!(matches!(err, ClusterError::Unsupported { .. }), "{err}");
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
        let ActiveFault::Netem { node, spec } = &fault else {
            panic!("not netem: {fault}");
        };
        eprintln!("nemesis applied {fault}");
        assert!(spec.delay_ms >= 50);
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
