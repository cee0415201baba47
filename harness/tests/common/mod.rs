//! Helpers shared by the Docker integration tests (`docker_cluster.rs`, `docker_faults.rs`):
//! a time bound per test, skipping with a printed reason when Docker or the base image is
//! out of reach, and etcd as a stand-in server that ships in the base image.

use std::future::Future;
use std::time::Duration;

use faultline::docker::{DockerApi, NodeProgram};
use faultline::image::ensure_base_image;
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
