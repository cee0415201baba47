//! Packet faults as data, so every backend applies the same fault the same way:
//! [`NetemSpec`] (what happens to packets: delay with jitter, loss, duplication, reordering,
//! a rate limit), [`PacketFault`] (a spec aimed at a node's whole egress or at its links to
//! some peers) and [`PacketCaps`] (which parts of a spec a backend can apply).
//!
//! What the backends do with a spec:
//! - Docker, kernel with `sch_netem`: `tc ... netem <args>` on the node's interface, at the
//!   root for the whole egress, or under an htb tree with one class (and netem leaf) per
//!   destination, picked by a u32 filter on the destination IP, for a per-link fault.
//! - Docker, kernel without `sch_netem`: the rate limit with htb classes (root or per
//!   destination) and the loss with iptables `statistic` DROP rules on the node's egress;
//!   delay, jitter, duplication and reordering are refused as `Unsupported`.
//! - Local: the peer-link proxies delay chunks, pace them to the rate, and turn a loss into
//!   a retransmission delay (a TCP stream has no packets to drop); duplication and
//!   reordering are refused, since the receiving TCP would undo both.

use std::fmt;

use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// Bounds of a random delay: long enough to matter next to raft timeouts, short enough
/// that a run still makes progress.
pub const RANDOM_DELAY_MS: std::ops::RangeInclusive<u32> = 50..=200;
/// Upper bound of every percentage a random spec draws, so packets still mostly arrive.
pub const RANDOM_LOSS_MAX_PCT: u8 = 5;
const RANDOM_DUPLICATE_MAX_PCT: u8 = 3;
const RANDOM_REORDER_MAX_PCT: u8 = 10;
/// Rate limits a random spec draws from: a slow WAN link to a very slow one, slow enough
/// that a raft append of a few kilobytes takes a noticeable time, fast enough for
/// heartbeats to get through.
pub const RANDOM_RATES_KBIT: [u32; 5] = [64, 128, 256, 512, 1024];
/// Share of random specs with a rate limit when the backend can also delay packets (when it
/// cannot, the rate limit is half of what is left to draw, so it is drawn more often).
const RANDOM_RATE_PROBABILITY: f64 = 0.3;
/// Largest delay a spec may ask for: beyond this it is a partition, not a slow link.
pub const MAX_DELAY_MS: u32 = 10_000;
/// Slowest rate limit a spec may ask for: below this a link carries under one 1500-byte
/// packet per 1.5 s and is a partition, not a slow link.
pub const MIN_RATE_KBIT: u32 = 8;
/// Fastest rate limit a spec may ask for (10 gbit/s): above that it limits nothing here.
pub const MAX_RATE_KBIT: u32 = 10_000_000;

/// What happens to a node's outgoing packets. Percentages are 0..=100; zero parts are off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetemSpec {
    pub delay_ms: u32,
    /// Each packet's delay is drawn uniformly within `delay_ms ± jitter_ms`.
    pub jitter_ms: u32,
    pub loss_pct: u8,
    pub duplicate_pct: u8,
    /// Share of packets sent at once instead of delayed; needs `delay_ms > 0`.
    pub reorder_pct: u8,
    /// Bandwidth limit in kbit/s (1000 bit/s), 0 for none.
    #[serde(default)]
    pub rate_kbit: u32,
}

/// A spec that netem would reject or that is not a slow link.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid netem spec: {0}")]
pub struct InvalidNetem(pub String);

/// Which parts of a [`NetemSpec`] (and which aims of a [`PacketFault`]) a backend can apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketCaps {
    /// Delay and jitter.
    pub delay: bool,
    pub loss: bool,
    pub duplicate: bool,
    pub reorder: bool,
    pub rate: bool,
    /// Faults aimed at some destinations only (`PacketFault::to` non-empty).
    pub per_link: bool,
}

impl PacketCaps {
    pub const ALL: PacketCaps = PacketCaps {
        delay: true,
        loss: true,
        duplicate: true,
        reorder: true,
        rate: true,
        per_link: true,
    };
    pub const NONE: PacketCaps = PacketCaps {
        delay: false,
        loss: false,
        duplicate: false,
        reorder: false,
        rate: false,
        per_link: false,
    };

