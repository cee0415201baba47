//! The `raftkv` binary: parses the command line, opens the node's data directory, starts
//! the node thread, the peer transport and the HTTP listeners, and shuts down cleanly on
//! SIGTERM / SIGINT (in-flight requests finish, the WAL is synced, then exit 0).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use raftkv::node::{Input, Node, NodeConfig, NodeHandle, INPUT_QUEUE_CAPACITY};
use raftkv::raft::{Bug, Config, NodeId, ReadMode};
use raftkv::server::{router, AppState};
use raftkv::transport::PeerTransport;
use tokio::sync::watch;

/// A Raft-replicated key-value store and lock service with planted bugs for testing.
#[derive(Debug, Parser)]
#[command(name = "raftkv", version)]
struct Cli {
    /// This node's id (must appear in --peers or be added to them).
    #[arg(long)]
    id: NodeId,
    /// Every node as ID=HOST:PORT, comma-separated (this node may be included). Peers
    /// send Raft messages to, and followers forward client requests to, these addresses.
    #[arg(long, value_delimiter = ',', required = true)]
    peers: Vec<String>,
    /// Directory for the WAL and snapshots (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Client HTTP listen address (also serves peer traffic).
    #[arg(long)]
    listen: SocketAddr,
    /// Optional second listener for peer traffic (serves the same routes).
    #[arg(long)]
    peer_listen: Option<SocketAddr>,
    /// Planted defect to enable (repeatable): stale-read, lost-ack, no-fsync, lease-clock,
    /// old-term-commit, token-reuse.
    #[arg(long = "bug", value_delimiter = ',')]
    bugs: Vec<String>,
    /// Election timeout range in ms, MIN-MAX.
    #[arg(long, default_value = "150-300")]
    election_timeout_ms: String,
    /// Heartbeat interval in ms.
    #[arg(long, default_value_t = 30)]
    heartbeat_ms: u64,
    /// Length of one Raft tick in ms.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Serve reads under a leader lease instead of a ReadIndex heartbeat round.
    #[arg(long)]
    lease_reads: bool,
    /// Most log entries one AppendEntries message carries (etcd's MaxSizePerMsg, counted
    /// in entries). 1 sends each entry in its own message, as the Raft paper draws them.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_append_entries: u64,
    /// How long a client request waits for commit (or forwarding) before `timeout`.
    #[arg(long, default_value_t = 2000)]
    request_timeout_ms: u64,
    /// Answer followers' client requests with 307 to the leader instead of forwarding.
    #[arg(long)]
    no_forward: bool,
    /// Snapshot and compact the log after this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// Disk fault mode (LazyFS-style file layer): keep written-but-unsynced WAL data in
    /// process memory until fsync, so a crash (`kill -9`) loses it as a power cut would.
    /// Harmless for a correct node, which fsyncs before acknowledging; with
    /// `--bug no-fsync` it turns the missing fsync into lost acknowledged writes.
    #[arg(long)]
    lose_unsynced: bool,
}

fn parse_peers(id: NodeId, specs: &[String]) -> anyhow::Result<BTreeMap<NodeId, String>> {
    let mut peers = BTreeMap::new();
    for spec in specs.iter().filter(|s| !s.is_empty()) {
        let (n, addr) = spec
            .split_once('=')
            .with_context(|| format!("peer {spec:?} is not ID=HOST:PORT"))?;
        let n: NodeId = n
            .trim()
            .parse()
            .with_context(|| format!("bad peer id in {spec:?}"))?;
        if peers.insert(n, addr.trim().to_string()).is_some() {
            bail!("peer {n} listed twice");
        }
    }
    if !peers.contains_key(&id) {
        bail!("--peers must include this node ({id}) so others can be told its address");
    }
    Ok(peers)
}

fn parse_range(s: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = s.split_once('-').context("expected MIN-MAX")?;
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    if a == 0 || b < a {
        bail!("empty range {s}");
    }
    Ok((a, b))
}

