//! `DockerCluster`: N nodes of a target (rendered from its [`NodeSpec`]) on a private Docker
//! network, and the `Cluster` trait on top of it.
//!
//! Each node is two containers. `fl-<run>-nK-net` holds the node's network namespace: it
//! owns the fixed IP, has NET_ADMIN, and runs only `sleep`. `fl-<run>-nK` runs the server
//! inside that namespace (`network_mode: container:...`). Splitting them means iptables rules
//! are applied through the holder and so work while the server is paused or killed, and they
//! survive a server restart exactly as a real host's firewall survives a process crash. The
//! server's data directory is a folder on a per-node volume, so a restarted node finds its
//! data. Packet
//! faults live in the same namespace, for the same reasons: tc qdiscs on the node's
//! interface (netem when the kernel has `sch_netem`, else htb for rate limits) and, without
//! netem, iptables random-loss rules in a chain of their own (see `packet.rs`). Which
//! qdiscs the kernel has is probed once per cluster, on the first packet fault.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigLogConfig,
    Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, KillContainerOptions,
    ListNetworksOptions, LogsOptions, StartContainerOptions, StopContainerOptionsBuilder,
};
use faultline_nemeses::{
    faketime_spec, Cluster, ClusterError, FaultKind, Grudge, Node, NodeId, PacketCaps, PacketFault,
};
use futures_util::future::try_join_all;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::Read;
use tokio::io::AsyncWriteExt;

use super::api::DockerApi;
use super::cleanup::{teardown_run, Owner, Removed};
use super::error::{to_cluster_error, DockerError};
use super::guard::{TeardownGuard, TeardownHandle};
use super::packet::{Qdiscs, CLEAR_SCRIPT, PROBE_SCRIPT, QDISC_MISSING};
use super::subnet::{host_routes, parse_cidr, Subnet, MAX_NODES};
use crate::backend::links::{Endpoint, Links, PACKET_CAPS};
use crate::backend::spec::{
    NodeSpec, NodeValues, Peering, Program, WalFiles, CONTAINER_TARGET_DIR,
};

/// Where each node's data volume is mounted inside the server container.
pub const DATA_DIR: &str = "/data";
/// The node's data folder (`{data_dir}`), on the volume; the harness's own files (the
/// libfaketime timestamp) sit beside it, out of the program's way.
pub const NODE_DATA_DIR: &str = "/data/node";
/// The iptables chain faultline owns in each node; INPUT jumps to it. Flushing only this
/// chain heals without touching anything else in the namespace.
const CHAIN: &str = "FAULTLINE";
/// Upper bound on one node's copied log, so a runaway logger cannot fill the results disk.
const LOG_COPY_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// Runs in flight at once in one harness are few; networks that race for a subnet retry.
const NETWORK_CREATE_ATTEMPTS: usize = 16;
/// Docker's json-file log rotation per server container: bounded disk use for long runs.
const CONTAINER_LOG_MAX_SIZE: &str = "100m";
/// The libfaketime timestamp file, on the node's data volume so the harness can rewrite it
/// (through the holder container) whether or not the server is running.
const FAKETIME_FILE: &str = "/data/.faultline-faketime";
/// How long a graceful stop waits after SIGTERM before Docker sends SIGKILL.
const STOP_GRACE_S: i32 = 5;

/// How nodes' peer traffic travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PeerLinks {
    /// Directly between the nodes' addresses; partitions are iptables rules in each node's
    /// namespace and packet faults tc qdiscs on its interface.
    #[default]
    Direct,
    /// Through the harness's link proxies on the network's gateway (one per directed
    /// pair), which apply partitions and packet faults per link: delay without the
    /// kernel's `sch_netem`. Targets with per-link peering only.
    Proxied,
    /// `Proxied` when the host kernel lacks `sch_netem` (probed before the servers start),
    /// else `Direct`: for runs that need per-link delay.
    ProxiedWithoutNetem,
}

/// Everything that describes a Docker cluster.
#[derive(Debug, Clone)]
pub struct DockerClusterConfig {
    /// Short id naming every object of the run: `[a-z0-9-]`, at most 40 characters.
    pub run_id: String,
    /// Node image, e.g. `faultline-node:<hash>` from `image::ensure_node_image`; it holds
    /// the spec's program.
    pub image: String,
    pub nodes: u32,
    pub spec: NodeSpec,
    pub peer_links: PeerLinks,
    /// Whether the run injects clock faults: only then does the program start under
    /// libfaketime, whose re-read of the timestamp file on every clock call costs a program
    /// that reads the wall clock often (a JVM) much of its CPU in system time.
    pub clock_faults: bool,
}

/// One node's Docker-side identity.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: NodeId,
    pub name: String,
    pub ip: Ipv4Addr,
    /// Container running the server.
    pub container: String,
    /// Container holding the network namespace (and the iptables rules).
    pub net_container: String,
    pub volume: String,
}

