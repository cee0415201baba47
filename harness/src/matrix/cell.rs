//! The cells of the detection matrix: a workload, a nemesis (narrowed to some shapes, at
//! some pace), a planted bug or none, and what the runs must conclude.

use std::path::{Path, PathBuf};

use faultline_nemeses::{ClockShape, FaultKind, PartitionShape, Shapes};
use faultline_workloads::Workload;
use serde::Serialize;

use crate::target::Target;

/// What a cell's run must conclude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Every try must be `valid` (one try is made; N with `--seeds N`).
    Valid,
    /// Some try within the limit must be `invalid`.
    Invalid,
    /// Some try within the limit must show a fencing violation.
    FencingViolation,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
            Expect::FencingViolation => "fencing-violation",
        }
    }
}

/// One row of the matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub name: String,
    pub workload: Workload,
    pub nemesis: Vec<FaultKind>,
    /// Shapes the cell's nemesis is narrowed to (all when empty).
    #[serde(skip_serializing_if = "Shapes::is_empty")]
    pub shapes: Shapes,
    /// The cell's nemesis interval as a multiple of test-all's `--nemesis-interval`.
    /// Bug cells halve it (bugs hide in the moments around a fault: more faults per run)
    /// unless the bug needs two faults to overlap for a while.
    pub interval_factor: f64,
    /// The cell's run length as a multiple of test-all's `--time-limit`: a finding that
    /// needs several long faults in one run.
    pub time_factor: f64,
    /// Clients as a multiple of test-all's `--concurrency`.
    pub clients_factor: usize,
    /// Tries for a bug as a multiple of test-all's `--tries`.
    pub tries_factor: u32,
    pub bug: Option<String>,
    pub expect: Expect,
    /// The system under test (raftkv unless the cell names a target folder).
    #[serde(skip_serializing_if = "is_raftkv")]
    pub target: Target,
    /// Reads from the node's local state (`--serializable`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub serializable: bool,
    /// An operation timeout of the cell's own (a bug that needs clients to wait through a
    /// fault longer than test-all's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_timeout_ms: Option<u64>,
    /// A cluster size of the cell's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// Why the cell runs on Docker only (a fault the local backend cannot inject into the
    /// target); `test-all --backend local` leaves it out and says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_only: Option<&'static str>,
}

fn is_raftkv(t: &Target) -> bool {
    *t == Target::Raftkv
}

impl Cell {
    fn with_shapes(mut self, shapes: Shapes) -> Cell {
        self.shapes = shapes;
        self
    }

    fn with_time_factor(mut self, factor: f64) -> Cell {
        self.time_factor = factor;
        self
    }

    fn with_interval_factor(mut self, factor: f64) -> Cell {
        self.interval_factor = factor;
        self
    }

    fn with_clients_factor(mut self, factor: usize) -> Cell {
        self.clients_factor = factor;
        self
    }

    fn with_tries_factor(mut self, factor: u32) -> Cell {
        self.tries_factor = factor;
        self
    }

    /// The cell on the target folder `targets/<folder>`, named `<folder>-<what>`.
    fn on_target(mut self, folder: &str, what: &str) -> Cell {
        self.target = Target::File(target_folder(folder));
        self.name = format!("{folder}-{what}");
        self
    }

    fn with_serializable_reads(mut self) -> Cell {
        self.serializable = true;
        self
    }

    fn with_op_timeout_ms(mut self, ms: u64) -> Cell {
        self.op_timeout_ms = Some(ms);
        self
    }

    fn with_nodes(mut self, nodes: u32) -> Cell {
        self.nodes = Some(nodes);
        self
    }

    fn docker_only(mut self, why: &'static str) -> Cell {
        self.docker_only = Some(why);
        self
    }
}

/// The target folder `targets/<name>`: under the working directory when there is one
/// there, else in the source tree faultline was built from.
fn target_folder(name: &str) -> PathBuf {
    let here = Path::new("targets").join(name);
    if here.join("target.toml").is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("targets")
        .join(name)
}

pub(crate) fn cell(
    workload: Workload,
    nemesis: &[FaultKind],
    bug: Option<&str>,
    expect: Expect,
) -> Cell {
    let faults = nemesis
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join("_");
    let name = match bug {
        Some(b) => format!("{b}-{workload}-{faults}"),
        None => format!("correct-{workload}-{faults}"),
    };
    Cell {
        name,
        workload,
        nemesis: nemesis.to_vec(),
        shapes: Shapes::default(),
        interval_factor: if bug.is_some() { 0.5 } else { 1.0 },
        time_factor: 1.0,
        clients_factor: 1,
        tries_factor: 1,
        bug: bug.map(str::to_string),
        expect,
        target: Target::Raftkv,
        serializable: false,
        op_timeout_ms: None,
        nodes: None,
        docker_only: None,
    }
}

