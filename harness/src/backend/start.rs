//! Starting a cluster of a target's [`NodeSpec`] on the backend a run asks for. `docker`
//! removes what dead earlier runs left behind, makes sure the image exists (the node image
//! with a bundled program, the base image for an installed one), creates the cluster and
//! waits until every node is ready; `local` finds the program and starts it as child
//! processes; `auto` uses Docker when the daemon answers and local processes otherwise.
//! The Docker cluster's own guard tears it down if the harness panics; SIGKILL leftovers are
//! removed by the next run's cleanup here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faultline_nemeses::{Cluster, FaultKind};
use serde::{Deserialize, Serialize};

use super::build::{BuildError, BuildProgress};
use super::docker::image::{ensure_base_image, ensure_node_image, ensure_target_image, ImageError};
use super::docker::{
    cleanup_stale_runs, new_run_id, DockerApi, DockerCluster, DockerClusterConfig, DockerError,
    PeerLinks, DEFAULT_CALL_TIMEOUT_MS,
};
use super::local::{LocalCluster, LocalClusterConfig, LocalError};
use super::spec::{NodeSpec, Peering, Program, Readiness};
use super::{bundled, installed};

/// Longest wait for every Docker node to be ready after the containers start.
const DOCKER_READY_TIMEOUT_MS: u64 = 60_000;
/// Longest wait for every local node to be ready (they start in well under a second; a
/// loaded CI machine gets slack).
const LOCAL_READY_TIMEOUT_MS: u64 = 30_000;
/// How long `auto` waits for the Docker daemon before choosing local processes.
const DOCKER_PROBE_TIMEOUT_MS: u64 = 5_000;

/// Where the nodes run (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Containers on a private Docker network (iptables, tc netem, docker pause).
    #[default]
    Docker,
    /// Child processes on loopback, peer links through in-process proxies; no Docker.
    Local,
    /// Docker when the daemon answers, local processes otherwise.
    Auto,
}

/// Where a start reports what it is doing: phases and details for a live display, lines
/// for the terminal, and lines for the run's log file.
pub trait StartLog: Send + Sync {
    fn phase(&self, phase: &str);
    fn detail(&self, detail: &str);
    fn println(&self, line: &str);
    fn log(&self, line: &str);
}

/// What to start.
pub struct StartRequest<'a> {
    pub backend: Backend,
    pub spec: &'a NodeSpec,
    /// The fault kinds the run injects: per-link delay (figure8, netem) decides how Docker
    /// nodes reach their peers.
    pub faults: &'a [FaultKind],
    pub nodes: u32,
    /// The run's `nodes/` folder: local nodes keep their data and output there.
    pub nodes_dir: PathBuf,
}

/// Why a cluster did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "Docker is not reachable ({0}); run without Docker with `--backend local` (the \
         target as local processes), or `--backend auto` to fall back to it"
    )]
    NoDocker(DockerError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("the nodes did not become ready: {0}")]
    NotReady(String),
}

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

/// The backend `auto` stands for now: Docker when its daemon answers, else local
/// processes, with the line that says why. `docker` and `local` stand for themselves.
pub async fn resolve_backend(backend: Backend) -> (Backend, Option<String>) {
    match backend {
        Backend::Auto => match DockerApi::connect(DOCKER_PROBE_TIMEOUT_MS).await {
            Ok(_) => (Backend::Docker, None),
            Err(e) => (
                Backend::Local,
                Some(format!(
                    "Docker is not reachable ({e}); using --backend local"
                )),
            ),
        },
        other => (other, None),
    }
}

/// Starts the cluster on the requested backend, deciding `auto` first.
pub async fn start(req: &StartRequest<'_>, log: &dyn StartLog) -> Result<Started, StartError> {
    if req.backend == Backend::Docker {
        DockerApi::connect(DEFAULT_CALL_TIMEOUT_MS)
            .await
            .map_err(StartError::NoDocker)?;
    }
    let (backend, fell_back) = resolve_backend(req.backend).await;
    if let Some(line) = fell_back {
        log.println(&line);
        log.log(&line);
    }
    let local = backend == Backend::Local;
    if local {
        if let Some(why) = req
            .faults
            .iter()
            .find_map(|&k| req.spec.peering.local_refusal(k))
        {
            return Err(StartError::NotReady(why));
        }
        log.log("backend: local processes");
        Ok(Started::Local(start_local(req, log).await?))
    } else {
        log.log("backend: docker");
        Ok(Started::Docker(start_docker(req, log).await?))
    }
}