pub struct DockerCluster {
    api: DockerApi,
    run_id: String,
    subnet: Subnet,
    network: String,
    members: Vec<Member>,
    nodes: Vec<Node>,
    /// The grudge in force, so a caller can ask what is applied.
    grudge: Mutex<Grudge>,
    /// Why the target's clock cannot be skewed, when it cannot (otherwise the program is
    /// started under libfaketime).
    clock_refused: Option<String>,
    /// The target's write-ahead log, for disk corruption.
    wal: Option<WalFiles>,
    /// Log files in the data folder, copied with the output.
    log_files: Vec<String>,
    /// The host kernel's packet schedulers, probed on the first packet fault.
    qdiscs: tokio::sync::OnceCell<Qdiscs>,
    /// With proxied peer links: the proxies, which hold the partition and packet faults.
    links: Option<Links>,
    guard: TeardownGuard,
}

/// The environment that starts a glibc program under libfaketime, wall clock only: faking
/// the monotonic clock too would move timers and Raft ticks, which an NTP step never does
/// (and libfaketime 0.9.10 breaks absolute monotonic sleeps when it tries). The timestamp
/// file is re-read on every call so a new skew takes hold at once.
fn faketime_env() -> Vec<String> {
    let triple = match std::env::consts::ARCH {
        "aarch64" => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    vec![
        format!("LD_PRELOAD=/usr/lib/{triple}/faketime/libfaketimeMT.so.1"),
        format!("FAKETIME_TIMESTAMP_FILE={FAKETIME_FILE}"),
        "FAKETIME_NO_CACHE=1".into(),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
    ]
}

/// Milliseconds a process has run, from `/proc/uptime` and `/proc/<pid>/stat` as printed
/// by [`PROCESS_AGE_SCRIPT`]: uptime seconds, clock ticks per second, then the stat line.
fn parse_process_age_ms(output: &str) -> Option<u64> {
    let mut lines = output.lines();
    let uptime_s: f64 = lines.next()?.split_whitespace().next()?.parse().ok()?;
    let ticks_per_s: f64 = lines.next()?.trim().parse().ok()?;
    let stat = lines.next()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // field 22 is the start time in clock ticks since boot.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let start_ticks: f64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    let age_s = uptime_s - start_ticks / ticks_per_s.max(1.0);
    Some((age_s.max(0.0) * 1000.0) as u64)
}

const PROCESS_AGE_SCRIPT: &str = "cat /proc/uptime; getconf CLK_TCK; cat /proc/1/stat";

/// Node `m`'s values for the spec's placeholders. Every node has an address of its own on
/// the run's network, so peers are reached directly, on the client port or on the spec's
/// peer port for targets whose peers listen apart; or, with proxied links, through the
/// proxy of each link.
fn node_values(
    spec: &NodeSpec,
    m: &Member,
    members: &[Member],
    links: Option<&Links>,
) -> NodeValues {
    let peer_port = match spec.peering {
        Peering::PerLink | Peering::Direct => spec.client_port,
        Peering::Shared { peer_port } => peer_port,
    };
    NodeValues {
        id: m.id,
        name: m.name.clone(),
        host: m.ip.to_string(),
        port: spec.client_port,
        listen: format!("0.0.0.0:{}", spec.client_port),
        data_dir: NODE_DATA_DIR.to_string(),
        peers: members
            .iter()
            .map(|p| {
                let addr = links
                    .filter(|_| spec.peering != Peering::Direct)
                    .and_then(|l| l.proxy_addr(m.id, p.id))
                    .map_or_else(|| format!("{}:{peer_port}", p.ip), |a| a.to_string());
                (p.id, p.name.clone(), addr)
            })
            .collect(),
        peer_listen: format!("0.0.0.0:{peer_port}"),
        peer_advertise: format!("{}:{peer_port}", m.ip),
        target_dir: if spec.folder.is_some() {
            CONTAINER_TARGET_DIR.to_string()
        } else {
            String::new()
        },
    }
}

/// Validates a run id: it becomes part of container names and DNS-ish labels.
pub fn validate_run_id(run_id: &str) -> Result<(), DockerError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 40
        && run_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DockerError::InvalidConfig(format!(
            "run id {run_id:?} must be 1-40 characters of [a-z0-9-]"
        )))
    }
}

/// A fresh run id: the UTC-free local epoch seconds plus randomness, short enough for names.
pub fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:x}-{:04x}", secs, rand::random::<u16>())
}

