//! Helpers shared by the Docker integration tests (`docker_cluster.rs`, `docker_faults.rs`):
//! a time bound per test, skipping with a printed reason when Docker or the base image is
//! out of reach, and etcd as a stand-in server that ships in the base image.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use faultline::docker::{new_run_id, DockerApi, DockerCluster, DockerClusterConfig, NodeProgram};
use faultline::image::{default_raftkv_binary, ensure_base_image, ensure_node_image};
use tokio::sync::OnceCell;

/// Upper bound for one test, image build included (a cold base build takes ~1 minute).
pub const TEST_TIMEOUT_S: u64 = 300;
pub const ETCD_PORT: u16 = 2379;

static BASE_IMAGE: OnceCell<Result<String, String>> = OnceCell::const_new();

/// Runs `test`, failing it past [`TEST_TIMEOUT_S`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(TEST_TIMEOUT_S), test)
        .await
        .expect("test exceeded its time limit");
}

/// The daemon, or None after printing why the test is skipped.
pub async fn docker_or_skip() -> Option<DockerApi> {
    match DockerApi::connect(10_000).await {
        Ok(api) => Some(api),
        Err(e) => {
            eprintln!("skipping: Docker is unreachable: {e}");
            None
        }
    }
}

/// The base image tag (built once per test binary), or None after printing why not.
pub async fn base_image_or_skip(api: &DockerApi) -> Option<String> {
    let result = BASE_IMAGE
        .get_or_init(|| async {
            let log = |p| eprintln!("image: {p:?}");
            ensure_base_image(api, &log)
                .await
                .map(|i| i.tag)
                .map_err(|e| e.to_string())
        })
        .await;
    match result {
        Ok(tag) => Some(tag.clone()),
        Err(e) if e.contains("needs root") => {
            eprintln!("skipping: cannot build the base image here: {e}");
            None
        }
        Err(e) => panic!("base image build failed: {e}"),
    }
}

/// A standalone etcd per node: a real TCP server that ships in the base image.
pub fn etcd_program() -> NodeProgram {
    let args = [
        "etcd",
        "--name",
        "{name}",
        "--data-dir",
        "{data_dir}/etcd",
        "--listen-client-urls",
        "http://0.0.0.0:{port}",
        "--advertise-client-urls",
        "http://{ip}:{port}",
        "--listen-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        "{name}=http://127.0.0.1:2380",
    ];
    NodeProgram {
        args: args.iter().map(ToString::to_string).collect(),
        port: ETCD_PORT,
        // Go reads the clock through the vDSO; libfaketime cannot reach it.
        faketime: false,
    }
}

/// Port raftkv listens on inside its container.
pub const RAFTKV_PORT: u16 = 8080;

/// A started raftkv cluster of `nodes`, or None after printing why the test is skipped.
// Not every test binary that includes this module starts raftkv.
#[allow(dead_code)]
pub async fn raftkv_cluster_or_skip(nodes: u32) -> Option<Arc<DockerCluster>> {
    let api = docker_or_skip().await?;
    base_image_or_skip(&api).await?;
    let Some(binary) = default_raftkv_binary() else {
        eprintln!("skipping: no raftkv binary beside the test binary (cargo build -p raftkv)");
        return None;
    };
    let image = ensure_node_image(&api, &binary, &|_| {})
        .await
        .expect("node image");
    let config = DockerClusterConfig {
        run_id: new_run_id(),
        image: image.tag,
        nodes,
        program: NodeProgram::raftkv(RAFTKV_PORT, None),
    };
    let cluster = DockerCluster::create(api, &config)
        .await
        .expect("cluster starts");
    cluster.wait_listening(30_000).await.expect("nodes listen");
    Some(Arc::new(cluster))
}
