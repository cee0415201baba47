//! `LinkProxy`: one directed peer link (node A -> node B) as a TCP proxy in the harness's
//! own tokio runtime. Node A is started with this proxy's address as B's peer address, so
//! every connection A opens to B (Raft messages, forwarded client requests) passes through
//! it, and the harness decides what gets through.
//!
//! What a cut means, matched to the Docker backend's firewall, where node X drops (iptables
//! `DROP` on INPUT) every packet from the nodes in `grudge.drops_from(X)`:
//!
//! - **forward cut** (B drops from A: B must not hear A). Every open connection on the link
//!   is killed (RST both ways), so no byte A sent after the cut reaches B. New connections
//!   are blackholed: accepted, then held without forwarding anything until the link heals
//!   (or [`HOLD_LIMIT`] passes). Blackholing is what iptables `DROP` looks like to the
//!   sender: its connect or request just gets no answer and raftkv's peer request times out
//!   (1 s, `PEER_REQUEST_TIMEOUT`). Refusing (RST on connect) would instead fail every send
//!   at once and make raftkv's sender retry every 50 ms (its failure backoff), a fault
//!   Docker never produces. The one RST per open connection at the cut is the price of
//!   making sure nothing already open slips past it; the sender's next batch then meets
//!   the blackhole like under iptables.
//! - **backward cut** (A drops from B: A must not hear B's answers). New connections are
//!   blackholed too (in TCP the handshake needs both directions, so under iptables they
//!   never open either). On open connections A's bytes still reach B, and B's answers are
//!   held, not delivered, until the heal: B applies what A sent and A never learns it, as
//!   under a one-way iptables rule.
//!
//! Packet faults ([`NetemSpec`], netem on the sender's outgoing traffic) act on the bytes
//! of one direction of the link, order kept:
//! - `delay_ms ± jitter_ms` delays each chunk.
//! - `rate_kbit` paces the link: chunks (at most [`RATE_CHUNK_BYTES`] each, about a packet)
//!   leave one after another at that rate, shared by every connection on the link, as on a
//!   slow wire (a token bucket whose burst is one chunk). The delay line in front of it
//!   holds at most [`DELAY_LINE_CHUNKS`] chunks per connection; past that the sender's
//!   writes block, as they would behind a full TCP window.
//! - `loss_pct`: a TCP stream cannot lose bytes (the kernel retransmits a lost segment), so
//!   a lost chunk is delivered [`RETRANSMIT_DELAY`] late, as after a retransmission
//!   timeout, and never dropped. Even a 100% loss is a 200 ms stall per chunk, not a cut:
//!   a partition is the fault for that.
//! - duplication and reordering are undone by the receiving TCP, so a proxy of streams has
//!   nothing to apply; the links refuse them rather than pretend.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faultline_nemeses::NetemSpec;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Longest a blackholed connection is held before it is reset: the peers' own timeouts
/// (1-2 s) gave up on it long before.
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);
/// Connections held at once on one link; more are reset at once (bounded memory).
pub const MAX_HELD: usize = 256;
/// Budget for connecting to the real node. A killed node refuses at once; this bounds the
/// case of a node whose listen backlog is full.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// What one lost packet costs a TCP stream: Linux's minimum retransmission timeout.
pub const RETRANSMIT_DELAY: Duration = Duration::from_millis(200);
/// Bytes read per chunk.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks in flight inside one direction's delay line (bounded memory under a delay).
pub const DELAY_LINE_CHUNKS: usize = 64;
/// Bytes read per chunk on a rate-limited direction: about one Ethernet packet, so the
/// stream trickles out at the rate instead of arriving in 16 KiB lumps.
pub const RATE_CHUNK_BYTES: usize = 1500;

/// What the harness does to one direction of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionFault {
    /// The receiving end does not hear the sender.
    pub cut: bool,
    /// The sender's packet fault.
    pub netem: Option<NetemSpec>,
}

/// The faults on one link A -> B: `forward` is A's bytes to B, `backward` B's answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFault {
    pub forward: DirectionFault,
    pub backward: DirectionFault,
}

