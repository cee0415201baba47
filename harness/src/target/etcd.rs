//! etcd as a target: Debian's `etcd-server` (3.4) from the node base image, one member
//! per node on the private network (clients on 2379, peers on 2380), spoken to through
//! its v3 JSON gateway by `EtcdClient`. On the local backend, the `etcd` on the PATH runs
//! as child processes instead ([`find_local_binary`], `LocalProgram::etcd`).
//!
//! etcd is a Go program: it reads the clock through the vDSO, not libc, so libfaketime
//! cannot skew it and clock faults are refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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

/// The executable named `etcd` on `path` (a PATH value), if any.
pub fn find_on_path(path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join("etcd"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `etcd` binary the local backend runs: the first on the PATH. The error says what
/// is missing and how to install it.
pub fn find_local_binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_on_path(&path).ok_or_else(|| {
        format!(
            "--backend local --target etcd runs the etcd binary on the PATH, and there is \
             none (PATH={}); install it (Debian or Ubuntu: apt-get install etcd-server) or \
             use --backend docker",
            path.to_string_lossy()
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_is_found_only_where_an_executable_is() {
        let dir = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let etcd = dir.path().join("etcd");
        std::fs::write(&etcd, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([empty.path(), dir.path()]).unwrap();
        // Not executable yet: not an etcd to run.
        assert_eq!(find_on_path(&path), None);
        std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path(&path), Some(etcd));
        assert_eq!(find_on_path(empty.path().as_os_str()), None);
    }
}
