//! `TestConfig`: everything that describes one `faultline test` run, as data. It is written
//! to the run's `config.json`, so a run can be repeated from its results folder; and
//! `TestArgs`, the command-line flags that build it.

use std::path::PathBuf;
use std::time::Duration;

use faultline_nemeses::{parse_names, ClockShape, FaultKind, PartitionShape, Shapes};
use faultline_workloads::Workload;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::cli::units::parse_duration;
use crate::target::{NodeParams, Target, TargetOptions};

/// One test run, fully described. Durations are in milliseconds (names say so).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestConfig {
    /// Folder name under the results directory; default `<target>-<workload>`.
    pub name: String,
    pub target: Target,
    /// Endpoints of an external cluster, read consistency, lock-write fencing.
    pub target_options: TargetOptions,
    pub workload: Workload,
    pub backend: Backend,
    /// Fault kinds the nemesis draws from; empty: no faults.
    pub nemesis: Vec<FaultKind>,
    pub nemesis_interval_ms: u64,
    /// Partition and clock-skew shapes the nemesis draws from (all when empty).
    #[serde(skip_serializing_if = "Shapes::is_empty")]
    pub shapes: Shapes,
    pub nodes: u32,
    /// How long clients (and the nemesis) run, before healing and final reads.
    pub time_limit_ms: u64,
    /// Target operations per second over all clients.
    pub rate_per_s: f64,
    /// Client tasks (logical processes in flight at once).
    pub concurrency: usize,
    /// Time one client request may take before it is recorded as unknown (`info`).
    pub op_timeout_ms: u64,
    /// raftkv's planted bugs to switch on (`--bug stale-read`).
    pub bugs: Vec<String>,
    /// Seeds the generators and the nemesis; printed so a run can be repeated.
    pub seed: u64,
    pub results_dir: PathBuf,
    /// After the heal, before the final reads: time for the cluster to elect a leader and
    /// catch up.
    pub quiet_period_ms: u64,
    /// Longest wait for a leader, at start and before the final reads.
    pub leader_wait_ms: u64,
    /// Budget for all final reads.
    pub final_reads_ms: u64,
    /// Budget for the linearizability check; over it the verdict is `unknown`.
    pub check_timeout_ms: u64,
    /// The raftkv binary to put in the node image; default: built from this workspace
    /// (when faultline runs from a source checkout) or found beside the executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raftkv_binary: Option<PathBuf>,
}

impl Default for TestConfig {
    fn default() -> TestConfig {
        TestConfig {
            name: String::new(),
            target: Target::Raftkv,
            target_options: TargetOptions::default(),
            workload: Workload::Register,
            backend: Backend::Docker,
            nemesis: vec![FaultKind::Partition, FaultKind::Kill],
            nemesis_interval_ms: 10_000,
            shapes: Shapes::default(),
            nodes: 5,
            time_limit_ms: 60_000,
            rate_per_s: 100.0,
            concurrency: 10,
            op_timeout_ms: 2_000,
            bugs: Vec::new(),
            seed: 0,
            results_dir: PathBuf::from("results"),
            quiet_period_ms: 5_000,
            leader_wait_ms: 30_000,
            final_reads_ms: 30_000,
            check_timeout_ms: 300_000,
            raftkv_binary: None,
        }
    }
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
#[error("bad test configuration: {0}")]
pub struct ConfigError(pub String);

/// Upper bounds that keep a typo from launching something absurd.
const MAX_NODES: u32 = 15;
const MAX_CONCURRENCY: usize = 1_024;
const MAX_RATE_PER_S: f64 = 100_000.0;

impl TestConfig {
    /// What the target's driver needs to know of this run for the node's command line.
    pub fn node_params(&self) -> NodeParams<'_> {
        NodeParams {
            nemesis: &self.nemesis,
            op_timeout_ms: self.op_timeout_ms,
            bugs: &self.bugs,
            bundled_binary: self.raftkv_binary.as_deref(),
        }
    }

