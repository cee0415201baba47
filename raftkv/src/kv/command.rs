//! Commands in the Raft log and their results.
//!
//! Every command carries `now_ms`, the proposing leader's wall clock. Lease expiry is
//! decided from these timestamps only (never from a replica's own clock), so all replicas
//! agree on whether a lock has expired.

use serde::{Deserialize, Serialize};

/// One state-machine command, as stored in a log entry (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Leader wall clock at proposal time, milliseconds since the Unix epoch.
    pub now_ms: u64,
    pub op: Op,
}

/// The operations that change state. Reads do not go through the log (ReadIndex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Set `key`. With `token`, a fenced write: rejected if a higher token was accepted.
    Put {
        key: String,
        value: String,
        token: Option<u64>,
    },
    Delete {
        key: String,
    },
    /// Set `key` to `to` if it currently equals `from` (`None` = absent).
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
    Acquire {
        name: String,
        owner: String,
        ttl_ms: u64,
        /// Only under `--bug token-reuse`: the token the leader chose from its own memory.
        leader_token: Option<u64>,
    },
    KeepAlive {
        name: String,
        lease_id: u64,
    },
    Release {
        name: String,
        lease_id: u64,
    },
}

/// A successful result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// put / cas.
    Written {
        ok: bool,
    },
    Deleted {
        ok: bool,
        existed: bool,
    },
    Granted {
        token: u64,
        lease_id: u64,
        expires_at_ms: u64,
    },
    Released {
        ok: bool,
    },
}

/// A definite failure decided by the state machine (the command was applied and did nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OpError {
    #[error("cas failed: current value is {}", .current.as_deref().map_or_else(|| "absent".to_string(), |v| format!("{v:?}")))]
    CasFailed { current: Option<String> },
    #[error("stale token {token}: token {accepted} already accepted for this key")]
    StaleToken { token: u64, accepted: u64 },
    #[error("lock held by {owner:?} until {expires_at_ms} ms")]
    LockHeld { owner: String, expires_at_ms: u64 },
    #[error("lease {lease_id} does not hold the lock (expired or released)")]
    NotHeld { lease_id: u64 },
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl OpError {
    /// The `error` kind in HTTP responses.
    pub fn kind(&self) -> &'static str {
        match self {
            OpError::CasFailed { .. } => "cas-failed",
            OpError::StaleToken { .. } => "stale-token",
            OpError::LockHeld { .. } => "lock-held",
            OpError::NotHeld { .. } => "not-held",
            OpError::BadRequest(_) => "bad-request",
        }
    }
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data cannot fail; fall back to an empty vec regardless.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
