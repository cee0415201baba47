//! The HTTP server: the client JSON API (`/kv`, `/lock`, `/status`) and the peer endpoint
//! (`/raft/messages`), both on axum. Handlers only translate HTTP to node inputs and back;
//! the node thread decides everything. Requests that need the leader are forwarded to it
//! (one hop, with a timeout) or redirected with 307 when forwarding is off.

pub mod error;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::kv::Op;
use crate::node::{Input, NodeHandle};
use crate::raft::{Message, NodeId};
use crate::transport::RAFT_PATH;
pub use error::ApiError;

/// Marks a request forwarded by a follower, so the leader never forwards it again.
pub const FORWARDED_HEADER: &str = "x-raftkv-forwarded";
/// Largest peer batch (an InstallSnapshot carries the whole state).
const MAX_PEER_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Largest client body.
const MAX_CLIENT_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    pub node: NodeHandle,
    pub id: NodeId,
    /// Address (host:port) of every node including this one; used to reach the leader.
    pub addrs: Arc<BTreeMap<NodeId, String>>,
    pub client: reqwest::Client,
    /// How long a client request may wait for commit / read confirmation / forwarding.
    pub request_timeout: Duration,
    /// Forward to the leader (default) or answer 307 with its address.
    pub forward: bool,
}

impl AppState {
    fn addr_of(&self, id: NodeId) -> Option<String> {
        self.addrs.get(&id).cloned()
    }
}

/// Builds the router with every route.
pub fn router(state: AppState) -> Router {
    let peer = Router::new()
        .route(RAFT_PATH, post(raft_messages))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY_BYTES));
    Router::new()
        .route("/kv/{key}", get(get_key).put(put_key).delete(delete_key))
        .route("/kv/{key}/cas", post(cas_key))
        .route("/lock/{name}/acquire", post(lock_acquire))
        .route("/lock/{name}/keepalive", post(lock_keepalive))
        .route("/lock/{name}/release", post(lock_release))
        .route("/status", get(status))
        .layer(DefaultBodyLimit::max(MAX_CLIENT_BODY_BYTES))
        .merge(peer)
        .with_state(state)
}

/// The parts of a request needed to forward it, taken as a handler's last extractor.
struct Original {
    method: Method,
    uri: Uri,
    body: Bytes,
    forwarded: bool,
}

