//! The bundled raftkv server as a target: its binary is copied into the node image, its
//! client is `RaftKvClient`, and every fault kind applies (it is a glibc program, so
//! libfaketime can skew its clock).

use faultline_workloads::RaftKvClient;

use super::{TargetClient, TargetDriver, TargetError};
use crate::docker::NodeProgram;
use crate::run::config::TestConfig;

pub struct RaftKv;

impl TargetDriver for RaftKv {
    fn name(&self) -> &'static str {
        "raftkv"
    }

    fn node_program(&self, config: &TestConfig) -> Result<NodeProgram, TargetError> {
        Ok(crate::run::docker::raftkv_program(config))
    }

    fn client(&self, addrs: &[String], _config: &TestConfig) -> Result<TargetClient, TargetError> {
        RaftKvClient::new(addrs)
            .map(TargetClient::Raftkv)
            .map_err(|e| TargetError::Client {
                target: "raftkv",
                reason: e.to_string(),
            })
    }
}
