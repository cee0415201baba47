//! `Runner`: the client side of a run. One tokio task per concurrent client, each acting
//! as one logical process at a time, paced by a global [`RateLimiter`]; and the final
//! reads once the cluster is healed.
//!
//! Every request is bracketed by its invoke and completion events in the history. A client
//! that got `info` cannot know whether its operation is still pending, so it never issues
//! again under that process number: it continues as `process + concurrency` (as Jepsen
//! does), which keeps process numbers unique across client tasks. The client's own state
//! carries over: a lock holder whose write timed out still believes it holds the lock.

use std::sync::Arc;
use std::time::Duration;

use faultline_checker::{EventType, Value};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::client::Client;
use crate::completion::Completion;
use crate::generator::{Generator, KeySpace};
use crate::rate::RateLimiter;
use crate::recorder::RecorderHandle;
use crate::request::Request;

/// Upper bound on client tasks, whatever the configuration asks.
pub const MAX_CONCURRENCY: usize = 1_024;
/// Slack on top of the op timeout before the runner itself abandons a call. Only a client
/// that ignores its own timeout hits it.
const CALL_SLACK: Duration = Duration::from_millis(500);
/// Pause between final-read attempts on one key.
const FINAL_READ_RETRY: Duration = Duration::from_millis(200);

/// How the clients run.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Client tasks, hence logical processes in flight at once.
    pub concurrency: usize,
    /// Target operations per second over all clients.
    pub rate_per_s: f64,
    /// Time a single request may take before it is abandoned (`info`, `fail` for reads).
    pub op_timeout: Duration,
    /// Seeds the generators.
    pub seed: u64,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            concurrency: 10,
            rate_per_s: 100.0,
            op_timeout: Duration::from_secs(2),
            seed: 0,
        }
    }
}

/// What the client phase did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunnerReport {
    /// Requests issued.
    pub ops: u64,
    /// A process number no client task has used; later phases start from it.
    pub next_process: u64,
}

/// What the final reads did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalReads {
    /// Keys whose final read succeeded.
    pub read: Vec<String>,
    /// Keys that could not be read before the deadline.
    pub unread: Vec<String>,
}

/// Runs the clients of one test against one target.
pub struct Runner<C: Client> {
    client: Arc<C>,
    keys: Arc<KeySpace>,
    recorder: RecorderHandle,
    config: RunnerConfig,
}

impl<C: Client> Runner<C> {
    pub fn new(
        client: Arc<C>,
        keys: Arc<KeySpace>,
        recorder: RecorderHandle,
        mut config: RunnerConfig,
    ) -> Runner<C> {
        config.concurrency = config.concurrency.clamp(1, MAX_CONCURRENCY);
        Runner {
            client,
            keys,
            recorder,
            config,
        }
    }

    pub fn keys(&self) -> &Arc<KeySpace> {
        &self.keys
    }