/// The default matrix: correct raftkv under each fault kind (and a mix, and the lock
/// workload), then each planted bug with the nemesis that should expose it.
pub fn default_matrix() -> Vec<Cell> {
    use Expect::*;
    use FaultKind::*;
    use Workload::{Kv, Lock, Register};
    vec![
        cell(Register, &[Partition], None, Valid),
        cell(Register, &[Kill], None, Valid),
        cell(Register, &[Pause], None, Valid),
        cell(Register, &[Restart], None, Valid),
        cell(Register, &[Netem], None, Valid),
        cell(Register, &[Clock], None, Valid),
        cell(Register, &[Disk], None, Valid),
        cell(Register, &[Figure8], None, Valid),
        cell(Kv, &[Partition, Kill, Pause, Clock], None, Valid),
        cell(Lock, &[Partition, Pause], None, Valid),
        // A node cut off from the majority answers reads from its own state.
        cell(Register, &[Partition], Some("stale-read"), Invalid),
        // A leader acknowledges before replicating; isolating it loses the write.
        cell(Register, &[Partition], Some("lost-ack"), Invalid),
        // Unsynced writes vanish when the whole cluster crashes together.
        cell(Register, &[Disk], Some("no-fsync"), Invalid),
        // A leader that times its lease and its own liveness check with the wall clock:
        // after its clock jumps back, it stays in office when cut off and serves reads a
        // new leader has already overwritten, until its clock is reset. Aimed as Jepsen
        // aims a nemesis at a bug class: clocks only jump back by seconds or more,
        // partitions only isolate the leader (drawn from every shape, the two rarely meet
        // in a short run), and faults last 1.5 intervals: the clients the majority side
        // had sent to the old leader are stuck for their 2 s timeout first, so a write
        // that the old leader can serve stale needs the overlap to outlast that. Twice the
        // clients, because the old leader's own clients spend most of the overlap stuck
        // in writes it cannot commit, and only a read there shows the bug. (Measured on
        // the local backend, seeds 1000-1007: 2 of 8 runs found it with 10 clients, 5 of
        // 8 with 20.)
        cell(Register, &[Clock, Partition], Some("lease-clock"), Invalid)
            .with_shapes(Shapes {
                partition: vec![PartitionShape::IsolateLeader],
                clock: vec![ClockShape::BumpBack],
            })
            .with_interval_factor(1.5)
            .with_clients_factor(2),
        // Figure 8 of the Raft paper: the directed walk that makes a re-elected leader
        // commit an entry of its old term by count and then lose it. One walk in a few
        // loses a write a client was told of and that a later read can tell (the lost
        // entry is as often a failed cas, or the next operation on its key a write), and
        // the cluster stays split after one that commits (the old leader and its partner
        // refuse to overwrite what they committed), so this cell gets twice the tries.
        cell(Register, &[Figure8], Some("old-term-commit"), Invalid).with_tries_factor(2),
        // Each node counts tokens in its own memory; a new leader reuses them.
        cell(Lock, &[Partition], Some("token-reuse"), FencingViolation),
    ]
}

/// The target folders' matrix: each database described by a file under `targets/`, with
/// what it is known to do. Every cell here names its folder first.
pub fn targets_matrix() -> Vec<Cell> {
    use Expect::*;
    use FaultKind::*;
    use Workload::Register;
    vec![
        // etcd through the Python adapter: the built-in etcd target's verdicts.
        cell(Register, &[Partition, Kill, Pause], None, Valid)
            .on_target("etcd", "register-partition_kill_pause")
            .with_nodes(3),
        // A member cut off from the others serves serializable reads from its own state.
        cell(Register, &[Partition], None, Invalid)
            .on_target("etcd", "serializable-reads-partition")
            .with_serializable_reads()
            .with_shapes(Shapes {
                partition: vec![PartitionShape::IsolateOne, PartitionShape::IsolateLeader],
                ..Shapes::default()
            })
            .with_nodes(3),
        // ZooKeeper with a sync() before every read: linearizable under partitions and
        // kills. Not under pauses of the leader: a leader that was frozen while the others
        // elected a new one answers a sync() and the read after it from its old state when
        // it resumes, before it notices (sync is not a quorum operation, ZOOKEEPER-1675;
        // docs/redis-and-zookeeper.md), so pauses are left out here. Its peer traffic goes
        // straight between the members, so partitions need Docker; both backends run the
        // kills.
        cell(Register, &[Partition, Kill], None, Valid)
            .on_target("zookeeper", "sync-reads-partition_kill")
            .with_nodes(3)
            .docker_only(ZK_PEERS),
        cell(Register, &[Kill], None, Valid)
            .on_target("zookeeper", "sync-reads-kill")
            .with_nodes(3),
        // Plain reads (sequential consistency only): a follower cut off from its leader
        // serves its own state until syncLimit (2 s) runs out, while the majority moves on.
        // Clients wait at most 1 s, so the isolated member's clients, stuck in writes it
        // cannot forward, come back to read within that window; twice the clients, so that
        // the few on that member read often enough.
        cell(Register, &[Partition], None, Invalid)
            .on_target("zookeeper", "plain-reads-isolate_follower")
            .with_serializable_reads()
            .with_shapes(Shapes {
                partition: vec![PartitionShape::IsolateFollower],
                ..Shapes::default()
            })
            .with_op_timeout_ms(1_000)
            .with_clients_factor(2)
            .with_nodes(3)
            .docker_only(ZK_PEERS),
        // Sentinel promotes a replica while the old primary, paused, still holds writes it
        // acknowledges on resume and then discards as a replica: lost writes. Faults last
        // twice test-all's interval (8 s by default), longer than a failover takes (2 s
        // to judge the primary down, then the election), and clients wait through them
        // (15 s) so the old primary's late acknowledgements reach the history.
        // A run of test-all's 20 s holds about two such faults, and only some failovers
        // lose a write a later read can tell (CI-form runs of 20 s found it on the first,
        // third and fifth tries, and once not in 12), so the cell's runs are twice as long.
        cell(Register, &[Pause, Kill], None, Invalid)
            .on_target("redis-sentinel", "lost-writes-pause_kill")
            .with_op_timeout_ms(15_000)
            .with_interval_factor(2.0)
            .with_time_factor(2.0)
            .with_nodes(3),
    ]
}

