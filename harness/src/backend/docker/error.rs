//! `DockerError`: everything that can go wrong talking to the Docker daemon, with the
//! operation and its target named, so a failed fault or teardown says what it was doing.

use faultline_nemeses::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The daemon could not be reached at all (no socket, permission denied, old API).
    #[error("cannot reach the Docker daemon: {0}")]
    Unreachable(#[source] bollard::errors::Error),
    /// A daemon call returned an error.
    #[error("docker {op} {target}: {source}")]
    Api {
        op: &'static str,
        target: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A daemon call did not answer in its time budget.
    #[error("docker {op} {target} timed out after {timeout_ms} ms")]
    Timeout {
        op: &'static str,
        target: String,
        timeout_ms: u64,
    },
    /// A command run inside a container exited non-zero.
    #[error("`{command}` in {container} exited with {exit_code}: {output}")]
    ExecFailed {
        container: String,
        command: String,
        exit_code: i64,
        output: String,
    },
    /// No private subnet was free for the run's network.
    #[error("no free private /24 subnet for the run network after {attempts} attempts")]
    NoFreeSubnet { attempts: usize },
    /// The configuration cannot describe a valid cluster.
    #[error("invalid cluster config: {0}")]
    InvalidConfig(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl DockerError {
    /// True when the daemon answered with this HTTP status (e.g. 404 not found, 304 not
    /// modified, 409 conflict): lets callers make operations idempotent.
    pub fn has_status(&self, status: u16) -> bool {
        matches!(
            self,
            DockerError::Api {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } if *status_code == status
        )
    }
}

/// Maps to the backend-neutral error nemeses see; `op` names the cluster operation.
pub(crate) fn to_cluster_error(op: &'static str, target: &str, err: DockerError) -> ClusterError {
    match err {
        DockerError::Timeout { timeout_ms, .. } => ClusterError::Timeout {
            op,
            target: target.to_string(),
            timeout_ms,
        },
        other => ClusterError::Backend {
            op,
            target: target.to_string(),
            source: Box::new(other),
        },
    }
}
