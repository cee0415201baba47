//! Building what nodes run, shared by the backends: progress reports, and running a build
//! command (cargo, debootstrap, apt-get) within a time limit while its output streams to
//! the progress display.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Why a build step failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{what}: {hint}")]
    NotFound { what: String, hint: String },
    #[error("{step} failed: {detail}")]
    StepFailed { step: &'static str, detail: String },
    #[error("{step} timed out after {timeout_ms} ms")]
    Timeout { step: &'static str, timeout_ms: u64 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// A progress report; the CLI shows these on a spinner, tests log them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProgress {
    /// A step started (`cargo build`, `debootstrap`, `import`, `build node image`...).
    Step(String),
    /// A line of output inside the current step.
    Line(String),
    /// An image was already present: nothing built.
    Cached(String),
    /// An image was built; with how long it took.
    Built { tag: String, elapsed_ms: u64 },
}

pub type ProgressFn<'a> = &'a (dyn Fn(BuildProgress) + Send + Sync);

/// Runs a command, forwarding each output line as progress and keeping the last lines for
/// the error message. Killed on timeout.
pub async fn run_streaming(
    step: &'static str,
    mut cmd: tokio::process::Command,
    timeout_ms: u64,
    progress: ProgressFn<'_>,
) -> Result<(), BuildError> {
    // debootstrap and apt live in sbin; make sure children find them too.
    let path = std::env::var("PATH").unwrap_or_default();
    let parent = nix::unistd::getpid();
    // SAFETY: `child_setup` is async-signal-safe and allocates nothing (its comment).
    unsafe {
        cmd.pre_exec(move || super::child::child_setup(parent));
    }
    cmd.env("PATH", format!("{path}:/usr/sbin:/sbin"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(io_err(format!("start {step}")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let mut tail: Vec<String> = Vec::new();
        let mut out = stdout.map(|s| BufReader::new(s).lines());
        let mut err = stderr.map(|s| BufReader::new(s).lines());
        loop {
            let line = tokio::select! {
                l = async { out.as_mut()?.next_line().await.ok().flatten() }, if out.is_some() => {
                    if l.is_none() { out = None; }
                    l
                }
                l = async { err.as_mut()?.next_line().await.ok().flatten() }, if err.is_some() => {
                    if l.is_none() { err = None; }
                    l
                }
                else => break,
            };
            if let Some(line) = line {
                progress(BuildProgress::Line(line.clone()));
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        let status = child.wait().await;
        (status, tail)
    };
    match tokio::time::timeout(Duration::from_millis(timeout_ms), run).await {
        Err(_) => Err(BuildError::Timeout { step, timeout_ms }),
        Ok((Err(e), _)) => Err(io_err(format!("wait for {step}"))(e)),
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), tail)) => Err(BuildError::StepFailed {
            step,
            detail: format!("{status}; last output:\n{}", tail.join("\n")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streaming_runner_reports_lines_and_failures() {
        let lines = std::sync::Mutex::new(Vec::new());
        let progress = |p: BuildProgress| {
            if let BuildProgress::Line(l) = p {
                lines.lock().expect("lock").push(l);
            }
        };
        let mut ok = tokio::process::Command::new("sh");
        ok.args(["-c", "echo one; echo two >&2"]);
        run_streaming("ok", ok, 10_000, &progress)
            .await
            .expect("ok");
        let mut got = lines.lock().expect("lock").clone();
        got.sort();
        assert_eq!(got, ["one", "two"]);

        let mut bad = tokio::process::Command::new("sh");
        bad.args(["-c", "echo why; exit 3"]);
        let err = run_streaming("bad", bad, 10_000, &progress)
            .await
            .expect_err("exit 3 fails");
        assert!(err.to_string().contains("why"), "{err}");

        let mut slow = tokio::process::Command::new("sleep");
        slow.arg("5");
        let err = run_streaming("slow", slow, 100, &progress)
            .await
            .expect_err("times out");
        assert!(matches!(err, BuildError::Timeout { step: "slow", .. }));
    }
}
