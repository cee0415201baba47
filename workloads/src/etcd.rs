//! `EtcdClient`: the [`Client`] for etcd 3.4+ through its v3 JSON gateway (`/v3/kv/range`,
//! `/v3/kv/put`, `/v3/kv/txn`, `/v3/lease/grant`, `/v3/lease/revoke`); keys and values are
//! base64 on the wire, 64-bit integers are JSON strings, and fields equal to their zero
//! value are left out (a failed txn has no `succeeded`, an empty range no `kvs`).
//!
//! How the workloads map onto etcd:
//! - `read`: a range of the key, linearizable by default, `serializable` (served from the
//!   member's local state, possibly stale) when [`EtcdOptions::serializable`] is set;
//! - `write`: a put; `cas [from to]`: a txn comparing the key's value with `from`;
//! - `acquire`: a lease of the requested TTL, then a txn that creates the lock key
//!   (`__lock/<name>`) under that lease only if it does not exist. The fencing token is
//!   the key's create revision (the txn's revision), which only grows;
//! - `fenced-write [token v]`: with [`Fencing::Checked`], a txn that puts `v` only if
//!   the lock key's create revision is still `token` (the holder's lease is alive and
//!   nobody re-acquired); with [`Fencing::None`], a plain put, trusting the client's
//!   belief that it holds the lock (what most etcd lock users do);
//! - `release`: a txn deleting the lock key only if its create revision is the token, then
//!   a best-effort revoke of the lease. An `ok` release therefore proves the lock was held
//!   until then.
//!
//! Each logical process talks to one member (`process % nodes`), as in Jepsen; a member
//! that refuses the connection is skipped for the next one (the request never left).
//!
//! Classification (see [`crate::client`]): a 2xx is `ok` (or `fail` for a cas or fenced
//! write whose comparison failed: the txn changed nothing); gRPC errors that are answered
//! before anything is proposed (`InvalidArgument`, `NotFound`, `ResourceExhausted`,
//! `FailedPrecondition`, ...) are `fail`; `Unavailable`/`DeadlineExceeded` (`request timed
//! out`, `leader changed`, `no leader`) and lost connections are `info` for anything that
//! writes, `fail` for reads.

use std::time::Duration;

use faultline_checker::Value;
use serde_json::json;
use tokio::time::Instant;

use crate::b64;
use crate::client::{indefinite, probe_all, probe_json, try_nodes, Attempt, Client};
use crate::completion::{Completion, Lease};
use crate::request::Request;

/// Members tried per request when connections are refused.
pub const MAX_HOPS: usize = 3;
/// Time allowed to open a TCP connection; a member that does not accept within it is
/// treated as down (the request never left, so it can be retried elsewhere).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Per-member timeout of a status probe.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// Prefix of lock keys, so locks and the registers they protect never collide.
pub const LOCK_PREFIX: &str = "__lock/";
/// etcd rounds lease TTLs to whole seconds; this is the shortest we ask for.
const MIN_LEASE_TTL_S: u64 = 1;
/// Time given to the best-effort lease revoke after a refused acquire or a release.
const REVOKE_TIMEOUT: Duration = Duration::from_millis(500);

/// How `fenced-write` protects the resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fencing {
    /// The store checks the write against the lock (etcd: a txn comparing the lock key's
    /// create revision with the token; Consul: a txn with `check-session`).
    #[default]
    Checked,
    /// A plain put: the lock alone is trusted to exclude other writers.
    None,
}

/// Knobs of the etcd client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Serve reads from the member's local state (`serializable: true`): fast, and stale
    /// on a member cut off from the leader.
    pub serializable: bool,
    pub fencing: Fencing,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("an etcd client needs at least one endpoint")]
    NoNodes,
    #[error("building the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// What one gateway call came to.
#[derive(Debug)]
enum Reply {
    /// 2xx with its JSON body.
    Ok(serde_json::Value),
    /// A gRPC error that etcd answers before proposing anything.
    Refused(String),
    /// An outcome we cannot know (timeout, lost connection, `Unavailable`).
    Unknown(String),
    /// The connection could not be opened: nothing was sent.
    Unreachable(String),
}