    /// True when no spec at all can be applied.
    pub fn is_none(&self) -> bool {
        !(self.delay || self.loss || self.duplicate || self.reorder || self.rate)
    }

    /// The names of the parts these caps allow, e.g. `["loss", "rate", "per-link"]`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (name, on) in [
            ("delay", self.delay),
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("rate", self.rate),
            ("per-link", self.per_link),
        ] {
            if on {
                names.push(name);
            }
        }
        names
    }

    /// The names of the parts these caps do not allow, e.g. `["delay", "duplicate"]`.
    pub fn lacking(&self) -> Vec<&'static str> {
        let have = self.names();
        PacketCaps::ALL
            .names()
            .into_iter()
            .filter(|n| !have.contains(n))
            .collect()
    }

    /// The parts `fault` asks for that these caps cannot apply, in spec order (empty when
    /// all of it can be applied), e.g. `["delay", "jitter", "reorder"]`.
    pub fn missing(&self, fault: &PacketFault) -> Vec<&'static str> {
        let s = &fault.spec;
        let mut missing = Vec::new();
        for (name, asked, can) in [
            ("delay", s.delay_ms > 0, self.delay),
            ("jitter", s.jitter_ms > 0, self.delay),
            ("loss", s.loss_pct > 0, self.loss),
            ("duplicate", s.duplicate_pct > 0, self.duplicate),
            ("reorder", s.reorder_pct > 0, self.reorder),
            ("rate", s.rate_kbit > 0, self.rate),
            ("per-link", !fault.to.is_empty(), self.per_link),
        ] {
            if asked && !can {
                missing.push(name);
            }
        }
        missing
    }
}

impl fmt::Display for PacketCaps {
    /// `delay, loss, rate`, or `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

impl NetemSpec {
    /// Nothing: every part off.
    pub const NONE: NetemSpec = NetemSpec {
        delay_ms: 0,
        jitter_ms: 0,
        loss_pct: 0,
        duplicate_pct: 0,
        reorder_pct: 0,
        rate_kbit: 0,
    };

    /// Only a fixed delay.
    pub fn delay(delay_ms: u32) -> NetemSpec {
        NetemSpec {
            delay_ms,
            ..NetemSpec::NONE
        }
    }

    /// Only a loss.
    pub fn loss(loss_pct: u8) -> NetemSpec {
        NetemSpec {
            loss_pct,
            ..NetemSpec::NONE
        }
    }

    /// Only a rate limit.
    pub fn rate(rate_kbit: u32) -> NetemSpec {
        NetemSpec {
            rate_kbit,
            ..NetemSpec::NONE
        }
    }

    /// A random spec using only what `caps` allows, or None when it allows nothing. With
    /// delay: 50-200 ms with jitter of a quarter of it, small loss, duplication and
    /// reordering, and sometimes a rate limit. Without delay: a loss of 1-5% and/or a rate
    /// limit, so the fault is never a no-op.
    pub fn random(rng: &mut impl Rng, caps: PacketCaps) -> Option<NetemSpec> {
        if caps.is_none() {
            return None;
        }
        let mut spec = NetemSpec::NONE;
        let draw_rate = |rng: &mut _| {
            *RANDOM_RATES_KBIT
                .choose(rng)
                .expect("RANDOM_RATES_KBIT is not empty")
        };
        if caps.delay {
            spec.delay_ms = rng.random_range(RANDOM_DELAY_MS);
            spec.jitter_ms = spec.delay_ms / 4;
            if caps.loss {
                spec.loss_pct = rng.random_range(0..=RANDOM_LOSS_MAX_PCT);
            }
            if caps.duplicate {
                spec.duplicate_pct = rng.random_range(0..=RANDOM_DUPLICATE_MAX_PCT);
            }
            if caps.reorder {
                spec.reorder_pct = rng.random_range(0..=RANDOM_REORDER_MAX_PCT);
            }
            if caps.rate && rng.random_bool(RANDOM_RATE_PROBABILITY) {
                spec.rate_kbit = draw_rate(rng);
            }
            return Some(spec);
        }
        if caps.rate && (!caps.loss || rng.random_bool(0.5)) {
            spec.rate_kbit = draw_rate(rng);
        }
        if caps.loss && (spec.rate_kbit == 0 || rng.random_bool(0.5)) {
            spec.loss_pct = rng.random_range(1..=RANDOM_LOSS_MAX_PCT);
        }
        if spec == NetemSpec::NONE {
            // Only duplication or reordering is possible, and both need a delay.
            if caps.duplicate {
                spec.duplicate_pct = rng.random_range(1..=RANDOM_DUPLICATE_MAX_PCT);
            } else {
                return None;
            }
        }
        Some(spec)
    }

