//! `LocalCluster`: N nodes of a target (rendered from its [`NodeSpec`]) as child processes
//! of the harness on loopback, and the `Cluster` trait on top of them. No Docker, no root.
//!
//! Node `nK` listens for clients on `127.0.0.(10+K):<free port>` and keeps its data in
//! `<root>/nK/data`, its output in `<root>/nK/server.log` (`<root>` is the run's `nodes/`
//! folder, so logs need no copying). Clients connect to nodes directly. Peer traffic goes
//! through one [`LinkProxy`] per directed pair, so partitions and packet faults are the
//! proxies' state (see `proxy.rs` for how a cut matches iptables `DROP`). How a node's
//! connections reach the right link depends on the spec's [`Peering`]:
//!
//! - [`Peering::PerLink`] (raftkv): node A is started with, as B's address, the proxy of
//!   the link A -> B.
//! - [`Peering::Shared`] (etcd): every node is given the same peer list, so B has one
//!   advertised peer address, a [`DestinationProxy`] that attributes each connection to
//!   the member that opened it (through the kernel's socket table) and relays it into the
//!   link proxy A -> B. B's own peer listener is on another port of its address.
//!
//! Like the Docker backend's firewall, the proxies belong to the "network", not to the
//! processes: a killed or paused node keeps its partition, and a restarted one finds it
//! still in place.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use faultline_nemeses::clock::faketime_spec;
use faultline_nemeses::{
    Cluster, ClusterError, FaultKind, Grudge, Node, NodeId, PacketCaps, PacketFault,
};
use tokio::io::AsyncReadExt;

use super::attribute::MemberPids;
use super::destination::{DestinationProxy, Routes};
use super::faketime;
use super::process::{Launch, NodeProcess, ProcessError};
use crate::backend::links::{Endpoint, LinkFault, Links, PACKET_CAPS};
use crate::backend::spec::{NodeSpec, NodeValues, Peering, WalFiles};

/// Most nodes one cluster may have: the last octet `10 + K` must stay a valid address.
pub const MAX_NODES: u32 = 200;
/// How long `terminate` waits after SIGTERM before SIGKILL (as the Docker backend's
/// `docker stop`).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Node `nK` gets the address `127.0.0.(IP_BASE + K)`.
const IP_BASE: u32 = 10;
/// Upper bound on one copied log file, so a runaway logger cannot fill the results disk.
const LOG_COPY_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// Everything that describes a local cluster.
#[derive(Clone, Debug)]
pub struct LocalClusterConfig {
    pub nodes: u32,
    pub spec: NodeSpec,
    /// The spec's program, resolved to a file (`crate::backend::start` finds it).
    pub program: PathBuf,
    /// Per-node folders go here (`<root>/n1/data`, `<root>/n1/server.log`).
    pub root: PathBuf,
    /// Whether the run injects clock faults. Only then are nodes started under libfaketime:
    /// with `FAKETIME_NO_CACHE` every clock call re-reads the timestamp file, and a program
    /// that reads the wall clock often pays for it in system time (three ZooKeeper JVMs
    /// spent 70% of two cores in the kernel, and wrote at 2 per second per client).
    pub clock_faults: bool,
}

/// Why a local cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("bad local cluster configuration: {0}")]
    InvalidConfig(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{node} did not accept connections on {addr} within {timeout_ms} ms (see {log})")]
    NotListening {
        node: String,
        addr: SocketAddr,
        timeout_ms: u64,
        log: String,
    },
}

/// One node's local identity and process.
pub struct Member {
    pub id: NodeId,
    pub name: String,
    /// Where the node listens for clients (and, with per-link peering, for peers behind
    /// the proxies).
    pub addr: SocketAddr,
    /// Where the node's own peer listener is: `addr` with per-link peering, another port
    /// of the same IP with shared peering. The link proxies to this node forward here.
    pub peer_listen: SocketAddr,
    /// With shared peering, where the other nodes reach this one (its destination proxy).
    pub peer_advertise: Option<SocketAddr>,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    faketime_file: PathBuf,
    /// The (offset_ms, rate) last set by `clock`, rewritten for a restarted process.
    clock: Mutex<(i64, f64)>,
    process: tokio::sync::Mutex<NodeProcess>,
}

pub struct LocalCluster {
    members: Vec<Member>,
    nodes: Vec<Node>,
    /// The proxy `from` uses to reach `to`, for every pair, and the faults they apply.
    links: Links,
    /// With shared peering, each node's advertised peer address (empty otherwise).
    destinations: BTreeMap<NodeId, DestinationProxy>,
    /// The members' running processes, for the destination proxies' attribution.
    pids: MemberPids,
    /// Why `clock` cannot work, when it cannot.
    clock_unsupported: Option<String>,
    /// The target's write-ahead log, for disk corruption.
    wal: Option<WalFiles>,
    /// Log files in the data folders, copied with the output.
    log_files: Vec<String>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let context = context.into();
    move |source| LocalError::Io { context, source }
}