    /// The results folder name: `name`, or `<target>-<workload>`.
    pub fn test_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}-{}", self.target.name(), self.workload)
        } else {
            self.name.clone()
        }
    }

    pub fn time_limit(&self) -> Duration {
        Duration::from_millis(self.time_limit_ms)
    }

    /// Checks bounds; every message says which setting and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return bad(format!("nodes must be 1..={MAX_NODES}, got {}", self.nodes));
        }
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return bad(format!(
                "concurrency must be 1..={MAX_CONCURRENCY}, got {}",
                self.concurrency
            ));
        }
        if !(self.rate_per_s > 0.0 && self.rate_per_s <= MAX_RATE_PER_S) {
            return bad(format!(
                "rate must be in (0, {MAX_RATE_PER_S}] ops/s, got {}",
                self.rate_per_s
            ));
        }
        if self.time_limit_ms == 0 {
            return bad("time limit must be positive".into());
        }
        if self.op_timeout_ms == 0 {
            return bad("op timeout must be positive".into());
        }
        if !self.nemesis.is_empty() && self.nemesis_interval_ms == 0 {
            return bad("nemesis interval must be positive".into());
        }
        for (given, kind, flag) in [
            (
                !self.shapes.partition.is_empty(),
                FaultKind::Partition,
                "--partition-shapes",
            ),
            (
                !self.shapes.clock.is_empty(),
                FaultKind::Clock,
                "--clock-skews",
            ),
        ] {
            if given && !self.nemesis.contains(&kind) {
                return bad(format!("{flag} needs {kind} in --nemesis"));
            }
        }
        let name = self.test_name();
        if name.is_empty()
            || name.len() > 100
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || name.starts_with('.')
        {
            return bad(format!(
                "test name {name:?} must be 1-100 characters of [A-Za-z0-9._-], not starting with '.'"
            ));
        }
        for bug in &self.bugs {
            if bug.is_empty()
                || !bug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return bad(format!("bug name {bug:?} must be [a-z0-9-]"));
            }
        }
        crate::target::validate(self.target, &self.target_options, &self.node_params())
            .map_err(ConfigError)
    }
}

/// A `--nemesis` value: a comma-separated list of fault kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NemesisList(pub Vec<FaultKind>);

fn parse_nemesis(s: &str) -> Result<NemesisList, String> {
    FaultKind::parse_list(s)
        .map(NemesisList)
        .map_err(|e| e.to_string())
}

/// A `--partition-shapes` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionShapes(pub Vec<PartitionShape>);

fn parse_partition_shapes(s: &str) -> Result<PartitionShapes, String> {
    parse_names(s, &PartitionShape::ALL, "partition shape").map(PartitionShapes)
}

/// A `--clock-skews` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockShapes(pub Vec<ClockShape>);

