//! `ConsulClient`: the [`Client`] for Consul's KV store and sessions over its HTTP API
//! (`/v1/kv`, `/v1/session`, `/v1/txn`, `/v1/status/leader`), written from Consul's HTTP
//! API documentation. No Consul binary can be installed on this machine, so this client
//! has only been tested for parsing, against documented responses
//! (`workloads/tests/fixtures/consul/`), never against a live cluster.
//!
//! How the workloads map onto Consul:
//! - `read`: `GET /v1/kv/<key>?consistent` (a leader round trip), or `?stale` with
//!   [`ConsulOptions::stale_reads`] (any server answers from its own state); a 404 is nil;
//! - `write`: `PUT /v1/kv/<key>` with the decimal value as the body;
//! - `cas [from to]`: a consistent read; if the value is `from`, `PUT ?cas=<ModifyIndex>`,
//!   which Consul applies only if the key was not modified since: together a value cas;
//! - `acquire`: a session with a TTL (`PUT /v1/session/create`, behaviour `release`, no
//!   lock delay), `PUT /v1/kv/__lock/<name>?acquire=<session>`, then a consistent read of
//!   the lock key: the token is its `LockIndex` (it counts acquisitions and, as the key is
//!   released rather than deleted with the session, only grows);
//! - `fenced-write [token v]`: with [`Fencing::Checked`], a txn of `check-session` on the
//!   lock key with the holder's session and `set` of the resource: Consul applies the set
//!   only while that session holds the lock; with [`Fencing::None`], a plain put;
//! - `release`: `PUT ?release=<session>` (true only if the session held it), then the
//!   session is destroyed.
//!
//! Classification: `true`/2xx is `ok`; `false` from a cas, acquire or release and a
//! rolled-back txn (409) are `fail`; a 4xx other than 409 is `fail`; a 5xx (`No cluster
//! leader`, `rpc error ...`) or a lost connection is `info` for writes, `fail` for reads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use faultline_checker::Value;
use serde_json::json;
use tokio::time::Instant;

use crate::b64;
use crate::client::{indefinite, try_nodes, Attempt, Client};
use crate::completion::{Completion, Lease};
use crate::etcd::Fencing;
use crate::request::Request;

/// Members tried per request when connections are refused.
pub const MAX_HOPS: usize = 3;
/// Time allowed to open a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Prefix of lock keys, so locks and the registers they protect never collide.
pub const LOCK_PREFIX: &str = "__lock/";
/// Consul refuses session TTLs under 10 s.
pub const MIN_SESSION_TTL_S: u64 = 10;
/// Sessions the client remembers at once (one per held lock; bounded against leaks).
const MAX_SESSIONS: usize = 4_096;

/// Knobs of the Consul client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsulOptions {
    /// `?stale` reads instead of `?consistent`.
    pub stale_reads: bool,
    pub fencing: Fencing,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    #[error("a Consul client needs at least one agent address")]
    NoNodes,
    #[error("building the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// One KV entry as `GET /v1/kv/<key>` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    /// Decoded value; `None` for a key without one (`"Value": null`).
    pub value: Option<Vec<u8>>,
    pub modify_index: u64,
    pub lock_index: u64,
    pub session: Option<String>,
}

/// The first entry of a `GET /v1/kv/<key>` body (a JSON array).
pub fn parse_kv_entry(body: &serde_json::Value) -> Option<KvEntry> {
    let e = body.as_array()?.first()?;
    let value = match e.get("Value") {
        Some(serde_json::Value::String(s)) => Some(b64::decode(s)?),
        _ => None,
    };
    Some(KvEntry {
        key: e.get("Key")?.as_str()?.to_string(),
        value,
        modify_index: e.get("ModifyIndex")?.as_u64()?,
        lock_index: e.get("LockIndex").and_then(|l| l.as_u64()).unwrap_or(0),
        session: e
            .get("Session")
            .and_then(|s| s.as_str())
            .map(str::to_string),
    })
}

/// The history value of an entry: an integer if it is one, else its text.
pub fn entry_value(entry: Option<&KvEntry>) -> Value {
    match entry.and_then(|e| e.value.as_ref()) {
        None => Value::Null,
        Some(bytes) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            text.parse::<i64>()
                .map(Value::Int)
                .unwrap_or(Value::Str(text))
        }
    }
}

/// The session id of a `PUT /v1/session/create` body (`{"ID": "..."}`).
pub fn parse_session_id(body: &serde_json::Value) -> Option<String> {
    Some(body.get("ID")?.as_str()?.to_string())
}