impl LinkFault {
    /// New connections wait: a TCP handshake needs both directions.
    fn blackholes(&self) -> bool {
        self.forward.cut || self.backward.cut
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// What a pump may do right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    Open,
    /// Hold bytes (backward cut): deliver them after the heal.
    Held,
    /// Reset the connection (forward cut, or the proxy is gone).
    Kill,
}

fn gate(fault: &LinkFault, dir: Direction) -> Gate {
    if fault.forward.cut {
        Gate::Kill
    } else if dir == Direction::Backward && fault.backward.cut {
        Gate::Held
    } else {
        Gate::Open
    }
}

/// The transmitter of one direction of a link under a rate limit: each chunk leaves after
/// the one before has, at the rate in force when it was queued. Shared by every
/// connection on the link, so the rate is the link's, not each connection's.
#[derive(Debug)]
struct Pacer {
    /// When the last queued chunk has left.
    free_at: std::sync::Mutex<Instant>,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            free_at: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Queues `bytes` at `rate_kbit`; returns when they have left (`rate_kbit > 0`).
    fn reserve(&self, bytes: usize, rate_kbit: u32) -> Instant {
        debug_assert!(rate_kbit > 0, "an unlimited link is not paced");
        let transmit =
            Duration::from_secs_f64(bytes as f64 * 8.0 / (f64::from(rate_kbit.max(1)) * 1000.0));
        // A poisoned lock only means a panic elsewhere mid-update; an Instant is still whole.
        let mut free_at = self.free_at.lock().unwrap_or_else(|p| p.into_inner());
        *free_at = (*free_at).max(Instant::now()) + transmit;
        *free_at
    }
}

/// The pacers of a link's two directions.
#[derive(Debug)]
struct Pacers {
    forward: Pacer,
    backward: Pacer,
}

impl Pacers {
    fn of(&self, dir: Direction) -> &Pacer {
        match dir {
            Direction::Forward => &self.forward,
            Direction::Backward => &self.backward,
        }
    }
}

/// One directed link's proxy. Dropping it stops the listener and resets every connection.
pub struct LinkProxy {
    listen: SocketAddr,
    upstream: SocketAddr,
    fault: watch::Sender<LinkFault>,
    accept: JoinHandle<()>,
}

impl LinkProxy {
    /// Listens on `bind` (port 0 picks a free port) and forwards to `upstream`.
    pub async fn start(bind: SocketAddr, upstream: SocketAddr) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind(bind).await?;
        let listen = listener.local_addr()?;
        let (fault, rx) = watch::channel(LinkFault::default());
        let held = Arc::new(AtomicUsize::new(0));
        let pacers = Arc::new(Pacers {
            forward: Pacer::new(),
            backward: Pacer::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, rx, held, pacers));
        Ok(LinkProxy {
            listen,
            upstream,
            fault,
            accept,
        })
    }

    /// The address the sending node is given for its peer.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn upstream_addr(&self) -> SocketAddr {
        self.upstream
    }

    pub fn fault(&self) -> LinkFault {
        *self.fault.borrow()
    }

    /// Replaces the link's faults; open connections see the change at once.
    pub fn set_fault(&self, fault: LinkFault) {
        self.fault.send_replace(fault);
    }

    /// Changes the link's faults in place.
    pub fn update(&self, f: impl FnOnce(&mut LinkFault)) {
        self.fault.send_modify(f);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        // Dropping the sender (after this) makes every connection task see a closed watch,
        // which they treat as a kill.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: watch::Receiver<LinkFault>,
    held: Arc<AtomicUsize>,
    pacers: Arc<Pacers>,
) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%upstream, "proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        tokio::spawn(serve(
            client,
            upstream,
            fault.clone(),
            held.clone(),
            pacers.clone(),
        ));
    }
}

