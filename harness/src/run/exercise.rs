//! `exercise`: the active part of a run on a cluster that is already up. Waits for a
//! leader, runs the clients and the nemesis schedule for the time limit, stops the clients,
//! heals (always, also on cancel), lets the cluster settle, does the final reads, closes
//! the history and copies the node logs. Backend-agnostic: it sees only the `Cluster`
//! trait, so tests drive it with an in-process cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_checker::{Event, EventType, Process, Value};
use faultline_nemeses::{Cluster, Nemesis, Schedule, ScheduleConfig, ScheduleReport};
use faultline_workloads::runner::FinalReads;
use faultline_workloads::{KeySpace, Recorder, Runner, RunnerConfig, RunnerReport};
use tokio::sync::watch;

use super::config::TestConfig;
use super::nemesis_log::HistoryLog;
use super::online::OnlineCheck;
use super::progress::LiveProgress;
use super::run_dir::RunDir;
use crate::results::{Exercised, OnlineViolation};
use crate::target::{AnyClient, ClientContext, TargetClient, TargetError, TargetLeader};

/// Time allowed to copy one node's logs.
const LOGS_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between leader probes while waiting for one.
const LEADER_POLL: Duration = Duration::from_millis(250);

/// Why a run could not be carried out (as opposed to a verdict about the system).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no leader elected within {waited_ms} ms (nodes: {nodes})")]
    NoLeader { waited_ms: u64, nodes: String },
    #[error("{0}")]
    Client(#[from] TargetError),
    #[error("history: {0}")]
    Recorder(#[from] faultline_workloads::RecorderError),
    #[error("cancelled before the workload started")]
    Cancelled,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Polls the cluster until a leader is known, at most `wait`, or until cancelled.
pub async fn wait_for_leader(
    client: &dyn TargetClient,
    wait: Duration,
    cancel: &mut watch::Receiver<bool>,
) -> Option<usize> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(l) = client.leader().await {
            return Some(l);
        }
        if tokio::time::Instant::now() >= deadline || *cancel.borrow() {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep(LEADER_POLL) => {}
            _ = cancel.wait_for(|c| *c) => return None,
        }
    }
}

/// Returns once `cancel` turns true; never when nobody can cancel any more.
async fn until_cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sleeps for `d` unless cancelled first; returns whether it was cancelled.
async fn sleep_or_cancel(d: Duration, cancel: &mut watch::Receiver<bool>) -> bool {
    if *cancel.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        // A dropped sender means nobody can cancel any more: keep sleeping.
        r = cancel.wait_for(|c| *c) => match r {
            Ok(_) => true,
            Err(_) => {
                tokio::time::sleep(d).await;
                false
            }
        },
    }
}