fn parse_clock_shapes(s: &str) -> Result<ClockShapes, String> {
    parse_names(s, &ClockShape::ALL, "clock skew").map(ClockShapes)
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
        .map_err(|e: faultline_workloads::workload::UnknownWorkload| e.to_string())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Flags of `faultline test`.
#[derive(Clone, Debug, clap::Args)]
pub struct TestArgs {
    /// Workload: register (read/write/cas on a few keys), kv (many keys), lock (leases and
    /// fenced writes).
    #[arg(long, default_value = "register", value_parser = parse_workload)]
    pub workload: Workload,
    /// Faults to inject, comma-separated: partition, kill, pause, restart, netem, clock,
    /// disk, figure8 (a directed walk into Raft's Figure 8; 5 nodes, per-link delay); or
    /// none. Each kind runs as its own stream, so several overlap.
    #[arg(long, default_value = "partition,kill", value_parser = parse_nemesis)]
    pub nemesis: NemesisList,
    /// Time between starting a fault and stopping it (and between faults).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// Partitions to draw, comma-separated: random-halves, isolate-one, isolate-leader,
    /// majorities-ring, bridge, one-way (default: all, isolate-leader weighted x3).
    #[arg(long, value_parser = parse_partition_shapes, value_name = "SHAPE,...")]
    pub partition_shapes: Option<PartitionShapes>,
    /// Clock faults to draw, comma-separated: nudge (±20-800 ms), bump-back, bump-forward
    /// (1 s to 5 min), strobe, slow, fast (default: all).
    #[arg(long, value_parser = parse_clock_shapes, value_name = "SKEW,...")]
    pub clock_skews: Option<ClockShapes>,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: u32,
    /// How long clients run under faults.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Target operations per second, over all clients.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Time one request may take before its outcome is recorded as unknown.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub op_timeout: Duration,
    /// Switch on a planted raftkv bug (repeatable): stale-read, lost-ack, ...
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Seed for generators and nemesis (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run folders go.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Name of the test's folder (default: <target>-<workload>).
    #[arg(long)]
    pub name: Option<String>,
    /// Time limit of the linearizability check (then the verdict is unknown).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub check_timeout: Duration,
    /// Where the nodes run: docker, local (processes on loopback, no Docker needed), or
    /// auto (Docker when reachable, else local).
    #[arg(long, value_enum, default_value = "docker")]
    pub backend: Backend,
    /// raftkv binary for the node image (default: built from this source tree, or found
    /// beside the faultline executable).
    #[arg(long, value_name = "PATH")]
    pub raftkv: Option<PathBuf>,
    /// System under test: raftkv, etcd, or consul (consul only with --endpoints).
    #[arg(long, value_enum, default_value = "raftkv")]
    pub target: Target,
    /// Test a running cluster faultline did not start: its client URLs, comma-separated
    /// (only the workload runs; use --nemesis none).
    #[arg(long, value_delimiter = ',', value_name = "URL,...")]
    pub endpoints: Vec<String>,
    /// Reads from the member's local state (etcd serializable, Consul ?stale): may be stale.
    #[arg(long)]
    pub serializable: bool,
    /// Lock workload: plain writes instead of writes the store checks against the lock.
    #[arg(long)]
    pub unfenced_writes: bool,
}

impl TestArgs {
    /// The run's configuration; draws a random seed if none was given.
    pub fn to_config(&self) -> TestConfig {
        TestConfig {
            name: self.name.clone().unwrap_or_default(),
            workload: self.workload,
            backend: self.backend,
            nemesis: self.nemesis.0.clone(),
            nemesis_interval_ms: millis(self.nemesis_interval),
            shapes: Shapes {
                partition: self
                    .partition_shapes
                    .clone()
                    .map(|s| s.0)
                    .unwrap_or_default(),
                clock: self.clock_skews.clone().map(|s| s.0).unwrap_or_default(),
            },
            nodes: self.nodes,
            time_limit_ms: millis(self.time_limit),
            rate_per_s: self.rate,
            concurrency: self.concurrency,
            op_timeout_ms: millis(self.op_timeout),
            bugs: self.bugs.clone(),
            seed: self.seed.unwrap_or_else(rand::random),
            results_dir: self.results_dir.clone(),
            check_timeout_ms: millis(self.check_timeout),
            raftkv_binary: self.raftkv.clone(),
            target: self.target,
            target_options: TargetOptions {
                endpoints: self.endpoints.clone(),
                serializable: self.serializable,
                unfenced_writes: self.unfenced_writes,
            },
            ..TestConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TestArgs,
    }

    fn parse(args: &[&str]) -> Result<TestConfig, clap::Error> {
        let mut full = vec!["faultline"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).map(|c| c.args.to_config())
    }

    #[test]
    fn defaults_match_the_issue() {
        let c = parse(&["--seed", "7"]).unwrap();
        assert_eq!(c.workload, Workload::Register);
        assert_eq!(c.nemesis, vec![FaultKind::Partition, FaultKind::Kill]);
        assert_eq!(c.nemesis_interval_ms, 10_000);
        assert_eq!(c.nodes, 5);
        assert_eq!(c.time_limit_ms, 60_000);
        assert_eq!(c.rate_per_s, 100.0);
        assert_eq!(c.concurrency, 10);
        assert_eq!(c.seed, 7);
        assert_eq!(c.test_name(), "raftkv-register");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn shape_flags_narrow_the_nemesis_and_need_their_kind() {
        let c = parse(&[
            "--nemesis",
            "clock,partition",
            "--partition-shapes",
            "isolate-leader,one-way",
            "--clock-skews",
            "bump-back",
        ])
        .unwrap();
        assert_eq!(
            c.shapes.partition,
            vec![PartitionShape::IsolateLeader, PartitionShape::OneWay]
        );
        assert_eq!(c.shapes.clock, vec![ClockShape::BumpBack]);
        assert!(c.validate().is_ok());
        // Written to config.json, so the run can be repeated from it.
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["shapes"]["clock"], serde_json::json!(["bump-back"]));
        let back: TestConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back.shapes, c.shapes);

        let orphan = parse(&["--nemesis", "kill", "--clock-skews", "strobe"]).unwrap();
        let err = orphan.validate().unwrap_err().to_string();
        assert!(err.contains("--clock-skews needs clock"), "{err}");
        let err = parse(&["--partition-shapes", "isolate-leader,zigzag"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown partition shape \"zigzag\""),
            "{err}"
        );
    }

    #[test]
    fn flags_build_the_config() {
        let c = parse(&[
            "--workload",
            "lock",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "2s",
            "--nodes",
            "3",
            "--time-limit",
            "1m30s",
            "--rate",
            "50",
            "--concurrency",
            "4",
            "--bug",
            "stale-read",
            "--bug",
            "lost-ack",
            "--name",
            "t1",
        ])
        .unwrap();
        assert_eq!(c.workload, Workload::Lock);
        assert_eq!(c.nemesis, vec![FaultKind::Kill]);
        assert_eq!(c.nemesis_interval_ms, 2_000);
        assert_eq!(c.nodes, 3);
        assert_eq!(c.time_limit_ms, 90_000);
        assert_eq!(c.bugs, vec!["stale-read", "lost-ack"]);
        assert_eq!(c.test_name(), "t1");
        let none = parse(&["--nemesis", "none"]).unwrap();
        assert!(none.nemesis.is_empty());
        let pause = parse(&["--nemesis", "pause,partition"]).unwrap();
        assert_eq!(pause.nemesis, vec![FaultKind::Pause, FaultKind::Partition]);
        let all = parse(&["--nemesis", "partition,pause,kill,clock,netem,disk,restart"]).unwrap();
        assert_eq!(all.nemesis.len(), 7);
        assert!(parse(&["--nemesis", "flood"]).is_err());
        assert!(parse(&["--workload", "bank"]).is_err());
    }

    #[test]
    fn validation_names_the_setting() {
        let c = TestConfig {
            nodes: 0,
            ..TestConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("nodes"));
        let c = TestConfig {
            name: "../etc".into(),
            ..TestConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("test name"));
        let c = TestConfig {
            rate_per_s: f64::NAN,
            ..TestConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("rate"));
        let c = TestConfig {
            bugs: vec!["Bad Bug".into()],
            ..TestConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn config_round_trips_through_json_and_fills_defaults() {
        let c = TestConfig {
            seed: 99,
            bugs: vec!["stale-read".into()],
            ..TestConfig::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        let back: TestConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: TestConfig = serde_json::from_str(r#"{"workload":"kv","seed":3}"#).unwrap();
        assert_eq!(partial.workload, Workload::Kv);
        assert_eq!(partial.nodes, 5);
        assert!(json.contains(r#""nemesis":["partition","kill"]"#), "{json}");
    }
}
