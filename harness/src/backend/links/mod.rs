//! [`Links`]: the peer links of a cluster whose peer traffic the harness carries itself,
//! one [`LinkProxy`] per directed pair of nodes, and the network faults they apply. The
//! local backend always routes peer traffic through them; the Docker backend does when a
//! run needs per-link delay and the host kernel lacks `sch_netem`. Either way partitions
//! and packet faults are the proxies' state, set here the same way: like a firewall, the
//! links belong to the network, not to the processes, so a killed or paused node keeps its
//! partition and a restarted one finds it still in place.

pub mod proxy;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use faultline_nemeses::{Grudge, NetemSpec, NodeId, PacketCaps, PacketFault};

pub use proxy::{DirectionFault, LinkFault, LinkProxy};

/// What the proxies can do to a stream (see `proxy.rs`): delay, loss (as a retransmission
/// delay) and rate, per link; not duplication or reordering, which TCP undoes.
pub const PACKET_CAPS: PacketCaps = PacketCaps {
    delay: true,
    loss: true,
    duplicate: false,
    reorder: false,
    rate: true,
    per_link: true,
};

/// The faults the proxies currently apply.
#[derive(Clone, Debug, Default)]
struct NetworkFaults {
    grudge: Grudge,
    /// Each node's packet fault on its outgoing peer links.
    netem: BTreeMap<NodeId, PacketFault>,
}

/// Where a link's proxy listens, and where it forwards.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    pub id: NodeId,
    /// The address the proxies of links *to* this node listen on (a free port of it).
    pub bind: IpAddr,
    /// Where the node listens for its peers.
    pub peer_listen: SocketAddr,
}

/// Every directed link between `endpoints`, each through its own proxy.
pub struct Links {
    proxies: BTreeMap<(NodeId, NodeId), LinkProxy>,
    faults: Mutex<NetworkFaults>,
}

impl Links {
    /// Starts a proxy for every ordered pair of distinct endpoints.
    pub async fn start(endpoints: &[Endpoint]) -> std::io::Result<Links> {
        let mut proxies = BTreeMap::new();
        for from in endpoints {
            for to in endpoints {
                if from.id == to.id {
                    continue;
                }
                let proxy = LinkProxy::start(SocketAddr::new(to.bind, 0), to.peer_listen)
                    .await
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("starting the proxy {} -> {}: {e}", from.id, to.id),
                        )
                    })?;
                proxies.insert((from.id, to.id), proxy);
            }
        }
        Ok(Links {
            proxies,
            faults: Mutex::new(NetworkFaults::default()),
        })
    }

    /// The listen address of the proxy `from` -> `to`.
    pub fn proxy_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.proxies.get(&(from, to)).map(LinkProxy::listen_addr)
    }

    /// The proxies of the links into `to`, by sender.
    pub fn into_node(&self, to: NodeId) -> BTreeMap<NodeId, SocketAddr> {
        self.proxies
            .iter()
            .filter(|((_, b), _)| *b == to)
            .map(|((a, _), proxy)| (*a, proxy.listen_addr()))
            .collect()
    }

    /// The faults on the link `from` -> `to`.
    pub fn link_fault(&self, from: NodeId, to: NodeId) -> Option<LinkFault> {
        self.proxies.get(&(from, to)).map(LinkProxy::fault)
    }

    /// The partition in force (empty after a heal).
    pub fn grudge(&self) -> Grudge {
        self.faults
            .lock()
            .map(|f| f.grudge.clone())
            .unwrap_or_default()
    }

    /// Replaces the partition; packet faults stay.
    pub fn partition(&self, grudge: &Grudge) {
        self.update(|f| f.grudge = grudge.clone());
    }

    /// Clears the partition and every packet fault.
    pub fn heal(&self) {
        self.update(|f| *f = NetworkFaults::default());
    }

    /// Sets `node`'s packet fault on its outgoing links (to `fault.to`, or all when empty).
    /// Refuses, applying nothing, what a proxy of TCP streams cannot do; the error names it.
    pub fn netem(&self, node: NodeId, fault: &PacketFault) -> Result<(), String> {
        let missing = PACKET_CAPS.missing(fault);
        if !missing.is_empty() {
            return Err(format!(
                "{} cannot be applied to the TCP streams the link proxies carry: the \
                 receiving TCP puts duplicated and reordered packets back in order",
                missing.join(", ")
            ));
        }
        self.update(|f| {
            f.netem.insert(node, fault.clone());
        });
        Ok(())
    }

    /// Removes `node`'s packet fault.
    pub fn clear_netem(&self, node: NodeId) {
        self.update(|f| {
            f.netem.remove(&node);
        });
    }

    fn update(&self, f: impl FnOnce(&mut NetworkFaults)) {
        // A poisoned lock only means a panic elsewhere mid-update; the data is still whole.
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut faults);
        for ((from, to), proxy) in &self.proxies {
            proxy.set_fault(LinkFault {
                forward: DirectionFault {
                    cut: faults.grudge.blocks(*from, *to),
                    netem: packet_spec(&faults.netem, *from, *to),
                },
                backward: DirectionFault {
                    cut: faults.grudge.blocks(*to, *from),
                    netem: packet_spec(&faults.netem, *to, *from),
                },
            });
        }
    }
}

fn packet_spec(
    faults: &BTreeMap<NodeId, PacketFault>,
    from: NodeId,
    to: NodeId,
) -> Option<NetemSpec> {
    faults
        .get(&from)
        .filter(|f| f.applies_to(to))
        .map(|f| f.spec)
}