/// An HTTP client for an etcd cluster's JSON gateway.
#[derive(Clone, Debug)]
pub struct EtcdClient {
    /// Base URLs, `http://host:port`, in member order.
    nodes: Vec<String>,
    http: reqwest::Client,
    options: EtcdOptions,
}

/// `host:port` or a URL, to a base URL without a trailing slash.
fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The lock key of lock `name`.
pub fn lock_key(name: &str) -> String {
    format!("{LOCK_PREFIX}{name}")
}

/// A 64-bit integer field, which the gateway writes as a string.
fn int_field(v: &serde_json::Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_i64(),
    }
}

/// The header revision of a reply: for a txn that put a new key, its create revision.
pub fn header_revision(body: &serde_json::Value) -> Option<i64> {
    int_field(body.get("header")?, "revision")
}

/// Whether a txn's comparisons held (`succeeded` is omitted when false).
pub fn txn_succeeded(body: &serde_json::Value) -> bool {
    body.get("succeeded")
        .and_then(|s| s.as_bool())
        .unwrap_or(false)
}

/// The value of a range reply's first key: `Null` when absent, an integer when it is
/// one (we only write decimal integers), else the text, so corruption stays visible.
pub fn range_value(body: &serde_json::Value) -> Value {
    let Some(kv) = body
        .get("kvs")
        .and_then(|k| k.as_array())
        .and_then(|k| k.first())
    else {
        return Value::Null;
    };
    let raw = kv.get("value").and_then(|v| v.as_str()).unwrap_or("");
    match b64::decode(raw) {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            text.parse::<i64>()
                .map(Value::Int)
                .unwrap_or(Value::Str(text))
        }
        None => Value::Str(format!("undecodable base64: {raw}")),
    }
}

/// Classifies a non-2xx gateway answer. The gateway maps gRPC codes to HTTP statuses and
/// puts the etcd error text in `error` (3.4) or `message`.
fn classify_error(status: u16, body: &serde_json::Value) -> Reply {
    let text = body
        .get("error")
        .or_else(|| body.get("message"))
        .and_then(|e| e.as_str())
        .unwrap_or("")
        .to_string();
    let code = body.get("code").and_then(|c| c.as_i64());
    let what = if text.is_empty() {
        format!("http-{status}")
    } else {
        text.trim_start_matches("etcdserver: ").replace(' ', "-")
    };
    // gRPC codes: 4 DeadlineExceeded, 14 Unavailable, 2 Unknown, 13 Internal, 1 Canceled.
    let ambiguous = matches!(code, Some(1 | 2 | 4 | 13 | 14))
        || (code.is_none() && (status >= 500 || status == 408));
    if ambiguous {
        Reply::Unknown(what)
    } else {
        Reply::Refused(what)
    }
}

