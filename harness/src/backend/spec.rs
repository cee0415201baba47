//! [`NodeSpec`]: how to run one node of a target, on any backend. A target's driver
//! (`crate::target`) fills it in once per run; each backend renders it for every node (a
//! container on Docker, a child process locally), filling the placeholders below with that
//! node's own values. Backends never ask which target they run: everything a backend needs
//! to know about one is here.
//!
//! Placeholders in [`NodeSpec::args`] and [`NodeSpec::env`] values:
//! - `{id}` (1-based, also the Raft id), `{name}` (`n1`), `{host}` (the node's address, as
//!   clients and peers reach it), `{port}` (its client port), `{listen}` (`host:port` the
//!   node binds for clients: every address on Docker, its own locally), `{data_dir}`;
//! - `{peers}`: one [`NodeSpec::peer_entry`] per node of the cluster (itself included),
//!   comma-separated. In an entry, `{id}` and `{name}` are the peer's, and `{addr}` is
//!   where this node reaches it: see [`Peering`];
//! - with [`Peering::Shared`] only: `{peer_listen}` (`host:port` the node binds for its
//!   peers) and `{peer_advertise}` (`host:port` where the others reach it);
//! - `{target_dir}`: the target's folder ([`NodeSpec::folder`]) as the node sees it.
//!
//! A placeholder the spec's peering does not fill is refused before anything starts: left
//! in, it would reach the program literally.

use std::path::PathBuf;

use faultline_nemeses::{FaultKind, NodeId};

/// The program a node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A program that ships with faultline (raftkv): built from this source tree, or
    /// found beside the `faultline` executable, unless `path` names one. Docker copies it
    /// into the node image.
    Bundled {
        name: &'static str,
        path: Option<PathBuf>,
    },
    /// A program installed from a package: the first `name` on the PATH locally, and in
    /// the node image on Docker. `install` tells a user without it how to get it.
    Installed { name: String, install: String },
    /// A file in the target's folder ([`NodeSpec::folder`]), `path` relative to it: run
    /// from the folder locally, and from the folder's copy in the node image on Docker.
    Folder { path: String },
}

impl Program {
    /// The executable's name, as a container command runs it.
    pub fn name(&self) -> &str {
        match self {
            Program::Bundled { name, .. } => name,
            Program::Installed { name, .. } => name,
            Program::Folder { path } => path,
        }
    }
}

/// How a target's nodes find each other, which decides how a backend routes peer traffic
/// (through link proxies on the local backend, directly between addresses on Docker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peering {
    /// Each node gets its own view of its peers: in node A's `{peers}`, B's `{addr}` is
    /// what A dials for B (B's client address on Docker; locally, the proxy of the link
    /// A -> B). Peers speak to each other on the client port. raftkv.
    PerLink,
    /// Every node gets the same `{peers}`: each peer's advertised peer address. Peers
    /// listen on a port of their own (`peer_port` on Docker; a free one locally, behind a
    /// proxy that attributes each connection to its sender). etcd.
    Shared { peer_port: u16 },
    /// Nodes reach each other by themselves: on ports besides their client port, or at
    /// addresses they learn from each other (ZooKeeper's quorum ports, Redis replicas
    /// found by Sentinel). `{addr}` in a peer entry is the peer's own client address, and
    /// only a network with an address per node can cut their traffic: the local backend's
    /// link proxies never see it, so it refuses network faults ([`NETWORK_FAULTS`]).
    Direct,
}

/// The fault kinds that act on peer traffic.
pub const NETWORK_FAULTS: [FaultKind; 3] =
    [FaultKind::Partition, FaultKind::Netem, FaultKind::Figure8];

impl Peering {
    /// Why the local backend cannot inject `kind` with this peering, if it cannot.
    pub fn local_refusal(self, kind: FaultKind) -> Option<String> {
        (self == Peering::Direct && NETWORK_FAULTS.contains(&kind)).then(|| {
            format!(
                "the nodes reach each other directly (peer_traffic = \"direct\"), where the \
                 local backend's link proxies cannot {} them; use --backend docker",
                kind.verb()
            )
        })
    }
}

