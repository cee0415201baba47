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