fn raft_config(cli: &Cli) -> anyhow::Result<Config> {
    let (min_ms, max_ms) =
        parse_range(&cli.election_timeout_ms).context("--election-timeout-ms")?;
    let tick = cli.tick_ms.max(1);
    let mut bugs = BTreeSet::new();
    for b in &cli.bugs {
        bugs.insert(b.parse::<Bug>()?);
    }
    let cfg = Config {
        election_timeout_min_ticks: min_ms.div_ceil(tick),
        election_timeout_max_ticks: max_ms.div_ceil(tick),
        heartbeat_interval_ticks: cli.heartbeat_ms.div_ceil(tick).max(1),
        // lease-clock is a defect of lease reads, so it turns them on.
        read_mode: if cli.lease_reads || bugs.contains(&Bug::LeaseClock) {
            ReadMode::Lease
        } else {
            ReadMode::ReadIndex
        },
        tick_ms: tick,
        max_entries_per_msg: usize::try_from(cli.max_append_entries)
            .context("--max-append-entries")?,
        bugs,
        ..Config::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

async fn shutdown_signal(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let addrs = parse_peers(cli.id, &cli.peers)?;
    let raft = raft_config(&cli)?;
    tracing::info!(id = cli.id, ?addrs, bugs = ?cli.bugs, "starting raftkv");

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        // Peer and forwarding traffic must never go through an environment HTTP proxy.
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .context("building HTTP client")?;
    let others: BTreeMap<NodeId, String> = addrs
        .iter()
        .filter(|(n, _)| **n != cli.id)
        .map(|(n, a)| (*n, a.clone()))
        .collect();
    let transport = PeerTransport::start(&others, client.clone());
    let node_cfg = NodeConfig {
        id: cli.id,
        voters: addrs.keys().copied().collect(),
        data_dir: cli.data_dir.clone(),
        raft,
        tick_ms: cli.tick_ms.max(1),
        snapshot_every_entries: cli.snapshot_every.max(1),
        segment_max_bytes: 64 * 1024 * 1024,
        lose_unsynced: cli.lose_unsynced,
    };
    let node = Node::open(node_cfg, transport).context("opening node")?;
    let (tx, rx) = std::sync::mpsc::sync_channel(INPUT_QUEUE_CAPACITY);
    let handle = NodeHandle::new(tx);
    let (stop_tx, stop_rx) = watch::channel(false);
    let node_stop = stop_tx.clone();
    let node_thread = std::thread::Builder::new()
        .name("raft-node".into())
        .spawn(move || {
            let r = node.run(rx);
            // Whatever the reason the node stopped, stop serving.
            let _ = node_stop.send(true);
            r
        })
        .context("spawning node thread")?;

    let state = AppState {
        node: handle.clone(),
        id: cli.id,
        addrs: Arc::new(addrs),
        client,
        request_timeout: Duration::from_millis(cli.request_timeout_ms),
        forward: !cli.no_forward,
    };
    let app = router(state);
    let mut servers = Vec::new();
    let mut listen = vec![cli.listen];
    listen.extend(cli.peer_listen);
    for addr in listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, "listening");
        let app = app.clone();
        let stop = stop_rx.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal(stop))
                .await
        }));
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    let mut stop_wait = stop_rx.clone();
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = stop_wait.wait_for(|s| *s) => tracing::error!("node thread stopped; shutting down"),
    }
    let _ = stop_tx.send(true);
    for s in servers {
        // Graceful shutdown waits for in-flight requests (each bounded by request_timeout).
        match tokio::time::timeout(Duration::from_secs(10), s).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(%e, "server error"),
            Ok(Err(e)) => tracing::warn!(%e, "server task failed"),
            Err(_) => tracing::warn!("server did not stop in time"),
        }
    }
    // The queue may be momentarily full; retry briefly. Dropping the last sender also
    // stops the node once the servers (which hold the other senders) are gone.
    for _ in 0..100 {
        if handle.send(Input::Shutdown).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(handle);
    // Every acknowledged write was fsynced before its ack, so giving up on a stuck node
    // thread loses nothing; it only must not hang the process forever.
    let join = tokio::task::spawn_blocking(move || node_thread.join());
    match tokio::time::timeout(Duration::from_secs(10), join).await {
        Ok(Ok(Ok(Ok(())))) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Ok(Ok(Ok(Err(e)))) => Err(anyhow::anyhow!(e).context("node failed")),
        Ok(Ok(Err(_))) => bail!("node thread panicked"),
        Ok(Err(e)) => bail!("joining node thread: {e}"),
        Err(_) => bail!("node thread did not stop within 10 s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec![
            "raftkv",
            "--id",
            "2",
            "--peers",
            "1=a:1,2=b:2,3=c:3",
            "--data-dir",
            "/tmp/x",
            "--listen",
            "127.0.0.1:0",
        ];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parse")
    }

    #[test]
    fn peers_and_timeouts_parse() {
        let c = cli(&["--bug", "no-fsync,token-reuse", "--bug", "stale-read"]);
        let peers = parse_peers(c.id, &c.peers).unwrap();
        assert_eq!(peers.get(&3).map(String::as_str), Some("c:3"));
        let cfg = raft_config(&c).unwrap();
        assert_eq!(
            (
                cfg.election_timeout_min_ticks,
                cfg.election_timeout_max_ticks
            ),
            (15, 30)
        );
        assert_eq!(cfg.heartbeat_interval_ticks, 3);
        assert_eq!(cfg.bugs.len(), 3);
        assert_eq!(cfg.read_mode, ReadMode::ReadIndex);
        assert_eq!(
            raft_config(&cli(&["--bug", "lease-clock"]))
                .unwrap()
                .read_mode,
            ReadMode::Lease
        );
    }

    #[test]
    fn bad_input_is_rejected() {
        assert!(parse_peers(4, &["1=a:1".into()]).is_err());
        assert!(parse_peers(1, &["1=a:1".into(), "1=b:2".into()]).is_err());
        assert!(parse_peers(1, &["x".into()]).is_err());
        assert!(parse_range("300-150").is_err());
        assert!(raft_config(&cli(&["--bug", "nonsense"])).is_err());
        assert!(raft_config(&cli(&["--election-timeout-ms", "20-30"])).is_err());
        assert!(Cli::try_parse_from(["raftkv", "--max-append-entries", "0"]).is_err());
    }

    #[test]
    fn append_batches_can_be_one_entry() {
        assert_eq!(raft_config(&cli(&[])).unwrap().max_entries_per_msg, 256);
        let one = raft_config(&cli(&["--max-append-entries", "1"])).unwrap();
        assert_eq!(one.max_entries_per_msg, 1);
    }
}