    /// Runs the client tasks until `stop` becomes true (or its sender is dropped). Each
    /// task finishes the request it has in flight, so no invoke is left open by stopping.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> RunnerReport {
        let limiter = Arc::new(RateLimiter::new(self.config.rate_per_s));
        let concurrency = self.config.concurrency as u64;
        let mut tasks = Vec::with_capacity(self.config.concurrency);
        for worker in 0..concurrency {
            let mut task = ClientTask {
                client: self.client.clone(),
                recorder: self.recorder.clone(),
                generator: Generator::new(self.keys.clone(), self.config.seed, worker),
                process: worker,
                stride: concurrency,
                op_timeout: self.config.op_timeout,
                ops: 0,
            };
            let limiter = limiter.clone();
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                task.run(&limiter, &mut stop).await;
                (task.ops, task.process)
            }));
        }
        let mut report = RunnerReport {
            ops: 0,
            next_process: concurrency,
        };
        for t in tasks {
            match t.await {
                Ok((ops, process)) => {
                    report.ops += ops;
                    report.next_process = report.next_process.max(process + 1);
                }
                Err(e) => tracing::error!("client task ended abnormally: {e}"),
            }
        }
        report
    }

    /// Reads every key the workload may have written, each as a fresh process numbered
    /// from `first_process`, retrying failed reads until `deadline`. Run after healing,
    /// so the checker sees where each key ended up.
    pub async fn final_reads(&self, first_process: u64, deadline: Duration) -> FinalReads {
        let until = Instant::now() + deadline;
        let keys = self.keys.keys_used();
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = Vec::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            let client = self.client.clone();
            let recorder = self.recorder.clone();
            let permits = permits.clone();
            let op_timeout = self.config.op_timeout;
            let mut process = first_process + i as u64;
            // Spread the processes so an `info` read (a client that breaks its rules)
            // moves to a number no other key's reader uses.
            let stride = 1_000_000;
            tasks.push(tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return (key, false);
                };
                let request = Request::Read { key: key.clone() };
                while Instant::now() < until {
                    let timeout = op_timeout.min(until.saturating_duration_since(Instant::now()));
                    let c = perform(&*client, &recorder, process, &request, timeout).await;
                    match c.kind {
                        EventType::Ok => return (key, true),
                        EventType::Info => process += stride,
                        _ => {}
                    }
                    tokio::time::sleep(FINAL_READ_RETRY).await;
                }
                (key, false)
            }));
        }
        let mut out = FinalReads::default();
        for t in tasks {
            match t.await {
                Ok((key, true)) => out.read.push(key),
                Ok((key, false)) => out.unread.push(key),
                Err(e) => tracing::error!("final read task ended abnormally: {e}"),
            }
        }
        out
    }
}

/// Records the invoke, performs the request, records the completion. Returns the
/// completion. Recording errors (the recorder was closed) are logged, not fatal: the run is
/// ending anyway.
async fn perform<C: Client>(
    client: &C,
    recorder: &RecorderHandle,
    process: u64,
    request: &Request,
    timeout: Duration,
) -> Completion {
    if let Err(e) = recorder.record(request.invoke_event(process)).await {
        tracing::debug!("not recording invoke: {e}");
        return Completion::fail(request.invoke_value(), "recorder-closed");
    }
    let completion =
        match tokio::time::timeout(timeout + CALL_SLACK, client.call(process, request, timeout))
            .await
        {
            Ok(c) => c,
            Err(_) if request.is_read_only() => Completion::fail(request.invoke_value(), "timeout"),
            Err(_) => Completion::info(request.invoke_value(), "timeout"),
        };
    debug_assert!(completion.kind != EventType::Invoke);
    let event = completion.event(process, request.f(), request.key());
    if let Err(e) = recorder.record(event).await {
        tracing::debug!("not recording completion: {e}");
    }
    completion
}

/// One client task: one logical process at a time.
struct ClientTask<C: Client> {
    client: Arc<C>,
    recorder: RecorderHandle,
    generator: Generator,
    process: u64,
    stride: u64,
    op_timeout: Duration,
    ops: u64,
}

impl<C: Client> ClientTask<C> {
    async fn run(&mut self, limiter: &RateLimiter, stop: &mut watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = limiter.acquire() => {}
                // Fires on a change to true, or when the sender is gone: stop either way.
                _ = stop.wait_for(|s| *s) => return,
            }
            let request = self.generator.next_request(self.process);
            let c = perform(
                &*self.client,
                &self.recorder,
                self.process,
                &request,
                self.op_timeout,
            )
            .await;
            self.ops += 1;
            if c.error.as_deref() == Some("recorder-closed") {
                return;
            }
            self.generator.observe(&request, &c);
            if c.kind == EventType::Info {
                self.process += self.stride;
            }
        }
    }
}

/// The value a final read found, for tests and summaries.
pub fn read_value(c: &Completion) -> Option<&Value> {
    (c.kind == EventType::Ok).then_some(&c.value)
}
