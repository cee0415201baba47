//! The online check: while a test runs, a thread follows its `history.jsonl` and checks the
//! history recorded so far for linearizability, again and again, so a violation is known
//! while the test is still running (Jepsen, Knossos and Porcupine all check afterwards).
//!
//! Why a prefix's violation is final: the prefix is checked with its open invokes as `info`
//! (they may take effect at any time after their invoke, or never). Every linearization of
//! the whole history restricted to the prefix's ops is one of the prefix, so a prefix that
//! cannot be linearized means the whole history cannot. An `unknown` prefix (a limit hit)
//! says nothing; the run's verdict is always the check of the whole history at the end.
//!
//! Only linearizability is checked online (for the lock workload: its registers); the
//! fencing-token check runs at the end.
//!
//! Cost: a check rereads nothing (the file is tailed) but searches the whole prefix again.
//! It runs on one thread, and after a check that took `d` the next waits at least
//! `BACKOFF * d`, so the online check uses at most about a fifth of one core however long
//! the history grows. Memory per check is capped at [`MAX_MEMORY_BYTES`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use faultline_checker::format::jsonl_tail::JsonlTail;
use faultline_checker::{History, Limits, Verdict};
use faultline_workloads::Workload;
use tokio::sync::watch;

use super::judge::check_linearizable;
use crate::results::{OnlineSummary, OnlineViolation};

/// Memory one online check may use before it gives up (`unknown`, ignored).
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;
/// Time one online check may take before it gives up.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// After a check that took `d`, the next starts no sooner than `BACKOFF * d` later.
const BACKOFF: u32 = 4;
/// How often the file is polled for new lines.
const POLL: Duration = Duration::from_millis(100);
/// Most events held; beyond it the online check stops (the final check still runs).
pub const MAX_EVENTS: usize = 20_000_000;

/// A running online check; [`OnlineCheck::finish`] stops it and returns its summary.
pub struct OnlineCheck {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<OnlineSummary>>,
    found: watch::Receiver<Option<OnlineViolation>>,
}

impl OnlineCheck {
    /// Starts following `history` (which need not exist yet). `origin` is the instant the
    /// history's `time_ns` counts from, so the times it reports are on the history's clock.
    pub fn start(
        history: &Path,
        workload: Workload,
        origin: Instant,
        every: Duration,
    ) -> std::io::Result<OnlineCheck> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, found) = watch::channel(None);
        let follower = Follower {
            tail: JsonlTail::new(history),
            history: History {
                source: Some(history.to_path_buf()),
                ..History::default()
            },
            workload,
            origin,
            every,
            stop: stop.clone(),
            found: tx,
        };
        let thread = std::thread::Builder::new()
            .name("online-check".into())
            .spawn(move || follower.run())?;
        Ok(OnlineCheck {
            stop,
            thread: Some(thread),
            found,
        })
    }

    /// Turns `Some` once a violation is found.
    pub fn found(&self) -> watch::Receiver<Option<OnlineViolation>> {
        self.found.clone()
    }

    /// Stops the check (a check in progress is cancelled) and returns what it did.
    pub async fn finish(mut self) -> OnlineSummary {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return OnlineSummary::default();
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(summary)) => summary,
            _ => OnlineSummary {
                error: Some("the online check's thread panicked".to_string()),
                ..OnlineSummary::default()
            },
        }
    }
}