    pub fn validate(&self) -> Result<(), InvalidNetem> {
        let bad = |m: String| Err(InvalidNetem(m));
        if self.delay_ms > MAX_DELAY_MS {
            return bad(format!("delay {} ms > {MAX_DELAY_MS} ms", self.delay_ms));
        }
        if self.jitter_ms > self.delay_ms {
            return bad(format!(
                "jitter {} ms > delay {} ms",
                self.jitter_ms, self.delay_ms
            ));
        }
        for (name, v) in [
            ("loss", self.loss_pct),
            ("duplicate", self.duplicate_pct),
            ("reorder", self.reorder_pct),
        ] {
            if v > 100 {
                return bad(format!("{name} {v}% > 100%"));
            }
        }
        if self.reorder_pct > 0 && self.delay_ms == 0 {
            return bad("reorder needs a delay".into());
        }
        if self.rate_kbit != 0 && !(MIN_RATE_KBIT..=MAX_RATE_KBIT).contains(&self.rate_kbit) {
            return bad(format!(
                "rate {} kbit/s outside {MIN_RATE_KBIT}..={MAX_RATE_KBIT} kbit/s (0 for none)",
                self.rate_kbit
            ));
        }
        Ok(())
    }

    /// Whether the spec does nothing at all.
    pub fn is_noop(&self) -> bool {
        *self == NetemSpec::NONE
    }

    /// The arguments after `netem` for `tc qdisc ... netem`, e.g.
    /// `["delay", "100ms", "25ms", "rate", "64kbit", "loss", "2%"]`. Zero parts are left out.
    pub fn tc_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.delay_ms > 0 {
            args.extend(["delay".into(), format!("{}ms", self.delay_ms)]);
            if self.jitter_ms > 0 {
                args.push(format!("{}ms", self.jitter_ms));
            }
        }
        if self.rate_kbit > 0 {
            args.extend(["rate".into(), format!("{}kbit", self.rate_kbit)]);
        }
        for (name, v) in self.percentages() {
            if v > 0 {
                args.extend([name.to_string(), format!("{v}%")]);
            }
        }
        args
    }

    fn percentages(&self) -> [(&'static str, u8); 3] {
        [
            ("loss", self.loss_pct),
            ("duplicate", self.duplicate_pct),
            ("reorder", self.reorder_pct),
        ]
    }
}

impl fmt::Display for NetemSpec {
    /// `delay 120ms±30ms rate 64kbit loss 2% duplicate 1% reorder 5%`; zero parts left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.delay_ms > 0 {
            parts.push(if self.jitter_ms > 0 {
                format!("delay {}ms±{}ms", self.delay_ms, self.jitter_ms)
            } else {
                format!("delay {}ms", self.delay_ms)
            });
        }
        if self.rate_kbit > 0 {
            parts.push(format!("rate {}kbit", self.rate_kbit));
        }
        for (name, v) in self.percentages() {
            if v > 0 {
                parts.push(format!("{name} {v}%"));
            }
        }
        if parts.is_empty() {
            f.write_str("no-op")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// A packet fault on one node's egress: `spec` applies to every packet the node sends when
/// `to` is empty, else only to packets for the nodes in `to` (each listed link gets its own
/// copy of the spec: a rate limit is per link, not shared between them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketFault {
    pub spec: NetemSpec,
    /// Destination nodes; empty for all of the node's outgoing traffic (clients included).
    #[serde(default)]
    pub to: Vec<NodeId>,
}

impl PacketFault {
    /// `spec` on all of the node's outgoing traffic.
    pub fn node_wide(spec: NetemSpec) -> PacketFault {
        PacketFault {
            spec,
            to: Vec::new(),
        }
    }

