//! `DestinationProxy`: the one peer address of node B that every other node dials, for
//! programs whose members must all be given the same peer list (etcd: member IDs are
//! hashed from the advertised peer URLs, so every member needs the same
//! `--initial-cluster`, and a node cannot be told "B is at the proxy of A -> B").
//!
//! Each accepted connection is attributed to the member that opened it through the
//! kernel's socket table ([`super::attribute`]), then relayed into the [`LinkProxy`] of
//! that link (A -> B), so cuts, blackholes, one-way cuts and packet faults are the link
//! proxies' own, unchanged. Resets travel through the relay: when either side of it fails
//! (the link proxy resets a connection at a cut), the other side is closed with a reset
//! too, so to the node a cut looks like a cut and not like a clean end of stream.
//!
//! A connection that cannot be attributed to a member (its opener closed it already, a
//! restarted member raced the lookup, or a stranger such as a port scanner connected) is
//! reset and logged with `tracing::warn`: forwarding it on no link would let it bypass
//! every fault. A member's connection to its own peer address goes straight to its own
//! listener: a node always reaches itself.
//!
//! [`LinkProxy`]: super::proxy::LinkProxy

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faultline_nemeses::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::attribute::{attribute, MemberPids};

/// Longest an accepted connection waits to be attributed.
pub const ATTRIBUTE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connections relayed at once through one destination; more are reset (bounded memory).
pub const MAX_RELAYED: usize = 512;
/// Budget for connecting to a link proxy (in this process) or the node's own listener.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a destination sends what each member opens.
#[derive(Clone, Debug)]
pub struct Routes {
    /// The node this destination stands for.
    pub node: NodeId,
    /// The node's own peer listener (for its connections to itself).
    pub own: SocketAddr,
    /// Sender -> the listen address of the link proxy sender -> node.
    pub links: BTreeMap<NodeId, SocketAddr>,
}

impl Routes {
    fn of(&self, from: NodeId) -> Option<SocketAddr> {
        if from == self.node {
            Some(self.own)
        } else {
            self.links.get(&from).copied()
        }
    }
}

/// One node's advertised peer address. Dropping it stops the listener and resets every
/// connection it relays.
pub struct DestinationProxy {
    listen: SocketAddr,
    node: NodeId,
    accept: JoinHandle<()>,
    /// Dropped with the proxy; relays see the channel close and reset.
    _alive: watch::Sender<()>,
}

impl DestinationProxy {
    /// Listens on `bind` (port 0 picks a free port); `pids` says which process is which
    /// member.
    pub async fn start(
        bind: SocketAddr,
        routes: Routes,
        pids: MemberPids,
    ) -> std::io::Result<DestinationProxy> {
        let listener = TcpListener::bind(bind).await?;
        let listen = listener.local_addr()?;
        let (alive, alive_rx) = watch::channel(());
        let node = routes.node;
        let accept = tokio::spawn(accept_loop(
            listener,
            listen,
            Arc::new(routes),
            pids,
            alive_rx,
        ));
        Ok(DestinationProxy {
            listen,
            node,
            accept,
            _alive: alive,
        })
    }

    /// The address every member is told this node's peer traffic goes to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn node(&self) -> NodeId {
        self.node
    }
}

impl Drop for DestinationProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    listen: SocketAddr,
    routes: Arc<Routes>,
    pids: MemberPids,
    alive: watch::Receiver<()>,
) {
    let relayed = Arc::new(AtomicUsize::new(0));
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%listen, "destination proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if relayed.fetch_add(1, Ordering::SeqCst) >= MAX_RELAYED {
            relayed.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%listen, %peer, "destination proxy full ({MAX_RELAYED}): reset");
            reset(&client);
            continue;
        }
        let routes = routes.clone();
        let pids = pids.clone();
        let alive = alive.clone();
        let relayed = relayed.clone();
        tokio::spawn(async move {
            serve(client, peer, listen, &routes, &pids, alive).await;
            relayed.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Resets a socket on close (RST, not FIN).
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// One accepted connection: attributed, routed, relayed until either side ends.
async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    routes: &Routes,
    pids: &MemberPids,
    mut alive: watch::Receiver<()>,
) {
    let to = routes.node;
    let from = match attribute(peer, listen, pids, ATTRIBUTE_TIMEOUT).await {
        Ok(from) => from,
        Err(e) => {
            tracing::warn!(%peer, %listen, "connection to {to}'s peer address reset: {e}");
            reset(&client);
            return;
        }
    };
    let Some(route) = routes.of(from) else {
        tracing::warn!(%peer, "no link {from} -> {to}: connection reset");
        reset(&client);
        return;
    };
    let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(route)).await
    {
        Ok(Ok(s)) => s,
        _ => {
            reset(&client);
            return;
        }
    };
    tracing::debug!(%peer, %route, "{from} -> {to} relayed");
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let failed = tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => r.is_err(),
        // The proxy was dropped (cluster teardown).
        _ = alive.changed() => true,
    };
    if failed {
        reset(&client);
        reset(&upstream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_stranger_is_reset_and_an_upstream_reset_reaches_the_sender() {
        // The "link proxy": accepts, reads one message, then resets.
        let link = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link_addr = link.local_addr().unwrap();
        let pids = MemberPids::default();
        let me = NodeId(1);
        pids.set(me, Some(i32::try_from(std::process::id()).unwrap()));
        let routes = Routes {
            node: NodeId(2),
            own: "127.0.0.1:1".parse().unwrap(),
            links: BTreeMap::from([(me, link_addr)]),
        };
        let dest = DestinationProxy::start("127.0.0.12:0".parse().unwrap(), routes, pids.clone())
            .await
            .unwrap();

        // This test's process is member n1: its connection is relayed to the link.
        let mut s = TcpStream::connect(dest.listen_addr()).await.unwrap();
        let (mut at_link, _) = tokio::time::timeout(Duration::from_secs(3), link.accept())
            .await
            .expect("relayed to the link within 3 s")
            .unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        at_link.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        at_link.set_zero_linger().unwrap();
        drop(at_link);
        let mut rest = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(3), s.read(&mut rest))
            .await
            .expect("the reset arrives within 3 s");
        let e = r.expect_err("a reset, not a clean end of stream");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");

        // With no member holding the socket, the connection is reset unrelayed.
        pids.set(me, None);
        let mut stranger = TcpStream::connect(dest.listen_addr()).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(3), stranger.read(&mut rest))
            .await
            .expect("a stranger is answered within 3 s");
        assert!(r.is_err(), "a stranger is reset: {r:?}");
        let none = tokio::time::timeout(Duration::from_millis(200), link.accept()).await;
        assert!(none.is_err(), "a stranger must not reach the link");
    }
}