/// Why the ZooKeeper cells with partitions are Docker-only.
const ZK_PEERS: &str = "ZooKeeper's members reach each other directly on two ports each, \
     which the local backend's link proxies cannot cut";

/// The cells `which` names.
pub fn matrix(which: MatrixChoice) -> Vec<Cell> {
    match which {
        MatrixChoice::Raftkv => default_matrix(),
        MatrixChoice::Targets => targets_matrix(),
        MatrixChoice::All => default_matrix()
            .into_iter()
            .chain(targets_matrix())
            .collect(),
    }
}

/// Which matrix `test-all` runs (`--matrix`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixChoice {
    /// raftkv: correct under every fault kind, and each planted bug found.
    #[default]
    Raftkv,
    /// The target folders under targets/: etcd through its adapter, Redis Sentinel, ZooKeeper.
    Targets,
    /// Both.
    All,
}

/// Keeps the cells whose name contains any of `filters` (all cells when empty).
pub fn select(cells: Vec<Cell>, filters: &[String]) -> Vec<Cell> {
    if filters.is_empty() {
        return cells;
    }
    cells
        .into_iter()
        .filter(|c| filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::run::TestConfig;

    #[test]
    fn the_default_matrix_covers_every_fault_kind_and_bug() {
        let cells = default_matrix();
        for kind in FaultKind::ALL {
            assert!(
                cells.iter().any(|c| c.bug.is_none() && c.nemesis == [kind]),
                "correct raftkv is not run under {kind} alone"
            );
        }
        for bug in [
            "stale-read",
            "lost-ack",
            "no-fsync",
            "lease-clock",
            "old-term-commit",
            "token-reuse",
        ] {
            assert!(
                cells.iter().any(|c| c.bug.as_deref() == Some(bug)),
                "{bug} has no cell"
            );
        }
        for c in &cells {
            // A cell's narrowed shapes must be of kinds it injects (the run would refuse).
            let config = TestConfig {
                nemesis: c.nemesis.clone(),
                shapes: c.shapes.clone(),
                workload: c.workload,
                ..TestConfig::default()
            };
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
        let mut names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cells.len(), "cell names must be unique");
    }

    #[test]
    fn the_targets_matrix_runs_every_folder_as_it_can() {
        let cells = targets_matrix();
        for folder in ["etcd", "redis-sentinel", "zookeeper"] {
            assert!(
                cells.iter().any(|c| c.name.starts_with(folder)),
                "{folder} has no cell"
            );
        }
        for c in &cells {
            let Target::File(path) = &c.target else {
                panic!("{}: not a target folder", c.name);
            };
            assert!(path.join("target.toml").is_file(), "{}", path.display());
            // Every cell runs on both backends, unless it says why it needs Docker; and
            // then the local backend does refuse it.
            for backend in [Backend::Docker, Backend::Local] {
                let mut config = TestConfig {
                    nemesis: c.nemesis.clone(),
                    shapes: c.shapes.clone(),
                    workload: c.workload,
                    target: c.target.clone(),
                    backend,
                    ..TestConfig::default()
                };
                config.target_options.serializable = c.serializable;
                let valid = config.validate();
                if backend == Backend::Local && c.docker_only.is_some() {
                    assert!(valid.is_err(), "{} runs locally: not Docker-only", c.name);
                } else {
                    valid.unwrap_or_else(|e| panic!("{} on {backend:?}: {e}", c.name));
                }
            }
        }
        // Each folder keeps a cell for the local backend.
        for folder in ["etcd", "redis-sentinel", "zookeeper"] {
            assert!(
                cells
                    .iter()
                    .any(|c| c.name.starts_with(folder) && c.docker_only.is_none()),
                "{folder} has no cell for the local backend"
            );
        }
        let all = matrix(MatrixChoice::All);
        assert_eq!(all.len(), default_matrix().len() + cells.len());
        let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "cell names must be unique");
    }

    #[test]
    fn filters_select_by_substring() {
        let picked = select(
            default_matrix(),
            &["stale-read".into(), "correct-lock".into()],
        );
        let names: Vec<&str> = picked.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "correct-lock-partition_pause",
                "stale-read-register-partition"
            ]
        );
    }
}
