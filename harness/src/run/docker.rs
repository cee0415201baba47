//! Starting the Docker backend for a run: removes what dead earlier runs left behind,
//! makes sure the node image exists (building it on first use, with progress), creates
//! the cluster and waits until every node listens. The cluster's own guard tears it down
//! if the harness panics; SIGKILL leftovers are removed by the next run's cleanup here.

use std::sync::Arc;

use crate::docker::{
    cleanup_stale_runs, new_run_id, DockerApi, DockerCluster, DockerClusterConfig, NodeProgram,
    DEFAULT_CALL_TIMEOUT_MS,
};
use crate::image::{ensure_node_image, locate_raftkv_binary, ImageProgress};

use super::config::TestConfig;
use super::progress::LiveProgress;
use super::results::RunDir;

/// Port raftkv listens on inside each node.
pub const RAFTKV_PORT: u16 = 8080;
/// Longest wait for every node to accept connections after the containers start.
const LISTEN_TIMEOUT_MS: u64 = 60_000;

/// raftkv with the run's bugs and the options the run needs
/// ([`TestConfig::raftkv_args`]).
pub fn raftkv_program(config: &TestConfig) -> NodeProgram {
    let bugs = config.bugs.join(",");
    let mut program = NodeProgram::raftkv(RAFTKV_PORT, (!bugs.is_empty()).then_some(bugs.as_str()));
    program.args.extend(config.raftkv_args());
    program
}

/// Starts a raftkv cluster in Docker for `config`.
pub async fn start(
    config: &TestConfig,
    dir: &RunDir,
    progress: &LiveProgress,
) -> anyhow::Result<Arc<DockerCluster>> {
    progress.phase("connecting to Docker");
    let api = DockerApi::connect(DEFAULT_CALL_TIMEOUT_MS).await?;
    match cleanup_stale_runs(&api).await {
        Ok(removed) if !removed.is_empty() => {
            dir.log(&format!(
                "removed leftovers of dead runs: {}",
                removed.join(", ")
            ));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cleaning up earlier runs: {e}"),
    }
    progress.phase("node image");
    let report = |p: ImageProgress| match p {
        ImageProgress::Step(step) => progress.phase(&format!("image: {step}")),
        ImageProgress::Line(line) => progress.detail(&format!("image: {line}")),
        ImageProgress::Cached(_) => {}
        ImageProgress::Built { tag, elapsed_ms } => {
            progress.println(&format!(
                "built {tag} in {:.1} s",
                elapsed_ms as f64 / 1000.0
            ));
        }
    };
    let binary = locate_raftkv_binary(config.raftkv_binary.as_deref(), &report).await?;
    let image = ensure_node_image(&api, &binary, &report).await?;
    dir.log(&format!("node image {} ({})", image.tag, image.id));
    let cluster_config = DockerClusterConfig {
        run_id: new_run_id(),
        image: image.tag,
        nodes: config.nodes,
        program: crate::target::driver(config.target).node_program(config)?,
    };
    progress.phase(&format!("starting {} nodes", config.nodes));
    let cluster = DockerCluster::create(api, &cluster_config).await?;
    dir.log(&format!("cluster run id {}", cluster.run_id()));
    let cluster = Arc::new(cluster);
    if let Err(e) = cluster.wait_listening(LISTEN_TIMEOUT_MS).await {
        let _ = cluster.teardown().await;
        return Err(e.into());
    }
    Ok(cluster)
}
