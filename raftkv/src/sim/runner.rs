//! Running many seeds in parallel (std threads, no extra dependencies) and stopping at
//! the first failure, for CI sweeps and for searching seeds that expose a planted bug.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::options::SimOptions;
use super::world::{Sim, SimFailure, SimStats};

/// What a sweep did.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    /// Seeds fully run (a sweep stops early after a failure).
    pub seeds_run: u64,
    /// The failure with the lowest seed among those found, if any.
    pub failure: Option<SimFailure>,
    pub elapsed: Duration,
    /// Sums over passing seeds.
    pub total: SimStats,
}

impl SweepReport {
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds_run as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Run seeds `first..first + count` on `threads` threads; `make` builds the options for a seed.
/// Stops handing out seeds once one fails.
pub fn sweep(
    first: u64,
    count: u64,
    threads: usize,
    make: &(dyn Fn(u64) -> SimOptions + Sync),
) -> SweepReport {
    let start = Instant::now();
    let next = AtomicU64::new(first);
    let ran = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<SimFailure>> = Mutex::new(None);
    let total: Mutex<SimStats> = Mutex::new(SimStats::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    break;
                }
                match Sim::new(make(seed), seed).run() {
                    Ok(st) => {
                        ran.fetch_add(1, Ordering::Relaxed);
                        let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
                        t.ticks += st.ticks;
                        t.delivered += st.delivered;
                        t.dropped += st.dropped;
                        t.crashes += st.crashes;
                        t.elections += st.elections;
                        t.acked_writes += st.acked_writes;
                        t.failed_writes += st.failed_writes;
                        t.reads_served += st.reads_served;
                        t.snapshots_installed += st.snapshots_installed;
                        t.max_term = t.max_term.max(st.max_term);
                    }
                    Err(f) => {
                        ran.fetch_add(1, Ordering::Relaxed);
                        stop.store(true, Ordering::Relaxed);
                        let mut slot = failure.lock().unwrap_or_else(|e| e.into_inner());
                        if slot.as_ref().is_none_or(|old| f.seed < old.seed) {
                            *slot = Some(f);
                        }
                    }
                }
            });
        }
    });
    SweepReport {
        seeds_run: ran.into_inner(),
        failure: failure.into_inner().unwrap_or_else(|e| e.into_inner()),
        elapsed: start.elapsed(),
        total: total.into_inner().unwrap_or_else(|e| e.into_inner()),
    }
}

/// Threads to use: `RAFTKV_SIM_THREADS` or the available parallelism.
pub fn default_threads() -> usize {
    std::env::var("RAFTKV_SIM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}
