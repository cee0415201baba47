//! Targets: the systems faultline can test. One file per target holds everything the harness
//! knows about it: how one node runs (a backend-neutral [`NodeSpec`]: program, arguments,
//! ports, readiness, the faults it refuses and why, its target-specific flags), and which
//! client speaks its API (each client in `faultline-workloads` maps the workloads' requests
//! onto that API). Adding a built-in target is one file here, a [`Target`] variant, and its
//! client. Any other database is a folder with a `target.toml` ([`file`]) and an adapter
//! program in any language ([`adapter`]): `--target path/to/folder`.
//!
//! Every target here logs to stdout/stderr, which the backend copies into the run's
//! `nodes/<node>/server.log`.

pub mod adapter;
pub mod consul;
pub mod etcd;
pub mod file;
pub mod raftkv;
pub mod venv;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_nemeses::{FaultKind, LeaderProbe, NodeId};
use faultline_workloads::{Client, Completion, Fencing, Request, Workload};
use serde::{Deserialize, Serialize};

use crate::backend::NodeSpec;

/// The system under test: a built-in one by name, or one described by a file. In
/// `config.json` and on the command line it is the name or the file's path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Target {
    /// The bundled Raft KV server.
    #[default]
    Raftkv,
    /// etcd 3.4 (Debian's etcd-server in the node image), through its v3 JSON gateway.
    Etcd,
    /// Consul's KV store and sessions over HTTP; only with --endpoints (no binary here).
    Consul,
    /// A target folder (or its `target.toml`): the node as the file says, the client an
    /// adapter process.
    File(PathBuf),
}

const BUILT_IN: [(&str, Target); 3] = [
    ("raftkv", Target::Raftkv),
    ("etcd", Target::Etcd),
    ("consul", Target::Consul),
];

impl Target {
    /// The target's name: a built-in's, or the `name` its file gives (`target` if the file
    /// cannot be read; reading it again reports why).
    pub fn name(&self) -> String {
        match self {
            Target::File(path) => {
                file::TargetFile::load(path).map_or_else(|_| "target".into(), |t| t.name)
            }
            builtin => BUILT_IN
                .iter()
                .find(|(_, t)| t == builtin)
                .map_or("target", |(n, _)| n)
                .to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File(path) => write!(f, "{}", path.display()),
            other => f.write_str(&other.name()),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        if let Some((_, t)) = BUILT_IN.iter().find(|(n, _)| *n == s) {
            return Ok(t.clone());
        }
        if file::looks_like_path(s) {
            return Ok(Target::File(PathBuf::from(s)));
        }
        Err(format!(
            "unknown target {s:?}: use raftkv, etcd, consul, or a target folder \
             (targets/<name>, or a path to its target.toml)"
        ))
    }
}

impl TryFrom<String> for Target {
    type Error = String;

    fn try_from(s: String) -> Result<Target, String> {
        s.parse()
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.to_string()
    }
}

/// What a run gives a target's client besides the addresses: where adapters write their
/// stderr, how to log, and how many client workers there are.
#[derive(Clone)]
pub struct ClientContext {
    /// The run's folder (adapters write `adapters/p<process>.stderr.log` in it).
    pub run_dir: PathBuf,
    /// A line for the run's `faultline.log`.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
    /// Client workers (`--concurrency`).
    pub concurrency: u64,
}

impl ClientContext {
    /// A context that logs through `tracing` and keeps adapters' stderr in `run_dir`.
    pub fn detached(run_dir: PathBuf, concurrency: u64) -> ClientContext {
        ClientContext {
            run_dir,
            log: Arc::new(|line: &str| tracing::info!("{line}")),
            concurrency,
        }
    }
}

/// Target settings beyond the common ones; part of the run's `config.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetOptions {
    /// Client addresses of a cluster faultline did not start (`--endpoints`); empty: start
    /// one on the backend.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Reads served from the member's local state (etcd `serializable: true`, Consul
    /// `?stale`), which may be stale.
    pub serializable: bool,
    /// Lock-workload writes as plain puts instead of writes the store checks against the
    /// lock (etcd: a txn on the lock key's create revision; Consul: `check-session`).
    pub unfenced_writes: bool,
}

impl TargetOptions {
    /// The lock-write mode the options ask for.
    pub fn fencing(&self) -> Fencing {
        if self.unfenced_writes {
            Fencing::None
        } else {
            Fencing::Checked
        }
    }
}

/// What a run tells a driver about itself, for the node's command line.
#[derive(Clone, Copy, Debug)]
pub struct NodeParams<'a> {
    /// The fault kinds the run injects (some need the target started differently).
    pub nemesis: &'a [FaultKind],
    /// How long a client waits for an answer.
    pub op_timeout_ms: u64,
    /// Planted bugs to switch on (`--bug`).
    pub bugs: &'a [String],
    /// The bundled program's binary, when given (`--raftkv PATH`).
    pub bundled_binary: Option<&'a Path>,
}

/// Why a target cannot be used as configured.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{target} cannot run in a node image here: {reason}")]
    NotInstallable {
        target: &'static str,
        reason: &'static str,
    },
    #[error("{target} client: {reason}")]
    Client {
        target: &'static str,
        reason: String,
    },
    #[error(transparent)]
    File(#[from] file::TargetFileError),
    #[error("the {target} target's adapter: {reason}")]
    Adapter { target: String, reason: String },
}