/// The host part of `/v1/status/leader`'s answer (`"10.0.0.2:8300"`, the server's RPC
/// address), or `None` when there is no leader (`""`).
pub fn parse_leader_host(body: &serde_json::Value) -> Option<String> {
    let addr = body.as_str()?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    (!host.is_empty()).then(|| host.trim_matches(['[', ']']).to_string())
}

/// Whether a txn answer committed: 200 with `Results`, no `Errors`.
pub fn txn_committed(status: u16, body: &serde_json::Value) -> bool {
    status == 200 && body.get("Errors").is_none_or(|e| e.is_null())
}

/// What one HTTP call came to.
#[derive(Debug)]
enum Reply {
    Ok(u16, serde_json::Value),
    Refused(String),
    Unknown(String),
    Unreachable(String),
}

fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Percent-encodes each path segment of a key (keeping `/`).
fn key_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn lock_key(name: &str) -> String {
    format!("{LOCK_PREFIX}{name}")
}

/// An HTTP client for a Consul cluster's agents.
#[derive(Debug)]
pub struct ConsulClient {
    nodes: Vec<String>,
    http: reqwest::Client,
    options: ConsulOptions,
    /// Session of each held lock, by (lock, token): requests carry the token, Consul's
    /// lock operations need the session.
    sessions: Mutex<HashMap<(String, i64), String>>,
}

