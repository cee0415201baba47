//! Integration tests of the Docker backend against the real daemon: partitions block and heal
//! traffic, kill/start keep data and rules, pause freezes, logs are copied, and every form of
//! teardown (explicit, drop, stale cleanup after SIGKILL) leaves nothing behind.
//!
//! Each test skips, printing why, when Docker is unreachable or the base image cannot be
//! built here (not root), and fails instead under `FAULTLINE_REQUIRE=docker`. The nodes run
//! etcd from the base image as a stand-in TCP server, so these tests do not depend on
//! raftkv; `raftkv_cluster_starts` covers raftkv.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use faultline::backend::docker::cleanup::{list_run_owners, Owner};
use faultline::backend::docker::image::ensure_node_image;
use faultline::backend::docker::{
    cleanup_stale_runs, new_run_id, teardown_run, DockerApi, DockerCluster, DockerClusterConfig,
    PeerLinks,
};
use faultline::target::Target;
use faultline_nemeses::{Cluster, Grudge, NodeId};

mod support;
use support::docker::{base_image, docker, standalone_etcd, TEST_LIMIT};

/// One test at a time: two of them clean up dead runs, which would otherwise remove the
/// dead run another test is about to assert on; and the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn bounded<F: Future<Output = ()>>(test: F) {
    let _serial = SERIAL.lock().await;
    support::bounded(TEST_LIMIT, test).await;
}

/// Whether `from`'s network namespace can open a TCP connection to `to`'s client port.
async fn can_reach(cluster: &DockerCluster, from: NodeId, to: NodeId) -> bool {
    let target = cluster.node(to).expect("node").client_addr.clone();
    let (ip, port) = target.split_once(':').expect("ip:port");
    let probe = format!("timeout 2 bash -c 'echo > /dev/tcp/{ip}/{port}'");
    cluster
        .exec_in_netns(from, &["bash", "-c", &probe])
        .await
        .is_ok()
}

