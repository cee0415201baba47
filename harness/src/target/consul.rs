//! Consul as a target, through its HTTP API (`ConsulClient`). No Consul binary can be
//! installed on this machine, so faultline cannot start Consul nodes: the target is only
//! usable against a running cluster (`--endpoints`).

use std::sync::Arc;

use faultline_workloads::{ConsulClient, ConsulOptions};

use super::{fencing, TargetClient, TargetDriver, TargetError};
use crate::docker::NodeProgram;
use crate::run::config::TestConfig;

pub struct Consul;

impl TargetDriver for Consul {
    fn name(&self) -> &'static str {
        "consul"
    }

    fn node_program(&self, _config: &TestConfig) -> Result<NodeProgram, TargetError> {
        Err(TargetError::NotInstallable {
            target: "consul",
            reason: "the node image has no Consul binary (none can be installed here); \
                     test a running cluster with --endpoints",
        })
    }

    fn client(&self, addrs: &[String], config: &TestConfig) -> Result<TargetClient, TargetError> {
        let options = ConsulOptions {
            stale_reads: config.target_options.serializable,
            fencing: fencing(&config.target_options),
        };
        ConsulClient::new(addrs, options)
            .map(|c| TargetClient::Consul(Arc::new(c)))
            .map_err(|e| TargetError::Client {
                target: "consul",
                reason: e.to_string(),
            })
    }
}