impl EtcdClient {
    /// `nodes` are `host:port` client addresses (or base URLs), in member order.
    pub fn new<S: AsRef<str>>(nodes: &[S], options: EtcdOptions) -> Result<EtcdClient, EtcdError> {
        if nodes.is_empty() {
            return Err(EtcdError::NoNodes);
        }
        let http = reqwest::Client::builder()
            // Never send test traffic through a proxy configured for the internet.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(EtcdClient {
            nodes: nodes.iter().map(|n| base_url(n.as_ref())).collect(),
            http,
            options,
        })
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn options(&self) -> EtcdOptions {
        self.options
    }

    /// One POST to `base` + `path` with `body`, within `timeout`.
    async fn post(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Reply {
        let sent = self
            .http
            .post(format!("{base}{path}"))
            .json(body)
            .timeout(timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Reply::Unreachable(format!("connect: {e}")),
            Err(e) if e.is_timeout() => return Reply::Unknown("timeout".into()),
            Err(e) => return Reply::Unknown(format!("connection-lost: {e}")),
        };
        let status = resp.status();
        let body: serde_json::Value = match resp.bytes().await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
            Err(e) if e.is_timeout() => return Reply::Unknown("timeout".into()),
            Err(e) => return Reply::Unknown(format!("connection-lost: {e}")),
        };
        if status.is_success() {
            Reply::Ok(body)
        } else {
            classify_error(status.as_u16(), &body)
        }
    }

    /// Asks the member at `base` for `/v3/maintenance/status`; the future owns what it
    /// needs, so [`EtcdClient::leader`] can ask every member at once.
    fn status_of(
        &self,
        base: &str,
    ) -> impl std::future::Future<Output = Option<serde_json::Value>> + Send + 'static {
        probe_json(
            self.http
                .post(format!("{base}/v3/maintenance/status"))
                .json(&json!({}))
                .timeout(STATUS_TIMEOUT),
        )
    }

    /// Asks every member for `/v3/maintenance/status` and returns the index of the member
    /// most of them name as leader. `None` if no member knows one.
    pub async fn leader(&self) -> Option<usize> {
        leader_from_statuses(&probe_all(&self.nodes, |n| self.status_of(n)).await)
    }

    /// The commit index member `i` reports (its status's `raftIndex`); `None` if it does
    /// not answer.
    pub async fn commit_index(&self, i: usize) -> Option<u64> {
        let status = self.status_of(self.nodes.get(i)?).await?;
        uint64_field(status.get("raftIndex"))
    }

    fn lease_ttl_s(ttl_ms: u64) -> u64 {
        ttl_ms.div_ceil(1000).max(MIN_LEASE_TTL_S)
    }

    /// Revokes a lease without waiting for the outcome to matter: it only shortens how long
    /// an abandoned lease lingers.
    async fn revoke(&self, base: &str, lease_id: i64) {
        let reply = self
            .post(
                base,
                "/v3/lease/revoke",
                &json!({ "ID": lease_id.to_string() }),
                REVOKE_TIMEOUT,
            )
            .await;
        if !matches!(reply, Reply::Ok(_)) {
            tracing::debug!(lease_id, ?reply, "lease revoke did not complete");
        }
    }

    /// One attempt of `request` at `base`. `Unreachable` means nothing was sent.
    async fn attempt(&self, base: &str, request: &Request, deadline: Instant) -> Attempt {
        let left = || deadline.saturating_duration_since(Instant::now());
        match request {
            Request::Read { key } => {
                let mut body = json!({ "key": b64::encode(key) });
                if self.options.serializable {
                    body["serializable"] = json!(true);
                }
                match self.post(base, "/v3/kv/range", &body, left()).await {
                    Reply::Ok(b) => Attempt::Done(Completion::ok(range_value(&b))),
                    other => from_reply(request, other),
                }
            }
            Request::Write { key, value } => {
                let body =
                    json!({ "key": b64::encode(key), "value": b64::encode(value.to_string()) });
                match self.post(base, "/v3/kv/put", &body, left()).await {
                    Reply::Ok(_) => Attempt::Done(Completion::ok(request.invoke_value())),
                    other => from_reply(request, other),
                }
            }
            Request::Cas { key, from, to } => {
                let body = json!({
                    "compare": [{
                        "result": "EQUAL", "target": "VALUE",
                        "key": b64::encode(key), "value": b64::encode(from.to_string()),
                    }],
                    "success": [{ "request_put": {
                        "key": b64::encode(key), "value": b64::encode(to.to_string()),
                    }}],
                });
                self.txn(base, request, &body, "cas-failed", left()).await
            }
            Request::FencedWrite { key, token, value } => {
                let put =
                    json!({ "key": b64::encode(key), "value": b64::encode(value.to_string()) });
                if self.options.fencing == Fencing::None {
                    return match self.post(base, "/v3/kv/put", &put, left()).await {
                        Reply::Ok(_) => Attempt::Done(Completion::ok(request.invoke_value())),
                        other => from_reply(request, other),
                    };
                }
                let body = json!({
                    "compare": [{
                        "result": "EQUAL", "target": "CREATE",
                        "key": b64::encode(lock_key(key)), "create_revision": token.to_string(),
                    }],
                    "success": [{ "request_put": put }],
                });
                self.txn(base, request, &body, "stale-token", left()).await
            }
            Request::Acquire {
                lock,
                owner,
                ttl_ms,
            } => {
                self.acquire(base, request, lock, owner, *ttl_ms, deadline)
                    .await
            }
            Request::Release {
                lock,
                token,
                lease_id,
            } => {
                let key = b64::encode(lock_key(lock));
                let body = json!({
                    "compare": [{
                        "result": "EQUAL", "target": "CREATE",
                        "key": key, "create_revision": token.to_string(),
                    }],
                    "success": [{ "request_delete_range": { "key": key } }],
                });
                let done = self.txn(base, request, &body, "not-held", left()).await;
                self.revoke(base, *lease_id).await;
                done
            }
        }
    }

    /// A txn whose `ok` needs `succeeded`; a failed comparison is a `fail` with `refusal`.
    async fn txn(
        &self,
        base: &str,
        request: &Request,
        body: &serde_json::Value,
        refusal: &str,
        timeout: Duration,
    ) -> Attempt {
        match self.post(base, "/v3/kv/txn", body, timeout).await {
            Reply::Ok(b) if txn_succeeded(&b) => {
                Attempt::Done(Completion::ok(request.invoke_value()))
            }
            Reply::Ok(_) => Attempt::Done(Completion::fail(request.invoke_value(), refusal)),
            other => from_reply(request, other),
        }
    }

    async fn acquire(
        &self,
        base: &str,
        request: &Request,
        lock: &str,
        owner: &str,
        ttl_ms: u64,
        deadline: Instant,
    ) -> Attempt {
        let left = || deadline.saturating_duration_since(Instant::now());
        let grant = json!({ "TTL": Self::lease_ttl_s(ttl_ms).to_string() });
        let lease_id = match self.post(base, "/v3/lease/grant", &grant, left()).await {
            Reply::Ok(b) => match int_field(&b, "ID") {
                Some(id) => id,
                None => return Attempt::Done(Completion::fail(Value::Null, "grant-without-id")),
            },
            Reply::Unreachable(why) => return Attempt::Unreachable(why),
            // A lease alone holds no lock: whatever happened to the grant, no lock was
            // taken, so this is a definite `fail`.
            Reply::Refused(why) | Reply::Unknown(why) => {
                return Attempt::Done(Completion::fail(Value::Null, format!("grant: {why}")))
            }
        };
        let key = b64::encode(lock_key(lock));
        let body = json!({
            "compare": [{
                "result": "EQUAL", "target": "CREATE", "key": key, "create_revision": "0",
            }],
            "success": [{ "request_put": {
                "key": key, "value": b64::encode(owner), "lease": lease_id.to_string(),
            }}],
        });
        match self.post(base, "/v3/kv/txn", &body, left()).await {
            Reply::Ok(b) if txn_succeeded(&b) => match header_revision(&b) {
                Some(token) => {
                    let mut c = Completion::ok(Value::Int(token));
                    c.lease = Some(Lease {
                        lock: lock.to_string(),
                        token,
                        lease_id,
                    });
                    Attempt::Done(c)
                }
                None => Attempt::Done(Completion::info(Value::Null, "acquire-without-revision")),
            },
            Reply::Ok(_) => {
                self.revoke(base, lease_id).await;
                Attempt::Done(Completion::fail(Value::Null, "lock-held"))
            }
            Reply::Refused(why) => {
                self.revoke(base, lease_id).await;
                Attempt::Done(Completion::fail(Value::Null, why))
            }
            // The lock may be ours, for at most the lease's TTL.
            Reply::Unknown(why) | Reply::Unreachable(why) => {
                Attempt::Done(indefinite(request, why))
            }
        }
    }
}