/// Reports build progress on the live display, prefixed by `what`.
fn build_progress<'a>(log: &'a dyn StartLog, what: &'a str) -> impl Fn(BuildProgress) + 'a {
    move |p| match p {
        BuildProgress::Step(step) => log.phase(&format!("{what}{step}")),
        BuildProgress::Line(line) => log.detail(&format!("{what}{line}")),
        BuildProgress::Cached(_) => {}
        BuildProgress::Built { tag, elapsed_ms } => {
            log.println(&format!(
                "built {tag} in {:.1} s",
                elapsed_ms as f64 / 1000.0
            ));
        }
    }
}

/// The file of a bundled program (built or found), logged.
async fn bundled_binary(
    name: &'static str,
    path: Option<&Path>,
    log: &dyn StartLog,
) -> Result<PathBuf, BuildError> {
    log.phase(&format!("{name} binary"));
    let progress = build_progress(log, "");
    let binary = bundled::locate(name, path, &progress).await?;
    log.log(&format!("{name} binary {}", binary.display()));
    Ok(binary)
}

async fn start_docker(
    req: &StartRequest<'_>,
    log: &dyn StartLog,
) -> Result<Arc<DockerCluster>, StartError> {
    log.phase("connecting to Docker");
    let api = DockerApi::connect(DEFAULT_CALL_TIMEOUT_MS).await?;
    match cleanup_stale_runs(&api).await {
        Ok(removed) if !removed.is_empty() => {
            log.log(&format!(
                "removed leftovers of dead runs: {}",
                removed.join(", ")
            ));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cleaning up earlier runs: {e}"),
    }
    let image = match &req.spec.program {
        // A target described by a file: its packages and its folder.
        _ if req.spec.folder.is_some() => {
            let folder = req.spec.folder.as_deref().unwrap_or(Path::new("."));
            log.phase("target image");
            let progress = build_progress(log, "image: ");
            ensure_target_image(&api, &req.spec.packages, folder, &progress).await?
        }
        Program::Folder { path } => {
            return Err(StartError::NotReady(format!(
                "{path} is in the target's folder, and the target names no folder"
            )))
        }
        Program::Bundled { name, path } => {
            let binary = bundled_binary(name, path.as_deref(), log).await?;
            log.phase("node image");
            let progress = build_progress(log, "image: ");
            ensure_node_image(&api, name, &binary, &progress).await?
        }
        // The base image holds the packages installed programs come from.
        Program::Installed { .. } => {
            log.phase("base image");
            let progress = build_progress(log, "image: ");
            ensure_base_image(&api, &req.spec.packages, &progress).await?
        }
    };
    log.log(&format!("node image {} ({})", image.tag, image.id));
    // Per-link delay needs sch_netem in the kernel, or peer traffic through the harness's
    // link proxies, which only targets whose nodes get their own peer lists can use.
    let per_link_delay = req
        .faults
        .iter()
        .any(|k| matches!(k, FaultKind::Figure8 | FaultKind::Netem));
    let peer_links = if per_link_delay && req.spec.peering == Peering::PerLink {
        PeerLinks::ProxiedWithoutNetem
    } else {
        PeerLinks::Direct
    };
    let config = DockerClusterConfig {
        run_id: new_run_id(),
        image: image.tag,
        nodes: req.nodes,
        spec: req.spec.clone(),
        peer_links,
        clock_faults: req.faults.contains(&FaultKind::Clock),
    };
    log.phase(&format!("starting {} nodes", req.nodes));
    let cluster = Arc::new(DockerCluster::create(api, &config).await?);
    log.log(&format!("cluster run id {}", cluster.run_id()));
    if cluster.proxied_links() {
        log.log(
            "peer links: through the harness's link proxies (the kernel has no sch_netem, and \
             the run delays single links)",
        );
    }
    let ready = match &req.spec.readiness {
        Readiness::ClientPort => cluster
            .wait_listening(DOCKER_READY_TIMEOUT_MS)
            .await
            .map_err(|e| e.to_string()),
        Readiness::Command(probe) => {
            wait_probe(probe, req.spec, cluster.nodes(), DOCKER_READY_TIMEOUT_MS).await
        }
    };
    if let Err(e) = ready {
        let _ = cluster.teardown().await;
        return Err(StartError::NotReady(e));
    }
    Ok(cluster)
}

async fn start_local(
    req: &StartRequest<'_>,
    log: &dyn StartLog,
) -> Result<Arc<LocalCluster>, StartError> {
    let program = match &req.spec.program {
        Program::Bundled { name, path } => bundled_binary(name, path.as_deref(), log).await?,
        Program::Installed { name, install } => {
            log.phase(&format!("{name} binary"));
            let binary = installed::find(name, install)?;
            log.log(&format!("{name} binary {}", binary.display()));
            binary
        }
        Program::Folder { path } => {
            let folder = req.spec.folder.as_deref().unwrap_or(Path::new("."));
            let file = folder.join(path);
            if !file.is_file() {
                return Err(StartError::NotReady(format!(
                    "the target's program {} is not a file",
                    file.display()
                )));
            }
            file
        }
    };
    let config = LocalClusterConfig {
        nodes: req.nodes,
        spec: req.spec.clone(),
        program,
        root: req.nodes_dir.clone(),
        clock_faults: req.faults.contains(&FaultKind::Clock),
    };
    log.phase(&format!("starting {} local nodes", req.nodes));
    let cluster = LocalCluster::create(&config).await?;
    for m in cluster.members() {
        let peers = match m.peer_advertise {
            Some(advertised) => format!(
                "; peers reach it at {advertised} (attributed per sender), its peer \
                 listener is {}",
                m.peer_listen
            ),
            None => String::new(),
        };
        log.log(&format!(
            "{} listens on {}{peers}; data {}",
            m.name,
            m.addr,
            m.data_dir.display()
        ));
    }
    if req.faults.contains(&FaultKind::Clock) {
        if let Err(e) = cluster.clock_support() {
            log.log(&format!("clock faults unavailable: {e}"));
        }
    }
    let ready = match &req.spec.readiness {
        Readiness::ClientPort => cluster
            .wait_listening(LOCAL_READY_TIMEOUT_MS)
            .await
            .map_err(StartError::from),
        Readiness::Command(probe) => {
            wait_probe(probe, req.spec, cluster.nodes(), LOCAL_READY_TIMEOUT_MS)
                .await
                .map_err(StartError::NotReady)
        }
    };
    if let Err(e) = ready {
        let _ = cluster.teardown().await;
        return Err(e);
    }
    Ok(Arc::new(cluster))
}

/// Longest one run of a readiness probe may take.
const PROBE_TIMEOUT_MS: u64 = 5_000;

/// Runs the readiness `probe` for every node, on this host, until it exits 0 for each or
/// `timeout_ms` has passed; the error names the node and what the probe said last.
async fn wait_probe(
    probe: &[String],
    spec: &NodeSpec,
    nodes: &[faultline_nemeses::Node],
    timeout_ms: u64,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    let folder = spec.folder.as_deref().unwrap_or(Path::new("."));
    for node in nodes {
        let (host, port) = node
            .client_addr
            .rsplit_once(':')
            .unwrap_or((node.client_addr.as_str(), ""));
        let line: Vec<String> = probe
            .iter()
            .map(|a| {
                a.replace("{host}", host)
                    .replace("{port}", port)
                    .replace("{name}", &node.name)
                    .replace("{id}", &node.id.0.to_string())
                    .replace("{target_dir}", &folder.display().to_string())
            })
            .collect();
        let Some((program, args)) = line.split_first() else {
            return Err("the readiness probe is empty".into());
        };
        loop {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args)
                .current_dir(folder)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            let run = tokio::time::timeout(
                std::time::Duration::from_millis(PROBE_TIMEOUT_MS),
                cmd.output(),
            )
            .await;
            let said = match run {
                Ok(Ok(out)) if out.status.success() => break,
                Ok(Ok(out)) => format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Ok(Err(e)) => format!("could not run {program}: {e}"),
                Err(_) => format!("no answer in {PROBE_TIMEOUT_MS} ms"),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{} was not ready within {timeout_ms} ms: its probe {} said {said}",
                    node.name,
                    line.join(" ")
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