async fn host_can_connect(cluster: &DockerCluster, node: NodeId) -> bool {
    let addr = cluster.node(node).expect("node").client_addr.clone();
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

async fn objects_of_run(api: &DockerApi, run_id: &str) -> bool {
    list_run_owners(api)
        .await
        .expect("list owners")
        .contains_key(run_id)
}

#[tokio::test]
async fn partition_heal_kill_start_pause_logs_and_teardown() {
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let Some(image) = base_image(&api).await else {
            return;
        };
        let mut spec = standalone_etcd();
        spec.log_files = vec!["extra.log".into()];
        let config = DockerClusterConfig {
            run_id: new_run_id(),
            image,
            nodes: 3,
            spec,
            peer_links: PeerLinks::Direct,
            clock_faults: true,
        };
        let cluster = DockerCluster::create(api.clone(), &config)
            .await
            .expect("cluster starts");
        let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
        cluster.wait_listening(30_000).await.expect("nodes listen");
        assert_eq!(cluster.nodes().len(), 3);
        assert!(
            can_reach(&cluster, n1, n2).await,
            "healthy cluster: n1 -> n2"
        );

        // Isolate n2: both directions blocked, the rest untouched.
        let ids: Vec<NodeId> = cluster.nodes().iter().map(|n| n.id).collect();
        cluster
            .partition(&Grudge::isolate(&ids, n2))
            .await
            .expect("partition");
        assert!(!can_reach(&cluster, n1, n2).await, "n1 -> n2 blocked");
        assert!(!can_reach(&cluster, n2, n3).await, "n2 -> n3 blocked");
        assert!(can_reach(&cluster, n1, n3).await, "n1 -> n3 still open");
        assert!(
            host_can_connect(&cluster, n2).await,
            "host is not partitioned"
        );
        cluster.heal().await.expect("heal");
        assert!(can_reach(&cluster, n1, n2).await, "heal restores n1 -> n2");
        assert!(cluster.current_grudge().is_empty());

        // Kill n3: it stops serving; start brings it back on the same data volume.
        cluster
            .api()
            .exec(
                &cluster.member(n3).expect("n3").container,
                &["sh", "-c", "echo kept > /data/marker"],
            )
            .await
            .expect("write marker");
        cluster
            .partition(&Grudge::isolate(&ids, n3))
            .await
            .expect("partition n3");
        cluster.kill(n3).await.expect("kill");
        cluster.kill(n3).await.expect("kill is idempotent");
        assert!(!host_can_connect(&cluster, n3).await, "killed node refuses");
        cluster.start(n3).await.expect("start");
        cluster.start(n3).await.expect("start is idempotent");
        cluster.wait_listening(30_000).await.expect("n3 back");
        let marker = cluster
            .api()
            .exec(
                &cluster.member(n3).expect("n3").container,
                &["cat", "/data/marker"],
            )
            .await
            .expect("read marker");
        assert_eq!(marker, "kept", "data survives a restart");
        assert!(
            !can_reach(&cluster, n1, n3).await,
            "partition survives the node's restart"
        );
        cluster.heal().await.expect("heal");
        assert!(can_reach(&cluster, n1, n3).await);

        // Pause freezes the server container; resume thaws it. Both idempotent.
        let state = |c: String| {
            let api = api.clone();
            async move {
                let s = api
                    .docker()
                    .inspect_container(&c, None)
                    .await
                    .expect("inspect")
                    .state
                    .expect("state");
                s.paused.unwrap_or(false)
            }
        };
        let c1 = cluster.member(n1).expect("n1").container.clone();
        cluster.pause(n1).await.expect("pause");
        cluster.pause(n1).await.expect("pause twice");
        assert!(state(c1.clone()).await, "paused");
        // Rules live in the namespace holder, so partitions work on a paused node too.
        cluster
            .partition(&Grudge::isolate(&ids, n1))
            .await
            .expect("partition while paused");
        assert!(!can_reach(&cluster, n2, n1).await, "paused + partitioned");
        cluster.heal().await.expect("heal while paused");
        cluster.kill(n1).await.expect("kill a paused node");
        cluster.start(n1).await.expect("start it again");
        cluster.pause(n1).await.expect("pause");
        cluster.resume(n1).await.expect("resume");
        cluster.resume(n1).await.expect("resume twice");
        assert!(!state(c1.clone()).await, "resumed");

        // Logs land in the given folder: the output, and the log files the spec names.
        cluster
            .api()
            .exec(
                &c1,
                &[
                    "sh",
                    "-c",
                    "echo 'a line of its own' > /data/node/extra.log",
                ],
            )
            .await
            .expect("write a log file");
        let dir = tempfile::tempdir().expect("tempdir");
        let node_dir = dir.path().join("nodes").join("n1");
        cluster.logs(n1, &node_dir).await.expect("logs");
        let log = std::fs::read_to_string(node_dir.join("server.log")).expect("log file");
        assert!(log.contains("etcd"), "etcd's own log lines are copied");
        let extra = std::fs::read_to_string(node_dir.join("extra.log")).expect("extra log");
        assert_eq!(extra, "a line of its own\n");

        // Clock faults are refused, not faked.
        assert!(cluster.clock(n1, 1_000, 1.0).await.is_err());

        let removed = cluster.teardown().await.expect("teardown");
        assert_eq!(removed.containers.len(), 6, "{removed:?}");
        assert_eq!(removed.networks.len(), 1);
        assert_eq!(removed.volumes.len(), 3);
        assert!(!objects_of_run(&api, &config.run_id).await, "nothing left");
        assert!(cluster.teardown().await.expect("again").is_empty());
    })
    .await;
}

#[tokio::test]
async fn dropping_a_cluster_tears_it_down() {
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let Some(image) = base_image(&api).await else {
            return;
        };
        let config = DockerClusterConfig {
            run_id: new_run_id(),
            image,
            nodes: 1,
            spec: standalone_etcd(),
            peer_links: PeerLinks::Direct,
            clock_faults: true,
        };
        let cluster = DockerCluster::create(api.clone(), &config)
            .await
            .expect("cluster starts");
        assert!(objects_of_run(&api, &config.run_id).await);
        drop(cluster);
        assert!(
            !objects_of_run(&api, &config.run_id).await,
            "drop removed the run"
        );
    })
    .await;
}

#[tokio::test]
async fn bad_config_fails_before_creating_anything() {
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let mut config = DockerClusterConfig {
            run_id: new_run_id(),
            image: "faultline-no-such-image:0".into(),
            nodes: 3,
            spec: standalone_etcd(),
            peer_links: PeerLinks::Direct,
            clock_faults: true,
        };
        assert!(DockerCluster::create(api.clone(), &config).await.is_err());
        config.nodes = 0;
        assert!(DockerCluster::create(api.clone(), &config).await.is_err());
        config.run_id = "Bad Id".into();
        assert!(DockerCluster::create(api.clone(), &config).await.is_err());
        assert!(!objects_of_run(&api, &new_run_id()).await);
    })
    .await;
}

