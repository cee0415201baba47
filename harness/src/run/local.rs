//! Starting the cluster for a run on the backend the config names (`--backend`): the local
//! backend (raftkv, or the etcd on the PATH, as processes on loopback, see
//! [`crate::local`]) is started here; Docker is [`super::docker`]. `auto` uses Docker when
//! the daemon answers and local processes otherwise; `docker` with no daemon fails with a
//! message that suggests `--backend local`.

use std::sync::Arc;

use faultline_nemeses::{Cluster, FaultKind};

use crate::docker::{DockerApi, DockerCluster, DEFAULT_CALL_TIMEOUT_MS};
use crate::image::{locate_raftkv_binary, ImageProgress};
use crate::local::{LocalCluster, LocalClusterConfig, LocalProgram};

use super::config::{Backend, Target, TestConfig};
use super::progress::LiveProgress;
use super::results::RunDir;

/// Longest wait for every local node to accept connections (they start in well under a
/// second; a loaded CI machine gets slack).
const LISTEN_TIMEOUT_MS: u64 = 30_000;
/// How long `auto` waits for the Docker daemon before choosing local processes.
const DOCKER_PROBE_TIMEOUT_MS: u64 = 5_000;

/// A started cluster of either backend: what the run exercises, and how to end it.
pub enum Started {
    Docker(Arc<DockerCluster>),
    Local(Arc<LocalCluster>),
}

impl Started {
    pub fn cluster(&self) -> Arc<dyn Cluster> {
        match self {
            Started::Docker(c) => c.clone(),
            Started::Local(c) => c.clone(),
        }
    }

    /// Removes the containers, or kills the processes. Idempotent.
    pub async fn teardown(&self) -> Result<(), String> {
        match self {
            Started::Docker(c) => c.teardown().await.map(|_| ()).map_err(|e| e.to_string()),
            Started::Local(c) => c.teardown().await.map_err(|e| e.to_string()),
        }
    }
}

/// Starts the cluster on the configured backend, deciding `auto` first.
pub async fn start(
    config: &TestConfig,
    dir: &RunDir,
    progress: &LiveProgress,
) -> anyhow::Result<Started> {
    let local = match config.backend {
        Backend::Local => true,
        Backend::Docker => {
            if let Err(e) = DockerApi::connect(DEFAULT_CALL_TIMEOUT_MS).await {
                anyhow::bail!(
                    "Docker is not reachable ({e}); run without Docker with \
                     `--backend local` (raftkv or etcd as local processes), or `--backend \
                     auto` to fall back to it"
                );
            }
            false
        }
        Backend::Auto => match DockerApi::connect(DOCKER_PROBE_TIMEOUT_MS).await {
            Ok(_) => false,
            Err(e) => {
                let line = format!("Docker is not reachable ({e}); using --backend local");
                progress.println(&line);
                dir.log(&line);
                true
            }
        },
    };
    if local {
        dir.log("backend: local processes");
        Ok(Started::Local(start_local(config, dir, progress).await?))
    } else {
        dir.log("backend: docker");
        Ok(Started::Docker(
            super::docker::start(config, dir, progress).await?,
        ))
    }
}

/// Starts the target (raftkv, or the etcd on the PATH) as local processes for `config`,
/// each node's data and log under the run's `nodes/<node>/`, and waits until every node
/// listens.
pub async fn start_local(
    config: &TestConfig,
    dir: &RunDir,
    progress: &LiveProgress,
) -> anyhow::Result<Arc<LocalCluster>> {
    // `TestConfig::validate` has done this for a run; it keeps a direct caller from
    // starting a target with faults it refuses (etcd and clock faults).
    crate::target::validate(config).map_err(anyhow::Error::msg)?;
    let driver = crate::target::driver(config.target);
    let program = match config.target {
        Target::Raftkv => raftkv_program(config, dir, progress).await?,
        Target::Etcd => {
            progress.phase("etcd binary");
            let binary = crate::target::etcd::find_local_binary().map_err(anyhow::Error::msg)?;
            dir.log(&format!("etcd binary {}", binary.display()));
            // Disk faults: as on Docker, etcd runs unchanged (it fsyncs its WAL; there is
            // no lose-unsynced layer to switch on) and a corrupt-tail fault finds no
            // raftkv WAL in its data folder and is reported as failed.
            LocalProgram::etcd(&binary)
        }
        Target::Consul => anyhow::bail!(
            "the local backend runs raftkv and etcd; consul needs --endpoints (a cluster \
             faultline did not start)"
        ),
    };
    // Only where the target's clock can be skewed: etcd reads it through the vDSO, so
    // preloading libfaketime into it would do nothing but pretend.
    let clock_faults = driver.refuses(FaultKind::Clock).is_none();
    let cluster_config = LocalClusterConfig {
        nodes: config.nodes,
        program,
        root: dir.nodes(),
        clock_faults,
    };
    progress.phase(&format!("starting {} local nodes", config.nodes));
    let cluster = LocalCluster::create(&cluster_config).await?;
    for m in cluster.members() {
        let peers = match m.peer_advertise {
            Some(advertised) => format!(
                "; peers reach it at {advertised} (attributed per sender), its peer \
                 listener is {}",
                m.peer_listen
            ),
            None => String::new(),
        };
        dir.log(&format!(
            "{} listens on {}{peers}; data {}",
            m.name,
            m.addr,
            m.data_dir.display()
        ));
    }
    if let Err(e) = cluster.clock_support() {
        let why = driver.refuses(FaultKind::Clock).unwrap_or(e);
        dir.log(&format!("clock faults unavailable: {why}"));
    }
    if let Err(e) = cluster.wait_listening(LISTEN_TIMEOUT_MS).await {
        let _ = cluster.teardown().await;
        return Err(e.into());
    }
    Ok(Arc::new(cluster))
}

/// raftkv (located or built) with the run's bugs and the options the run needs
/// ([`TestConfig::raftkv_args`], as on Docker).
async fn raftkv_program(
    config: &TestConfig,
    dir: &RunDir,
    progress: &LiveProgress,
) -> anyhow::Result<LocalProgram> {
    progress.phase("raftkv binary");
    let report = |p: ImageProgress| match p {
        ImageProgress::Step(step) => progress.phase(&step),
        ImageProgress::Line(line) => progress.detail(&line),
        _ => {}
    };
    let binary = locate_raftkv_binary(config.raftkv_binary.as_deref(), &report).await?;
    dir.log(&format!("raftkv binary {}", binary.display()));
    let mut program = LocalProgram::raftkv(&binary, &config.bugs);
    program.args.extend(config.raftkv_args());
    Ok(program)
}