/// Resets a socket on close (RST, not FIN): what a connection cut mid-stream looks like.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// One accepted connection: held while the link blackholes, then joined to the node.
async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut fault: watch::Receiver<LinkFault>,
    held: Arc<AtomicUsize>,
    pacers: Arc<Pacers>,
) {
    if fault.borrow().blackholes() {
        if held.fetch_add(1, Ordering::SeqCst) >= MAX_HELD {
            held.fetch_sub(1, Ordering::SeqCst);
            reset(&client);
            return;
        }
        let healed = tokio::time::timeout(HOLD_LIMIT, fault.wait_for(|f| !f.blackholes())).await;
        held.fetch_sub(1, Ordering::SeqCst);
        if !matches!(healed, Ok(Ok(_))) {
            reset(&client);
            return;
        }
    }
    let node =
        match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
            Ok(Ok(s)) => s,
            // The node is down (killed) or not answering: the peer sees what it would see
            // connecting to it directly, a reset.
            _ => {
                reset(&client);
                return;
            }
        };
    let _ = node.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (node_read, node_write) = node.into_split();
    let (forward, backward) = tokio::join!(
        pump(
            client_read,
            node_write,
            fault.clone(),
            Direction::Forward,
            &pacers
        ),
        pump(node_read, client_write, fault, Direction::Backward, &pacers),
    );
    if forward.killed || backward.killed {
        for s in [
            forward.from.as_ref(),
            forward.to.as_ref(),
            backward.from.as_ref(),
            backward.to.as_ref(),
        ] {
            reset(s);
        }
    }
}

struct PumpEnd {
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    killed: bool,
}

/// Waits until `dir` may move bytes; `false` if the connection must be reset instead.
async fn wait_open(fault: &mut watch::Receiver<LinkFault>, dir: Direction) -> bool {
    // The proxy is gone (its sender dropped): a kill. `wait_for` alone would still report
    // the last value as open, and the reader would spin between it and `closes`.
    if fault.has_changed().is_err() {
        return false;
    }
    match fault.wait_for(|f| gate(f, dir) != Gate::Held).await {
        Ok(f) => gate(&f, dir) == Gate::Open,
        Err(_) => false,
    }
}

/// Resolves when `dir` may no longer move bytes freely (held or killed).
async fn closes(fault: &mut watch::Receiver<LinkFault>, dir: Direction) {
    let _ = fault.wait_for(|f| gate(f, dir) != Gate::Open).await;
}

/// Copies one direction until EOF, an error or a kill. Bytes go through a delay line so a
/// packet fault delays each chunk without serialising the stream behind one sleep.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    fault: watch::Receiver<LinkFault>,
    dir: Direction,
    pacers: &Pacers,
) -> PumpEnd {
    let pacer = pacers.of(dir);
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(DELAY_LINE_CHUNKS);
    let mut read_fault = fault.clone();
    let source = &mut from;
    // Owns `tx`, so the writer's channel closes when the reader ends.
    let reader = async move {
        let mut last_due = Instant::now();
        loop {
            if !wait_open(&mut read_fault, dir).await {
                return true;
            }
            let chunk_bytes = match netem_of(&read_fault.borrow(), dir) {
                Some(spec) if spec.rate_kbit > 0 => RATE_CHUNK_BYTES,
                _ => CHUNK_BYTES,
            };
            let mut buf = vec![0u8; chunk_bytes];
            let n = tokio::select! {
                r = source.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => n,
                },
                // Reading is cancel-safe: nothing was consumed; re-check the gate.
                _ = closes(&mut read_fault, dir) => continue,
            };
            buf.truncate(n);
            let netem = netem_of(&read_fault.borrow(), dir);
            // The chunk is on the wire once the link has sent everything queued before it.
            let sent = match netem {
                Some(spec) if spec.rate_kbit > 0 => pacer.reserve(n, spec.rate_kbit),
                _ => Instant::now(),
            };
            // Due times never go backwards: TCP delivers in order whatever netem does.
            let due = (sent + netem.map(chunk_delay).unwrap_or_default()).max(last_due);
            last_due = due;
            if tx.send((due, buf)).await.is_err() {
                return false;
            }
        }
    };
    let mut write_fault = fault;
    let sink = &mut to;
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            // A kill (or the proxy dropped) ends the wait at once: a connection must not
            // outlive its link just because chunks are still due.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    changed = write_fault.changed() => {
                        if changed.is_err() || gate(&write_fault.borrow(), dir) == Gate::Kill {
                            return true;
                        }
                    }
                }
            }
            if !wait_open(&mut write_fault, dir).await {
                return true;
            }
            if sink.write_all(&chunk).await.is_err() {
                return false;
            }
        }
        // A killed connection gets no clean FIN before its reset.
        if write_fault.has_changed().is_err() || gate(&write_fault.borrow(), dir) == Gate::Kill {
            return true;
        }
        // EOF from the sender: pass it on as a half-close.
        let _ = sink.shutdown().await;
        false
    };
    let (read_killed, write_killed) = tokio::join!(reader, writer);
    PumpEnd {
        from,
        to,
        killed: read_killed || write_killed,
    }
}