/// When a started node counts as up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// It accepts TCP connections on its client address.
    ClientPort,
    /// A probe command, run on the harness's host, exits 0. Placeholders: `{host}`,
    /// `{port}`, `{name}`, `{id}`, `{target_dir}` (the folder on the harness's host).
    Command(Vec<String>),
}

/// Where a target keeps its write-ahead log, for the disk fault that flips a byte in the
/// newest segment's tail: files `prefix*suffix` in `dir` (relative to the data folder),
/// whose names sort oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalFiles {
    pub dir: String,
    pub prefix: String,
    pub suffix: String,
}

/// A fault kind the target cannot take, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: FaultKind,
    pub reason: String,
}

/// How to run one node of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// The target's name, for messages.
    pub target: String,
    pub program: Program,
    /// Arguments, with placeholders.
    pub args: Vec<String>,
    /// Environment variables set for the node, values with placeholders.
    pub env: Vec<(String, String)>,
    /// The client port on a backend that gives each node an address of its own (Docker);
    /// the local backend picks a free port per node.
    pub client_port: u16,
    pub peering: Peering,
    /// One entry of `{peers}`: `{id}={addr}` for raftkv, `{name}=http://{addr}` for etcd.
    pub peer_entry: String,
    pub readiness: Readiness,
    /// Files the node logs to besides its stdout and stderr, relative to its data folder;
    /// copied into the run's `nodes/<node>/` at the end.
    pub log_files: Vec<String>,
    /// The write-ahead log, when the harness may corrupt it.
    pub wal: Option<WalFiles>,
    /// Fault kinds the target cannot take.
    pub refused: Vec<Refusal>,
    /// A command run once per node before its first start (it writes a configuration
    /// file, say), with the same placeholders as `args`; empty: none. It runs where the
    /// node runs, and the node starts only if it succeeds.
    pub setup: Vec<String>,
    /// The target's folder on the harness's host (a target described by a file): the
    /// Docker node image carries a copy at [`CONTAINER_TARGET_DIR`].
    pub folder: Option<PathBuf>,
    /// Debian packages the node needs beyond the base image's.
    pub packages: Vec<String>,
}

/// Where a node image keeps the target's folder.
pub const CONTAINER_TARGET_DIR: &str = "/opt/faultline/target";
/// The file in a node's data folder that says its setup ran.
const SETUP_DONE: &str = ".faultline-setup-done";

/// One node's values for the placeholders, chosen by the backend.
#[derive(Clone, Debug)]
pub struct NodeValues {
    pub id: NodeId,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub listen: String,
    pub data_dir: String,
    /// `(id, name, addr)` of every node, itself included, in id order: what `{peers}` is
    /// made of.
    pub peers: Vec<(NodeId, String, String)>,
    pub peer_listen: String,
    pub peer_advertise: String,
    /// The target's folder as the node sees it (empty without one).
    pub target_dir: String,
}

/// Placeholders only [`Peering::Shared`] fills.
const SHARED_ONLY: [&str; 2] = ["{peer_listen}", "{peer_advertise}"];

/// A spec a backend cannot render.
#[derive(Debug, thiserror::Error)]
#[error("the {target} node description: {reason}")]
pub struct SpecError {
    pub target: String,
    pub reason: String,
}