impl ConsulClient {
    pub fn new<S: AsRef<str>>(
        nodes: &[S],
        options: ConsulOptions,
    ) -> Result<ConsulClient, ConsulError> {
        if nodes.is_empty() {
            return Err(ConsulError::NoNodes);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(ConsulClient {
            nodes: nodes.iter().map(|n| base_url(n.as_ref())).collect(),
            http,
            options,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The index of the agent whose host is the leader's (by `/v1/status/leader` of the
    /// first agent that answers).
    pub async fn leader(&self) -> Option<usize> {
        for n in &self.nodes {
            let Ok(resp) = self
                .http
                .get(format!("{n}/v1/status/leader"))
                .timeout(Duration::from_millis(500))
                .send()
                .await
            else {
                continue;
            };
            let Ok(body) = resp.json::<serde_json::Value>().await else {
                continue;
            };
            let host = parse_leader_host(&body)?;
            return self.nodes.iter().position(|n| {
                let rest = n.split_once("://").map_or(n.as_str(), |(_, r)| r);
                rest.rsplit_once(':').map_or(rest, |(h, _)| h) == host
            });
        }
        None
    }

    async fn send(&self, req: reqwest::RequestBuilder, timeout: Duration) -> Reply {
        let resp = match req.timeout(timeout).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Reply::Unreachable(format!("connect: {e}")),
            Err(e) if e.is_timeout() => return Reply::Unknown("timeout".into()),
            Err(e) => return Reply::Unknown(format!("connection-lost: {e}")),
        };
        let status = resp.status().as_u16();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Reply::Unknown("timeout".into()),
            Err(e) => return Reply::Unknown(format!("connection-lost: {e}")),
        };
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        match status {
            200..=299 | 404 | 409 => Reply::Ok(status, body),
            400..=499 => Reply::Refused(format!("http-{status}")),
            _ => {
                let text = String::from_utf8_lossy(&bytes);
                let text = text.trim();
                Reply::Unknown(if text.is_empty() {
                    format!("http-{status}")
                } else {
                    text.chars().take(120).collect()
                })
            }
        }
    }

    async fn get_entry(
        &self,
        base: &str,
        key: &str,
        stale: bool,
        timeout: Duration,
    ) -> Result<Option<KvEntry>, Reply> {
        let mode = if stale { "stale" } else { "consistent" };
        let url = format!("{base}/v1/kv/{}?{mode}", key_path(key));
        match self.send(self.http.get(url), timeout).await {
            Reply::Ok(404, _) => Ok(None),
            Reply::Ok(200, body) => match parse_kv_entry(&body) {
                Some(e) => Ok(Some(e)),
                None => Err(Reply::Unknown("unparsable-kv-entry".into())),
            },
            Reply::Ok(s, _) => Err(Reply::Refused(format!("http-{s}"))),
            other => Err(other),
        }
    }

    async fn put_bool(&self, url: String, body: String, timeout: Duration) -> Reply {
        self.send(self.http.put(url).body(body), timeout).await
    }

    fn remember(&self, lock: &str, token: i64, session: String) {
        if let Ok(mut s) = self.sessions.lock() {
            if s.len() < MAX_SESSIONS {
                s.insert((lock.to_string(), token), session);
            }
        }
    }

    fn session_of(&self, lock: &str, token: i64) -> Option<String> {
        self.sessions
            .lock()
            .ok()?
            .get(&(lock.to_string(), token))
            .cloned()
    }

    fn forget(&self, lock: &str, token: i64) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&(lock.to_string(), token));
        }
    }

    async fn destroy_session(&self, base: &str, session: &str) {
        let url = format!("{base}/v1/session/destroy/{session}");
        let _ = self
            .send(self.http.put(url), Duration::from_millis(500))
            .await;
    }

    async fn attempt(&self, base: &str, request: &Request, deadline: Instant) -> Attempt {
        let left = || deadline.saturating_duration_since(Instant::now());
        let done = Attempt::Done;
        let reply_to = |r: Reply| from_reply(request, r);
        match request {
            Request::Read { key } => {
                match self
                    .get_entry(base, key, self.options.stale_reads, left())
                    .await
                {
                    Ok(e) => done(Completion::ok(entry_value(e.as_ref()))),
                    Err(r) => reply_to(r),
                }
            }
            Request::Write { key, value } => {
                let url = format!("{base}/v1/kv/{}", key_path(key));
                match self.put_bool(url, value.to_string(), left()).await {
                    Reply::Ok(200, b) if b.as_bool() == Some(true) => {
                        done(Completion::ok(request.invoke_value()))
                    }
                    Reply::Ok(s, _) => reply_to(Reply::Unknown(format!("http-{s}"))),
                    other => reply_to(other),
                }
            }
            Request::Cas { key, from, to } => {
                let entry = match self.get_entry(base, key, false, left()).await {
                    Ok(e) => e,
                    // The read changed nothing: whatever happened, the cas did not.
                    Err(Reply::Unreachable(w)) => return Attempt::Unreachable(w),
                    Err(Reply::Refused(w) | Reply::Unknown(w)) => {
                        return done(Completion::fail(request.invoke_value(), w))
                    }
                    Err(Reply::Ok(s, _)) => {
                        return done(Completion::fail(
                            request.invoke_value(),
                            format!("http-{s}"),
                        ))
                    }
                };
                let Some(entry) = entry.filter(|e| entry_value(Some(e)) == Value::Int(*from))
                else {
                    return done(Completion::fail(request.invoke_value(), "cas-failed"));
                };
                let url = format!("{base}/v1/kv/{}?cas={}", key_path(key), entry.modify_index);
                match self.put_bool(url, to.to_string(), left()).await {
                    Reply::Ok(200, b) => match b.as_bool() {
                        Some(true) => done(Completion::ok(request.invoke_value())),
                        Some(false) => done(Completion::fail(request.invoke_value(), "cas-failed")),
                        None => reply_to(Reply::Unknown("unparsable-cas-answer".into())),
                    },
                    Reply::Ok(s, _) => reply_to(Reply::Unknown(format!("http-{s}"))),
                    other => reply_to(other),
                }
            }
            Request::FencedWrite { key, token, value } => {
                let set = json!({"KV": {"Verb": "set", "Key": key, "Value": b64::encode(value.to_string())}});
                let ops = match (self.options.fencing, self.session_of(key, *token)) {
                    (Fencing::None, _) => vec![set],
                    (Fencing::Checked, Some(session)) => vec![
                        json!({"KV": {"Verb": "check-session", "Key": lock_key(key), "Session": session}}),
                        set,
                    ],
                    // We never held this token (or forgot it): the write cannot be fenced.
                    (Fencing::Checked, None) => {
                        return done(Completion::fail(request.invoke_value(), "stale-token"))
                    }
                };
                let url = format!("{base}/v1/txn");
                match self.send(self.http.put(url).json(&ops), left()).await {
                    Reply::Ok(s, b) if txn_committed(s, &b) => {
                        done(Completion::ok(request.invoke_value()))
                    }
                    Reply::Ok(409, _) => {
                        done(Completion::fail(request.invoke_value(), "stale-token"))
                    }
                    Reply::Ok(s, _) => reply_to(Reply::Unknown(format!("http-{s}"))),
                    other => reply_to(other),
                }
            }
            Request::Acquire {
                lock,
                owner,
                ttl_ms,
            } => {
                self.acquire(base, request, lock, owner, *ttl_ms, deadline)
                    .await
            }
            Request::Release { lock, token, .. } => {
                let Some(session) = self.session_of(lock, *token) else {
                    return done(Completion::fail(request.invoke_value(), "not-held"));
                };
                let url = format!(
                    "{base}/v1/kv/{}?release={session}",
                    key_path(&lock_key(lock))
                );
                let out = match self.put_bool(url, String::new(), left()).await {
                    Reply::Ok(200, b) => match b.as_bool() {
                        Some(true) => done(Completion::ok(request.invoke_value())),
                        Some(false) => done(Completion::fail(request.invoke_value(), "not-held")),
                        None => reply_to(Reply::Unknown("unparsable-release-answer".into())),
                    },
                    Reply::Ok(s, _) => reply_to(Reply::Unknown(format!("http-{s}"))),
                    other => reply_to(other),
                };
                self.forget(lock, *token);
                self.destroy_session(base, &session).await;
                out
            }
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
        let ttl_s = ttl_ms.div_ceil(1000).max(MIN_SESSION_TTL_S);
        let create = json!({"Name": owner, "TTL": format!("{ttl_s}s"), "Behavior": "release", "LockDelay": "0s"});
        let url = format!("{base}/v1/session/create");
        let session = match self.send(self.http.put(url).json(&create), left()).await {
            Reply::Ok(200, b) => match parse_session_id(&b) {
                Some(id) => id,
                None => return Attempt::Done(Completion::fail(Value::Null, "session-without-id")),
            },
            Reply::Unreachable(w) => return Attempt::Unreachable(w),
            // A session alone holds no lock.
            Reply::Ok(s, _) => {
                return Attempt::Done(Completion::fail(Value::Null, format!("session: http-{s}")))
            }
            Reply::Refused(w) | Reply::Unknown(w) => {
                return Attempt::Done(Completion::fail(Value::Null, format!("session: {w}")))
            }
        };
        let key = lock_key(lock);
        let url = format!("{base}/v1/kv/{}?acquire={session}", key_path(&key));
        match self.put_bool(url, owner.to_string(), left()).await {
            Reply::Ok(200, b) if b.as_bool() == Some(true) => {}
            Reply::Ok(200, b) if b.as_bool() == Some(false) => {
                self.destroy_session(base, &session).await;
                return Attempt::Done(Completion::fail(Value::Null, "lock-held"));
            }
            Reply::Refused(w) => {
                self.destroy_session(base, &session).await;
                return Attempt::Done(Completion::fail(Value::Null, w));
            }
            Reply::Ok(s, _) => return Attempt::Done(indefinite(request, format!("http-{s}"))),
            Reply::Unknown(w) | Reply::Unreachable(w) => {
                return Attempt::Done(indefinite(request, w))
            }
        }
        // Acquired; the token is the LockIndex, read back while the session holds the key.
        match self.get_entry(base, &key, false, left()).await {
            Ok(Some(e)) if e.session.as_deref() == Some(session.as_str()) => {
                let token = i64::try_from(e.lock_index).unwrap_or(i64::MAX);
                self.remember(lock, token, session);
                let mut c = Completion::ok(Value::Int(token));
                c.lease = Some(Lease {
                    lock: lock.to_string(),
                    token,
                    lease_id: token,
                });
                Attempt::Done(c)
            }
            // Held, then lost before we could learn the token: the grant happened.
            _ => Attempt::Done(Completion::info(Value::Null, "acquire-without-token")),
        }
    }
}

/// The attempt a reply other than `ok` comes to.
fn from_reply(request: &Request, reply: Reply) -> Attempt {
    match reply {
        Reply::Refused(w) => Attempt::Done(Completion::fail(request.invoke_value(), w)),
        Reply::Unknown(w) => Attempt::Done(indefinite(request, w)),
        Reply::Unreachable(w) => Attempt::Unreachable(w),
        Reply::Ok(s, _) => Attempt::Done(indefinite(request, format!("http-{s}"))),
    }
}

impl Client for ConsulClient {
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
    fn keys_keep_slashes_and_escape_the_rest() {
        assert_eq!(key_path("__lock/l0"), "__lock/l0");
        assert_eq!(key_path("a b?"), "a%20b%3F");
    }

    #[test]
    fn leader_host_and_txn_outcome() {
        assert_eq!(
            parse_leader_host(&json!("10.1.2.3:8300")).as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(parse_leader_host(&json!("")), None);
        assert!(txn_committed(200, &json!({"Results": [], "Errors": null})));
        assert!(!txn_committed(
            409,
            &json!({"Errors": [{"OpIndex": 0, "What": "x"}]})
        ));
    }
}
