//! `faultline test`: the run's flags ([`TestArgs`], which build a [`TestConfig`]) plus the
//! outputs a CI system reads (`--junit FILE`). The run itself is
//! [`crate::run::run_test`]; its `report.html` is written into the results folder at the
//! end of every run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use faultline_nemeses::{parse_names, ClockShape, FaultKind, PartitionShape, Shapes};
use faultline_workloads::Workload;

use super::units::parse_duration;
use crate::backend::Backend;
use crate::run::TestConfig;
use crate::target::{Target, TargetOptions};

#[derive(Debug, Args)]
pub struct TestCommand {
    #[command(flatten)]
    pub run: TestArgs,

    /// Also write the verdict as JUnit XML to this file (one test case per check; with
    /// --test-count, one test suite per run).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Make N independent runs, with seeds SEED to SEED+N-1, and summarise them (a table,
    /// and batch.json and JUnit in results/<test>/batch-<timestamp>/).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub test_count: Option<u32>,

    /// With --test-count: go on after an invalid run (by default the batch stops there).
    #[arg(long, requires = "test_count")]
    pub keep_going: bool,
}

pub fn run(args: TestCommand) -> ExitCode {
    let config = args.run.to_config();
    if let Some(count) = args.test_count {
        return batch(&config, count, args.keep_going, args.junit.as_deref());
    }
    let done = crate::run::execute(config);
    if let Some(junit) = args.junit {
        let results = crate::results::Results::Run(done.results);
        let xml = crate::report::junit::render(&done.test, &results);
        if let Err(e) = crate::report::write_file(&junit, &xml) {
            eprintln!("error: --junit: {e}");
        }
    }
    ExitCode::from(done.code)
}

/// `--test-count N`: the batch, its table on stdout, and the worst run's exit code.
fn batch(config: &TestConfig, count: u32, keep_going: bool, junit: Option<&Path>) -> ExitCode {
    let batch = crate::run::batch::run_batch(config, count, keep_going);
    println!();
    print!("{}", batch.results.table());
    if let Some(dir) = &batch.dir {
        println!("summary: {}", dir.join("batch.json").display());
        if let Some(file) = junit {
            if let Err(e) = std::fs::copy(dir.join("batch.xml"), file) {
                eprintln!("error: --junit {}: {e}", file.display());
            }
        }
    }
    ExitCode::from(batch.results.verdict().exit_code())
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
    /// isolate-follower, majorities-ring, bridge, one-way (default: all but
    /// isolate-follower, isolate-leader weighted x3).
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
    /// How often the history recorded so far is checked while the test runs, so a
    /// violation is reported at once (0s: only at the end).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub online_check_every: Duration,
    /// End the run as soon as the online check finds a violation; it still heals, does
    /// the final reads, checks the whole history and writes the report.
    #[arg(long)]
    pub stop_on_violation: bool,
    /// Where the nodes run: docker, local (processes on loopback, no Docker needed), or
    /// auto (Docker when reachable, else local).
    #[arg(long, value_enum, default_value = "docker")]
    pub backend: Backend,
    /// raftkv binary for the node image (default: built from this source tree, or found
    /// beside the faultline executable).
    #[arg(long, value_name = "PATH")]
    pub raftkv: Option<PathBuf>,
    /// System under test: raftkv, etcd, consul (consul only with --endpoints), or a target
    /// folder with a target.toml and an adapter (targets/<name>).
    #[arg(long, default_value = "raftkv", value_name = "NAME|PATH")]
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
            online_check_ms: millis(self.online_check_every),
            stop_on_violation: self.stop_on_violation,
            raftkv_binary: self.raftkv.clone(),
            target: self.target.clone(),
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
}