#[tokio::test]
async fn stale_cleanup_removes_dead_runs_and_keeps_live_ones() {
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let me = Owner::current();
        let dead = Owner {
            pid: u32::MAX - 1,
            ..me.clone()
        };
        let dead_run = new_run_id();
        let live_run = new_run_id();
        for (run, owner) in [(&dead_run, &dead), (&live_run, &me)] {
            let labels: HashMap<String, String> = owner.labels(run);
            api.docker()
                .create_volume(bollard::models::VolumeCreateRequest {
                    name: Some(format!("fl-{run}-test")),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await
                .expect("create volume");
        }
        let removed = cleanup_stale_runs(&api).await.expect("cleanup");
        assert!(removed.contains(&dead_run), "{removed:?}");
        assert!(!removed.contains(&live_run));
        assert!(!objects_of_run(&api, &dead_run).await);
        assert!(objects_of_run(&api, &live_run).await);
        teardown_run(&api, &live_run).await.expect("teardown");
        assert!(!objects_of_run(&api, &live_run).await);
    })
    .await;
}

/// Child half of `sigkilled_harness_leaves_nothing_after_next_cleanup`: only does anything
/// when that test starts this binary with FAULTLINE_SIGKILL_CHILD set.
#[tokio::test]
#[ignore = "started by sigkilled_harness_leaves_nothing_after_next_cleanup"]
async fn sigkill_child() {
    let Ok(run_id) = std::env::var("FAULTLINE_SIGKILL_CHILD") else {
        return;
    };
    let api = DockerApi::connect(10_000).await.expect("docker");
    let image = base_image(&api).await.expect("base image");
    let config = DockerClusterConfig {
        run_id: run_id.clone(),
        image,
        nodes: 2,
        spec: standalone_etcd(),
        peer_links: PeerLinks::Direct,
        clock_faults: true,
    };
    let _cluster = DockerCluster::create(api, &config).await.expect("cluster");
    println!("READY {run_id}");
    tokio::time::sleep(TEST_LIMIT).await;
}

#[tokio::test]
async fn sigkilled_harness_leaves_nothing_after_next_cleanup() {
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        // Build (or find) the image here so the child only starts containers.
        if base_image(&api).await.is_none() {
            return;
        }
        let run_id = new_run_id();
        let exe = std::env::current_exe().expect("test binary");
        let mut child = tokio::process::Command::new(exe)
            .args(["--ignored", "--exact", "sigkill_child", "--nocapture"])
            .env("FAULTLINE_SIGKILL_CHILD", &run_id)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        loop {
            let line = lines.next_line().await.expect("read").expect("child ready");
            if line.contains(&format!("READY {run_id}")) {
                break;
            }
        }
        assert!(objects_of_run(&api, &run_id).await, "child made a cluster");
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reaped");
        // The killed child had no chance to clean up.
        assert!(objects_of_run(&api, &run_id).await);
        let removed = cleanup_stale_runs(&api).await.expect("cleanup");
        assert!(removed.contains(&run_id), "{removed:?}");
        assert!(!objects_of_run(&api, &run_id).await, "nothing left");
    })
    .await;
}

#[tokio::test]
async fn raftkv_cluster_starts() {
    bounded(async {
        let Some(api) = docker().await else {
            return;
        };
        let Some(binary) = support::raftkv_binary() else {
            return;
        };
        if base_image(&api).await.is_none() {
            return;
        }
        let log = |p| eprintln!("image: {p:?}");
        let image = ensure_node_image(&api, "raftkv", &binary, &log)
            .await
            .expect("node image");
        let again = ensure_node_image(&api, "raftkv", &binary, &log)
            .await
            .expect("node image");
        assert!(!again.built, "second build is a cache hit");
        assert_eq!(again.id, image.id);
        let config = DockerClusterConfig {
            run_id: new_run_id(),
            image: image.tag,
            nodes: 3,
            spec: support::spec(Target::Raftkv, &[], &[]),
            peer_links: PeerLinks::Direct,
            clock_faults: true,
        };
        let cluster = DockerCluster::create(api.clone(), &config)
            .await
            .expect("cluster starts");
        let listening = cluster.wait_listening(30_000).await;
        let dir = tempfile::tempdir().expect("tempdir");
        cluster.logs(NodeId(1), dir.path()).await.expect("logs");
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        cluster.teardown().await.expect("teardown");
        listening.unwrap_or_else(|e| panic!("raftkv did not listen: {e}; log:\n{log}"));
    })
    .await;
}