/// A port nothing listens on right now at `ip` (the kernel's pick; a node binds it next).
fn free_port(ip: Ipv4Addr) -> Result<u16, LocalError> {
    let l =
        StdTcpListener::bind((ip, 0)).map_err(io_err(format!("finding a free port on {ip}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(io_err("reading a bound port"))
}

/// One node's addresses and folders, chosen before anything starts.
struct Planned {
    id: NodeId,
    name: String,
    addr: SocketAddr,
    peer_listen: SocketAddr,
    dir: PathBuf,
    data_dir: PathBuf,
    faketime_file: PathBuf,
}

impl LocalCluster {
    /// Starts every node's proxies and process. Returns once every process is spawned; see
    /// [`LocalCluster::wait_listening`]. On failure, whatever started is stopped (drop).
    pub async fn create(config: &LocalClusterConfig) -> Result<LocalCluster, LocalError> {
        if config.nodes == 0 || config.nodes > MAX_NODES {
            return Err(LocalError::InvalidConfig(format!(
                "nodes must be 1..={MAX_NODES}, got {}",
                config.nodes
            )));
        }
        if !config.program.is_file() {
            return Err(LocalError::InvalidConfig(format!(
                "no program at {}",
                config.program.display()
            )));
        }
        let spec = &config.spec;
        spec.check()
            .map_err(|e| LocalError::InvalidConfig(e.to_string()))?;
        let shared = matches!(spec.peering, Peering::Shared { .. });
        // Only where the target's clock can be skewed: preloading libfaketime into a
        // program that reads the clock without libc would do nothing but pretend.
        let faketime_lib = match spec.refuses(FaultKind::Clock) {
            Some(why) => Err(why.to_string()),
            None if !config.clock_faults => {
                Err("the run injects no clock faults, so the nodes run without libfaketime".into())
            }
            None => faketime::find_libfaketime(),
        };
        // Absolute, because the paths go to processes whose working directory is their
        // node folder: a relative `--data-dir` or timestamp file would land (or be looked
        // for) inside it.
        std::fs::create_dir_all(&config.root)
            .map_err(io_err(format!("creating {}", config.root.display())))?;
        let root = std::fs::canonicalize(&config.root)
            .map_err(io_err(format!("resolving {}", config.root.display())))?;
        let mut planned = Vec::new();
        for i in 1..=config.nodes {
            let name = format!("n{i}");
            let ip = Ipv4Addr::new(
                127,
                0,
                0,
                u8::try_from(IP_BASE + i).expect("i <= MAX_NODES"),
            );
            let addr = SocketAddr::from((ip, free_port(ip)?));
            let peer_listen = if shared {
                SocketAddr::from((ip, free_port(ip)?))
            } else {
                addr
            };
            let dir = root.join(&name);
            let data_dir = dir.join("data");
            std::fs::create_dir_all(&data_dir)
                .map_err(io_err(format!("creating {}", data_dir.display())))?;
            let faketime_file = dir.join("faketime.rc");
            faketime::write_spec(&faketime_file, &faketime_spec(0, 1.0, 0))
                .map_err(io_err(format!("writing {}", faketime_file.display())))?;
            planned.push(Planned {
                id: NodeId(i),
                name,
                addr,
                peer_listen,
                dir,
                data_dir,
                faketime_file,
            });
        }
        // The proxy for A -> B listens on B's address (another port), so logs read sensibly.
        let endpoints: Vec<Endpoint> = planned
            .iter()
            .map(|p| Endpoint {
                id: p.id,
                bind: p.addr.ip(),
                peer_listen: p.peer_listen,
            })
            .collect();
        let links = Links::start(&endpoints)
            .await
            .map_err(io_err("starting the link proxies"))?;
        let pids = MemberPids::default();
        let mut destinations = BTreeMap::new();
        if shared {
            for to in &planned {
                let routes = Routes {
                    node: to.id,
                    own: to.peer_listen,
                    links: links.into_node(to.id),
                };
                let bind = SocketAddr::from((to.addr.ip(), 0));
                let dest = DestinationProxy::start(bind, routes, pids.clone())
                    .await
                    .map_err(io_err(format!("starting the peer address of {}", to.id)))?;
                destinations.insert(to.id, dest);
            }
        }
        let mut members = Vec::new();
        for p in &planned {
            let peer_advertise = destinations.get(&p.id).map(DestinationProxy::listen_addr);
            let values = NodeValues {
                id: p.id,
                name: p.name.clone(),
                host: p.addr.ip().to_string(),
                port: p.addr.port(),
                listen: p.addr.to_string(),
                data_dir: p.data_dir.display().to_string(),
                peers: if spec.peering == Peering::Direct {
                    planned
                        .iter()
                        .map(|q| (q.id, q.name.clone(), q.addr.to_string()))
                        .collect()
                } else {
                    peer_addrs(p, &planned, &links, &destinations)
                },
                peer_listen: p.peer_listen.to_string(),
                peer_advertise: peer_advertise.unwrap_or(p.addr).to_string(),
                target_dir: spec
                    .folder
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default(),
            };
            let log = p.dir.join("server.log");
            let mut env = spec.render_env(&values);
            if let Ok(lib) = &faketime_lib {
                env.extend(faketime::env(lib, &p.faketime_file));
            }
            let mut line = spec.command_line(&config.program.display().to_string(), &values);
            let launch = Launch {
                program: PathBuf::from(line.remove(0)),
                args: line,
                env,
                log: log.clone(),
                cwd: p.dir.clone(),
            };
            let process = NodeProcess::spawn(launch)?;
            pids.set(p.id, process.pid());
            members.push(Member {
                id: p.id,
                name: p.name.clone(),
                addr: p.addr,
                peer_listen: p.peer_listen,
                peer_advertise,
                dir: p.dir.clone(),
                data_dir: p.data_dir.clone(),
                log,
                faketime_file: p.faketime_file.clone(),
                clock: Mutex::new((0, 1.0)),
                process: tokio::sync::Mutex::new(process),
            });
        }
        let nodes = members
            .iter()
            .map(|m| Node {
                id: m.id,
                name: m.name.clone(),
                client_addr: m.addr.to_string(),
            })
            .collect();
        Ok(LocalCluster {
            members,
            nodes,
            links,
            destinations,
            pids,
            clock_unsupported: faketime_lib.err(),
            wal: spec.wal.clone(),
            log_files: spec.log_files.clone(),
        })
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, id: NodeId) -> Result<&Member, ClusterError> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .ok_or(ClusterError::UnknownNode(id))
    }

    /// The listen address of the link proxy `from` -> `to`: with per-link peering, the
    /// address `from` is given for `to`; with shared peering, where `to`'s destination
    /// proxy relays `from`'s connections.
    pub fn proxy_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.links.proxy_addr(from, to)
    }

    /// With shared peering, `id`'s advertised peer address (its destination proxy).
    pub fn destination_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.destinations
            .get(&id)
            .map(DestinationProxy::listen_addr)
    }

    /// The faults on the link `from` -> `to`.
    pub fn link_fault(&self, from: NodeId, to: NodeId) -> Option<LinkFault> {
        self.links.link_fault(from, to)
    }

    /// The grudge currently applied (empty after `heal`).
    pub fn current_grudge(&self) -> Grudge {
        self.links.grudge()
    }

    /// Whether clock faults work on this cluster, and if not, why.
    pub fn clock_support(&self) -> Result<(), String> {
        match &self.clock_unsupported {
            None => Ok(()),
            Some(why) => Err(why.clone()),
        }
    }

    /// The node's pid while it runs.
    pub async fn pid(&self, id: NodeId) -> Result<Option<i32>, ClusterError> {
        let m = self.member(id)?;
        let mut p = m.process.lock().await;
        Ok(if p.is_running() { p.pid() } else { None })
    }

    /// Waits until every node accepts TCP connections on its client port. Fails early,
    /// naming the log, when a node exits instead.
    pub async fn wait_listening(&self, timeout_ms: u64) -> Result<(), LocalError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        for m in &self.members {
            loop {
                let attempt = tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(m.addr),
                )
                .await;
                if matches!(attempt, Ok(Ok(_))) {
                    break;
                }
                let exited = !m.process.lock().await.is_running();
                if exited || tokio::time::Instant::now() >= deadline {
                    return Err(LocalError::NotListening {
                        node: m.name.clone(),
                        addr: m.addr,
                        timeout_ms,
                        log: m.log.display().to_string(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Kills every node (SIGKILL to each process group) and stops the proxies' faults.
    /// Idempotent; also what dropping the cluster does, minus the waiting.
    pub async fn teardown(&self) -> Result<(), LocalError> {
        let mut first_err = None;
        for m in &self.members {
            let mut process = m.process.lock().await;
            if let Err(e) = process.kill().await {
                first_err.get_or_insert(e);
            }
            self.pids.set(m.id, process.pid());
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }
}

/// Flips byte `size - 1 - pick % 16` of the newest segment of `wal` in `data_dir` (names
/// sort oldest first) and says what changed.
fn corrupt_wal_tail(
    data_dir: &Path,
    wal: &WalFiles,
    pick: u8,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let wal_dir = data_dir.join(&wal.dir);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&wal_dir)
        .map_err(|e| format!("no write-ahead log at {}: {e}", wal_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&wal.prefix) && n.ends_with(&wal.suffix))
        })
        .collect();
    segments.sort();
    let newest = segments
        .pop()
        .ok_or_else(|| format!("no WAL segment in {}", wal_dir.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&newest)?;
    let size = file.metadata()?.len();
    if size <= 16 {
        return Err(format!("{} has {size} bytes", newest.display()).into());
    }
    let offset = size - 1 - u64::from(pick % 16);
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut byte)?;
    let flipped = byte[0] ^ 0xff;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&[flipped])?;
    file.sync_all()?;
    let name = newest.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(format!(
        "{} offset {offset} of {size}: {} -> {flipped}",
        name.unwrap_or_default(),
        byte[0]
    ))
}

/// The spec on `from`'s packets for `to`, if `from`'s fault covers that link.
/// `--peers` for node `id`: itself at its own address, every other node at its proxy.
/// Where node `p` reaches each node (itself included), for `{peers}`: with per-link
/// peering, the proxy of its link to each other node (itself at its own address); with
/// shared peering, every node's destination proxy, the same list for everyone.
fn peer_addrs(
    p: &Planned,
    planned: &[Planned],
    links: &Links,
    destinations: &BTreeMap<NodeId, DestinationProxy>,
) -> Vec<(NodeId, String, String)> {
    planned
        .iter()
        .map(|q| {
            let addr = match destinations.get(&q.id) {
                Some(dest) => dest.listen_addr(),
                None if q.id == p.id => p.addr,
                None => links.proxy_addr(p.id, q.id).unwrap_or(q.addr),
            };
            (q.id, q.name.clone(), addr.to_string())
        })
        .collect()
}

fn process_err<'a>(
    op: &'static str,
    m: &'a Member,
) -> impl FnOnce(ProcessError) -> ClusterError + 'a {
    move |e| ClusterError::Backend {
        op,
        target: m.name.clone(),
        source: Box::new(e),
    }
}