/// The leader's index from each member's status (`None` for a member that did not
/// answer): members name the leader by member id, and each status carries its own member
/// id in its header.
pub fn leader_from_statuses(statuses: &[Option<serde_json::Value>]) -> Option<usize> {
    let ids: Vec<Option<u64>> = statuses
        .iter()
        .map(|s| uint64_field(s.as_ref()?.get("header")?.get("member_id")))
        .collect();
    let mut votes = vec![0usize; statuses.len()];
    for s in statuses.iter().flatten() {
        let Some(leader) = uint64_field(s.get("leader")) else {
            continue;
        };
        if let Some(i) = ids.iter().position(|id| *id == Some(leader)) {
            votes[i] += 1;
        }
    }
    let (best, count) = votes.iter().enumerate().max_by_key(|(_, c)| **c)?;
    (*count > 0).then_some(best)
}

/// A uint64 field of a gateway reply: written as a string (member ids often exceed
/// i64), or as a number.
fn uint64_field(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_u64(),
    }
}

/// The attempt a reply other than `ok` comes to.
fn from_reply(request: &Request, reply: Reply) -> Attempt {
    match reply {
        Reply::Ok(_) => unreachable!("callers handle ok replies"),
        Reply::Refused(why) => Attempt::Done(Completion::fail(request.invoke_value(), why)),
        Reply::Unknown(why) => Attempt::Done(indefinite(request, why)),
        Reply::Unreachable(why) => Attempt::Unreachable(why),
    }
}

