//! Peer transport: Raft messages between nodes as batched HTTP POSTs of JSON.
//!
//! One sender task per peer with a bounded queue. The node thread enqueues without
//! blocking (a full queue drops the message, which Raft tolerates). The task sends what
//! has queued up as one batch per request, one request in flight, each with a timeout, so
//! a dead or partitioned peer costs at most one timeout per batch and never blocks the node.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::node::Outbox;
use crate::raft::{Message, NodeId};

/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_CAPACITY: usize = 4096;
/// Messages per HTTP request.
const MAX_BATCH_MESSAGES: usize = 512;
/// Request timeout for one batch. Shorter than an election timeout would be ideal, but a
/// large InstallSnapshot may need longer; messages are idempotent, so a retry is harmless.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Pause after a failed send so a dead peer does not make us spin.
const FAILURE_BACKOFF: Duration = Duration::from_millis(50);

/// The path peers POST message batches to.
pub const RAFT_PATH: &str = "/raft/messages";

/// Outbox backed by one tokio sender task per peer.
pub struct PeerTransport {
    queues: BTreeMap<NodeId, mpsc::Sender<Message>>,
}

impl PeerTransport {
    /// Spawns the sender tasks on the current tokio runtime. `peers` excludes this node.
    pub fn start(peers: &BTreeMap<NodeId, String>, client: reqwest::Client) -> PeerTransport {
        let mut queues = BTreeMap::new();
        for (&id, addr) in peers {
            let (tx, rx) = mpsc::channel(PEER_QUEUE_CAPACITY);
            let url = format!("http://{addr}{RAFT_PATH}");
            tokio::spawn(send_loop(id, url, rx, client.clone()));
            queues.insert(id, tx);
        }
        PeerTransport { queues }
    }
}

impl Outbox for PeerTransport {
    fn send(&mut self, msg: Message) {
        match self.queues.get(&msg.to) {
            Some(q) => {
                if q.try_send(msg).is_err() {
                    tracing::debug!("peer queue full or closed; message dropped");
                }
            }
            None => tracing::warn!(to = msg.to, "message to unknown peer dropped"),
        }
    }
}

async fn send_loop(
    peer: NodeId,
    url: String,
    mut rx: mpsc::Receiver<Message>,
    client: reqwest::Client,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_MESSAGES);
    let mut failures: u64 = 0;
    while rx.recv_many(&mut batch, MAX_BATCH_MESSAGES).await > 0 {
        let result = client
            .post(&url)
            .timeout(PEER_REQUEST_TIMEOUT)
            .json(&batch)
            .send()
            .await;
        batch.clear();
        match result {
            Ok(resp) if resp.status().is_success() => failures = 0,
            Ok(resp) => {
                failures += 1;
                tracing::debug!(peer, status = %resp.status(), "peer rejected batch");
                tokio::time::sleep(FAILURE_BACKOFF).await;
            }
            Err(e) => {
                failures += 1;
                // Log the first failure of a streak loudly, the rest quietly.
                if failures == 1 {
                    tracing::info!(peer, error = %e, "peer unreachable");
                } else {
                    tracing::debug!(peer, error = %e, "peer unreachable");
                }
                tokio::time::sleep(FAILURE_BACKOFF).await;
            }
        }
    }
}
