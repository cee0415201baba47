//! Docker clusters for tests: the daemon and the base image as prerequisites (building the
//! base needs root), the node image, and clusters of any node description.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use faultline::backend::docker::image::{ensure_base_image, ensure_node_image};
use faultline::backend::docker::{
    new_run_id, DockerApi, DockerCluster, DockerClusterConfig, PeerLinks,
};
use faultline::backend::{NodeSpec, Peering, Program, Readiness, Refusal};
use faultline::target::Target;
use faultline_nemeses::FaultKind;
use tokio::sync::OnceCell;

use super::prereq;

/// Upper bound for one Docker test, image build included (a cold base build takes about a
/// minute).
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

static BASE_IMAGE: OnceCell<Result<String, String>> = OnceCell::const_new();

/// The daemon, when it answers.
pub async fn docker() -> Option<DockerApi> {
    let api = DockerApi::connect(10_000)
        .await
        .map_err(|e| format!("Docker is unreachable: {e}"));
    prereq::check(prereq::DOCKER, api)
}

/// The daemon, when it answers and the base image can be had here (built, as root, or
/// cached): what a `faultline test` on Docker needs before it starts.
pub async fn docker_with_base() -> Option<DockerApi> {
    let api = docker().await?;
    base_image(&api).await?;
    Some(api)
}

/// The base image tag (built once per test binary), when it can be built here (root).
pub async fn base_image(api: &DockerApi) -> Option<String> {
    let result = BASE_IMAGE
        .get_or_init(|| async {
            let log = |p| eprintln!("image: {p:?}");
            ensure_base_image(api, &[], &log)
                .await
                .map(|i| i.tag)
                .map_err(|e| e.to_string())
        })
        .await;
    match result {
        Ok(tag) => Some(tag.clone()),
        Err(e) if e.contains("needs root") => {
            prereq::missing(prereq::DOCKER, format!("cannot build the base image: {e}"))
        }
        Err(e) => panic!("base image build failed: {e}"),
    }
}

/// The node image with `raftkv` in it.
pub async fn node_image(api: &DockerApi, raftkv: &Path) -> String {
    base_image(api).await.expect("base image");
    ensure_node_image(api, "raftkv", raftkv, &|_| {})
        .await
        .expect("node image")
        .tag
}

/// A cluster of `nodes` nodes of `spec` on `image`, every node accepting connections.
pub async fn cluster(api: DockerApi, image: String, nodes: u32, spec: NodeSpec) -> DockerCluster {
    let config = DockerClusterConfig {
        run_id: new_run_id(),
        image,
        nodes,
        spec,
        peer_links: PeerLinks::Direct,
        clock_faults: true,
    };
    let cluster = DockerCluster::create(api, &config)
        .await
        .expect("cluster starts");
    cluster.wait_listening(30_000).await.expect("nodes listen");
    cluster
}

/// A standalone etcd per node, each its own one-member cluster: a real TCP server that
/// ships in the base image, for tests of the backend that need no Raft.
pub fn standalone_etcd() -> NodeSpec {
    let args = [
        "--name",
        "{name}",
        "--data-dir",
        "{data_dir}",
        "--listen-client-urls",
        "http://{listen}",
        "--advertise-client-urls",
        "http://{host}:{port}",
        "--listen-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        "{name}=http://127.0.0.1:2380",
    ];
    NodeSpec {
        target: "standalone etcd".into(),
        program: Program::Installed {
            name: "etcd".into(),
            install: "apt-get install etcd-server".into(),
        },
        args: args.iter().map(ToString::to_string).collect(),
        env: Vec::new(),
        client_port: 2379,
        peering: Peering::PerLink,
        peer_entry: "{id}={addr}".into(),
        readiness: Readiness::ClientPort,
        log_files: Vec::new(),
        wal: None,
        refused: vec![Refusal {
            kind: FaultKind::Clock,
            reason: "Go reads the clock through the vDSO; libfaketime cannot reach it".into(),
        }],
        setup: Vec::new(),
        folder: None,
        packages: Vec::new(),
    }
}

/// A started raftkv cluster of `nodes`, when Docker, root and raftkv are here.
pub async fn raftkv_cluster(nodes: u32) -> Option<Arc<DockerCluster>> {
    let api = docker().await?;
    base_image(&api).await?;
    let raftkv = super::raftkv_binary()?;
    let image = node_image(&api, &raftkv).await;
    let spec = super::spec(Target::Raftkv, &[], &[]);
    Some(Arc::new(cluster(api, image, nodes, spec).await))
}
