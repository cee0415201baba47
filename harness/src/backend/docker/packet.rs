//! `Qdiscs`: which packet schedulers the host kernel offers, and how a [`PacketFault`] is
//! rendered into the shell script the Docker backend runs in a node's network namespace
//! (with `$dev` set to the node's interface). Pure, so every command is unit-tested without
//! Docker.
//!
//! - With `sch_netem`: the whole egress gets `tc qdisc replace ... root netem <args>`; a
//!   per-link fault gets an htb root whose default class is unshaped, one class per
//!   destination with a netem leaf qdisc, and a u32 filter on the destination IP into it.
//! - Without `sch_netem`: a rate limit becomes htb classes (the default class for the whole
//!   egress, or one class per destination behind a u32 filter), and a loss becomes iptables
//!   `statistic` DROP rules on the egress interface in [`LOSS_CHAIN`], a chain of its own so
//!   that partitions (which rewrite the INPUT-side chain) and packet faults never undo each
//!   other. Delay, jitter, duplication and reordering cannot be done and are refused.
//!
//! Applying a fault first clears the node's previous one (qdisc and loss rules), so a fault
//! replaces, never stacks; clearing is idempotent.

use std::net::Ipv4Addr;

use faultline_nemeses::{PacketCaps, PacketFault};

/// The iptables chain (OUTPUT jumps to it) holding a node's random-loss DROP rules.
pub const LOSS_CHAIN: &str = "FAULTLINE_LOSS";
/// The htb class that leaves traffic alone: far above anything a bridge here carries. The
/// bursts are set because tc computes 0 for them at this rate, and the quantum because
/// htb's default (rate / 10) is far beyond its 200000-byte cap.
const UNSHAPED_CLASS: &str = "htb rate 10gbit burst 1m cburst 1m quantum 60000";
/// Quantum of a rate-limited class: one Ethernet frame (htb's default, rate / 10, is below
/// an MTU for slow rates, and tc warns about it).
const LIMITED_QUANTUM: &str = "quantum 1514";
/// First htb class minor number used for a destination (1:1 is the default class).
const FIRST_LINK_CLASS: usize = 0x10;

/// Tries each qdisc kind on the namespace's loopback (a scratch interface nothing of the
/// test uses) and prints `<kind> ok` or `<kind> missing: <tc's error>` per kind.
pub const PROBE_SCRIPT: &str = "for k in netem htb; do \
     if out=$(tc qdisc replace dev lo root handle 1: $k 2>&1); \
     then tc qdisc del dev lo root; echo \"$k ok\"; \
     else echo \"$k missing: $out\" | tr '\\n' ' '; echo; fi; done";

/// Removes whatever packet fault the node has: a root netem or htb qdisc on `$dev`, and
/// the loss rules. A no-op on a node without one.
pub const CLEAR_SCRIPT: &str =
    "if tc qdisc show dev \"$dev\" | grep -Eq '^qdisc (netem|htb) [0-9a-f]+: root'; \
     then tc qdisc del dev \"$dev\" root; fi; \
     if iptables -w -n -L FAULTLINE_LOSS >/dev/null 2>&1; then iptables -w -F FAULTLINE_LOSS; fi";

/// What tc prints when the kernel lacks a qdisc (module missing or not built in).
pub const QDISC_MISSING: [&str; 3] = ["Unknown qdisc", "qdisc kind is unknown", "No such file"];

/// The packet schedulers the host kernel has. Loss needs neither (iptables does it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qdiscs {
    pub netem: bool,
    pub htb: bool,
}

impl Qdiscs {
    /// Reads [`PROBE_SCRIPT`]'s output. An error names a failure that is not a missing
    /// qdisc (no tc, no permission), which must not be mistaken for one.
    pub fn parse_probe(output: &str) -> Result<Qdiscs, String> {
        let mut found = [None, None];
        for line in output.lines() {
            for (i, kind) in ["netem", "htb"].iter().enumerate() {
                if let Some(rest) = line.strip_prefix(kind) {
                    if rest.trim() == "ok" {
                        found[i] = Some(true);
                    } else if let Some(err) = rest.trim().strip_prefix("missing:") {
                        if !QDISC_MISSING.iter().any(|p| err.contains(p)) {
                            return Err(format!("probing the {kind} qdisc failed: {}", err.trim()));
                        }
                        found[i] = Some(false);
                    }
                }
            }
        }
        match found {
            [Some(netem), Some(htb)] => Ok(Qdiscs { netem, htb }),
            _ => Err(format!("unexpected qdisc probe output: {output:?}")),
        }
    }

