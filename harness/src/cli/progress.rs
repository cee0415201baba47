//! A progress bar on stderr for long checks: it appears only after a check has run for a
//! second (short checks stay quiet) and only when stderr is a terminal (logs and CI output
//! stay clean). It polls the checker's atomic counters from its own thread.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use faultline_checker::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a check runs before the bar appears.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the bar polls the counters.
const POLL: Duration = Duration::from_millis(100);

/// Shows progress until dropped or [`ProgressReporter::finish`]ed.
pub struct ProgressReporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressReporter {
    /// Starts watching `progress`; does nothing visible unless stderr is a terminal.
    pub fn start(progress: Arc<Progress>) -> ProgressReporter {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || show(&progress, &stop))
        });
        ProgressReporter { stop, thread }
    }

    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // The thread only draws; if it panicked there is nothing to recover.
            let _ = t.join();
        }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn show(progress: &Progress, stop: &AtomicBool) {
    let started = Instant::now();
    while started.elapsed() < SHOW_AFTER {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(POLL);
    }
    // Until the history is split into partitions the total is unknown: a spinner, not an
    // empty "0/0" bar.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let counting = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} partitions  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut known = false;
    while !stop.load(Ordering::Relaxed) {
        let total = progress.partitions_total.load(Ordering::Relaxed);
        if total == 0 {
            bar.set_message("splitting the history into partitions");
            bar.tick();
        } else {
            if !known {
                known = true;
                bar.set_style(counting.clone());
            }
            bar.set_length(total);
            bar.set_position(progress.partitions_done.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} states",
                progress.states_explored.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(POLL);
    }
    bar.finish_and_clear();
}
