//! `NodeProcess`: one node's server as a child process of the harness, and the process
//! faults on it (SIGSTOP/SIGCONT, SIGKILL, restart with the same command).
//!
//! Every child must die with the harness, however the harness ends:
//! - the child gets its own process group (so a terminal's Ctrl-C reaches only the harness,
//!   which then heals and tears down in order, and so signals reach anything the server
//!   forks);
//! - `PR_SET_PDEATHSIG(SIGKILL)` in `pre_exec`: the kernel kills the child when the thread
//!   that spawned it exits, which covers a harness killed with SIGKILL. Nodes are spawned
//!   from the runtime's worker threads, which live as long as the runtime;
//! - `Drop` sends SIGKILL to the group (panics, early returns).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Longest wait for a killed child to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the kernel to report a SIGSTOPped process as stopped.
const STOP_CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// How to start one node: program, arguments, environment, and where its output goes.
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// stdout and stderr are appended here (a restart appends to the same file).
    pub log: PathBuf,
    pub cwd: PathBuf,
}

/// What a process-level call failed on.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signal {signal} to process group {pgid}: {source}")]
    Signal {
        signal: &'static str,
        pgid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("process {pid} did not {what} within {timeout_ms} ms")]
    Timeout {
        pid: i32,
        what: &'static str,
        timeout_ms: u64,
    },
}

/// A node's server process: running, paused, or not running (killed or exited).
pub struct NodeProcess {
    launch: Launch,
    child: Option<Child>,
    paused: bool,
    /// When the running child was spawned.
    started_at: Option<std::time::Instant>,
}

impl NodeProcess {
    /// Starts the process.
    pub fn spawn(launch: Launch) -> Result<NodeProcess, ProcessError> {
        let mut p = NodeProcess {
            launch,
            child: None,
            paused: false,
            started_at: None,
        };
        p.start()?;
        Ok(p)
    }

    /// The running child's pid (also its process group id), if any.
    pub fn pid(&self) -> Option<i32> {
        self.child
            .as_ref()
            .and_then(Child::id)
            .and_then(|p| i32::try_from(p).ok())
    }

    /// How long the running child has run (0 when none runs).
    pub fn running_ms(&self) -> u64 {
        self.started_at
            .filter(|_| self.child.is_some())
            .map(|t| millis(t.elapsed()))
            .unwrap_or(0)
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the child is alive (running or stopped); reaps it if it exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                tracing::info!(log = %self.launch.log.display(), %status, "node exited");
                self.child = None;
                self.paused = false;
                false
            }
            Some(Err(_)) | None => false,
        }
    }

    /// Starts the process unless it is running.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        if self.is_running() {
            return Ok(());
        }
        let log_err = |source| ProcessError::Log {
            path: self.launch.log.display().to_string(),
            source,
        };
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.launch.log)
            .map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let mut cmd = Command::new(&self.launch.program);
        cmd.args(&self.launch.args)
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.launch.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec; `child_setup` makes
        // only async-signal-safe calls and allocates nothing (see its comment).
        unsafe {
            cmd.pre_exec(move || crate::backend::child::child_setup(parent));
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            program: self.launch.program.display().to_string(),
            source,
        })?;
        tracing::debug!(pid = ?child.id(), program = %self.launch.program.display(), "node started");
        self.child = Some(child);
        self.paused = false;
        self.started_at = Some(std::time::Instant::now());
        Ok(())
    }

    fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        let Some(pgid) = self.pid() else {
            return Ok(());
        };
        match killpg(Pid::from_raw(pgid), signal) {
            // Exited between our check and the signal: nothing left to signal.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(source) => Err(ProcessError::Signal {
                signal: signal.as_str(),
                pgid,
                source,
            }),
        }
    }

    /// SIGSTOP to the group, and waits until the kernel reports the process stopped, so
    /// the caller knows the node runs nothing after this returns.
    pub async fn pause(&mut self) -> Result<(), ProcessError> {
        if !self.is_running() || self.paused {
            return Ok(());
        }
        self.signal(Signal::SIGSTOP)?;
        self.paused = true;
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + STOP_CONFIRM_TIMEOUT;
        while !is_stopped(pid) {
            if tokio::time::Instant::now() >= deadline {
                return Err(ProcessError::Timeout {
                    pid,
                    what: "stop",
                    timeout_ms: millis(STOP_CONFIRM_TIMEOUT),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// SIGCONT to the group. Resuming a running process is a no-op.
    pub fn resume(&mut self) -> Result<(), ProcessError> {
        if !self.is_running() {
            return Ok(());
        }
        self.signal(Signal::SIGCONT)?;
        self.paused = false;
        Ok(())
    }

    /// SIGKILL to the group (a stopped process dies too), then reaps it.
    pub async fn kill(&mut self) -> Result<(), ProcessError> {
        if !self.is_running() {
            return Ok(());
        }
        self.signal(Signal::SIGKILL)?;
        let pid = self.pid().unwrap_or(0);
        if let Some(child) = self.child.as_mut() {
            match tokio::time::timeout(REAP_TIMEOUT, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    return Err(ProcessError::Timeout {
                        pid,
                        what: "exit after SIGKILL",
                        timeout_ms: millis(REAP_TIMEOUT),
                    })
                }
            }
        }
        self.child = None;
        self.paused = false;
        Ok(())
    }

    /// SIGTERM to the group (after SIGCONT, so a paused process can act on it), then
    /// SIGKILL if it has not exited within `grace`. Reaps it either way.
    pub async fn terminate(&mut self, grace: Duration) -> Result<(), ProcessError> {
        if !self.is_running() {
            return Ok(());
        }
        self.signal(Signal::SIGTERM)?;
        if self.paused {
            self.signal(Signal::SIGCONT)?;
            self.paused = false;
        }
        if let Some(child) = self.child.as_mut() {
            if tokio::time::timeout(grace, child.wait()).await.is_ok() {
                self.child = None;
                return Ok(());
            }
            tracing::info!(log = %self.launch.log.display(), "no exit after SIGTERM; SIGKILL");
        }
        self.kill().await
    }

    pub fn log_path(&self) -> &Path {
        &self.launch.log
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // kill_on_drop only kills the direct child; the group may hold more.
        let _ = self.signal(Signal::SIGKILL);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether `/proc/<pid>/stat` says the process is stopped (`T`) or traced (`t`).
pub fn is_stopped(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The command name is in parentheses and may contain spaces: the state follows the
    // last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "T" || state == "t")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> Launch {
        Launch {
            program: "sleep".into(),
            args: vec!["30".into()],
            env: Vec::new(),
            log: dir.join("sleep.log"),
            cwd: dir.to_path_buf(),
        }
    }

    #[tokio::test]
    async fn pause_resume_kill_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = NodeProcess::spawn(sleeper(dir.path())).unwrap();
        let pid = p.pid().unwrap();
        // Its own process group.
        assert_eq!(
            nix::unistd::getpgid(Some(Pid::from_raw(pid)))
                .unwrap()
                .as_raw(),
            pid
        );
        p.pause().await.unwrap();
        assert!(is_stopped(pid));
        p.resume().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!is_stopped(pid));
        p.pause().await.unwrap();
        // A stopped process dies on SIGKILL.
        p.kill().await.unwrap();
        assert!(!p.is_running());
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        p.start().unwrap();
        assert!(p.is_running());
        assert_ne!(p.pid(), Some(pid));
        let last = p.pid().unwrap();
        drop(p);
        // Drop kills the group; the tokio reaper collects it shortly after.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{last}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{last}/stat"))
                .unwrap_or_default()
                .contains(") Z")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "child {last} survived drop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