#[async_trait]
impl Cluster for LocalCluster {
    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
        for m in &self.members {
            for from in grudge.drops_from(m.id) {
                self.member(from)?;
            }
        }
        self.links.partition(grudge);
        Ok(())
    }

    /// Clears the partition and every node's packet fault.
    async fn heal(&self) -> Result<(), ClusterError> {
        self.links.heal();
        Ok(())
    }

    /// [`PACKET_CAPS`]: no duplication or reordering.
    async fn packet_caps(&self) -> Result<PacketCaps, ClusterError> {
        Ok(PACKET_CAPS)
    }

    /// Delays, paces and slows (loss) the node's outgoing peer traffic in the proxies of
    /// its links to `fault.to` (all its links when empty). Client traffic does not pass
    /// through them, unlike tc on a container's interface.
    async fn netem(&self, node: NodeId, fault: &PacketFault) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        fault.validate(node).map_err(|e| ClusterError::Backend {
            op: "netem",
            target: m.name.clone(),
            source: Box::new(e),
        })?;
        for &to in &fault.to {
            self.member(to)?;
        }
        self.links
            .netem(node, fault)
            .map_err(|reason| ClusterError::Unsupported {
                op: "netem",
                backend: "the local backend",
                reason,
            })
    }

    async fn clear_netem(&self, node: NodeId) -> Result<(), ClusterError> {
        self.member(node)?;
        self.links.clear_netem(node);
        Ok(())
    }

    async fn pause(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        m.process
            .lock()
            .await
            .pause()
            .await
            .map_err(process_err("pause", m))
    }

    async fn resume(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        m.process
            .lock()
            .await
            .resume()
            .map_err(process_err("resume", m))
    }

    async fn kill(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let mut process = m.process.lock().await;
        let killed = process.kill().await.map_err(process_err("kill", m));
        self.pids.set(m.id, process.pid());
        killed
    }

    async fn start(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let mut process = m.process.lock().await;
        if process.is_running() {
            return Ok(());
        }
        // A rate skew's spec is relative to the process's start: a new process needs it
        // rendered afresh before it reads it.
        let (offset_ms, rate) = *m.clock.lock().unwrap_or_else(|p| p.into_inner());
        faketime::write_spec(&m.faketime_file, &faketime_spec(offset_ms, rate, 0)).map_err(
            |e| ClusterError::Backend {
                op: "start",
                target: m.name.clone(),
                source: Box::new(e),
            },
        )?;
        let started = process.start().map_err(process_err("start", m));
        self.pids.set(m.id, process.pid());
        started
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`] (what `docker stop` does).
    async fn terminate(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let mut process = m.process.lock().await;
        let stopped = process
            .terminate(STOP_GRACE)
            .await
            .map_err(process_err("terminate", m));
        self.pids.set(m.id, process.pid());
        stopped
    }

    /// Flips one of the last 16 bytes of the newest segment of the target's write-ahead log
    /// in the node's data folder. The node must be down.
    async fn corrupt_log_tail(&self, node: NodeId) -> Result<String, ClusterError> {
        let m = self.member(node)?;
        let process = m.process.lock().await;
        let err = |source: Box<dyn std::error::Error + Send + Sync>| ClusterError::Backend {
            op: "corrupt log tail",
            target: m.name.clone(),
            source,
        };
        if process.pid().is_some() {
            return Err(err("the server is running; kill it first".into()));
        }
        let Some(wal) = &self.wal else {
            return Err(err(
                "the target names no write-ahead log the harness may corrupt".into(),
            ));
        };
        corrupt_wal_tail(&m.data_dir, wal, rand::random::<u8>()).map_err(err)
    }

    async fn clock(&self, node: NodeId, offset_ms: i64, rate: f64) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        if let Some(reason) = &self.clock_unsupported {
            return Err(ClusterError::Unsupported {
                op: "clock",
                backend: "the local backend",
                reason: reason.clone(),
            });
        }
        let elapsed_ms = m.process.lock().await.running_ms();
        let spec = faketime_spec(offset_ms, rate, elapsed_ms);
        faketime::write_spec(&m.faketime_file, &spec).map_err(|e| ClusterError::Backend {
            op: "clock",
            target: m.name.clone(),
            source: Box::new(e),
        })?;
        *m.clock.lock().unwrap_or_else(|p| p.into_inner()) = (offset_ms, rate);
        Ok(())
    }

    /// The node's output is written into its folder as it runs; copying is only needed
    /// when `dir` is elsewhere.
    async fn logs(&self, node: NodeId, dir: &Path) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let err = |e: std::io::Error| ClusterError::Backend {
            op: "logs",
            target: m.name.clone(),
            source: Box::new(e),
        };
        tokio::fs::create_dir_all(dir).await.map_err(err)?;
        let same = match (
            tokio::fs::canonicalize(dir).await,
            tokio::fs::canonicalize(&m.dir).await,
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            tokio::fs::copy(&m.log, dir.join("server.log"))
                .await
                .map_err(err)?;
        }
        for name in &self.log_files {
            let from = m.data_dir.join(name);
            let to = dir.join(name.rsplit('/').next().unwrap_or(name));
            let copy = async {
                let mut src = tokio::fs::File::open(&from)
                    .await?
                    .take(LOG_COPY_LIMIT_BYTES);
                let mut dst = tokio::fs::File::create(&to).await?;
                tokio::io::copy(&mut src, &mut dst).await
            };
            copy.await.map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_tail_corruption_flips_one_late_byte_of_the_newest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let old = vec![7u8; 64];
        let new: Vec<u8> = (0..64).collect();
        let wal = WalFiles {
            dir: "wal".into(),
            prefix: "wal-".into(),
            suffix: ".log".into(),
        };
        let wal_dir = dir.path().join("wal");
        std::fs::create_dir(&wal_dir).unwrap();
        std::fs::write(wal_dir.join("wal-0000000000000001.log"), &old).unwrap();
        std::fs::write(wal_dir.join("wal-0000000000000002.log"), &new).unwrap();
        std::fs::write(wal_dir.join("snapshot-0000000000000003.log"), &new).unwrap();
        let said = corrupt_wal_tail(dir.path(), &wal, 3).unwrap();
        assert_eq!(said, "wal-0000000000000002.log offset 60 of 64: 60 -> 195");
        let after = std::fs::read(wal_dir.join("wal-0000000000000002.log")).unwrap();
        let changed: Vec<usize> = (0..64).filter(|&i| after[i] != new[i]).collect();
        assert_eq!(changed, [60]);
        assert_eq!(
            std::fs::read(wal_dir.join("wal-0000000000000001.log")).unwrap(),
            old
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(corrupt_wal_tail(empty.path(), &wal, 0).is_err());
    }
}