/// The packet fault on `dir` of a link.
fn netem_of(fault: &LinkFault, dir: Direction) -> Option<NetemSpec> {
    match dir {
        Direction::Forward => fault.forward.netem,
        Direction::Backward => fault.backward.netem,
    }
}

/// One chunk's delay under `spec`: `delay ± jitter`, plus a retransmission for a lost one.
pub fn chunk_delay(spec: NetemSpec) -> Duration {
    let mut rng = rand::rng();
    let base = i64::from(spec.delay_ms);
    let jitter = i64::from(spec.jitter_ms);
    let ms = if jitter > 0 {
        base + rng.random_range(-jitter..=jitter)
    } else {
        base
    };
    let mut d = Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0));
    if spec.loss_pct > 0 && rng.random_range(0..100u8) < spec.loss_pct {
        d += RETRANSMIT_DELAY;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback; returns its address.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8], wait: Duration) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut buf = vec![0u8; msg.len()];
        match tokio::time::timeout(wait, s.read_exact(&mut buf)).await {
            Ok(r) => r.map(|_| buf),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    fn cut(forward: bool, backward: bool) -> LinkFault {
        LinkFault {
            forward: DirectionFault {
                cut: forward,
                netem: None,
            },
            backward: DirectionFault {
                cut: backward,
                netem: None,
            },
        }
    }

    #[tokio::test]
    async fn forwards_then_kills_blackholes_and_heals() {
        let proxy = LinkProxy::start("127.0.0.1:0".parse().unwrap(), echo().await)
            .await
            .unwrap();
        let short = Duration::from_millis(300);
        let mut open = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        assert_eq!(round_trip(&mut open, b"hi", short).await.unwrap(), b"hi");

        proxy.set_fault(cut(true, false));
        // The open connection is reset: the next round trip fails at once or on read.
        assert!(round_trip(&mut open, b"x", short).await.is_err());
        // A new one connects (the proxy accepts) but nothing comes back: a blackhole.
        let mut held = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        let e = round_trip(&mut held, b"lost?", short).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);

        proxy.set_fault(LinkFault::default());
        // The held connection now goes through, as a TCP retransmission would after the
        // DROP rule is removed; so does a new one.
        let mut buf = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(2), held.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"lost?");
        let mut fresh = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh, b"ok", short).await.unwrap(), b"ok");
    }

    #[tokio::test]
    async fn backward_cut_holds_answers_until_heal() {
        let proxy = LinkProxy::start("127.0.0.1:0".parse().unwrap(), echo().await)
            .await
            .unwrap();
        let mut open = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut open, b"a", Duration::from_secs(1))
                .await
                .unwrap(),
            b"a"
        );
        proxy.set_fault(cut(false, true));
        // The request still reaches the server (it echoes), the answer is held.
        let e = round_trip(&mut open, b"b", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        proxy.set_fault(LinkFault::default());
        let mut buf = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(2), open.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"b");
    }

    #[tokio::test]
    async fn netem_delays_each_round_trip() {
        let proxy = LinkProxy::start("127.0.0.1:0".parse().unwrap(), echo().await)
            .await
            .unwrap();
        proxy.update(|f| f.forward.netem = Some(NetemSpec::delay(150)));
        let mut s = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        let started = std::time::Instant::now();
        round_trip(&mut s, b"slow", Duration::from_secs(2))
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        proxy.set_fault(LinkFault::default());
        let started = std::time::Instant::now();
        round_trip(&mut s, b"fast", Duration::from_secs(2))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(150));
    }

    /// Sends `bytes` bytes through `s` and reads the echo back; returns how long it took.
    async fn echo_bulk(s: &mut TcpStream, bytes: usize) -> Duration {
        let started = std::time::Instant::now();
        let (mut r, mut w) = s.split();
        let data = vec![7u8; bytes];
        let mut back = vec![0u8; bytes];
        let (sent, read) = tokio::join!(w.write_all(&data), r.read_exact(&mut back));
        sent.unwrap();
        read.unwrap();
        assert_eq!(back, data);
        started.elapsed()
    }

    #[tokio::test]
    async fn a_dropped_proxy_closes_connections_with_chunks_still_due() {
        let proxy = LinkProxy::start("127.0.0.1:0".parse().unwrap(), echo().await)
            .await
            .unwrap();
        // 8 kbit/s: 32 KiB would need 33 s on the wire.
        proxy.update(|f| f.forward.netem = Some(NetemSpec::rate(8)));
        let mut s = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        s.write_all(&vec![1u8; 32 * 1024]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(proxy);
        // The connection ends at once (reset or EOF) instead of draining its queue.
        let mut buf = vec![0u8; 64 * 1024];
        let closed = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "connection outlived its dropped proxy");
    }

    #[tokio::test]
    async fn rate_limit_paces_the_link_and_clearing_lifts_it() {
        let proxy = LinkProxy::start("127.0.0.1:0".parse().unwrap(), echo().await)
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        let fast = echo_bulk(&mut s, 32 * 1024).await;
        // 32 KiB at 256 kbit/s is 1.02 s on the wire.
        proxy.update(|f| f.forward.netem = Some(NetemSpec::rate(256)));
        let limited = tokio::time::timeout(Duration::from_secs(10), echo_bulk(&mut s, 32 * 1024))
            .await
            .expect("a paced link still delivers");
        // Two connections share the link's rate: each gets about half.
        let mut other = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        let (a, b) = tokio::join!(
            echo_bulk(&mut s, 16 * 1024),
            echo_bulk(&mut other, 16 * 1024)
        );
        proxy.set_fault(LinkFault::default());
        let after = echo_bulk(&mut s, 32 * 1024).await;
        eprintln!("32 KiB echo: {fast:?} free, {limited:?} at 256 kbit/s, {after:?} after");
        assert!(limited >= Duration::from_millis(950), "{limited:?}");
        assert!(
            a.max(b) >= Duration::from_millis(950),
            "shared: {a:?} {b:?}"
        );
        assert!(fast < Duration::from_millis(300), "{fast:?}");
        assert!(after < Duration::from_millis(300), "{after:?}");
    }

    #[test]
    fn a_pacer_spaces_chunks_at_the_rate() {
        let pacer = Pacer::new();
        let start = Instant::now();
        // 1000 bytes at 80 kbit/s take 100 ms each.
        let first = pacer.reserve(1000, 80);
        let second = pacer.reserve(1000, 80);
        assert!(
            first - start >= Duration::from_millis(100),
            "{:?}",
            first - start
        );
        assert_eq!(second - first, Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_dead_upstream_is_a_reset() {
        // Bind and drop to get a port nothing listens on.
        let dead = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = LinkProxy::start("127.0.0.1:0".parse().unwrap(), dead)
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.listen_addr()).await.unwrap();
        assert!(round_trip(&mut s, b"x", Duration::from_secs(2))
            .await
            .is_err());
    }

    #[test]
    fn loss_costs_a_retransmission() {
        let spec = NetemSpec {
            delay_ms: 10,
            loss_pct: 100,
            ..NetemSpec::NONE
        };
        assert_eq!(
            chunk_delay(spec),
            Duration::from_millis(10) + RETRANSMIT_DELAY
        );
        let jittery = NetemSpec {
            jitter_ms: 5,
            loss_pct: 0,
            ..spec
        };
        for _ in 0..100 {
            let d = chunk_delay(jittery);
            assert!((5..=15).contains(&d.as_millis()), "{d:?}");
        }
    }
}