impl Client for EtcdClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        let deadline = Instant::now() + timeout;
        try_nodes(&self.nodes, process, request, deadline, MAX_HOPS, |base| {
            self.attempt(base, request, deadline)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_replies_parse() {
        let range = json!({"header": {"revision": "7"}, "kvs": [{"key": "cjA=", "create_revision": "2", "value": "NDI="}], "count": "1"});
        assert_eq!(range_value(&range), Value::Int(42));
        assert_eq!(
            range_value(&json!({"header": {"revision": "7"}})),
            Value::Null
        );
        assert_eq!(
            range_value(&json!({"kvs": [{"value": "eA=="}]})),
            Value::Str("x".into())
        );
        assert_eq!(header_revision(&range), Some(7));
        assert!(!txn_succeeded(&json!({"header": {}})));
        assert!(txn_succeeded(&json!({"succeeded": true})));
        assert_eq!(EtcdClient::lease_ttl_s(2_500), 3);
        assert_eq!(EtcdClient::lease_ttl_s(0), 1);
    }

    #[test]
    fn errors_are_definite_only_when_etcd_says_so() {
        let timeout = json!({"error": "etcdserver: request timed out", "code": 14});
        assert!(
            matches!(classify_error(503, &timeout), Reply::Unknown(w) if w == "request-timed-out")
        );
        let missing = json!({"error": "etcdserver: requested lease not found", "code": 5});
        assert!(matches!(classify_error(404, &missing), Reply::Refused(_)));
        assert!(matches!(
            classify_error(502, &json!(null)),
            Reply::Unknown(_)
        ));
        assert!(matches!(
            classify_error(400, &json!(null)),
            Reply::Refused(_)
        ));
    }

    #[test]
    fn leader_is_named_by_member_id() {
        let s =
            |me: &str, leader: &str| Some(json!({"header": {"member_id": me}, "leader": leader}));
        let statuses = [s("11", "22"), s("22", "22"), None];
        assert_eq!(leader_from_statuses(&statuses), Some(1));
        assert_eq!(leader_from_statuses(&[None, None]), None);
        assert_eq!(leader_from_statuses(&[s("11", "0")]), None);
        // Ids past i64, as etcd's often are.
        let big = "17237436991929493444";
        assert_eq!(leader_from_statuses(&[s("1", big), s(big, big)]), Some(1));
    }

    #[test]
    fn uint64_fields_are_strings_or_numbers() {
        let status = json!({"raftIndex": "18446744073709551615", "raftTerm": 3, "leader": "x"});
        assert_eq!(uint64_field(status.get("raftIndex")), Some(u64::MAX));
        assert_eq!(uint64_field(status.get("raftTerm")), Some(3));
        assert_eq!(uint64_field(status.get("leader")), None);
        assert_eq!(uint64_field(status.get("raftAppliedIndex")), None);
    }
}