impl NodeSpec {
    /// Why `kind` cannot be injected into this target, if it cannot.
    pub fn refuses(&self, kind: FaultKind) -> Option<&str> {
        self.refused
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.reason.as_str())
    }

    /// Whether the node's wall clock can be skewed (libfaketime preloaded).
    pub fn clock_faults(&self) -> bool {
        self.refuses(FaultKind::Clock).is_none()
    }

    /// Refuses placeholders the spec's peering leaves unfilled, and file names that are
    /// not plain relative paths (they reach a shell on Docker).
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |reason: String| SpecError {
            target: self.target.clone(),
            reason,
        };
        let wal = self.wal.iter().flat_map(|w| [&w.dir, &w.prefix, &w.suffix]);
        for name in self.log_files.iter().chain(wal) {
            let plain = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
            if !plain || name.starts_with('/') || name.split('/').any(|p| p == "..") {
                return Err(bad(format!(
                    "{name:?} must be a relative path of [A-Za-z0-9._/-] inside the data folder"
                )));
            }
        }
        if !matches!(self.peering, Peering::Shared { .. }) {
            let texts = self.args.iter().chain(self.env.iter().map(|(_, v)| v));
            for text in texts {
                if let Some(p) = SHARED_ONLY.iter().find(|p| text.contains(*p)) {
                    return Err(bad(format!(
                        "{p} is only filled for targets whose peers listen on a port of \
                         their own (shared peering)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The node's arguments with `values` filled in.
    pub fn render_args(&self, values: &NodeValues) -> Vec<String> {
        let peers = self.peers(values);
        self.args.iter().map(|a| fill(a, values, &peers)).collect()
    }

    /// The node's whole command line, program first, with `values` filled in. With a
    /// setup step, a shell runs it first (once: a file in the data folder remembers it
    /// succeeded) and then becomes the program, so signals reach the program itself.
    pub fn command_line(&self, program: &str, values: &NodeValues) -> Vec<String> {
        let mut line = vec![program.to_string()];
        line.extend(self.render_args(values));
        if self.setup.is_empty() {
            return line;
        }
        let peers = self.peers(values);
        let setup: Vec<String> = self.setup.iter().map(|a| fill(a, values, &peers)).collect();
        let done = shell_quote(&format!("{}/{SETUP_DONE}", values.data_dir));
        let script = format!(
            "if [ ! -e {done} ]; then {} || exit 1; : > {done}; fi; exec {}",
            shell_words(&setup),
            shell_words(&line)
        );
        vec!["/bin/sh".into(), "-c".into(), script]
    }

    /// The node's environment with `values` filled in.
    pub fn render_env(&self, values: &NodeValues) -> Vec<(String, String)> {
        let peers = self.peers(values);
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, values, &peers)))
            .collect()
    }

    fn peers(&self, values: &NodeValues) -> String {
        values
            .peers
            .iter()
            .map(|(id, name, addr)| {
                self.peer_entry
                    .replace("{id}", &id.0.to_string())
                    .replace("{name}", name)
                    .replace("{addr}", addr)
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `s` as one word for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn fill(text: &str, v: &NodeValues, peers: &str) -> String {
    text.replace("{id}", &v.id.0.to_string())
        .replace("{name}", &v.name)
        .replace("{host}", &v.host)
        .replace("{port}", &v.port.to_string())
        .replace("{listen}", &v.listen)
        .replace("{data_dir}", &v.data_dir)
        .replace("{peers}", peers)
        .replace("{peer_listen}", &v.peer_listen)
        .replace("{peer_advertise}", &v.peer_advertise)
        .replace("{target_dir}", &v.target_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(peering: Peering, args: &[&str], entry: &str) -> NodeSpec {
        NodeSpec {
            target: "t".into(),
            program: Program::Installed {
                name: "t".into(),
                install: "apt-get install t".into(),
            },
            args: args.iter().map(ToString::to_string).collect(),
            env: vec![("WHO".into(), "{name}@{host}".into())],
            client_port: 7000,
            peering,
            peer_entry: entry.into(),
            readiness: Readiness::ClientPort,
            log_files: Vec::new(),
            wal: None,
            refused: vec![Refusal {
                kind: FaultKind::Clock,
                reason: "a Go program".into(),
            }],
            setup: Vec::new(),
            folder: None,
            packages: Vec::new(),
        }
    }

    fn values() -> NodeValues {
        NodeValues {
            id: NodeId(2),
            name: "n2".into(),
            host: "10.0.0.12".into(),
            port: 7000,
            listen: "0.0.0.0:7000".into(),
            data_dir: "/data/node".into(),
            peers: (1..=3)
                .map(|i| (NodeId(i), format!("n{i}"), format!("10.0.0.1{i}:7001")))
                .collect(),
            peer_listen: "0.0.0.0:7001".into(),
            peer_advertise: "10.0.0.12:7001".into(),
            target_dir: "/opt/t".into(),
        }
    }

    #[test]
    fn every_placeholder_is_filled_with_the_nodes_values() {
        let s = spec(
            Peering::Shared { peer_port: 7001 },
            &[
                "--id={id}",
                "--listen={listen}",
                "--dir={data_dir}",
                "--peers={peers}",
                "--peer-listen={peer_listen}",
                "--advertise={peer_advertise}",
                "http://{host}:{port}",
            ],
            "{name}=http://{addr}",
        );
        s.check().unwrap();
        assert_eq!(
            s.render_args(&values()),
            [
                "--id=2",
                "--listen=0.0.0.0:7000",
                "--dir=/data/node",
                "--peers=n1=http://10.0.0.11:7001,n2=http://10.0.0.12:7001,n3=http://10.0.0.13:7001",
                "--peer-listen=0.0.0.0:7001",
                "--advertise=10.0.0.12:7001",
                "http://10.0.0.12:7000",
            ]
        );
        assert_eq!(
            s.render_env(&values()),
            [("WHO".to_string(), "n2@10.0.0.12".to_string())]
        );
    }

    #[test]
    fn per_link_peering_refuses_the_shared_placeholders() {
        let ok = spec(Peering::PerLink, &["--peers", "{peers}"], "{id}={addr}");
        ok.check().unwrap();
        assert_eq!(
            ok.render_args(&values())[1],
            "1=10.0.0.11:7001,2=10.0.0.12:7001,3=10.0.0.13:7001"
        );
        let bad = spec(Peering::PerLink, &["--x", "{peer_listen}"], "{id}={addr}");
        let e = bad.check().unwrap_err().to_string();
        assert!(
            e.contains("{peer_listen}") && e.contains("the t node"),
            "{e}"
        );
    }

    #[test]
    fn file_names_must_stay_inside_the_data_folder() {
        let mut s = spec(Peering::PerLink, &[], "{id}={addr}");
        s.log_files = vec!["logs/server.log".into()];
        s.wal = Some(WalFiles {
            dir: "wal".into(),
            prefix: "wal-".into(),
            suffix: ".log".into(),
        });
        s.check().unwrap();
        for bad in ["../etc/passwd", "/etc/passwd", "a b", "$(reboot)", "x;y"] {
            s.log_files = vec![bad.into()];
            assert!(s.check().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_setup_step_runs_once_before_the_program_in_a_shell() {
        let mut s = spec(Peering::PerLink, &["--conf", "{data_dir}/c"], "{id}={addr}");
        assert_eq!(
            s.command_line("t", &values()),
            ["t", "--conf", "/data/node/c"]
        );
        s.setup = vec!["{target_dir}/setup.sh".into(), "it's {name}".into()];
        let line = s.command_line("/opt/t/run", &values());
        assert_eq!(line[..2], ["/bin/sh", "-c"]);
        assert_eq!(
            line[2],
            "if [ ! -e '/data/node/.faultline-setup-done' ]; then '/opt/t/setup.sh' \
             'it'\\''s n2' || exit 1; : > '/data/node/.faultline-setup-done'; fi; \
             exec '/opt/t/run' '--conf' '/data/node/c'"
        );
    }

    #[test]
    fn refusals_are_looked_up_by_kind() {
        let s = spec(Peering::PerLink, &[], "{id}={addr}");
        assert_eq!(s.refuses(FaultKind::Clock), Some("a Go program"));
        assert_eq!(s.refuses(FaultKind::Kill), None);
        assert!(!s.clock_faults());
    }
}