impl DockerCluster {
    /// Creates the network, volumes and containers and starts every node. On any failure
    /// everything created so far is removed before the error is returned.
    pub async fn create(api: DockerApi, config: &DockerClusterConfig) -> Result<Self, DockerError> {
        validate_run_id(&config.run_id)?;
        if config.nodes == 0 || config.nodes > MAX_NODES {
            return Err(DockerError::InvalidConfig(format!(
                "nodes must be 1..={MAX_NODES}, got {}",
                config.nodes
            )));
        }
        config
            .spec
            .check()
            .map_err(|e| DockerError::InvalidConfig(e.to_string()))?;
        api.call(
            "inspect image",
            &config.image,
            api.docker().inspect_image(&config.image),
        )
        .await?;
        // The guard exists before the first object does, so a failure at any step below
        // (or a panic) still removes what was made.
        let guard = TeardownGuard::new(api.clone(), &config.run_id);
        let owner = Owner::current();
        let (subnet, network) = create_network(&api, &config.run_id, &owner).await?;
        tracing::info!(run_id = config.run_id, %subnet, "created run network");

        let members: Vec<Member> = (1..=config.nodes)
            .map(|i| {
                let name = format!("n{i}");
                Member {
                    id: NodeId(i),
                    ip: subnet.node_ip(i).expect("i <= MAX_NODES checked above"),
                    container: format!("fl-{}-{name}", config.run_id),
                    net_container: format!("fl-{}-{name}-net", config.run_id),
                    volume: format!("fl-{}-{name}-data", config.run_id),
                    name,
                }
            })
            .collect();
        let spec = &config.spec;
        let nodes = members
            .iter()
            .map(|m| Node {
                id: m.id,
                name: m.name.clone(),
                client_addr: format!("{}:{}", m.ip, spec.client_port),
            })
            .collect();

        let mut cluster = Self {
            api,
            run_id: config.run_id.clone(),
            subnet,
            network,
            members,
            nodes,
            grudge: Mutex::new(Grudge::new()),
            clock_refused: match spec.refuses(FaultKind::Clock) {
                Some(why) => Some(why.to_string()),
                None if !config.clock_faults => Some(
                    "the run injects no clock faults, so the nodes run without libfaketime"
                        .to_string(),
                ),
                None => None,
            },
            wal: spec.wal.clone(),
            log_files: spec.log_files.clone(),
            qdiscs: tokio::sync::OnceCell::new(),
            links: None,
            guard,
        };
        let started = cluster.start_members(config, &owner).await;
        if let Err(e) = started {
            if let Err(te) = cluster.teardown().await {
                tracing::error!(error = %te, "teardown after failed start also failed");
            }
            return Err(e);
        }
        Ok(cluster)
    }

    /// Creates every node's namespace holder, decides how peers reach each other (which may
    /// need a probe of the kernel from a holder), then starts the servers.
    async fn start_members(
        &mut self,
        config: &DockerClusterConfig,
        owner: &Owner,
    ) -> Result<(), DockerError> {
        let spec = &config.spec;
        try_join_all(
            self.members
                .iter()
                .map(|m| self.create_holder(m, &config.image, owner)),
        )
        .await?;
        let proxied = match config.peer_links {
            PeerLinks::Direct => false,
            PeerLinks::Proxied => true,
            PeerLinks::ProxiedWithoutNetem => {
                let first = &self.members[0];
                let qdiscs = self.qdiscs(first).await.map_err(|e| {
                    DockerError::InvalidConfig(format!("probing the kernel's qdiscs: {e}"))
                })?;
                !qdiscs.netem
            }
        };
        if proxied {
            if spec.peering != Peering::PerLink {
                return Err(DockerError::InvalidConfig(format!(
                    "proxied peer links need a target whose nodes each get their own peer \
                     list; {} shares one",
                    spec.target
                )));
            }
            let endpoints: Vec<Endpoint> = self
                .members
                .iter()
                .map(|m| Endpoint {
                    id: m.id,
                    bind: IpAddr::V4(self.subnet.gateway()),
                    peer_listen: SocketAddr::from((m.ip, spec.client_port)),
                })
                .collect();
            let links = Links::start(&endpoints)
                .await
                .map_err(|source| DockerError::Io {
                    context: format!(
                        "starting the link proxies on the network's gateway {}",
                        self.subnet.gateway()
                    ),
                    source,
                })?;
            tracing::info!(
                run_id = self.run_id,
                "peer traffic goes through the harness's link proxies"
            );
            self.links = Some(links);
        }
        let this = &*self;
        try_join_all(this.members.iter().map(|m| {
            let values = node_values(spec, m, &this.members, this.links.as_ref());
            let program = match &spec.program {
                Program::Folder { path } => format!("{CONTAINER_TARGET_DIR}/{path}"),
                other => other.name().to_string(),
            };
            let command = spec.command_line(&program, &values);
            let mut env: Vec<String> = spec
                .render_env(&values)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if this.clock_refused.is_none() {
                env.extend(faketime_env());
            }
            this.create_server(m, &config.image, command, env, owner)
        }))
        .await
        .map(|_| ())
    }

    /// Whether peer traffic goes through the harness's link proxies.
    pub fn proxied_links(&self) -> bool {
        self.links.is_some()
    }