    /// What a packet fault can do on this kernel.
    pub fn caps(&self) -> PacketCaps {
        PacketCaps {
            delay: self.netem,
            loss: true,
            duplicate: self.netem,
            reorder: self.netem,
            rate: self.netem || self.htb,
            per_link: self.htb,
        }
    }

    /// The script that replaces the node's packet fault with `fault`, whose destinations
    /// `to` has the IPs of (same order). `Err` says which parts this kernel cannot do, and
    /// why; nothing is run then.
    pub fn render(&self, fault: &PacketFault, to: &[Ipv4Addr]) -> Result<String, String> {
        let missing = self.caps().missing(fault);
        if !missing.is_empty() {
            return Err(self.refusal(&missing));
        }
        let spec = &fault.spec;
        let mut cmds = vec!["set -e".to_string(), CLEAR_SCRIPT.to_string()];
        if spec.is_noop() {
            return Ok(cmds.join("; "));
        }
        let tc = |args: String| format!("tc {args}");
        if self.netem {
            let netem = format!("netem {}", spec.tc_args().join(" "));
            if to.is_empty() {
                cmds.push(tc(format!("qdisc replace dev \"$dev\" root {netem}")));
            } else {
                cmds.extend(htb_root(UNSHAPED_CLASS));
                for (i, ip) in to.iter().enumerate() {
                    let class = FIRST_LINK_CLASS + i;
                    cmds.push(tc(format!(
                        "class add dev \"$dev\" parent 1: classid 1:{class:x} {UNSHAPED_CLASS}"
                    )));
                    cmds.push(tc(format!(
                        "qdisc add dev \"$dev\" parent 1:{class:x} handle {class:x}: {netem}"
                    )));
                    cmds.push(dst_filter(*ip, class));
                }
            }
            return Ok(cmds.join("; "));
        }
        if spec.rate_kbit > 0 {
            let limited = format!("htb rate {}kbit {LIMITED_QUANTUM}", spec.rate_kbit);
            if to.is_empty() {
                cmds.extend(htb_root(&limited));
            } else {
                cmds.extend(htb_root(UNSHAPED_CLASS));
                for (i, ip) in to.iter().enumerate() {
                    let class = FIRST_LINK_CLASS + i;
                    cmds.push(tc(format!(
                        "class add dev \"$dev\" parent 1: classid 1:{class:x} {limited}"
                    )));
                    cmds.push(dst_filter(*ip, class));
                }
            }
        }
        if spec.loss_pct > 0 {
            cmds.push(format!(
                "iptables -w -n -L {LOSS_CHAIN} >/dev/null 2>&1 || iptables -w -N {LOSS_CHAIN}"
            ));
            cmds.push(format!(
                "iptables -w -C OUTPUT -j {LOSS_CHAIN} 2>/dev/null || \
                 iptables -w -I OUTPUT -j {LOSS_CHAIN}"
            ));
            let probability = f64::from(spec.loss_pct) / 100.0;
            let drop = format!("-m statistic --mode random --probability {probability:.2} -j DROP");
            if to.is_empty() {
                cmds.push(format!("iptables -w -A {LOSS_CHAIN} -o \"$dev\" {drop}"));
            }
            for ip in to {
                cmds.push(format!(
                    "iptables -w -A {LOSS_CHAIN} -o \"$dev\" -d {ip}/32 {drop}"
                ));
            }
        }
        Ok(cmds.join("; "))
    }

    /// Why `missing` parts cannot be applied here.
    fn refusal(&self, missing: &[&str]) -> String {
        let (need_netem, need_htb): (Vec<&str>, Vec<&str>) = missing
            .iter()
            .partition(|p| ["delay", "jitter", "duplicate", "reorder"].contains(p));
        let mut why = Vec::new();
        if !need_netem.is_empty() {
            why.push(format!(
                "{} the kernel's netem qdisc (sch_netem), which this host lacks; \
                 without it only loss (iptables statistic){} can be applied",
                needs(&need_netem),
                if self.htb {
                    " and rate limits (htb)"
                } else {
                    ""
                }
            ));
        }
        if !need_htb.is_empty() {
            why.push(format!(
                "{} the kernel's htb qdisc (sch_htb), which this host lacks",
                needs(&need_htb)
            ));
        }
        why.join("; ")
    }
}

