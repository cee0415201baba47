//! `TestConfig`: everything that describes one `faultline test` run, as data. It is written
//! to the run's `config.json`, so a run can be repeated from its results folder. The
//! command-line flags that build it are `crate::cli::test::TestArgs`.

use std::path::PathBuf;
use std::time::Duration;

use faultline_nemeses::{FaultKind, Shapes};
use faultline_workloads::Workload;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
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
    /// How often the history is checked while the test runs (`run::online`); 0: never.
    pub online_check_ms: u64,
    /// End the run once the online check finds a violation; it still heals, does the
    /// final reads and checks the whole history.
    pub stop_on_violation: bool,
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
            online_check_ms: 2_000,
            stop_on_violation: false,
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

    /// The online check's interval; `None` when it is off.
    pub fn online_check_every(&self) -> Option<Duration> {
        (self.online_check_ms > 0).then(|| Duration::from_millis(self.online_check_ms))
    }

    /// Checks bounds; every message says which setting and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.stop_on_violation && self.online_check_ms == 0 {
            return bad(
                "stop-on-violation needs the online check: online-check-every must be above 0"
                    .to_string(),
            );
        }
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
        crate::target::validate(&self.target, &self.target_options, &self.node_params())
            .map_err(ConfigError)?;
        if self.backend == Backend::Local && self.target_options.endpoints.is_empty() {
            let spec = crate::target::driver(&self.target)
                .and_then(|d| d.node_spec(&self.node_params()))
                .map_err(|e| ConfigError(e.to_string()))?;
            if let Some(why) = self
                .nemesis
                .iter()
                .find_map(|&k| spec.peering.local_refusal(k))
            {
                return bad(why);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