/// Runs the workload and the nemesis on `cluster`, writing `history.jsonl` into `dir`.
/// `cancel` becoming true stops the run early (it still heals and closes the history).
pub async fn exercise(
    config: &TestConfig,
    dir: &RunDir,
    cluster: Arc<dyn Cluster>,
    progress: &mut LiveProgress,
    mut cancel: watch::Receiver<bool>,
) -> Result<Exercised, RunError> {
    let nodes = cluster.nodes().to_vec();
    let addrs: Vec<String> = nodes.iter().map(|n| n.client_addr.clone()).collect();
    let log_dir = dir.clone();
    let context = ClientContext {
        run_dir: dir.path().to_path_buf(),
        log: Arc::new(move |line: &str| log_dir.log(line)),
        concurrency: config.concurrency as u64,
    };
    let client = crate::target::driver(&config.target)?
        .client(&addrs, &config.target_options, &context)
        .await?;
    client
        .prepare(config.workload)
        .await
        .map_err(|reason| TargetError::Adapter {
            target: config.target.name(),
            reason,
        })?;

    let leader_wait = Duration::from_millis(config.leader_wait_ms);
    if client.has_leader_probe() {
        progress.phase("waiting for a leader");
        let Some(leader) = wait_for_leader(client.as_ref(), leader_wait, &mut cancel).await else {
            if *cancel.borrow() {
                return Err(RunError::Cancelled);
            }
            return Err(RunError::NoLeader {
                waited_ms: config.leader_wait_ms,
                nodes: addrs.join(", "),
            });
        };
        dir.log(&format!("leader: {}", nodes[leader].name));
    } else {
        dir.log("leader: the target names none (no leader probe); starting at once");
    }

    let origin = Instant::now();
    let recorder = Recorder::create(&dir.history(), origin)?;
    // Checks the history as it is written; a violation is reported while the test runs.
    let online = match config.online_check_every() {
        Some(every) => match OnlineCheck::start(&dir.history(), config.workload, origin, every) {
            Ok(o) => Some(o),
            Err(e) => {
                dir.log(&format!("online check not started: {e}"));
                None
            }
        },
        None => None,
    };
    let mut found = online.as_ref().map(OnlineCheck::found);
    let mut announced = false;
    let runner = Arc::new(Runner::new(
        Arc::new(AnyClient(client.clone())),
        KeySpace::new(config.workload),
        recorder.handle(),
        RunnerConfig {
            concurrency: config.concurrency,
            rate_per_s: config.rate_per_s,
            op_timeout: Duration::from_millis(config.op_timeout_ms),
            seed: config.seed,
        },
    ));
    let probe = Arc::new(TargetLeader {
        client: client.clone(),
        ids: nodes.iter().map(|n| n.id).collect(),
    });
    let schedule = Schedule::new(
        Nemesis::new(cluster.clone(), Some(probe), config.seed).with_shapes(config.shapes.clone()),
        ScheduleConfig {
            kinds: config.nemesis.clone(),
            interval: Duration::from_millis(config.nemesis_interval_ms),
            seed: config.seed,
        },
        Arc::new(HistoryLog(recorder.handle())),
    );
    progress.phase("running the workload");
    progress.follow(
        recorder.handle().counts().clone(),
        schedule.current(),
        config.time_limit(),
    );

    // Clients stop first; the nemesis then stops its fault and heals.
    let (clients_stop, clients_rx) = watch::channel(false);
    let (nemesis_stop, nemesis_rx) = watch::channel(false);
    let started = Instant::now();
    dir.log(&format!(
        "workload {} for {} ms; nemesis {:?}{} every {} ms; seed {}",
        config.workload,
        config.time_limit_ms,
        config.nemesis,
        if config.shapes.is_empty() {
            String::new()
        } else {
            format!(" ({})", config.shapes)
        },
        config.nemesis_interval_ms,
        config.seed
    ));
    let nemesis_task = tokio::spawn(schedule.run(nemesis_rx));
    let clients = runner.clone();
    let clients_task = tokio::spawn(async move { clients.run(clients_rx).await });

    // The time limit, a signal, or (with --stop-on-violation) a violation ends the clients.
    let mut stopped_on_violation = false;
    let time_limit = tokio::time::sleep(config.time_limit());
    tokio::pin!(time_limit);
    let cancelled = loop {
        tokio::select! {
            () = &mut time_limit => break false,
            () = until_cancelled(&mut cancel) => break true,
            v = next_violation(&mut found) => {
                announce(&v, dir, progress, &recorder.handle()).await;
                announced = true;
                found = None;
                if config.stop_on_violation {
                    dir.log("stopping the clients early: --stop-on-violation");
                    stopped_on_violation = true;
                    break false;
                }
            }
        }
    };
    let _ = clients_stop.send(true);
    progress.phase("stopping clients");
    let report: RunnerReport = clients_task.await.unwrap_or_else(|e| {
        tracing::error!("client phase ended abnormally: {e}");
        RunnerReport::default()
    });
    let workload_ms = millis(started.elapsed());
    progress.phase("healing");
    let _ = nemesis_stop.send(true);
    let nemesis: ScheduleReport = nemesis_task.await.unwrap_or_else(|e| {
        tracing::error!("nemesis ended abnormally: {e}");
        ScheduleReport::default()
    });
    dir.log(&format!(
        "workload stopped after {workload_ms} ms, {} ops; nemesis started {:?}, {} failures",
        report.ops, nemesis.started, nemesis.failures
    ));
    if !nemesis.heal.errors.is_empty() {
        dir.log(&format!("heal errors: {}", nemesis.heal.errors.join("; ")));
    }

    let mut finals = FinalReads::default();
    let mut cancelled = cancelled || {
        progress.phase("quiet period");
        sleep_or_cancel(Duration::from_millis(config.quiet_period_ms), &mut cancel).await
    };
    if !cancelled && client.has_leader_probe() {
        progress.phase("waiting for a leader before final reads");
        let leader = wait_for_leader(client.as_ref(), leader_wait, &mut cancel).await;
        cancelled = *cancel.borrow();
        if leader.is_none() && !cancelled {
            dir.log("no leader before the final reads; trying anyway");
        }
    }
    if !cancelled {
        progress.phase("final reads");
        let reads = runner.final_reads(
            report.next_process,
            Duration::from_millis(config.final_reads_ms),
        );
        // A signal cuts them short: reads left open are unknown, which the checker allows.
        tokio::select! {
            f = reads => finals = f,
            () = until_cancelled(&mut cancel) => {
                cancelled = true;
                dir.log("final reads cut short by a signal");
            }
        }
    }
    // The online check sees the final reads too, then stops before the history closes.
    let online = match online {
        Some(o) => {
            let mut summary = o.finish().await;
            if let (Some(v), false) = (&summary.violation, announced) {
                announce(v, dir, progress, &recorder.handle()).await;
            }
            if let Some(e) = &summary.error {
                dir.log(&format!("online check stopped: {e}"));
            }
            summary.stopped_run = stopped_on_violation;
            Some(summary)
        }
        None => None,
    };
    let counts = recorder.handle().counts().snapshot();
    let events_written = recorder.close().await?;

    progress.phase("copying node logs");
    let mut log_errors = Vec::new();
    for node in &nodes {
        let to = dir.nodes().join(&node.name);
        match tokio::time::timeout(LOGS_TIMEOUT, cluster.logs(node.id, &to)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log_errors.push(format!("{}: {e}", node.name)),
            Err(_) => log_errors.push(format!("{}: timed out copying logs", node.name)),
        }
    }
    Ok(Exercised {
        counts,
        events_written,
        ops_issued: report.ops,
        final_reads_ok: finals.read.len(),
        final_reads_failed: finals.unread,
        faults_started: nemesis.started,
        faults_skipped: nemesis.skipped,
        fault_failures: nemesis.failures,
        heal_errors: nemesis.heal.errors,
        restarted_at_heal: nemesis
            .heal
            .restarted
            .iter()
            .map(ToString::to_string)
            .collect(),
        log_errors,
        cancelled,
        workload_ms,
        online,
    })
}

