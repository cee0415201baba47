//! Which cluster member opened a TCP connection: the kernel's socket table answers it,
//! without root and without the member's help.
//!
//! A connection accepted on loopback has, as its peer address, the client socket's own
//! local address (`127.0.0.1:<ephemeral>`). `/proc/net/tcp` (and `tcp6`, for dual-stack
//! sockets) lists that client socket with its inode; `/proc/<pid>/fd/*` of the process
//! that holds it has a link to `socket:[<inode>]`. The members are the harness's own
//! children (same uid), so both are readable. [`MemberPids`] is the candidates: the pid
//! of each member's running process, kept by the cluster as processes start and die.
//!
//! The lookup reads a few small files and is bounded: [`ATTEMPTS`] tries, [`RETRY_GAP`]
//! apart (a socket is listed once `connect` returns, so a retry only covers a racing
//! restart), inside a caller's timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_nemeses::NodeId;

/// Socket tables searched, IPv4 first (where loopback connections between IPv4 listeners
/// are).
const SOCKET_TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];
/// Lookups per connection before giving up.
pub const ATTEMPTS: u32 = 3;
/// Wait between lookups.
pub const RETRY_GAP: Duration = Duration::from_millis(20);

/// Why a connection could not be attributed to a member.
#[derive(Debug, thiserror::Error)]
pub enum AttributeError {
    #[error("reading {path}: {source}")]
    Proc {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no open socket from {peer} to {local} in the kernel's socket table (closed \
         already, or opened from another network namespace)"
    )]
    NoSocket { peer: SocketAddr, local: SocketAddr },
    #[error("socket {inode} ({peer} -> {local}) is held by no cluster member (pids {pids:?})")]
    NoMember {
        inode: u64,
        peer: SocketAddr,
        local: SocketAddr,
        pids: Vec<i32>,
    },
    #[error("attributing the connection from {peer} took over {timeout_ms} ms")]
    Timeout { peer: SocketAddr, timeout_ms: u64 },
}

/// The pid of each member's running process; shared by the cluster (which writes it when
/// a process starts or is killed) and the proxies that attribute connections.
#[derive(Clone, Debug, Default)]
pub struct MemberPids(Arc<Mutex<BTreeMap<NodeId, i32>>>);

impl MemberPids {
    /// Records `id`'s running process (`None`: it runs none).
    pub fn set(&self, id: NodeId, pid: Option<i32>) {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still whole.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match pid {
            Some(pid) => map.insert(id, pid),
            None => map.remove(&id),
        };
    }

    pub fn snapshot(&self) -> Vec<(NodeId, i32)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(id, pid)| (*id, *pid)).collect()
    }
}

/// One row of `/proc/net/tcp{,6}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's TCP state (`01` established, `06` time-wait, `0A` listen, ...).
    pub state: u8,
    /// 0 for a socket no process holds any more (time-wait, orphaned).
    pub inode: u64,
}

/// Parses `ADDR:PORT` as the kernel prints it. The address is the raw bytes of the
/// network-order address read as native 32-bit words, each printed as `%08X` (so
/// `127.0.0.1` is `0100007F` on a little-endian machine); the port is `%04X` of its
/// value. An IPv4-mapped IPv6 address (a dual-stack socket) comes back as IPv4, so it
/// compares equal to what `accept` reports.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    if addr.len() % 8 != 0 {
        return None;
    }
    for word in addr.as_bytes().chunks(8) {
        let word = std::str::from_utf8(word).ok()?;
        bytes.extend(u32::from_str_radix(word, 16).ok()?.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The rows of a socket table; the header and malformed lines are skipped.
pub fn parse_socket_table(text: &str) -> Vec<SocketEntry> {
    text.lines()
        .filter_map(|line| {
            // `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || !fields[0].ends_with(':') {
                return None;
            }
            Some(SocketEntry {
                local: parse_addr(fields[1])?,
                remote: parse_addr(fields[2])?,
                state: u8::from_str_radix(fields[3], 16).ok()?,
                inode: fields[9].parse().ok()?,
            })
        })
        .collect()
}

/// Every TCP socket of this network namespace, IPv4 then IPv6.
pub fn read_socket_tables() -> Result<Vec<SocketEntry>, AttributeError> {
    let mut entries = Vec::new();
    for path in SOCKET_TABLES {
        match std::fs::read_to_string(path) {
            Ok(text) => entries.extend(parse_socket_table(&text)),
            // No IPv6 in this kernel: nothing to find there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(AttributeError::Proc {
                    path: path.into(),
                    source,
                })
            }
        }
    }
    Ok(entries)
}

/// The inode of the open socket whose local address is `peer` and whose remote address is
/// `local`: the other end of a connection we accepted on `local` from `peer`.
pub fn client_socket_inode(peer: SocketAddr, local: SocketAddr) -> Result<u64, AttributeError> {
    // A reused 4-tuple can leave an older time-wait row (inode 0) beside the live one.
    read_socket_tables()?
        .into_iter()
        .find(|e| e.local == peer && e.remote == local && e.inode != 0)
        .map(|e| e.inode)
        .ok_or(AttributeError::NoSocket { peer, local })
}