    /// The volume and the container that holds the node's network namespace (and its
    /// firewall chain).
    async fn create_holder(
        &self,
        m: &Member,
        image: &str,
        owner: &Owner,
    ) -> Result<(), DockerError> {
        let docker = self.api.docker();
        let mut labels = owner.labels(&self.run_id);
        labels.insert("faultline.node".into(), m.name.clone());

        self.api
            .call(
                "create volume",
                &m.volume,
                docker.create_volume(VolumeCreateRequest {
                    name: Some(m.volume.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
            )
            .await?;

        let mut net_labels = labels.clone();
        net_labels.insert("faultline.role".into(), "net".into());
        let holder = ContainerCreateBody {
            image: Some(image.to_string()),
            hostname: Some(m.name.clone()),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            labels: Some(net_labels),
            host_config: Some(HostConfig {
                network_mode: Some(self.network.clone()),
                cap_add: Some(vec!["NET_ADMIN".into()]),
                // The data volume too: clock files and disk faults are written through the
                // holder, which runs while the server is killed.
                binds: Some(vec![format!("{}:{DATA_DIR}", m.volume)]),
                // `sleep` ignores SIGTERM as pid 1; init makes removal prompt.
                init: Some(true),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(m.ip.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        self.create_and_start(&m.net_container, holder).await?;
        // INPUT -> FAULTLINE once; partitions then only rewrite FAULTLINE.
        self.api
            .exec(
                &m.net_container,
                &[
                    "sh",
                    "-c",
                    &format!(
                        "iptables -w -N {CHAIN} && iptables -w -I INPUT -j {CHAIN} && \
                         echo +0 > {FAKETIME_FILE}"
                    ),
                ],
            )
            .await
            .map(|_| ())
    }

    /// The container that runs the node's program, in the holder's namespace.
    async fn create_server(
        &self,
        m: &Member,
        image: &str,
        command: Vec<String>,
        env: Vec<String>,
        owner: &Owner,
    ) -> Result<(), DockerError> {
        let mut server_labels = owner.labels(&self.run_id);
        server_labels.insert("faultline.node".into(), m.name.clone());
        server_labels.insert("faultline.role".into(), "server".into());
        let server = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(command),
            env: Some(env),
            labels: Some(server_labels),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{}", m.net_container)),
                binds: Some(vec![format!("{}:{DATA_DIR}", m.volume)]),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([(
                        "max-size".to_string(),
                        CONTAINER_LOG_MAX_SIZE.to_string(),
                    )])),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_and_start(&m.container, server).await
    }

    async fn create_and_start(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<(), DockerError> {
        let docker = self.api.docker();
        self.api
            .call(
                "create container",
                name,
                docker.create_container(
                    Some(CreateContainerOptions {
                        name: Some(name.to_string()),
                        ..Default::default()
                    }),
                    body,
                ),
            )
            .await?;
        self.api
            .call(
                "start container",
                name,
                docker.start_container(name, None::<StartContainerOptions>),
            )
            .await
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    pub fn network_name(&self) -> &str {
        &self.network
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn api(&self) -> &DockerApi {
        &self.api
    }

    /// The grudge currently applied (empty after `heal`).
    pub fn current_grudge(&self) -> Grudge {
        self.grudge.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn member(&self, id: NodeId) -> Result<&Member, ClusterError> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .ok_or(ClusterError::UnknownNode(id))
    }

    /// A handle that tears this cluster down from elsewhere (signal handler, supervisor).
    pub fn teardown_handle(&self) -> TeardownHandle {
        self.guard.handle()
    }

    /// Removes all of the run's containers, the network and the volumes. Idempotent.
    pub async fn teardown(&self) -> Result<Removed, DockerError> {
        self.guard.teardown().await
    }

    /// Runs a command in node `id`'s network namespace (the holder container), e.g. to probe
    /// reachability or inspect iptables. Works while the server is paused or killed.
    pub async fn exec_in_netns(&self, id: NodeId, cmd: &[&str]) -> Result<String, ClusterError> {
        let m = self.member(id)?;
        self.api
            .exec(&m.net_container, cmd)
            .await
            .map_err(|e| to_cluster_error("exec", &m.net_container, e))
    }

    /// Waits until every node accepts TCP connections on its client port, polling.
    pub async fn wait_listening(&self, timeout_ms: u64) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        for node in &self.nodes {
            loop {
                let attempt = tokio::time::timeout(
                    std::time::Duration::from_millis(500),
                    tokio::net::TcpStream::connect(&node.client_addr),
                )
                .await;
                if matches!(attempt, Ok(Ok(_))) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ClusterError::Timeout {
                        op: "wait listening",
                        target: node.client_addr.clone(),
                        timeout_ms,
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn container_state(&self, container: &str) -> Result<(bool, bool), DockerError> {
        let info = self
            .api
            .call(
                "inspect container",
                container,
                self.api.docker().inspect_container(container, None),
            )
            .await?;
        let state = info.state.unwrap_or_default();
        Ok((
            state.running.unwrap_or(false),
            state.paused.unwrap_or(false),
        ))
    }

    async fn unpause(&self, m: &Member) -> Result<(), DockerError> {
        self.api
            .call(
                "unpause",
                &m.container,
                self.api.docker().unpause_container(&m.container),
            )
            .await
    }

    /// Copies `name` (relative to the data folder) out of the node's volume, through the
    /// holder container, into `dir`, at most [`LOG_COPY_LIMIT_BYTES`] of it.
    async fn copy_log_file(&self, m: &Member, name: &str, dir: &Path) -> Result<(), ClusterError> {
        let err = |e: DockerError| to_cluster_error("logs", &m.name, e);
        let path = format!("{NODE_DATA_DIR}/{name}");
        let fetch = async {
            let mut stream = self.api.docker().download_from_container(
                &m.net_container,
                Some(DownloadFromContainerOptions { path: path.clone() }),
            );
            // The archive's header and padding come on top of the file itself.
            let mut tar_bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if tar_bytes.len() as u64 + chunk.len() as u64 > LOG_COPY_LIMIT_BYTES + 4096 {
                    break;
                }
                tar_bytes.extend_from_slice(&chunk);
            }
            Ok::<_, bollard::errors::Error>(tar_bytes)
        };
        let tar_bytes = self.api.call("copy log", &path, fetch).await.map_err(err)?;
        let to = dir.join(name.rsplit('/').next().unwrap_or(name));
        let extract = || -> std::io::Result<()> {
            let mut archive = tar::Archive::new(&tar_bytes[..]);
            let mut entry = archive
                .entries()?
                .next()
                .ok_or_else(|| std::io::Error::other("empty archive"))??;
            let mut out = std::fs::File::create(&to)?;
            std::io::copy(&mut (&mut entry).take(LOG_COPY_LIMIT_BYTES), &mut out)?;
            Ok(())
        };
        extract().map_err(|source| {
            err(DockerError::Io {
                context: format!("{path} -> {}", to.display()),
                source,
            })
        })
    }

    /// Whether the server container runs; a frozen one is thawed first, because Docker
    /// refuses to kill or stop a paused container (it then runs for the few milliseconds
    /// until the signal lands, which a crash can do anyway).
    async fn thaw_if_running(&self, m: &Member) -> Result<bool, DockerError> {
        let (running, paused) = self.container_state(&m.container).await?;
        if running && paused {
            self.unpause(m).await?;
        }
        Ok(running)
    }

    /// Runs `script` in the node's namespace with `$dev` set to the interface holding the
    /// node's IP (not assumed to be `eth0`).
    async fn exec_on_interface(&self, m: &Member, script: &str) -> Result<String, DockerError> {
        let script = format!(
            "dev=$(ip -o -4 addr show to {ip} | awk '{{print $2; exit}}'); \
             [ -n \"$dev\" ] || {{ echo 'no interface holds {ip}'; exit 1; }}; {script}",
            ip = m.ip
        );
        self.api
            .exec(&m.net_container, &["sh", "-c", &script])
            .await
    }

    /// Removes the node's packet fault (qdisc and loss rules) if it has one: idempotent.
    async fn clear_packet_fault(&self, m: &Member) -> Result<(), DockerError> {
        self.exec_on_interface(m, CLEAR_SCRIPT).await.map(|_| ())
    }

    /// The host's packet schedulers, probed once (all nodes share the host's kernel)
    /// through `m`'s namespace.
    async fn qdiscs(&self, m: &Member) -> Result<Qdiscs, ClusterError> {
        self.qdiscs
            .get_or_try_init(|| async {
                let out = self
                    .api
                    .exec(&m.net_container, &["sh", "-c", PROBE_SCRIPT])
                    .await
                    .map_err(|e| to_cluster_error("probe qdiscs", &m.name, e))?;
                let qdiscs = Qdiscs::parse_probe(&out).map_err(|e| ClusterError::Backend {
                    op: "probe qdiscs",
                    target: m.name.clone(),
                    source: e.into(),
                })?;
                tracing::info!(?qdiscs, "probed the host's packet schedulers");
                Ok(qdiscs)
            })
            .await
            .copied()
    }

    async fn apply_rules(&self, m: &Member, grudge: &Grudge) -> Result<(), DockerError> {
        let mut script = format!("set -e; iptables -w -F {CHAIN}");
        for from in grudge.drops_from(m.id) {
            // Unknown ids were rejected before any node was touched.
            if let Some(src) = self.members.iter().find(|x| x.id == from) {
                script.push_str(&format!("; iptables -w -A {CHAIN} -s {} -j DROP", src.ip));
            }
        }
        self.api
            .exec(&m.net_container, &["sh", "-c", &script])
            .await
            .map(|_| ())
    }
}

/// Picks a free /24 and creates the run's bridge network on it. The network is `internal`:
/// containers can reach each other and the host's bridge address, but nothing beyond.
async fn create_network(
    api: &DockerApi,
    run_id: &str,
    owner: &Owner,
) -> Result<(Subnet, String), DockerError> {
    let name = format!("fl-{run_id}");
    let existing = api
        .call(
            "list networks",
            "all",
            api.docker().list_networks(None::<ListNetworksOptions>),
        )
        .await?;
    let mut taken: Vec<(Ipv4Addr, u8)> = existing
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
        .flatten()
        .filter_map(|c| parse_cidr(c.subnet.as_deref()?))
        .collect();
    taken.extend(host_routes());

    let mut attempts = 0;
    for subnet in Subnet::candidates(run_id) {
        if taken.iter().any(|&(addr, len)| subnet.overlaps(addr, len)) {
            continue;
        }
        attempts += 1;
        if attempts > NETWORK_CREATE_ATTEMPTS {
            break;
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            labels: Some(owner.labels(run_id)),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(subnet.gateway().to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match api
            .call(
                "create network",
                &name,
                api.docker().create_network(request),
            )
            .await
        {
            Ok(_) => return Ok((subnet, name)),
            // Another run took this subnet between our listing and our create: try the next.
            Err(e) if e.to_string().contains("overlap") => {
                tracing::debug!(%subnet, "subnet taken concurrently; trying the next");
            }
            Err(e) => return Err(e),
        }
    }
    Err(DockerError::NoFreeSubnet { attempts })
}

#[async_trait]
impl Cluster for DockerCluster {
    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
        for m in &self.members {
            for from in grudge.drops_from(m.id) {
                self.member(from)?;
            }
        }
        // The recorded grudge is what we tried, even if a node failed: heal clears it anyway.
        if let Ok(mut current) = self.grudge.lock() {
            *current = grudge.clone();
        }
        if let Some(links) = &self.links {
            links.partition(grudge);
            return Ok(());
        }
        try_join_all(self.members.iter().map(|m| async move {
            self.apply_rules(m, grudge)
                .await
                .map_err(|e| to_cluster_error("partition", &m.name, e))
        }))
        .await
        .map(|_| ())
    }

    /// Clears the partition and every node's packet fault.
    async fn heal(&self) -> Result<(), ClusterError> {
        if let Some(links) = &self.links {
            links.heal();
        }
        self.partition(&Grudge::new()).await?;
        try_join_all(self.members.iter().map(|m| async move {
            self.clear_packet_fault(m)
                .await
                .map_err(|e| to_cluster_error("heal", &m.name, e))
        }))
        .await
        .map(|_| ())
    }

    /// Everything with `sch_netem`; without it, loss (iptables) and rate limits (htb). With
    /// proxied links, what the proxies can do.
    async fn packet_caps(&self) -> Result<PacketCaps, ClusterError> {
        if self.links.is_some() {
            return Ok(PACKET_CAPS);
        }
        let first = self
            .members
            .first()
            .ok_or(ClusterError::UnknownNode(NodeId(1)))?;
        Ok(self.qdiscs(first).await?.caps())
    }

    async fn netem(&self, node: NodeId, fault: &PacketFault) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        fault.validate(node).map_err(|e| ClusterError::Backend {
            op: "netem",
            target: m.name.clone(),
            source: Box::new(e),
        })?;
        if let Some(links) = &self.links {
            for &to in &fault.to {
                self.member(to)?;
            }
            return links
                .netem(node, fault)
                .map_err(|reason| ClusterError::Unsupported {
                    op: "netem",
                    backend: "the Docker backend",
                    reason,
                });
        }
        let to = fault
            .to
            .iter()
            .map(|&id| self.member(id).map(|d| d.ip))
            .collect::<Result<Vec<_>, _>>()?;
        let qdiscs = self.qdiscs(m).await?;
        let unsupported = |reason: String| ClusterError::Unsupported {
            op: "netem",
            backend: "the Docker backend",
            reason,
        };
        // The script clears the previous fault first, so a second netem needs no clear.
        let script = qdiscs.render(fault, &to).map_err(unsupported)?;
        match self.exec_on_interface(m, &script).await {
            Ok(_) => Ok(()),
            // The probe said the qdisc was there, but tc disagrees now (a module unloaded?).
            Err(DockerError::ExecFailed { output, .. })
                if QDISC_MISSING.iter().any(|p| output.contains(p)) =>
            {
                // Leave nothing half-applied behind.
                if let Err(e) = self.clear_packet_fault(m).await {
                    tracing::warn!(node = m.name, error = %e, "clearing a refused netem failed");
                }
                Err(unsupported(format!(
                    "the host kernel lacks a qdisc this fault needs; tc said: {output}"
                )))
            }
            Err(e) => Err(to_cluster_error("netem", &m.name, e)),
        }
    }

    async fn clear_netem(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        if let Some(links) = &self.links {
            links.clear_netem(node);
        }
        self.clear_packet_fault(m)
            .await
            .map_err(|e| to_cluster_error("clear netem", &m.name, e))
    }

    async fn pause(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let err = |e| to_cluster_error("pause", &m.name, e);
        let (running, paused) = self.container_state(&m.container).await.map_err(err)?;
        if !running || paused {
            return Ok(());
        }
        self.api
            .call(
                "pause",
                &m.container,
                self.api.docker().pause_container(&m.container),
            )
            .await
            .map_err(err)
    }

    async fn resume(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let err = |e| to_cluster_error("resume", &m.name, e);
        let (_, paused) = self.container_state(&m.container).await.map_err(err)?;
        if !paused {
            return Ok(());
        }
        self.unpause(m).await.map_err(err)
    }

    async fn kill(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let err = |e| to_cluster_error("kill", &m.name, e);
        if !self.thaw_if_running(m).await.map_err(err)? {
            return Ok(());
        }
        let killed = self
            .api
            .call(
                "kill",
                &m.container,
                self.api.docker().kill_container(
                    &m.container,
                    Some(KillContainerOptions {
                        signal: "KILL".into(),
                    }),
                ),
            )
            .await;
        match killed {
            // 409: it exited on its own between the inspect and the kill.
            Err(e) if e.has_status(409) => Ok(()),
            other => other.map_err(err),
        }
    }

    async fn start(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let err = |e| to_cluster_error("start", &m.name, e);
        let (running, _) = self.container_state(&m.container).await.map_err(err)?;
        if running {
            return Ok(());
        }
        let started = self
            .api
            .call(
                "start",
                &m.container,
                self.api
                    .docker()
                    .start_container(&m.container, None::<StartContainerOptions>),
            )
            .await;
        match started {
            Err(e) if e.has_status(304) => Ok(()),
            other => other.map_err(err),
        }
    }

    /// Rewrites the node's libfaketime file (atomically: a reader never sees half a spec).
    /// A rate needs the server process's age, because libfaketime measures rates from the
    /// process's start; a stopped server starts afresh, so its age counts as zero.
    async fn clock(&self, node: NodeId, offset_ms: i64, rate: f64) -> Result<(), ClusterError> {
        if let Some(why) = &self.clock_refused {
            return Err(ClusterError::Unsupported {
                op: "clock",
                backend: "the Docker backend",
                reason: format!("{why}; refusing rather than pretending"),
            });
        }
        let m = self.member(node)?;
        let err = |e| to_cluster_error("clock", &m.name, e);
        let mut age_ms = 0;
        if (rate - 1.0).abs() > f64::EPSILON {
            let (running, paused) = self.container_state(&m.container).await.map_err(err)?;
            if running && !paused {
                let out = self
                    .api
                    .exec(&m.container, &["sh", "-c", PROCESS_AGE_SCRIPT])
                    .await
                    .map_err(err)?;
                age_ms = parse_process_age_ms(&out).ok_or_else(|| ClusterError::Backend {
                    op: "clock",
                    target: m.name.clone(),
                    source: format!("cannot read the server's age from {out:?}").into(),
                })?;
            }
        }
        let spec = faketime_spec(offset_ms, rate, age_ms);
        let script = format!(
            "printf '%s\\n' '{spec}' > {FAKETIME_FILE}.tmp && mv {FAKETIME_FILE}.tmp {FAKETIME_FILE}"
        );
        self.api
            .exec(&m.net_container, &["sh", "-c", &script])
            .await
            .map(|_| ())
            .map_err(err)
    }

    /// `docker stop` with a grace period: SIGTERM, then SIGKILL after [`STOP_GRACE_S`].
    async fn terminate(&self, node: NodeId) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let err = |e| to_cluster_error("terminate", &m.name, e);
        if !self.thaw_if_running(m).await.map_err(err)? {
            return Ok(());
        }
        let stopped = self
            .api
            .call(
                "stop",
                &m.container,
                self.api.docker().stop_container(
                    &m.container,
                    Some(StopContainerOptionsBuilder::new().t(STOP_GRACE_S).build()),
                ),
            )
            .await;
        match stopped {
            Err(e) if e.has_status(304) => Ok(()),
            other => other.map_err(err),
        }
    }

    /// Flips one of the last 16 bytes of the newest segment of the target's write-ahead log
    /// on the node's volume, through the holder container (the server is down).
    async fn corrupt_log_tail(&self, node: NodeId) -> Result<String, ClusterError> {
        let m = self.member(node)?;
        let err = |e| to_cluster_error("corrupt log tail", &m.name, e);
        let (running, _) = self.container_state(&m.container).await.map_err(err)?;
        if running {
            return Err(ClusterError::Backend {
                op: "corrupt log tail",
                target: m.name.clone(),
                source: "the server is running; kill it first".into(),
            });
        }
        let Some(wal) = &self.wal else {
            return Err(ClusterError::Backend {
                op: "corrupt log tail",
                target: m.name.clone(),
                source: "the target names no write-ahead log the harness may corrupt".into(),
            });
        };
        // The names are checked to be plain path characters (`NodeSpec::check`).
        let files = format!("{NODE_DATA_DIR}/{}/{}*{}", wal.dir, wal.prefix, wal.suffix);
        let script = format!(
            "set -e; f=$(ls {files} 2>/dev/null | tail -n 1); \
             [ -n \"$f\" ] || {{ echo 'no WAL segment'; exit 1; }}; \
             size=$(stat -c %s \"$f\"); [ \"$size\" -gt 16 ] || {{ echo \"$f has $size bytes\"; exit 1; }}; \
             r=$(od -An -N1 -tu1 /dev/urandom | tr -d ' '); off=$((size - 1 - r % 16)); \
             b=$(od -An -j \"$off\" -N1 -tu1 \"$f\" | tr -d ' '); nb=$((b ^ 255)); \
             printf \"$(printf '\\\\%03o' \"$nb\")\" | dd of=\"$f\" bs=1 seek=\"$off\" count=1 conv=notrunc 2>/dev/null; \
             echo \"$(basename \"$f\") offset $off of $size: $b -> $nb\""
        );
        let out = self
            .api
            .exec(&m.net_container, &["sh", "-c", &script])
            .await
            .map_err(err)?;
        Ok(out.trim().to_string())
    }

    async fn logs(&self, node: NodeId, dir: &Path) -> Result<(), ClusterError> {
        let m = self.member(node)?;
        let io_err = |context: String| {
            move |source| {
                to_cluster_error(
                    "logs",
                    &m.name,
                    DockerError::Io {
                        context: context.clone(),
                        source,
                    },
                )
            }
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_err(format!("create {}", dir.display())))?;
        let path = dir.join("server.log");
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(io_err(format!("create {}", path.display())))?;
        let copy = async {
            let mut stream = self.api.docker().logs(
                &m.container,
                Some(LogsOptions {
                    stdout: true,
                    stderr: true,
                    timestamps: true,
                    tail: "all".into(),
                    ..Default::default()
                }),
            );
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let bytes = chunk?.into_bytes();
                if written + bytes.len() as u64 > LOG_COPY_LIMIT_BYTES {
                    tracing::warn!(node = m.name, "log copy truncated at limit");
                    break;
                }
                written += bytes.len() as u64;
                // A write error surfaces below through flush; keep reading the daemon bounded.
                if file.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Ok::<_, bollard::errors::Error>(())
        };
        self.api
            .call("logs", &m.container, copy)
            .await
            .map_err(|e| to_cluster_error("logs", &m.name, e))?;
        file.flush()
            .await
            .map_err(io_err(format!("write {}", path.display())))?;
        for name in &self.log_files {
            self.copy_log_file(m, name, dir).await?;
        }
        Ok(())
    }
}

/// Tears a run down by id, without a cluster value (e.g. from a supervisor after a crash).
pub async fn teardown(api: &DockerApi, run_id: &str) -> Result<Removed, DockerError> {
    teardown_run(api, run_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_name_safe() {
        assert!(validate_run_id("a1-b2").is_ok());
        assert!(validate_run_id(&new_run_id()).is_ok());
        for bad in ["", "UPPER", "a_b", "a/b", &"x".repeat(41)] {
            assert!(validate_run_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn nodes_reach_their_peers_directly_on_the_right_port() {
        use crate::backend::spec::Readiness;
        let members: Vec<Member> = (1..=2)
            .map(|i| Member {
                id: NodeId(i),
                name: format!("n{i}"),
                ip: Ipv4Addr::new(10, 213, 1, 10 + i as u8),
                container: "c".into(),
                net_container: "c-net".into(),
                volume: "v".into(),
            })
            .collect();
        let mut spec = NodeSpec {
            target: "t".into(),
            program: Program::Installed {
                name: "t".into(),
                install: String::new(),
            },
            args: vec!["{peers}".into(), "{listen}".into(), "{data_dir}".into()],
            env: Vec::new(),
            client_port: 8080,
            peering: Peering::PerLink,
            peer_entry: "{id}={addr}".into(),
            readiness: Readiness::ClientPort,
            log_files: Vec::new(),
            wal: None,
            refused: Vec::new(),
            setup: Vec::new(),
            folder: None,
            packages: Vec::new(),
        };
        let v = node_values(&spec, &members[1], &members, None);
        assert_eq!(
            spec.render_args(&v),
            [
                "1=10.213.1.11:8080,2=10.213.1.12:8080",
                "0.0.0.0:8080",
                "/data/node"
            ]
        );
        spec.peering = Peering::Shared { peer_port: 2380 };
        spec.args = vec![
            "{peers}".into(),
            "{peer_listen}".into(),
            "{peer_advertise}".into(),
        ];
        spec.peer_entry = "{name}=http://{addr}".into();
        let v = node_values(&spec, &members[0], &members, None);
        assert_eq!(
            spec.render_args(&v),
            [
                "n1=http://10.213.1.11:2380,n2=http://10.213.1.12:2380",
                "0.0.0.0:2380",
                "10.213.1.11:2380"
            ]
        );
    }
}