impl<S: Send + Sync> FromRequest<S> for Original {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Original, Response> {
        let method = req.method().clone();
        let uri = req.uri().clone();
        let forwarded = req.headers().contains_key(FORWARDED_HEADER);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Original {
            method,
            uri,
            body,
            forwarded,
        })
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
    token: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    from: Option<String>,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcquireBody {
    ttl_ms: u64,
    owner: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseBody {
    lease_id: u64,
}

#[derive(Deserialize)]
struct ReadQuery {
    /// Accepted for compatibility; the read mode is a server flag (`--lease-reads`).
    #[allow(dead_code)]
    lease: Option<bool>,
}

async fn put_key(State(st): State<AppState>, Path(key): Path<String>, orig: Original) -> Response {
    propose_body(&st, orig, |b: PutBody| Op::Put {
        key,
        value: b.value,
        token: b.token,
    })
    .await
}

async fn delete_key(
    State(st): State<AppState>,
    Path(key): Path<String>,
    orig: Original,
) -> Response {
    propose(&st, Op::Delete { key }, orig).await
}

async fn cas_key(State(st): State<AppState>, Path(key): Path<String>, orig: Original) -> Response {
    propose_body(&st, orig, |b: CasBody| Op::Cas {
        key,
        from: b.from,
        to: b.to,
    })
    .await
}

async fn lock_acquire(
    State(st): State<AppState>,
    Path(name): Path<String>,
    orig: Original,
) -> Response {
    propose_body(&st, orig, |b: AcquireBody| Op::Acquire {
        name,
        owner: b.owner,
        ttl_ms: b.ttl_ms,
        leader_token: None,
    })
    .await
}

async fn lock_keepalive(
    State(st): State<AppState>,
    Path(name): Path<String>,
    orig: Original,
) -> Response {
    propose_body(&st, orig, |b: LeaseBody| Op::KeepAlive {
        name,
        lease_id: b.lease_id,
    })
    .await
}

async fn lock_release(
    State(st): State<AppState>,
    Path(name): Path<String>,
    orig: Original,
) -> Response {
    propose_body(&st, orig, |b: LeaseBody| Op::Release {
        name,
        lease_id: b.lease_id,
    })
    .await
}

async fn get_key(
    State(st): State<AppState>,
    Path(key): Path<String>,
    Query(_q): Query<ReadQuery>,
    orig: Original,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if let Err(f) = st.node.send(Input::Read {
        key: key.clone(),
        reply: tx,
    }) {
        return ApiError::from_failure(f, |id| st.addr_of(id)).into_response();
    }
    match tokio::time::timeout(st.request_timeout, rx).await {
        Ok(Ok(Ok(value))) => {
            Json(serde_json::json!({ "key": key, "value": value })).into_response()
        }
        Ok(Ok(Err(f))) => not_leader_or(&st, f, orig).await,
        Ok(Err(_)) => ApiError::unavailable("node stopped").into_response(),
        Err(_) => ApiError::timeout("read not confirmed in time").into_response(),
    }
}

/// Parses the JSON body as `B`, then proposes the op `make` builds from it; a body that
/// does not parse is a 400 and nothing is proposed.
async fn propose_body<B: DeserializeOwned>(
    st: &AppState,
    orig: Original,
    make: impl FnOnce(B) -> Op,
) -> Response {
    match parse::<B>(&orig.body) {
        Ok(b) => propose(st, make(b), orig).await,
        Err(e) => e.into_response(),
    }
}

/// Sends a write to the node and waits for it to apply.
async fn propose(st: &AppState, op: Op, orig: Original) -> Response {
    let (tx, rx) = oneshot::channel();
    if let Err(f) = st.node.send(Input::Propose { op, reply: tx }) {
        return ApiError::from_failure(f, |id| st.addr_of(id)).into_response();
    }
    match tokio::time::timeout(st.request_timeout, rx).await {
        Ok(Ok(Ok(Ok(reply)))) => Json(reply).into_response(),
        Ok(Ok(Ok(Err(op_err)))) => ApiError::from_op(op_err).into_response(),
        Ok(Ok(Err(f))) => not_leader_or(st, f, orig).await,
        // The node thread dropped the request: it may have been proposed.
        Ok(Err(_)) => {
            ApiError::timeout("node stopped while the request was pending").into_response()
        }
        Err(_) => {
            ApiError::timeout("not committed in time; it may still take effect").into_response()
        }
    }
}

/// Forwards (or redirects) a request this node could not serve because it is not leader;
/// other failures become their error response.
async fn not_leader_or(st: &AppState, f: crate::node::Failure, orig: Original) -> Response {
    let leader = match &f {
        crate::node::Failure::NotLeader { leader: Some(l) } if *l != st.id && !orig.forwarded => *l,
        _ => return ApiError::from_failure(f, |id| st.addr_of(id)).into_response(),
    };
    let Some(addr) = st.addr_of(leader) else {
        return ApiError::from_failure(f, |id| st.addr_of(id)).into_response();
    };
    let path = orig.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{addr}{path}");
    if !st.forward {
        let mut resp = ApiError::not_leader(Some(leader), Some(addr), "redirecting to the leader")
            .into_response();
        *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        if let Ok(v) = url.parse() {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    let req = st
        .client
        .request(orig.method.clone(), &url)
        .timeout(st.request_timeout)
        .header(FORWARDED_HEADER, st.id.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(orig.body);
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(body) => {
                    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
                }
                Err(e) => {
                    ApiError::timeout(format!("forwarded to leader {leader}; response lost: {e}"))
                        .into_response()
                }
            }
        }
        // Never connected: the leader did not see the request.
        Err(e) if e.is_connect() => {
            ApiError::unavailable(format!("cannot reach leader {leader}: {e}")).into_response()
        }
        Err(e) => ApiError::timeout(format!("forwarded to leader {leader}: {e}")).into_response(),
    }
}

async fn status(State(st): State<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if let Err(f) = st.node.send(Input::Status { reply: tx }) {
        return ApiError::from_failure(f, |id| st.addr_of(id)).into_response();
    }
    match tokio::time::timeout(st.request_timeout, rx).await {
        Ok(Ok(s)) => {
            let leader_addr = s.leader.and_then(|l| st.addr_of(l));
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("leader_addr".into(), serde_json::json!(leader_addr));
                // The node's own wall clock, so a harness can see a clock fault take hold.
                let wall_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                obj.insert("wall_clock_ms".into(), serde_json::json!(wall_ms));
            }
            Json(v).into_response()
        }
        Ok(Err(_)) => ApiError::unavailable("node stopped").into_response(),
        Err(_) => ApiError::timeout("node did not answer in time").into_response(),
    }
}

async fn raft_messages(State(st): State<AppState>, body: Bytes) -> Response {
    let msgs: Vec<Message> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return ApiError::bad_request(format!("bad message batch: {e}")).into_response(),
    };
    match st.node.send(Input::Peer(msgs)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(f) => ApiError::from_failure(f, |id| st.addr_of(id)).into_response(),
    }
}
