//! `TeardownGuard`: makes sure a run's containers, network and volumes are removed however the
//! harness ends. Explicit `teardown()` is the normal path; `Drop` covers early returns and
//! panics (it reconnects on a thread of its own, because the async runtime may be the thing
//! unwinding); `spawn_signal_teardown` covers Ctrl-C and SIGTERM. SIGKILL cannot be caught:
//! the next run's `cleanup_stale_runs` removes what such a run left.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::api::DockerApi;
use super::cleanup::{teardown_run, Removed};
use super::error::DockerError;

/// Budget for a whole teardown from `Drop` or a signal: long enough for a slow daemon to
/// remove 2N containers, short enough that Ctrl-C still ends the harness promptly.
const EMERGENCY_TEARDOWN_TIMEOUT_MS: u64 = 60_000;

/// Exit code after a signal-triggered teardown: 128 + SIGINT, as shells expect.
pub const SIGNAL_EXIT_CODE: i32 = 130;

/// Owns the obligation to remove one run's Docker objects: dropping it while still armed
/// tears the run down. Not `Clone`; hand out `TeardownHandle`s for other tasks.
pub struct TeardownGuard {
    handle: TeardownHandle,
}

/// A shared way to tear the run down early (from a signal handler, a supervisor task...).
/// Whichever of the guard and its handles tears down first does it; the rest become no-ops.
#[derive(Clone)]
pub struct TeardownHandle {
    api: DockerApi,
    run_id: Arc<str>,
    armed: Arc<AtomicBool>,
}

impl TeardownGuard {
    pub fn new(api: DockerApi, run_id: &str) -> Self {
        Self {
            handle: TeardownHandle {
                api,
                run_id: run_id.into(),
                armed: Arc::new(AtomicBool::new(true)),
            },
        }
    }

    pub fn handle(&self) -> TeardownHandle {
        self.handle.clone()
    }

    /// Removes the run's objects now and disarms the guard.
    pub async fn teardown(&self) -> Result<Removed, DockerError> {
        self.handle.teardown().await
    }
}

impl TeardownHandle {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// True until the run has been torn down.
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
    }

    /// Removes the run's objects now. Idempotent: only the first call does work.
    pub async fn teardown(&self) -> Result<Removed, DockerError> {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return Ok(Removed::default());
        }
        teardown_run(&self.api, &self.run_id).await
    }

    /// Tears down on SIGINT or SIGTERM, then exits the process with `SIGNAL_EXIT_CODE`.
    /// An orchestrator that must do more on a signal (heal, flush results) handles signals
    /// itself and calls `teardown` instead.
    pub fn spawn_signal_teardown(&self) -> tokio::task::JoinHandle<()> {
        let handle = self.clone();
        tokio::spawn(async move {
            wait_for_termination_signal().await;
            tracing::warn!(run_id = %handle.run_id, "signal received: tearing the cluster down");
            let outcome = tokio::time::timeout(
                Duration::from_millis(EMERGENCY_TEARDOWN_TIMEOUT_MS),
                handle.teardown(),
            )
            .await;
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "teardown after signal failed"),
                Err(_) => tracing::error!("teardown after signal timed out"),
            }
            std::process::exit(SIGNAL_EXIT_CODE);
        })
    }
}

async fn wait_for_termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        if !self.handle.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let run_id = self.handle.run_id.to_string();
        let call_timeout_ms = self.handle.api.call_timeout_ms();
        tracing::warn!(run_id, "cluster dropped without teardown: removing it now");
        // A fresh thread with a fresh runtime and connection: the caller's runtime may be
        // blocked in this very drop, or shutting down.
        let worker = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "no runtime for emergency teardown");
                    return;
                }
            };
            runtime.block_on(async {
                let work = async {
                    let api = DockerApi::connect(call_timeout_ms).await?;
                    teardown_run(&api, &run_id).await
                };
                match tokio::time::timeout(
                    Duration::from_millis(EMERGENCY_TEARDOWN_TIMEOUT_MS),
                    work,
                )
                .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(run_id, error = %e, "emergency teardown failed"),
                    Err(_) => tracing::error!(run_id, "emergency teardown timed out"),
                }
            });
        });
        let _ = worker.join();
    }
}
