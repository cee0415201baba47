//! `Client`: the interface every target's client implements. A client performs one
//! [`Request`] within a deadline and classifies the result into a [`Completion`].
//!
//! The classification rules every implementation must follow (they decide whether the
//! checker's verdict can be trusted):
//! - `ok` only when the target confirmed the operation took effect;
//! - `fail` only when it definitely did not (refused before applying anything, or the
//!   request never left this machine);
//! - otherwise `info`: a timeout or a connection lost after the request was sent, or a
//!   retry of a state-changing request whose earlier attempt may have been applied.
//!   A read-only request may be `fail` instead of `info`, as it changes nothing.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::completion::Completion;
use crate::request::Request;

/// A client for one target system. Shared by all client tasks of a run.
pub trait Client: Send + Sync + 'static {
    /// Performs `request` on behalf of logical process `process` (a client implementation
    /// binds a process to a node, as Jepsen does), giving up after `timeout`.
    /// Must return within `timeout` plus a small constant.
    fn call(
        &self,
        process: u64,
        request: &Request,
        timeout: Duration,
    ) -> impl Future<Output = Completion> + Send;
}

/// An outcome a client cannot know: `info`, or `fail` for a read (it changed nothing).
pub fn indefinite(request: &Request, error: impl Into<String>) -> Completion {
    if request.is_read_only() {
        Completion::fail(request.invoke_value(), error)
    } else {
        Completion::info(request.invoke_value(), error)
    }
}

/// Sends `req` (which carries its own timeout) and gives the JSON body of a successful
/// answer; `None` on any error or non-success status. The future owns the request, so
/// [`probe_all`] can spawn one per node.
pub(crate) fn probe_json(
    req: reqwest::RequestBuilder,
) -> impl Future<Output = Option<serde_json::Value>> + Send + 'static {
    let sent = req.send();
    async move {
        let resp = sent.await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }
}

/// Runs `probe` on every node at once, so a partitioned node costs one timeout, not one
/// each; the answers are in node order.
pub(crate) async fn probe_all<F, Fut>(nodes: &[String], probe: F) -> Vec<Option<serde_json::Value>>
where
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Option<serde_json::Value>> + Send + 'static,
{
    let handles: Vec<_> = nodes.iter().map(|n| tokio::spawn(probe(n))).collect();
    let mut answers = Vec::with_capacity(handles.len());
    for h in handles {
        answers.push(h.await.ok().flatten());
    }
    answers
}

/// What one attempt at one node came to.
pub(crate) enum Attempt {
    Done(Completion),
    /// The connection could not be opened: nothing was sent, so another node may be tried.
    Unreachable(String),
}

/// Tries `request` at the node bound to `process` (`process % nodes`, as Jepsen binds
/// them), moving to the next node only when one was unreachable, at most `max_hops` nodes
/// and never past `deadline`. When no node could be reached the request never left, so it
/// definitely did not happen: `fail` with `unavailable`.
pub(crate) async fn try_nodes<'a, F, Fut>(
    nodes: &'a [String],
    process: u64,
    request: &Request,
    deadline: Instant,
    max_hops: usize,
    mut attempt: F,
) -> Completion
where
    F: FnMut(&'a str) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let n = nodes.len();
    if n == 0 {
        return Completion::fail(request.invoke_value(), "no-nodes");
    }
    let mut node = usize::try_from(process).unwrap_or(0) % n;
    for _hop in 0..max_hops.min(n) {
        if Instant::now() >= deadline {
            break;
        }
        match attempt(&nodes[node]).await {
            Attempt::Done(c) => return c,
            Attempt::Unreachable(why) => {
                tracing::debug!(node = %nodes[node], %why, "node unreachable");
                node = (node + 1) % n;
            }
        }
    }
    Completion::fail(request.invoke_value(), "unavailable")
}
