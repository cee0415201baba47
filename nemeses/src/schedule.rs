//! `Schedule`: when faults happen. Each enabled fault kind runs as its own stream: after a
//! quiet interval (staggered between kinds) it starts a fault, keeps it about an interval,
//! stops it, rests about an interval, and repeats; waits are drawn from the seeded RNG
//! between half and one and a half intervals, so several kinds overlap in varying
//! combinations. Each start and stop is written to the history as a `process: "nemesis"`
//! `info` event, after the cluster call returned, so a fault is never shown as in effect
//! before it was. When told to stop, it stops every fault in effect and heals everything
//! (network, packet faults, clocks, paused and killed nodes) before returning, so the final
//! reads run on a whole cluster.
//!
//! Events written (`f`, value):
//! - `start-partition` / `stop-partition`: `{"shape": .., "grudge": "n1<-{n2} .."}`
//! - `start-kill` / `stop-kill`: `{"node": "n3"}`, or `{"nodes": [..], "shape": "majority"}`
//! - `start-pause` / `stop-pause`: `{"node": "n2", "leader": true}`
//! - `start-restart` / `stop-restart`: `{"nodes": [..], "rolling": bool}`, both recorded
//!   once the restart is over
//! - `start-netem` / `stop-netem`: `{"node": .., "netem": "delay 120ms±30ms .."}`, with
//!   `"to": [..]` when the fault is on some of the node's links only
//! - `start-clock` / `stop-clock`: `{"nodes": [..], "skew": "bump +300ms"}`
//! - `start-disk` / `stop-disk`: `{"nodes": [..], "fault": "lose-unsynced" | "corrupt-tail"}`
//! - `fault-failed`: a start or stop that did not complete; value `{"fault": f}`, and the
//!   error in `error`. The nemesis then heals, so a half-applied fault does not linger.
//! - `fault-skipped`: the cluster cannot do this kind at all (e.g. no netem in the kernel);
//!   value `{"fault": kind}`, the reason in `error`. The kind is not drawn again this run,
//!   and it does not count as a failure.
//! - `heal`: the final heal; value `{"restarted": [..], "resumed": [..]}`, `error` if
//!   something remained.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_checker::{Event, EventType, Process, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::active::ActiveFault;
use crate::cluster::{Cluster, ClusterError};
use crate::fault::FaultKind;
use crate::nemesis::{HealReport, Nemesis};

/// Where nemesis events go (the run's history recorder).
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Records `event`; its `index` and `time_ns` are assigned by the log.
    async fn record(&self, event: Event);
}

/// What the schedule does.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleConfig {
    /// Fault kinds to draw from; empty means no faults (the schedule only heals at the end).
    pub kinds: Vec<FaultKind>,
    /// Time between a start and its stop, and between a stop and the next start.
    pub interval: Duration,
    /// Seeds the choice of kinds (the nemesis's own RNG picks shapes and nodes).
    pub seed: u64,
}

/// What the schedule did, for results.json.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduleReport {
    /// Faults started, by kind name.
    pub started: BTreeMap<String, u64>,
    /// Starts or stops that failed.
    pub failures: u64,
    /// Kinds the cluster cannot do, with why; dropped from the schedule when first met.
    pub skipped: BTreeMap<String, String>,
    pub heal: HealReport,
}

/// Drives a [`Nemesis`] over time.
pub struct Schedule<C: Cluster + ?Sized> {
    nemesis: Nemesis<C>,
    config: ScheduleConfig,
    rng: StdRng,
    log: Arc<dyn EventLog>,
    /// Human-readable description of the fault in effect (`none` when healthy).
    current_tx: watch::Sender<String>,
}

/// How a start went.
enum Started {
    Yes(ActiveFault),
    /// The cluster cannot do this kind; it was dropped from the schedule.
    No,
    /// It failed and the nemesis healed everything, ending every other fault too.
    FailedAndHealed,
}

fn nemesis_event(f: &str, value: Value) -> Event {
    Event::new(Process::Nemesis, EventType::Info, f, value)
}

