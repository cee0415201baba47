//! Consul as a target, through its HTTP API (`ConsulClient`). No Consul binary can be
//! installed from the package registries faultline builds node images from, so faultline
//! cannot start Consul nodes: the target is only usable against a running cluster
//! (`--endpoints`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_workloads::{Client, Completion, ConsulClient, ConsulOptions, Request};

use super::{ClientContext, NodeParams, TargetClient, TargetDriver, TargetError, TargetOptions};
use crate::backend::NodeSpec;

pub struct Consul;

#[async_trait]
impl TargetDriver for Consul {
    fn name(&self) -> &'static str {
        "consul"
    }

    fn node_spec(&self, _params: &NodeParams<'_>) -> Result<NodeSpec, TargetError> {
        Err(TargetError::NotInstallable {
            target: "consul",
            reason: "the node image has no Consul binary (Debian's packages have none); \
                     test a running cluster with --endpoints",
        })
    }

    async fn client(
        &self,
        addrs: &[String],
        options: &TargetOptions,
        _context: &ClientContext,
    ) -> Result<Arc<dyn TargetClient>, TargetError> {
        let client = ConsulClient::new(
            addrs,
            ConsulOptions {
                stale_reads: options.serializable,
                fencing: options.fencing(),
            },
        )
        .map_err(|e| TargetError::Client {
            target: "consul",
            reason: e.to_string(),
        })?;
        Ok(Arc::new(client))
    }
}

/// Consul's status API is not asked for a commit index; faults that use one fall back to
/// timing.
#[async_trait]
impl TargetClient for ConsulClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        Client::call(self, process, request, timeout).await
    }

    async fn leader(&self) -> Option<usize> {
        ConsulClient::leader(self).await
    }
}