    /// `spec` on the node's links to `to` only (sorted, without repeats).
    pub fn links(spec: NetemSpec, to: &[NodeId]) -> PacketFault {
        let mut to = to.to_vec();
        to.sort();
        to.dedup();
        PacketFault { spec, to }
    }

    /// Whether the fault applies to the node's packets for `dst`.
    pub fn applies_to(&self, dst: NodeId) -> bool {
        self.to.is_empty() || self.to.contains(&dst)
    }

    /// Checks the spec, and that the fault on `from` names no destination twice and not
    /// `from` itself (a node's traffic to itself never leaves it).
    pub fn validate(&self, from: NodeId) -> Result<(), InvalidNetem> {
        self.spec.validate()?;
        if self.to.contains(&from) {
            return Err(InvalidNetem(format!("{from} cannot have a link to itself")));
        }
        let mut seen = self.to.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.to.len() {
            return Err(InvalidNetem(format!(
                "a destination is listed twice in {}",
                self.target(from)
            )));
        }
        Ok(())
    }

    /// What the fault is aimed at: `n1` (the whole egress) or `n1->n2,n3`.
    pub fn target(&self, from: NodeId) -> String {
        if self.to.is_empty() {
            from.to_string()
        } else {
            let to: Vec<String> = self.to.iter().map(ToString::to_string).collect();
            format!("{from}->{}", to.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn renders_tc_arguments_and_text() {
        let s = NetemSpec {
            delay_ms: 120,
            jitter_ms: 30,
            loss_pct: 2,
            reorder_pct: 5,
            ..NetemSpec::NONE
        };
        assert_eq!(
            s.tc_args(),
            ["delay", "120ms", "30ms", "loss", "2%", "reorder", "5%"]
        );
        assert_eq!(s.to_string(), "delay 120ms±30ms loss 2% reorder 5%");
        let r = NetemSpec {
            rate_kbit: 64,
            loss_pct: 20,
            ..NetemSpec::NONE
        };
        assert_eq!(r.tc_args(), ["rate", "64kbit", "loss", "20%"]);
        assert_eq!(r.to_string(), "rate 64kbit loss 20%");
        assert_eq!(NetemSpec::delay(200).tc_args(), ["delay", "200ms"]);
        assert_eq!(NetemSpec::delay(0).to_string(), "no-op");
        assert!(NetemSpec::delay(0).is_noop());
    }

    #[test]
    fn rejects_what_netem_would() {
        assert!(NetemSpec::delay(200).validate().is_ok());
        let mut s = NetemSpec::delay(0);
        s.reorder_pct = 5;
        assert!(s.validate().is_err());
        s = NetemSpec::delay(10);
        s.jitter_ms = 11;
        assert!(s.validate().is_err());
        s = NetemSpec::delay(10);
        s.loss_pct = 101;
        assert!(s.validate().is_err());
        assert!(NetemSpec::delay(MAX_DELAY_MS + 1).validate().is_err());
        for ok in [0, MIN_RATE_KBIT, 64, MAX_RATE_KBIT] {
            assert!(NetemSpec::rate(ok).validate().is_ok(), "{ok}");
        }
        for bad in [1, MIN_RATE_KBIT - 1, MAX_RATE_KBIT + 1] {
            let e = NetemSpec::rate(bad).validate().unwrap_err().to_string();
            assert!(e.contains("kbit/s"), "{e}");
        }
    }

    #[test]
    fn faults_aim_at_links_and_reject_bad_ones() {
        let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
        let wide = PacketFault::node_wide(NetemSpec::loss(3));
        assert_eq!(wide.target(n1), "n1");
        assert!(wide.applies_to(n2) && wide.applies_to(n3));
        let link = PacketFault::links(NetemSpec::rate(64), &[n3, n2, n3]);
        assert_eq!(link.to, [n2, n3]);
        assert_eq!(link.target(n1), "n1->n2,n3");
        let one = PacketFault::links(NetemSpec::rate(64), &[n3]);
        assert!(one.applies_to(n3) && !one.applies_to(n2));
        assert!(one.validate(n1).is_ok());
        let e = one.validate(n3).unwrap_err().to_string();
        assert!(e.contains("n3 cannot have a link to itself"), "{e}");
        let twice = PacketFault {
            spec: NetemSpec::loss(1),
            to: vec![n2, n2],
        };
        assert!(twice.validate(n1).is_err());
        let bad_spec = PacketFault::links(NetemSpec::rate(1), &[n2]);
        assert!(bad_spec.validate(n1).is_err());
    }

    #[test]
    fn caps_name_what_they_cannot_apply() {
        let no_netem = PacketCaps {
            loss: true,
            rate: true,
            per_link: true,
            ..PacketCaps::NONE
        };
        let asks = PacketFault::links(
            NetemSpec {
                delay_ms: 100,
                jitter_ms: 10,
                loss_pct: 5,
                duplicate_pct: 1,
                reorder_pct: 2,
                rate_kbit: 64,
            },
            &[NodeId(2)],
        );
        assert_eq!(
            no_netem.missing(&asks),
            ["delay", "jitter", "duplicate", "reorder"]
        );
        assert!(PacketCaps::ALL.missing(&asks).is_empty());
        assert_eq!(PacketCaps::NONE.missing(&asks).len(), 7);
        assert_eq!(no_netem.to_string(), "loss, rate, per-link");
        assert_eq!(no_netem.lacking(), ["delay", "duplicate", "reorder"]);
        assert!(PacketCaps::ALL.lacking().is_empty());
        assert_eq!(PacketCaps::NONE.to_string(), "nothing");
        assert!(PacketCaps::NONE.is_none() && !no_netem.is_none());
    }

    #[test]
    fn random_specs_stay_in_bounds_and_within_caps() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut rated = 0;
        for _ in 0..200 {
            let s = NetemSpec::random(&mut rng, PacketCaps::ALL).expect("a spec");
            assert!(RANDOM_DELAY_MS.contains(&s.delay_ms), "{s}");
            assert!(s.validate().is_ok(), "{s}");
            assert!(s.loss_pct <= RANDOM_LOSS_MAX_PCT);
            assert!(s.rate_kbit == 0 || RANDOM_RATES_KBIT.contains(&s.rate_kbit));
            rated += usize::from(s.rate_kbit > 0);
        }
        // About 30% of 200 draw a rate limit.
        assert!((30..=90).contains(&rated), "{rated} of 200 with a rate");

        let no_netem = PacketCaps {
            loss: true,
            rate: true,
            ..PacketCaps::NONE
        };
        let (mut lossy, mut limited) = (0, 0);
        for _ in 0..200 {
            let s = NetemSpec::random(&mut rng, no_netem).expect("a spec");
            let fault = PacketFault::node_wide(s);
            assert!(no_netem.missing(&fault).is_empty(), "{s}");
            assert!(!s.is_noop() && s.validate().is_ok(), "{s}");
            assert!(s.loss_pct <= RANDOM_LOSS_MAX_PCT);
            lossy += usize::from(s.loss_pct > 0);
            limited += usize::from(s.rate_kbit > 0);
        }
        assert!(
            lossy > 50 && limited > 50,
            "{lossy} lossy, {limited} limited"
        );
        let rate_only = PacketCaps {
            rate: true,
            ..PacketCaps::NONE
        };
        let s = NetemSpec::random(&mut rng, rate_only).expect("a spec");
        assert!(s.rate_kbit > 0 && s.loss_pct == 0, "{s}");
        assert_eq!(NetemSpec::random(&mut rng, PacketCaps::NONE), None);
        let reorder_only = PacketCaps {
            reorder: true,
            ..PacketCaps::NONE
        };
        assert_eq!(NetemSpec::random(&mut rng, reorder_only), None);
    }
}
