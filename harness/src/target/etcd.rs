//! etcd as a target: Debian's `etcd-server` (3.4) from the node base image, one member
//! per node on the private network (clients on 2379, peers on 2380), spoken to through
//! its v3 JSON gateway by `EtcdClient`.
//!
//! etcd is a Go program: it reads the clock through the vDSO, not libc, so libfaketime
//! cannot skew it and clock faults are refused.

use faultline_nemeses::FaultKind;
use faultline_workloads::{EtcdClient, EtcdOptions};

use super::{fencing, TargetClient, TargetDriver, TargetError};
use crate::docker::NodeProgram;
use crate::run::config::TestConfig;

/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const ETCD_PEER_PORT: u16 = 2380;

/// The node command. The backend renders `{peers}` as `1=ip:port,2=ip:port,...` (client
/// port); etcd wants `n1=http://ip:2380,...`, so a shell line rewrites it and then
/// `exec`s etcd (which stays pid 1, so kill and pause reach it directly). A restarted
/// member finds its data directory and ignores the initial-cluster flags.
pub fn program() -> NodeProgram {
    let script = format!(
        "set -e; ic=$(echo '{{peers}}' | tr ',' '\\n' \
         | sed -E 's|^([0-9]+)=([^:]+):[0-9]+$|n\\1=http://\\2:{ETCD_PEER_PORT}|' \
         | paste -sd, -); \
         exec etcd --name n{{id}} --data-dir {{data_dir}}/etcd \
         --listen-client-urls http://0.0.0.0:{{port}} \
         --advertise-client-urls http://{{ip}}:{{port}} \
         --listen-peer-urls http://0.0.0.0:{ETCD_PEER_PORT} \
         --initial-advertise-peer-urls http://{{ip}}:{ETCD_PEER_PORT} \
         --initial-cluster \"$ic\" --initial-cluster-state new \
         --initial-cluster-token faultline"
    );
    let mut p = NodeProgram::raftkv(ETCD_CLIENT_PORT, None);
    p.args = vec!["sh".into(), "-c".into(), script];
    p.faketime = false;
    p
}

pub struct Etcd;

impl TargetDriver for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn node_program(&self, _config: &TestConfig) -> Result<NodeProgram, TargetError> {
        Ok(program())
    }

    fn client(&self, addrs: &[String], config: &TestConfig) -> Result<TargetClient, TargetError> {
        let options = EtcdOptions {
            serializable: config.target_options.serializable,
            fencing: fencing(&config.target_options),
        };
        EtcdClient::new(addrs, options)
            .map(TargetClient::Etcd)
            .map_err(|e| TargetError::Client {
                target: "etcd",
                reason: e.to_string(),
            })
    }

    fn refuses(&self, kind: FaultKind) -> Option<String> {
        (kind == FaultKind::Clock).then(|| {
            "etcd is a Go program and reads the clock through the vDSO, not libc, so \
             libfaketime cannot skew it (Unsupported)"
                .to_string()
        })
    }
}
