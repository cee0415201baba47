//! `Subnet`: the private /24 a run's network uses, and how one is picked so concurrent runs,
//! other Docker networks and the host's own routes never collide. Node `i` (1-based) gets the
//! fixed address `.10+i`, so addresses are known before any container exists.

use std::fmt;
use std::net::Ipv4Addr;

/// faultline's /24s live in 10.213.0.0/16: an arbitrary private block, away from Docker's
/// default pools (172.17+/16, 192.168/16) and the common 10.0/10.1 LANs.
const POOL_SECOND_OCTET: u8 = 10 + 203;
/// Host offset of node 1; .1 is the bridge gateway (the host side).
const FIRST_NODE_HOST: u8 = 11;
/// Nodes that fit: .11 through .254.
pub const MAX_NODES: u32 = 254 - FIRST_NODE_HOST as u32 + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    third_octet: u8,
}

impl Subnet {
    pub fn new(third_octet: u8) -> Self {
        Self { third_octet }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, POOL_SECOND_OCTET, self.third_octet, 0)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, POOL_SECOND_OCTET, self.third_octet, 1)
    }

    /// Fixed address of node `index` (1-based), or None past `MAX_NODES`.
    pub fn node_ip(&self, index: u32) -> Option<Ipv4Addr> {
        if index == 0 || index > MAX_NODES {
            return None;
        }
        let host = u8::try_from(u32::from(FIRST_NODE_HOST) + index - 1).ok()?;
        Some(Ipv4Addr::new(10, POOL_SECOND_OCTET, self.third_octet, host))
    }

    /// True if this /24 overlaps the network `addr/prefix_len`.
    pub fn overlaps(&self, addr: Ipv4Addr, prefix_len: u8) -> bool {
        // Two prefixes overlap iff they agree on the shorter prefix's bits.
        let shorter = prefix_len.min(24);
        let mask = if shorter == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(shorter))
        };
        (u32::from(addr) & mask) == (u32::from(self.network()) & mask)
    }

    /// Candidates in the order to try: start at a point derived from the run id so two runs
    /// started at once rarely race for the same /24, then walk the pool.
    pub fn candidates(run_id: &str) -> impl Iterator<Item = Subnet> {
        let start = run_id
            .bytes()
            .fold(0u8, |acc, b| acc.wrapping_mul(31).wrapping_add(b));
        (0..=255u8).map(move |i| Subnet::new(start.wrapping_add(i)))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/24", self.network())
    }
}

/// Parses `a.b.c.d/len` (the form Docker reports subnets in). None for IPv6 or junk.
pub fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((addr.parse().ok()?, len))
}

/// The host's IPv4 routes from /proc/net/route (empty where that file does not exist, e.g. a
/// remote daemon: then only Docker's own networks are checked).
pub fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    std::fs::read_to_string("/proc/net/route")
        .map(|table| parse_route_table(&table))
        .unwrap_or_default()
}

/// Parses the /proc/net/route format: hex fields in the kernel's native (little-endian on
/// x86/arm) byte order. The default route is skipped: it overlaps everything by design.
fn parse_route_table(table: &str) -> Vec<(Ipv4Addr, u8)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(cols.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(cols.get(7)?, 16).ok()?;
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            (prefix > 0).then_some((Ipv4Addr::from(dest.to_ne_bytes()), prefix))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_fixed_and_bounded() {
        let s = Subnet::new(7);
        assert_eq!(s.to_string(), "10.213.7.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(s.node_ip(1), Some(Ipv4Addr::new(10, 213, 7, 11)));
        assert_eq!(s.node_ip(MAX_NODES), Some(Ipv4Addr::new(10, 213, 7, 254)));
        assert_eq!(s.node_ip(0), None);
        assert_eq!(s.node_ip(MAX_NODES + 1), None);
    }

    #[test]
    fn overlap_checks_the_shorter_prefix() {
        let s = Subnet::new(7);
        assert!(s.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(s.overlaps(Ipv4Addr::new(10, 213, 7, 128), 25));
        assert!(!s.overlaps(Ipv4Addr::new(10, 213, 8, 0), 24));
        assert!(!s.overlaps(Ipv4Addr::new(172, 17, 0, 0), 16));
        assert!(s.overlaps(Ipv4Addr::new(0, 0, 0, 0), 0));
    }

    #[test]
    fn candidates_cover_the_pool_once() {
        let all: std::collections::BTreeSet<u8> =
            Subnet::candidates("run-x").map(|s| s.third_octet).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn parses_cidrs() {
        assert_eq!(
            parse_cidr("172.17.0.0/16"),
            Some((Ipv4Addr::new(172, 17, 0, 0), 16))
        );
        assert_eq!(parse_cidr("fd00::/64"), None);
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
    }

    #[test]
    fn parses_the_kernel_route_table() {
        let table =
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_route_table(table);
        if cfg!(target_endian = "little") {
            assert_eq!(routes, vec![(Ipv4Addr::new(172, 17, 0, 0), 16)]);
        }
        assert_eq!(routes.len(), 1, "default route skipped");
    }
}
