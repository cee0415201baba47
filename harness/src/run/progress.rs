//! `LiveProgress`: one line on stderr while a test runs: elapsed time, operations done,
//! ok/fail/info counts, the fault in effect, and a violation the online check found. Drawn
//! by indicatif on a terminal; when stderr is not a terminal (CI logs, a pipe) the same
//! information comes as plain lines: one per phase and one every few seconds while clients
//! run.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline_workloads::Counts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(250);
/// How often a plain counters line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The progress line; [`LiveProgress::finish`] clears it.
pub struct LiveProgress {
    bar: ProgressBar,
    /// stderr is not a terminal: print lines instead of drawing.
    plain: bool,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Shown at the end of the counters line from when it is set (a violation found).
    mark: Arc<Mutex<String>>,
}

impl LiveProgress {
    /// A spinner with a message; used for phases without counters (start, check).
    pub fn new() -> LiveProgress {
        let plain = !std::io::stderr().is_terminal();
        let target = if !plain {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        LiveProgress {
            bar,
            plain,
            task: None,
            mark: Arc::default(),
        }
    }

    /// Shows a phase (`starting cluster`, `final reads`, ...).
    pub fn phase(&self, msg: &str) {
        self.stop_counters();
        if self.plain {
            eprintln!("faultline: {msg}");
        }
        self.bar.set_message(msg.to_string());
    }

    /// Detail inside a phase (a build's latest output line): drawn on a terminal only.
    pub fn detail(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }

    /// A line printed above the bar, or plainly when stderr is not a terminal.
    pub fn println(&self, line: &str) {
        if self.plain {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Adds `text` to the end of the counters line for the rest of the run.
    pub fn mark(&self, text: &str) {
        if let Ok(mut m) = self.mark.lock() {
            *m = format!("  {text}");
        }
    }

    /// Follows the run's counters and current fault until the next phase.
    pub fn follow(
        &mut self,
        counts: Arc<Counts>,
        faults: watch::Receiver<String>,
        limit: Duration,
    ) {
        self.stop_counters();
        let bar = self.bar.clone();
        let plain = self.plain;
        let started = Instant::now();
        let mark = self.mark.clone();
        self.task = Some(tokio::spawn(async move {
            let mut last_plain = Instant::now();
            loop {
                let c = counts.snapshot();
                let done = c.ok + c.fail + c.info;
                let mark = mark.lock().map(|m| m.clone()).unwrap_or_default();
                bar.set_message(format!(
                    "{:>5.1}s/{:.0}s  ops {done}  ok {}  fail {}  info {}  faults: {}{mark}",
                    started.elapsed().as_secs_f64(),
                    limit.as_secs_f64(),
                    c.ok,
                    c.fail,
                    c.info,
                    faults.borrow().as_str()
                ));
                if plain && last_plain.elapsed() >= PLAIN_EVERY {
                    last_plain = Instant::now();
                    eprintln!("faultline: {}", bar.message());
                }
                tokio::time::sleep(TICK).await;
            }
        }));
    }

    fn stop_counters(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    pub fn finish(mut self) {
        self.stop_counters();
        self.task = None;
        self.bar.finish_and_clear();
    }
}

impl Default for LiveProgress {
    fn default() -> LiveProgress {
        LiveProgress::new()
    }
}

impl Drop for LiveProgress {
    fn drop(&mut self) {
        self.stop_counters();
    }
}