impl<C: Cluster + ?Sized + 'static> Schedule<C> {
    pub fn new(nemesis: Nemesis<C>, config: ScheduleConfig, log: Arc<dyn EventLog>) -> Self {
        let (current_tx, _) = watch::channel("none".to_string());
        Schedule {
            nemesis,
            // A different stream from the nemesis's own choices, still from the same seed.
            rng: StdRng::seed_from_u64(config.seed ^ 0x005E_ED0F_FA17),
            config,
            log,
            current_tx,
        }
    }

    /// Follows the fault in effect, for a progress display.
    pub fn current(&self) -> watch::Receiver<String> {
        self.current_tx.subscribe()
    }

    /// Runs until `stop` becomes true (or its sender is dropped), then stops the faults in
    /// effect and heals everything. Returns what happened.
    ///
    /// Each enabled kind is its own stream: it starts a fault, keeps it for about an
    /// interval, stops it, rests about an interval, and so on. The streams begin staggered
    /// and every wait is drawn between half and one and a half intervals from the seeded
    /// RNG, so with several kinds, faults overlap in varying combinations (a partition
    /// while a clock is skewed, a kill during a pause), as Jepsen's combined nemeses do.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> ScheduleReport {
        let mut report = ScheduleReport::default();
        let mut active: BTreeMap<FaultKind, ActiveFault> = BTreeMap::new();
        let interval = self.config.interval.max(Duration::from_millis(1));
        let began = Instant::now();
        let n = self.config.kinds.len().max(1) as u32;
        // The first start of each stream comes after one quiet interval, spread evenly.
        let mut due: BTreeMap<FaultKind, Instant> = self
            .config
            .kinds
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, began + interval + interval * i as u32 / n))
            .collect();
        loop {
            due.retain(|k, _| self.config.kinds.contains(k) || active.contains_key(k));
            let next = due.iter().min_by_key(|(_, t)| **t).map(|(k, t)| (*k, *t));
            let Some((kind, at)) = next else {
                let _ = stop.wait_for(|s| *s).await;
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            match active.remove(&kind) {
                Some(fault) => {
                    if !self.stop_fault(&fault, &mut report).await {
                        // The failure path healed everything: nothing else is in effect.
                        active.clear();
                    }
                }
                None => match self.start_fault(kind, &mut report).await {
                    Started::Yes(fault) if fault.is_instant() => {
                        // Over already: close its period at once, so a report does not
                        // shade the rest of the run as faulty.
                        self.log
                            .record(nemesis_event(&format!("stop-{kind}"), fault.describe()))
                            .await;
                    }
                    Started::Yes(fault) => {
                        active.insert(kind, fault);
                    }
                    Started::No => {}
                    Started::FailedAndHealed => active.clear(),
                },
            }
            self.show(&active);
            let jitter = self.rng.random_range(0.5..1.5);
            due.insert(kind, Instant::now() + interval.mul_f64(jitter));
        }
        for fault in std::mem::take(&mut active).into_values() {
            self.stop_fault(&fault, &mut report).await;
        }
        report.heal = self.heal().await;
        report
    }

    /// Publishes the faults in effect to the progress display.
    fn show(&self, active: &BTreeMap<FaultKind, ActiveFault>) {
        let now = if active.is_empty() {
            "none".to_string()
        } else {
            active
                .values()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        self.current_tx.send_replace(now);
    }

    async fn start_fault(&mut self, kind: FaultKind, report: &mut ScheduleReport) -> Started {
        match self.nemesis.start(kind).await {
            Ok(fault) => {
                tracing::info!(%fault, "nemesis start");
                *report.started.entry(kind.name().to_string()).or_default() += 1;
                self.log
                    .record(nemesis_event(&format!("start-{kind}"), fault.describe()))
                    .await;
                Started::Yes(fault)
            }
            Err(e @ ClusterError::Unsupported { .. }) => {
                self.skip(kind, &e.to_string(), report).await;
                Started::No
            }
            Err(e) => {
                self.failed(&format!("start-{kind}"), &e.to_string(), report)
                    .await;
                Started::FailedAndHealed
            }
        }
    }

    /// Stops `fault`; false when that failed (and everything was healed instead).
    async fn stop_fault(&mut self, fault: &ActiveFault, report: &mut ScheduleReport) -> bool {
        let f = format!("stop-{}", fault.kind());
        match self.nemesis.stop(fault).await {
            Ok(()) => {
                tracing::info!(%fault, "nemesis stop");
                self.log.record(nemesis_event(&f, fault.describe())).await;
                true
            }
            Err(e) => {
                self.failed(&f, &e.to_string(), report).await;
                false
            }
        }
    }

    /// Drops `kind` from the schedule for the rest of the run: the cluster said it cannot
    /// inject it, so nothing was broken and trying again would only fail again.
    async fn skip(&mut self, kind: FaultKind, reason: &str, report: &mut ScheduleReport) {
        tracing::warn!(
            fault = kind.name(),
            %reason,
            "the cluster cannot inject this fault; skipping it for the rest of the run"
        );
        self.config.kinds.retain(|k| *k != kind);
        report
            .skipped
            .insert(kind.name().to_string(), reason.to_string());
        let mut m = BTreeMap::new();
        m.insert("fault".to_string(), Value::from(kind.name()));
        let mut e = nemesis_event("fault-skipped", Value::Map(m));
        e.error = Some(reason.to_string());
        self.log.record(e).await;
    }

    /// Records a failed start/stop and heals, so the cluster is in a known state.
    async fn failed(&mut self, f: &str, error: &str, report: &mut ScheduleReport) {
        tracing::warn!(fault = f, %error, "nemesis fault failed; healing");
        report.failures += 1;
        let mut m = BTreeMap::new();
        m.insert("fault".to_string(), Value::from(f));
        let mut e = nemesis_event("fault-failed", Value::Map(m));
        e.error = Some(error.to_string());
        self.log.record(e).await;
        // Errors here are recorded in the history; the final heal's report is what counts.
        self.heal().await;
    }

    async fn heal(&mut self) -> HealReport {
        let heal = self.nemesis.heal_all().await;
        let mut m = BTreeMap::new();
        m.insert(
            "restarted".to_string(),
            Value::List(
                heal.restarted
                    .iter()
                    .map(|n| Value::from(n.to_string()))
                    .collect(),
            ),
        );
        m.insert(
            "resumed".to_string(),
            Value::List(
                heal.resumed
                    .iter()
                    .map(|n| Value::from(n.to_string()))
                    .collect(),
            ),
        );
        let mut e = nemesis_event("heal", Value::Map(m));
        if !heal.errors.is_empty() {
            e.error = Some(heal.errors.join("; "));
        }
        self.log.record(e).await;
        let status = if self.nemesis.is_healed() {
            "none".to_string()
        } else {
            format!("heal failed: {}", heal.errors.join("; "))
        };
        self.current_tx.send_replace(status);
        heal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterError;
    use crate::grudge::Grudge;
    use crate::node::{Node, NodeId};
    use crate::probe::{FixedLeader, LeaderProbe};
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::sync::Mutex;
    use tokio::time::Instant;

    /// A cluster that only records what it was asked to do, and when.
    struct FakeCluster {
        nodes: Vec<Node>,
        calls: Mutex<Vec<(Duration, String)>>,
        start: Instant,
        fail_partitions: bool,
        /// `pause` answers `Unsupported`, as a backend without process control would.
        no_pause: bool,
        /// How many `resume` calls fail before they succeed again.
        resume_failures: Mutex<u32>,
    }

    impl FakeCluster {
        fn new(n: u32, fail_partitions: bool) -> Arc<FakeCluster> {
            Arc::new(FakeCluster {
                nodes: crate::node::test_nodes(n),
                calls: Mutex::new(Vec::new()),
                start: Instant::now(),
                fail_partitions,
                no_pause: false,
                resume_failures: Mutex::new(0),
            })
        }

        fn without_pause(n: u32) -> Arc<FakeCluster> {
            let mut c = Arc::try_unwrap(FakeCluster::new(n, false)).ok().unwrap();
            c.no_pause = true;
            Arc::new(c)
        }

        fn note(&self, call: String) {
            self.calls
                .lock()
                .unwrap()
                .push((self.start.elapsed(), call));
        }

        fn calls(&self) -> Vec<String> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .map(|(_, c)| c.clone())
                .collect()
        }
    }

    #[async_trait]
    impl Cluster for FakeCluster {
        fn nodes(&self) -> &[Node] {
            &self.nodes
        }
        async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
            self.note(format!("partition {grudge}"));
            if self.fail_partitions {
                return Err(ClusterError::Timeout {
                    op: "partition",
                    target: "n1".into(),
                    timeout_ms: 5,
                });
            }
            Ok(())
        }
        async fn heal(&self) -> Result<(), ClusterError> {
            self.note("heal".into());
            Ok(())
        }
        async fn pause(&self, node: NodeId) -> Result<(), ClusterError> {
            self.note(format!("pause {node}"));
            if self.no_pause {
                return Err(ClusterError::Unsupported {
                    op: "pause",
                    backend: "the test cluster",
                    reason: "no process control".into(),
                });
            }
            Ok(())
        }
        async fn resume(&self, node: NodeId) -> Result<(), ClusterError> {
            self.note(format!("resume {node}"));
            let mut failures = self.resume_failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(ClusterError::Timeout {
                    op: "resume",
                    target: node.to_string(),
                    timeout_ms: 5,
                });
            }
            Ok(())
        }
        async fn kill(&self, node: NodeId) -> Result<(), ClusterError> {
            self.note(format!("kill {node}"));
            Ok(())
        }
        async fn start(&self, node: NodeId) -> Result<(), ClusterError> {
            self.note(format!("start {node}"));
            Ok(())
        }
        async fn clock(&self, node: NodeId, offset: i64, rate: f64) -> Result<(), ClusterError> {
            self.note(format!("clock {node} {offset} {rate}"));
            Ok(())
        }
        async fn terminate(&self, node: NodeId) -> Result<(), ClusterError> {
            self.note(format!("terminate {node}"));
            Ok(())
        }
        async fn corrupt_log_tail(&self, node: NodeId) -> Result<String, ClusterError> {
            self.note(format!("corrupt {node}"));
            Ok("wal-1.log offset 9".into())
        }
        async fn logs(&self, node: NodeId, _dir: &Path) -> Result<(), ClusterError> {
            self.note(format!("logs {node}"));
            Ok(())
        }
    }

    #[derive(Default)]
    struct MemLog(Mutex<Vec<(Duration, Event)>>, Option<Instant>);

    #[async_trait]
    impl EventLog for MemLog {
        async fn record(&self, event: Event) {
            let at = self.1.map(|s| s.elapsed()).unwrap_or_default();
            self.0.lock().unwrap().push((at, event));
        }
    }

    impl MemLog {
        fn new() -> Arc<MemLog> {
            Arc::new(MemLog(Mutex::new(Vec::new()), Some(Instant::now())))
        }
        fn fs(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|(_, e)| e.f.clone())
                .collect()
        }
    }

    /// Runs a schedule for `run_for` (virtual time) and returns the cluster's calls, the
    /// log and the report.
    async fn run(
        cluster: Arc<FakeCluster>,
        kinds: Vec<FaultKind>,
        seed: u64,
        run_for: Duration,
        leader: Option<Arc<dyn LeaderProbe>>,
    ) -> (Vec<String>, Arc<MemLog>, ScheduleReport) {
        let log = MemLog::new();
        let nemesis = Nemesis::new(cluster.clone(), leader, seed);
        let config = ScheduleConfig {
            kinds,
            interval: Duration::from_secs(10),
            seed,
        };
        let schedule = Schedule::new(nemesis, config, log.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(schedule.run(stop_rx));
        tokio::time::sleep(run_for).await;
        stop_tx.send(true).unwrap();
        let report = task.await.unwrap();
        (cluster.calls(), log, report)
    }

    #[tokio::test(start_paused = true)]
    async fn partitions_alternate_with_heals_every_interval() {
        let cluster = FakeCluster::new(5, false);
        let (calls, log, report) = run(
            cluster.clone(),
            vec![FaultKind::Partition],
            1,
            Duration::from_secs(45),
            None,
        )
        .await;
        // First start after the quiet interval (t=10); then stop (the partition replaced
        // by none), start, ... each wait drawn between 5 and 15 s; the final heal at 45.
        assert!(calls.len() >= 4, "{calls:?}");
        let (last, faults) = calls.split_last().unwrap();
        assert_eq!(last, "heal");
        for (i, c) in faults.iter().enumerate() {
            if i % 2 == 0 {
                assert!(
                    c.starts_with("partition ") && c != "partition none",
                    "{calls:?}"
                );
            } else {
                assert_eq!(c, "partition none", "{calls:?}");
            }
        }
        let times: Vec<f64> = cluster
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.as_secs_f64())
            .collect();
        assert_eq!(times[0], 10.0);
        assert_eq!(*times.last().unwrap(), 45.0);
        for w in times[..times.len() - 1].windows(2) {
            let gap = w[1] - w[0];
            assert!((5.0..=15.0).contains(&gap), "gap {gap} in {times:?}");
        }
        let fs = log.fs();
        assert_eq!(fs.last().map(String::as_str), Some("heal"));
        for (i, f) in fs[..fs.len() - 1].iter().enumerate() {
            let want = if i % 2 == 0 {
                "start-partition"
            } else {
                "stop-partition"
            };
            assert_eq!(f, want, "{fs:?}");
        }
        // The event describes the grudge actually applied.
        let events = log.0.lock().unwrap();
        let Value::Map(m) = &events[0].1.value else {
            panic!("start-partition value must be a map");
        };
        assert_eq!(
            calls[0],
            format!("partition {}", m["grudge"].as_str().unwrap())
        );
        assert!(events
            .iter()
            .all(|(_, e)| e.process == Process::Nemesis && e.kind == EventType::Info));
        assert_eq!(
            report.started["partition"] as usize,
            faults.len().div_ceil(2)
        );
        assert_eq!(report.failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_mid_kill_restarts_the_node_before_returning() {
        let cluster = FakeCluster::new(3, false);
        let (calls, log, report) = run(
            cluster,
            vec![FaultKind::Kill],
            9,
            Duration::from_secs(15),
            None,
        )
        .await;
        // Killed at t=10, the stop at 15 starts it again, then heal.
        assert_eq!(calls.len(), 3, "{calls:?}");
        let killed = calls[0].strip_prefix("kill ").expect("first call kills");
        assert_eq!(calls[1], format!("start {killed}"));
        assert_eq!(calls[2], "heal");
        assert_eq!(log.fs(), ["start-kill", "stop-kill", "heal"]);
        assert!(report.heal.errors.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn same_seed_same_faults_and_seeds_differ() {
        let kinds = vec![FaultKind::Partition, FaultKind::Kill];
        let long = Duration::from_secs(205);
        let (a, _, _) = run(FakeCluster::new(5, false), kinds.clone(), 42, long, None).await;
        let (b, _, _) = run(FakeCluster::new(5, false), kinds.clone(), 42, long, None).await;
        let (c, _, _) = run(FakeCluster::new(5, false), kinds.clone(), 43, long, None).await;
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Both kinds show up over ten faults.
        assert!(a.iter().any(|c| c.starts_with("kill")));
        assert!(a.iter().any(|c| c.starts_with("partition")));
    }

    #[tokio::test(start_paused = true)]
    async fn isolate_leader_cuts_off_the_probed_leader() {
        let probe: Arc<dyn LeaderProbe> = Arc::new(FixedLeader(NodeId(4)));
        let nodes: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let want = format!("partition {}", Grudge::isolate(&nodes, NodeId(4)));
        let mut seen = false;
        // Shapes are drawn at random; over a few seeds isolate-leader must come up and,
        // when it does, target node 4.
        for seed in 0..20 {
            let (_, log, _) = run(
                FakeCluster::new(5, false),
                vec![FaultKind::Partition],
                seed,
                Duration::from_secs(15),
                Some(probe.clone()),
            )
            .await;
            let events = log.0.lock().unwrap();
            let Value::Map(m) = &events[0].1.value else {
                panic!("not a map");
            };
            if m["shape"].as_str() == Some("isolate-leader") {
                assert_eq!(format!("partition {}", m["grudge"].as_str().unwrap()), want);
                seen = true;
            }
        }
        assert!(seen, "isolate-leader never drawn in 20 seeds");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fault_is_logged_as_failed_and_healed() {
        let cluster = FakeCluster::new(5, true);
        let (calls, log, report) = run(
            cluster,
            vec![FaultKind::Partition],
            3,
            Duration::from_secs(15),
            None,
        )
        .await;
        assert_eq!(log.fs(), ["fault-failed", "heal", "heal"]);
        let events = log.0.lock().unwrap();
        assert!(events[0].1.error.as_deref().unwrap().contains("timed out"));
        assert!(calls[0].starts_with("partition"));
        assert_eq!(calls[1], "heal");
        assert_eq!(report.failures, 1);
        assert!(report.started.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn pause_freezes_the_leader_and_resumes_it_at_stop() {
        let probe: Arc<dyn LeaderProbe> = Arc::new(FixedLeader(NodeId(2)));
        let (calls, log, report) = run(
            FakeCluster::new(5, false),
            vec![FaultKind::Pause],
            4,
            Duration::from_secs(25),
            Some(probe),
        )
        .await;
        // t=10 pause, t=20 resume, then the final heal at 25.
        assert_eq!(calls, ["pause n2", "resume n2", "heal"]);
        assert_eq!(log.fs(), ["start-pause", "stop-pause", "heal"]);
        let events = log.0.lock().unwrap();
        assert_eq!(
            serde_json::to_string(&events[0].1.value).unwrap(),
            r#"{"leader":true,"node":"n2"}"#
        );
        assert_eq!(report.started["pause"], 1);
        assert!(report.heal.resumed.is_empty(), "already resumed at stop");
    }

    #[tokio::test(start_paused = true)]
    async fn pause_without_a_leader_picks_nodes_at_random() {
        let mut paused = BTreeSet::new();
        for seed in 0..10 {
            let (calls, _, _) = run(
                FakeCluster::new(5, false),
                vec![FaultKind::Pause],
                seed,
                Duration::from_secs(15),
                None,
            )
            .await;
            let node = calls[0].strip_prefix("pause ").expect("first call pauses");
            assert_eq!(calls[1], format!("resume {node}"), "{calls:?}");
            paused.insert(node.to_string());
        }
        assert!(paused.len() > 1, "always the same node: {paused:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn heal_resumes_a_node_whose_resume_failed() {
        let cluster = FakeCluster::new(3, false);
        *cluster.resume_failures.lock().unwrap() = 1;
        let probe: Arc<dyn LeaderProbe> = Arc::new(FixedLeader(NodeId(3)));
        let (calls, log, report) = run(
            cluster,
            vec![FaultKind::Pause],
            5,
            Duration::from_secs(25),
            Some(probe),
        )
        .await;
        // The stop at t=20 fails; the heal after the failure resumes n3; nothing is left for
        // the final heal.
        assert_eq!(
            calls,
            ["pause n3", "resume n3", "heal", "resume n3", "heal"]
        );
        assert_eq!(log.fs(), ["start-pause", "fault-failed", "heal", "heal"]);
        let events = log.0.lock().unwrap();
        let Value::Map(m) = &events[2].1.value else {
            panic!("heal value must be a map");
        };
        assert_eq!(m["resumed"], Value::List(vec![Value::from("n3")]));
        assert_eq!(report.failures, 1);
        assert!(report.heal.errors.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unsupported_fault_is_skipped_not_failed() {
        let (calls, log, report) = run(
            FakeCluster::without_pause(3),
            vec![FaultKind::Pause],
            6,
            Duration::from_secs(45),
            None,
        )
        .await;
        // Tried once at t=10, then never drawn again; nothing to resume.
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(calls[0].starts_with("pause "));
        assert_eq!(calls[1], "heal");
        assert_eq!(log.fs(), ["fault-skipped", "heal"]);
        assert_eq!(report.failures, 0);
        assert!(report.skipped["pause"].contains("not supported"));
        // With another kind enabled, that one goes on.
        let (calls, _, report) = run(
            FakeCluster::without_pause(3),
            vec![FaultKind::Pause, FaultKind::Kill],
            6,
            Duration::from_secs(105),
            None,
        )
        .await;
        assert!(calls.iter().filter(|c| c.starts_with("pause")).count() <= 1);
        assert!(calls.iter().any(|c| c.starts_with("kill")), "{calls:?}");
        assert_eq!(report.failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn no_kinds_means_no_faults_but_still_a_heal() {
        let (calls, log, _) = run(
            FakeCluster::new(5, false),
            vec![],
            3,
            Duration::from_secs(35),
            None,
        )
        .await;
        assert_eq!(calls, ["heal"]);
        assert_eq!(log.fs(), ["heal"]);
    }

    #[tokio::test(start_paused = true)]
    async fn several_kinds_run_as_overlapping_streams_and_all_heal() {
        let cluster = FakeCluster::new(5, false);
        let kinds = vec![FaultKind::Partition, FaultKind::Clock, FaultKind::Disk];
        let (calls, log, report) =
            run(cluster.clone(), kinds, 3, Duration::from_secs(120), None).await;
        for k in ["partition", "clock", "disk"] {
            assert!(
                report.started.get(k).copied().unwrap_or(0) >= 2,
                "{k}: {report:?}"
            );
        }
        // Faults overlap: at some point two kinds are in effect together.
        let mut open = BTreeSet::new();
        let mut overlapped = false;
        for f in log.fs() {
            if let Some(kind) = f.strip_prefix("start-") {
                open.insert(kind.to_string());
            } else if let Some(kind) = f.strip_prefix("stop-") {
                open.remove(kind);
            }
            overlapped |= open.len() >= 2;
        }
        assert!(overlapped, "{:?}", log.fs());
        // Every kill (disk faults crash nodes) is followed by a start of the same node,
        // and the last clock call of every skewed node resets it.
        for node in 1..=5 {
            let n = format!("n{node}");
            let kills = calls.iter().filter(|c| **c == format!("kill {n}")).count();
            let starts = calls.iter().filter(|c| **c == format!("start {n}")).count();
            assert!(
                starts >= kills,
                "{n}: {kills} kills, {starts} starts in {calls:?}"
            );
            if let Some(last) = calls
                .iter()
                .rev()
                .find(|c| c.starts_with(&format!("clock {n} ")))
            {
                assert_eq!(last, &format!("clock {n} 0 1"), "{calls:?}");
            }
        }
        assert_eq!(log.fs().last().map(String::as_str), Some("heal"));
        assert_eq!(report.failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn corrupt_tail_happens_only_to_a_killed_node() {
        let cluster = FakeCluster::new(3, false);
        let (calls, _, _) = run(
            cluster,
            vec![FaultKind::Disk],
            11,
            Duration::from_secs(200),
            None,
        )
        .await;
        let mut down = BTreeSet::new();
        let mut corrupted = 0;
        for c in &calls {
            let mut words = c.split(' ');
            match (words.next(), words.next()) {
                (Some("kill"), Some(n)) => {
                    down.insert(n.to_string());
                }
                (Some("start"), Some(n)) => {
                    down.remove(n);
                }
                (Some("corrupt"), Some(n)) => {
                    assert!(down.contains(n), "corrupted running {n}: {calls:?}");
                    corrupted += 1;
                }
                _ => {}
            }
        }
        assert!(corrupted > 0, "{calls:?}");
        assert!(down.is_empty(), "left down: {down:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_are_graceful_and_leave_nothing_to_undo() {
        let cluster = FakeCluster::new(3, false);
        let (calls, log, report) = run(
            cluster,
            vec![FaultKind::Restart],
            5,
            Duration::from_secs(120),
            None,
        )
        .await;
        assert!(report.started["restart"] >= 2, "{report:?}");
        // Each terminate is followed at once by a start of the same node.
        for (i, c) in calls.iter().enumerate() {
            if let Some(n) = c.strip_prefix("terminate ") {
                assert_eq!(calls[i + 1], format!("start {n}"), "{calls:?}");
            }
        }
        assert!(!calls.iter().any(|c| c.starts_with("kill")));
        // Every start is closed by its stop at once, so no period stays open.
        let fs = log.fs();
        for (i, f) in fs.iter().enumerate() {
            if f == "start-restart" {
                assert_eq!(fs[i + 1], "stop-restart", "{fs:?}");
            }
        }
    }
}