/// The inodes of the sockets `pid` holds a descriptor for (none once it exited).
pub fn socket_inodes(pid: i32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The member among `pids` with a descriptor for socket `inode`.
pub fn holder_of(inode: u64, pids: &[(NodeId, i32)]) -> Option<NodeId> {
    pids.iter()
        .find(|(_, pid)| socket_inodes(*pid).contains(&inode))
        .map(|(id, _)| *id)
}

/// One lookup: the socket's inode, then its holder.
fn attribute_once(
    peer: SocketAddr,
    local: SocketAddr,
    pids: &[(NodeId, i32)],
) -> Result<NodeId, AttributeError> {
    let inode = client_socket_inode(peer, local)?;
    holder_of(inode, pids).ok_or_else(|| AttributeError::NoMember {
        inode,
        peer,
        local,
        pids: pids.iter().map(|(_, pid)| *pid).collect(),
    })
}

/// The member that opened the connection we accepted on `local` from `peer`, within
/// `timeout`. Reading `/proc` blocks, so it runs on the blocking pool.
pub async fn attribute(
    peer: SocketAddr,
    local: SocketAddr,
    pids: &MemberPids,
    timeout: Duration,
) -> Result<NodeId, AttributeError> {
    let lookups = async {
        let mut last = AttributeError::NoSocket { peer, local };
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY_GAP).await;
            }
            let candidates = pids.snapshot();
            let found =
                tokio::task::spawn_blocking(move || attribute_once(peer, local, &candidates))
                    .await
                    .unwrap_or_else(|e| {
                        Err(AttributeError::Proc {
                            path: "/proc".into(),
                            source: std::io::Error::other(e.to_string()),
                        })
                    });
            match found {
                Ok(id) => return Ok(id),
                // Reading /proc failing is not something a retry fixes.
                Err(e @ AttributeError::Proc { .. }) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, lookups)
        .await
        .unwrap_or(Err(AttributeError::Timeout {
            peer,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn parses_the_kernels_rows() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            6: 0100007F:8158 0B00007F:E45D 01 00000000:00000000 00:00000000 00000000     0        0 13757 2 000000004464224e 20 0 0 10 -1\n   \
            7: 0B00007F:E45D 0100007F:8158 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000099b0b5a2 20 0 0 10 -1\n\
            garbage\n";
        let rows = parse_socket_table(table);
        assert_eq!(rows.len(), 2, "{rows:?}");
        if cfg!(target_endian = "little") {
            assert_eq!(rows[0].local, "127.0.0.1:33112".parse().unwrap());
            assert_eq!(rows[0].remote, "127.0.0.11:58461".parse().unwrap());
        }
        assert_eq!((rows[0].state, rows[0].inode), (1, 13757));
        assert_eq!((rows[1].state, rows[1].inode), (6, 0));
        // tcp6: an IPv4-mapped address (::ffff:127.0.0.12) reads as IPv4; a real one stays.
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0000000000000000FFFF00000C00007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n   \
            1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0\n";
        let rows = parse_socket_table(v6);
        if cfg!(target_endian = "little") {
            assert_eq!(rows[0].local, "127.0.0.12:8080".parse().unwrap());
            assert_eq!(rows[0].remote, "127.0.0.1:54321".parse().unwrap());
            assert_eq!(rows[1].local, "[::1]:80".parse().unwrap());
        }
        assert_eq!(rows[0].inode, 4242);
    }

    /// A connection opened by a child process (bash, through its `/dev/tcp`) is
    /// attributed to the child's pid, and one the test itself opens to no member.
    #[tokio::test]
    async fn a_childs_connection_is_attributed_to_its_pid() {
        let listener = tokio::net::TcpListener::bind("127.0.0.11:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let script = format!(
            "exec 3<>/dev/tcp/{}/{} && exec sleep 30",
            local.ip(),
            local.port()
        );
        let child = tokio::process::Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("bash runs");
        let pid = i32::try_from(child.id().unwrap()).unwrap();
        let (_accepted, peer) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("the child connects within 10 s")
            .unwrap();
        let pids = MemberPids::default();
        // Another "member" (this test's own pid holds the accepted end, not the client's).
        pids.set(NodeId(1), Some(i32::try_from(std::process::id()).unwrap()));
        pids.set(NodeId(2), Some(pid));
        let started = std::time::Instant::now();
        let who = attribute(peer, local, &pids, Duration::from_secs(2))
            .await
            .unwrap();
        eprintln!("attributed {peer} to n{} in {:?}", who.0, started.elapsed());
        assert_eq!(who, NodeId(2));

        // A stranger: the client end lives in this process, which is no member now.
        pids.set(NodeId(1), None);
        let mine = tokio::net::TcpStream::connect(local).await.unwrap();
        let (_accepted_mine, my_peer) = listener.accept().await.unwrap();
        assert_eq!(my_peer, mine.local_addr().unwrap());
        let err = attribute(my_peer, local, &pids, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, AttributeError::NoMember { .. }), "{err}");
        // A peer address with no socket behind it.
        let err = attribute(
            "127.0.0.1:1".parse().unwrap(),
            local,
            &pids,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, AttributeError::NoSocket { .. }), "{err}");
    }
}