impl Drop for OnlineCheck {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Follower {
    tail: JsonlTail,
    history: History,
    workload: Workload,
    origin: Instant,
    every: Duration,
    stop: Arc<AtomicBool>,
    found: watch::Sender<Option<OnlineViolation>>,
}

impl Follower {
    fn run(mut self) -> OnlineSummary {
        let mut summary = OnlineSummary::default();
        // One thread: the cluster under test shares the machine.
        let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
            Ok(p) => p,
            Err(e) => {
                summary.error = Some(format!("no thread for the online check: {e}"));
                return summary;
            }
        };
        let mut next_check = Instant::now() + self.every;
        let mut checked_events = 0usize;
        while !self.stop.load(Ordering::SeqCst) {
            if let Err(e) = self.tail.read_new(&mut self.history) {
                summary.error = Some(e.to_string());
                break;
            }
            if self.history.events.len() > MAX_EVENTS {
                summary.error = Some(format!(
                    "more than {MAX_EVENTS} events: the online check stopped (the final check \
                     still runs)"
                ));
                break;
            }
            if Instant::now() >= next_check && self.history.events.len() > checked_events {
                checked_events = self.history.events.len();
                let began = Instant::now();
                let limits = Limits {
                    timeout: Some(CHECK_TIMEOUT),
                    max_memory_bytes: Some(MAX_MEMORY_BYTES),
                    cancel: Some(self.stop.clone()),
                    ..Limits::default()
                };
                let result =
                    pool.install(|| check_linearizable(&self.history, self.workload, &limits));
                let took = began.elapsed();
                next_check = Instant::now() + self.every.max(took * BACKOFF);
                summary.check_ms += millis(took);
                match result {
                    Ok((_, r)) => {
                        if let Verdict::Invalid(cx) = &r.verdict {
                            summary.checks += 1;
                            summary.events_checked = checked_events as u64;
                            let v = OnlineViolation {
                                found_at_ms: millis(self.origin.elapsed()),
                                events: checked_events as u64,
                                op: cx.failed.to_string(),
                                key: cx.key.clone(),
                                op_completed_at_ms: cx.failed.complete_ns.map(|ns| ns / 1_000_000),
                                check_ms: millis(took),
                            };
                            summary.violation = Some(v.clone());
                            let _ = self.found.send(Some(v));
                            break;
                        }
                        if r.verdict.is_unknown() {
                            // A check cut short by `stop` is not a check.
                            if self.stop.load(Ordering::SeqCst) {
                                break;
                            }
                            summary.unknown_checks += 1;
                        }
                        summary.checks += 1;
                        summary.events_checked = checked_events as u64;
                    }
                    Err(e) => {
                        summary.error = Some(e.to_string());
                        break;
                    }
                }
            }
            std::thread::sleep(POLL);
        }
        summary
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Event, EventType, Process, Value};
    use std::io::Write;

    fn line(p: u64, kind: EventType, f: &str, v: Value, t_ms: u64) -> String {
        let mut e = Event::new(Process::Client(p), kind, f, v).with_key("r0");
        e.time_ns = Some(t_ms * 1_000_000);
        let mut s = serde_json::to_string(&e).unwrap();
        s.push('\n');
        s
    }

    /// A history written while the check follows it: valid at first, then a stale read.
    /// The check reports the read as the violating op, with its completion time, while
    /// the file is still open.
    #[tokio::test]
    async fn finds_a_stale_read_while_the_history_is_written() {
        use EventType::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        let check = OnlineCheck::start(
            &path,
            Workload::Register,
            Instant::now(),
            Duration::from_millis(50),
        )
        .unwrap();
        let mut found = check.found();
        for l in [
            line(0, Invoke, "write", 1.into(), 1),
            line(0, Ok, "write", 1.into(), 2),
            line(1, Invoke, "read", Value::Null, 3),
            line(1, Ok, "read", 1.into(), 4),
            // An open invoke: info in the prefix, never a violation by itself.
            line(2, Invoke, "write", 3.into(), 5),
        ] {
            f.write_all(l.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            found.borrow().is_none(),
            "a valid prefix is not a violation"
        );
        for l in [
            line(0, Invoke, "write", 2.into(), 10),
            line(0, Ok, "write", 2.into(), 11),
            line(1, Invoke, "read", Value::Null, 12),
            line(1, Ok, "read", 1.into(), 13),
        ] {
            f.write_all(l.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let v = tokio::time::timeout(Duration::from_secs(20), found.wait_for(Option::is_some))
            .await
            .expect("the violation is found while the file is open")
            .unwrap()
            .clone()
            .unwrap();
        assert!(v.op.contains("read"), "{v:?}");
        assert_eq!(v.key.as_deref(), Some("r0"));
        assert_eq!(v.op_completed_at_ms, Some(13));
        assert_eq!(v.events, 9);
        let summary = check.finish().await;
        assert!(summary.checks >= 2, "{summary:?}");
        assert_eq!(summary.violation, Some(v));
        assert!(summary.error.is_none());
    }

    #[tokio::test]
    async fn a_malformed_line_stops_it_with_the_line_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, "{\"process\":0,\"type\":\"bogus\",\"f\":\"read\"}\n").unwrap();
        let check = OnlineCheck::start(
            &path,
            Workload::Register,
            Instant::now(),
            Duration::from_millis(10),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let summary = check.finish().await;
        let e = summary.error.expect("an error");
        assert!(e.contains("history.jsonl:1") && e.contains("type"), "{e}");
        assert!(summary.violation.is_none());
    }
}