/// `delay needs` or `delay, jitter need`.
fn needs(parts: &[&str]) -> String {
    let verb = if parts.len() == 1 { "needs" } else { "need" };
    format!("{} {verb}", parts.join(", "))
}

/// An htb root qdisc on `$dev` whose default class 1:1 is `class`.
fn htb_root(class: &str) -> [String; 2] {
    [
        "tc qdisc replace dev \"$dev\" root handle 1: htb default 1".to_string(),
        format!("tc class add dev \"$dev\" parent 1: classid 1:1 {class}"),
    ]
}

/// Sends IPv4 packets for `ip` into htb class `1:<class>`.
fn dst_filter(ip: Ipv4Addr, class: usize) -> String {
    format!(
        "tc filter add dev \"$dev\" parent 1: protocol ip prio 1 u32 match ip dst {ip}/32 \
         flowid 1:{class:x}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_nemeses::{NetemSpec, NodeId};

    const NO_NETEM: Qdiscs = Qdiscs {
        netem: false,
        htb: true,
    };
    const FULL: Qdiscs = Qdiscs {
        netem: true,
        htb: true,
    };

    fn ips() -> [Ipv4Addr; 2] {
        [Ipv4Addr::new(10, 1, 2, 12), Ipv4Addr::new(10, 1, 2, 13)]
    }

    /// The script's commands after the leading `set -e` and clear.
    fn commands(script: &str) -> Vec<&str> {
        let prefix = format!("set -e; {CLEAR_SCRIPT}");
        let rest = script.strip_prefix(&prefix).expect("starts with the clear");
        rest.split("; ").filter(|c| !c.is_empty()).collect()
    }

    #[test]
    fn probe_output_is_read_strictly() {
        let this_host = "netem missing: Error: Specified qdisc kind is unknown. \nhtb ok\n";
        assert_eq!(Qdiscs::parse_probe(this_host), Ok(NO_NETEM));
        assert_eq!(Qdiscs::parse_probe("netem ok\nhtb ok\n"), Ok(FULL));
        let denied = "netem missing: RTNETLINK answers: Operation not permitted \nhtb ok\n";
        let e = Qdiscs::parse_probe(denied).unwrap_err();
        assert!(e.contains("Operation not permitted"), "{e}");
        assert!(Qdiscs::parse_probe("sh: tc: not found").is_err());
        assert_eq!(NO_NETEM.caps().to_string(), "loss, rate, per-link");
        assert_eq!(FULL.caps(), PacketCaps::ALL);
    }

    #[test]
    fn node_wide_with_netem_is_one_root_qdisc() {
        let spec = NetemSpec {
            delay_ms: 100,
            jitter_ms: 20,
            rate_kbit: 256,
            loss_pct: 2,
            ..NetemSpec::NONE
        };
        let script = FULL.render(&PacketFault::node_wide(spec), &[]).unwrap();
        assert_eq!(
            commands(&script),
            ["tc qdisc replace dev \"$dev\" root netem delay 100ms 20ms rate 256kbit loss 2%"]
        );
    }

    #[test]
    fn per_link_with_netem_is_an_htb_tree_with_netem_leaves() {
        let fault = PacketFault::links(NetemSpec::delay(50), &[NodeId(2), NodeId(3)]);
        let script = FULL.render(&fault, &ips()).unwrap();
        assert_eq!(
            commands(&script),
            [
                "tc qdisc replace dev \"$dev\" root handle 1: htb default 1",
                "tc class add dev \"$dev\" parent 1: classid 1:1 htb rate 10gbit burst 1m cburst 1m quantum 60000",
                "tc class add dev \"$dev\" parent 1: classid 1:10 htb rate 10gbit burst 1m cburst 1m quantum 60000",
                "tc qdisc add dev \"$dev\" parent 1:10 handle 10: netem delay 50ms",
                "tc filter add dev \"$dev\" parent 1: protocol ip prio 1 u32 match ip dst \
                 10.1.2.12/32 flowid 1:10",
                "tc class add dev \"$dev\" parent 1: classid 1:11 htb rate 10gbit burst 1m cburst 1m quantum 60000",
                "tc qdisc add dev \"$dev\" parent 1:11 handle 11: netem delay 50ms",
                "tc filter add dev \"$dev\" parent 1: protocol ip prio 1 u32 match ip dst \
                 10.1.2.13/32 flowid 1:11",
            ]
        );
    }

    #[test]
    fn without_netem_rate_is_htb_and_loss_is_iptables() {
        let spec = NetemSpec {
            rate_kbit: 64,
            loss_pct: 20,
            ..NetemSpec::NONE
        };
        let chain_setup = [
            "iptables -w -n -L FAULTLINE_LOSS >/dev/null 2>&1 || iptables -w -N FAULTLINE_LOSS",
            "iptables -w -C OUTPUT -j FAULTLINE_LOSS 2>/dev/null || \
             iptables -w -I OUTPUT -j FAULTLINE_LOSS",
        ];
        let wide = NO_NETEM.render(&PacketFault::node_wide(spec), &[]).unwrap();
        let mut expected = vec![
            "tc qdisc replace dev \"$dev\" root handle 1: htb default 1",
            "tc class add dev \"$dev\" parent 1: classid 1:1 htb rate 64kbit quantum 1514",
        ];
        expected.extend(chain_setup);
        expected.push(
            "iptables -w -A FAULTLINE_LOSS -o \"$dev\" -m statistic --mode random \
             --probability 0.20 -j DROP",
        );
        assert_eq!(commands(&wide), expected);

        let link = PacketFault::links(spec, &[NodeId(3)]);
        let script = NO_NETEM.render(&link, &ips()[1..]).unwrap();
        let mut expected = vec![
            "tc qdisc replace dev \"$dev\" root handle 1: htb default 1",
            "tc class add dev \"$dev\" parent 1: classid 1:1 htb rate 10gbit burst 1m cburst 1m quantum 60000",
            "tc class add dev \"$dev\" parent 1: classid 1:10 htb rate 64kbit quantum 1514",
            "tc filter add dev \"$dev\" parent 1: protocol ip prio 1 u32 match ip dst \
             10.1.2.13/32 flowid 1:10",
        ];
        expected.extend(chain_setup);
        expected.push(
            "iptables -w -A FAULTLINE_LOSS -o \"$dev\" -d 10.1.2.13/32 -m statistic --mode \
             random --probability 0.20 -j DROP",
        );
        assert_eq!(commands(&script), expected);

        // Loss alone touches no qdisc; a full loss is probability 1.
        let all = NO_NETEM
            .render(&PacketFault::node_wide(NetemSpec::loss(100)), &[])
            .unwrap();
        let cmds = commands(&all);
        assert!(cmds.iter().all(|c| !c.starts_with("tc ")), "{all}");
        assert!(cmds[2].ends_with("--probability 1.00 -j DROP"), "{all}");
        // A no-op only clears.
        let noop = NO_NETEM
            .render(&PacketFault::node_wide(NetemSpec::NONE), &[])
            .unwrap();
        assert!(commands(&noop).is_empty(), "{noop}");
    }

    #[test]
    fn without_netem_a_delay_is_refused_naming_sch_netem() {
        let spec = NetemSpec {
            delay_ms: 100,
            jitter_ms: 10,
            rate_kbit: 64,
            ..NetemSpec::NONE
        };
        let e = NO_NETEM
            .render(&PacketFault::node_wide(spec), &[])
            .unwrap_err();
        assert!(
            e.starts_with("delay, jitter need the kernel's netem qdisc (sch_netem)"),
            "{e}"
        );
        assert!(e.contains("rate limits (htb)"), "{e}");
        let bare = Qdiscs {
            netem: false,
            htb: false,
        };
        let link = PacketFault::links(NetemSpec::rate(64), &[NodeId(2)]);
        let e = bare.render(&link, &ips()[..1]).unwrap_err();
        assert_eq!(
            e,
            "rate, per-link need the kernel's htb qdisc (sch_htb), which this host lacks"
        );
    }
}