/// What faultline needs to know about one target system.
#[async_trait]
pub trait TargetDriver: Send + Sync {
    fn name(&self) -> &str;

    /// How one node runs, on any backend.
    fn node_spec(&self, params: &NodeParams<'_>) -> Result<NodeSpec, TargetError>;

    /// The client for `addrs` (one client address per node, in node order).
    async fn client(
        &self,
        addrs: &[String],
        options: &TargetOptions,
        context: &ClientContext,
    ) -> Result<Arc<dyn TargetClient>, TargetError>;
}

/// The driver of `target`; for a target file, an error if it cannot be read.
pub fn driver(target: &Target) -> Result<Arc<dyn TargetDriver>, TargetError> {
    Ok(match target {
        Target::Raftkv => Arc::new(raftkv::RaftKv),
        Target::Etcd => Arc::new(etcd::Etcd),
        Target::Consul => Arc::new(consul::Consul),
        Target::File(path) => Arc::new(file::TargetFile::load(path)?),
    })
}

/// Checks the target-specific parts of a run: faults the target cannot take, and faults a
/// cluster faultline did not start cannot take. The message says what to change.
pub fn validate(
    target: &Target,
    options: &TargetOptions,
    params: &NodeParams<'_>,
) -> Result<(), String> {
    let d = driver(target).map_err(|e| e.to_string())?;
    if !options.endpoints.is_empty() {
        if let Some(kind) = params.nemesis.first() {
            return Err(format!(
                "--endpoints tests a cluster faultline did not start, so it cannot {} its \
                 nodes; use --nemesis none (only the workload runs)",
                kind.verb()
            ));
        }
        if options.endpoints.len() > 64 {
            return Err("at most 64 --endpoints".into());
        }
        return Ok(());
    }
    let spec = d.node_spec(params).map_err(|e| e.to_string())?;
    spec.check().map_err(|e| e.to_string())?;
    for &kind in params.nemesis {
        if let Some(why) = spec.refuses(kind) {
            return Err(format!(
                "the {} nemesis cannot be used with --target {}: {why}",
                kind.name(),
                d.name()
            ));
        }
    }
    Ok(())
}

/// A target's client as a run uses it: the workload's operations, and what the nemesis
/// asks about leadership. Object-safe, so a run holds any target's client alike.
#[async_trait]
pub trait TargetClient: Send + Sync + 'static {
    /// One operation, as [`Client::call`].
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion;

    /// The index of the node that is the leader now, if one is known.
    async fn leader(&self) -> Option<usize>;

    /// Node `node`'s commit index, where the target tells it (figure8 cuts on it).
    async fn commit_index(&self, node: usize) -> Option<u64> {
        let _ = node;
        None
    }

    /// Whether [`TargetClient::leader`] can ever answer; a run does not wait for a leader
    /// a target cannot name.
    fn has_leader_probe(&self) -> bool {
        true
    }

    /// Gets ready for `workload` before the run starts; an error (the client cannot serve
    /// it) stops the run before anything is recorded.
    async fn prepare(&self, workload: Workload) -> Result<(), String> {
        let _ = workload;
        Ok(())
    }
}

/// Any target's client as the workload runner's [`Client`].
#[derive(Clone)]
pub struct AnyClient(pub Arc<dyn TargetClient>);

impl Client for AnyClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        self.0.call(process, request, timeout).await
    }
}

/// The leader as the target's client finds it, for the nemesis.
pub struct TargetLeader {
    pub client: Arc<dyn TargetClient>,
    /// `ids[i]` is the node behind the client's i-th address.
    pub ids: Vec<NodeId>,
}

#[async_trait]
impl LeaderProbe for TargetLeader {
    async fn leader(&self) -> Option<NodeId> {
        let i = self.client.leader().await?;
        self.ids.get(i).copied()
    }

    async fn commit_index(&self, node: NodeId) -> Option<u64> {
        let i = self.ids.iter().position(|id| *id == node)?;
        self.client.commit_index(i).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: Target, nemesis: &[FaultKind], endpoints: &[&str]) -> Result<(), String> {
        let options = TargetOptions {
            endpoints: endpoints.iter().map(ToString::to_string).collect(),
            ..TargetOptions::default()
        };
        let params = NodeParams {
            nemesis,
            op_timeout_ms: 2_000,
            bugs: &[],
            bundled_binary: None,
        };
        validate(&target, &options, &params)
    }

    #[test]
    fn etcd_refuses_clock_faults_and_says_why() {
        let err = check(Target::Etcd, &[FaultKind::Clock], &[]).unwrap_err();
        assert!(err.contains("clock") && err.contains("vDSO"), "{err}");
        use FaultKind::*;
        assert!(check(Target::Etcd, &[Partition, Kill, Pause], &[]).is_ok());
        assert!(check(Target::Raftkv, &[Clock], &[]).is_ok());
    }

    #[test]
    fn external_clusters_take_no_node_faults() {
        let e = ["http://127.0.0.1:2379"];
        let err = check(Target::Etcd, &[FaultKind::Kill], &e).unwrap_err();
        assert!(
            err.contains("--endpoints") && err.contains("--nemesis none"),
            "{err}"
        );
        assert!(check(Target::Etcd, &[], &e).is_ok());
        assert!(check(Target::Consul, &[], &e).is_ok());
    }

    #[test]
    fn consul_cannot_start_nodes() {
        let err = check(Target::Consul, &[], &[]).unwrap_err();
        assert!(err.contains("--endpoints"), "{err}");
    }
}