/// Waits for the online check's violation; never returns when there is none to wait for.
async fn next_violation(
    found: &mut Option<watch::Receiver<Option<OnlineViolation>>>,
) -> OnlineViolation {
    if let Some(rx) = found {
        if let Ok(v) = rx.wait_for(Option::is_some).await {
            if let Some(v) = v.clone() {
                return v;
            }
        }
    }
    std::future::pending().await
}

/// Reports a violation found while the test runs: on the progress line, in
/// `faultline.log`, and as a `checker` event in the history.
async fn announce(
    v: &OnlineViolation,
    dir: &RunDir,
    progress: &LiveProgress,
    history: &faultline_workloads::RecorderHandle,
) {
    let line = format!(
        "violation found by the online check at {:.1}s, {} events in: {}{}",
        v.found_at_ms as f64 / 1000.0,
        v.events,
        v.op,
        v.key
            .as_ref()
            .map(|k| format!(" (key {k})"))
            .unwrap_or_default()
    );
    progress.println(&format!("faultline: {line}"));
    progress.mark(&format!(
        "VIOLATION at {:.1}s",
        v.found_at_ms as f64 / 1000.0
    ));
    dir.log(&line);
    let mut event = Event::new(
        Process::Checker,
        EventType::Info,
        "violation",
        Value::from(v.op.clone()),
    );
    event.key = v.key.clone();
    if let Err(e) = history.record(event).await {
        dir.log(&format!("violation event not recorded: {e}"));
    }
}
