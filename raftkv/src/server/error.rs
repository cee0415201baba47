//! The JSON error body every endpoint returns on failure, and how each failure maps to it.
//!
//! `{"error": kind, "message": text, "leader": id?, "leader_addr": addr?, "current": v?}`.
//! Kinds and whether the operation may have happened:
//! definite (did not happen): `not-leader`, `unavailable`, `bad-request`, `cas-failed`,
//! `stale-token`, `lock-held`, `not-held`; indeterminate (may have happened): `timeout`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::kv::OpError;
use crate::node::Failure;
use crate::raft::NodeId;

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
    /// The value a failed CAS found (JSON null when the key is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            message: message.into(),
            leader: None,
            leader_addr: None,
            current: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn not_leader(
        leader: Option<NodeId>,
        leader_addr: Option<String>,
        message: &str,
    ) -> ApiError {
        ApiError {
            leader,
            leader_addr,
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-leader", message)
        }
    }

    pub fn from_op(e: OpError) -> ApiError {
        let status = match e {
            OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        };
        let mut err = ApiError::new(status, e.kind(), e.to_string());
        if let OpError::CasFailed { current } = e {
            err.current = Some(current.map_or(serde_json::Value::Null, serde_json::Value::String));
        }
        err
    }

    /// Maps a node failure; `addr_of` resolves a leader id to its address.
    pub fn from_failure(f: Failure, addr_of: impl Fn(NodeId) -> Option<String>) -> ApiError {
        match f {
            Failure::NotLeader { leader } => ApiError::not_leader(
                leader,
                leader.and_then(&addr_of),
                "this node is not the leader",
            ),
            Failure::Lost { leader } => ApiError::not_leader(
                leader,
                leader.and_then(&addr_of),
                "the proposal was overwritten by a new leader and did not take effect",
            ),
            Failure::Unavailable(m) => ApiError::unavailable(m),
            Failure::Indeterminate(m) => ApiError::timeout(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}
