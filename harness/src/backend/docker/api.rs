//! `DockerApi`: the one connection to the daemon, and the rule that every call through it has
//! a time limit. Also runs commands inside containers (`exec`), collecting bounded output.

use std::future::Future;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;

use super::error::DockerError;

/// Default budget for one daemon call. Container start/kill/exec take well under a second on
/// a healthy daemon; 30 s leaves room for a loaded CI machine without hanging a run forever.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;

/// Output kept from one exec: enough for an iptables error, bounded so a chatty command
/// cannot grow the harness's memory.
const EXEC_OUTPUT_LIMIT_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct DockerApi {
    docker: Docker,
    call_timeout_ms: u64,
}

impl DockerApi {
    /// Connects with the environment's defaults (DOCKER_HOST or the local socket) and agrees
    /// on an API version the daemon supports (older daemons reject newer clients).
    pub async fn connect(call_timeout_ms: u64) -> Result<Self, DockerError> {
        let docker = Docker::connect_with_defaults().map_err(DockerError::Unreachable)?;
        // bollard's own HTTP timeout is a backstop; ours (below) is the one that names the op.
        let docker = docker.with_timeout(Duration::from_millis(call_timeout_ms.max(1_000) * 2));
        let negotiated = tokio::time::timeout(
            Duration::from_millis(call_timeout_ms),
            docker.negotiate_version(),
        )
        .await
        .map_err(|_| DockerError::Timeout {
            op: "version",
            target: "daemon".into(),
            timeout_ms: call_timeout_ms,
        })?
        .map_err(DockerError::Unreachable)?;
        // A ping proves the socket works, not just that it exists.
        let api = Self {
            docker: negotiated,
            call_timeout_ms,
        };
        api.call("ping", "daemon", api.docker.ping()).await?;
        Ok(api)
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn call_timeout_ms(&self) -> u64 {
        self.call_timeout_ms
    }

    /// Runs one daemon call under the default time limit.
    pub async fn call<T>(
        &self,
        op: &'static str,
        target: &str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DockerError> {
        self.call_with_timeout(op, target, self.call_timeout_ms, fut)
            .await
    }

    pub async fn call_with_timeout<T>(
        &self,
        op: &'static str,
        target: &str,
        timeout_ms: u64,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DockerError> {
        match tokio::time::timeout(Duration::from_millis(timeout_ms), fut).await {
            Err(_) => Err(DockerError::Timeout {
                op,
                target: target.to_string(),
                timeout_ms,
            }),
            Ok(Err(source)) => Err(DockerError::Api {
                op,
                target: target.to_string(),
                source,
            }),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Runs `cmd` in a running container and returns its combined output; a non-zero exit
    /// is an error carrying the output.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> Result<String, DockerError> {
        let timeout_ms = self.call_timeout_ms;
        let command = cmd.join(" ");
        let run = async {
            let created = self
                .docker
                .create_exec(
                    container,
                    CreateExecOptions {
                        cmd: Some(cmd.to_vec()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await?;
            let mut output = Vec::new();
            if let StartExecResults::Attached {
                output: mut out, ..
            } = self
                .docker
                .start_exec(&created.id, None::<StartExecOptions>)
                .await?
            {
                while let Some(chunk) = out.next().await {
                    let bytes = chunk?.into_bytes();
                    let room = EXEC_OUTPUT_LIMIT_BYTES.saturating_sub(output.len());
                    output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            let inspect = self.docker.inspect_exec(&created.id).await?;
            Ok((inspect.exit_code, output))
        };
        let (exit_code, output) = self
            .call_with_timeout("exec", container, timeout_ms, run)
            .await?;
        let output = String::from_utf8_lossy(&output).trim().to_string();
        match exit_code {
            Some(0) => Ok(output),
            code => Err(DockerError::ExecFailed {
                container: container.to_string(),
                command,
                exit_code: code.unwrap_or(-1),
                output,
            }),
        }
    }
}
