//! The bundled raftkv server as a target: its binary is built from this workspace (or given
//! with `--raftkv`), its client is `RaftKvClient`, and every fault kind applies (it is a
//! glibc program, so libfaketime can skew its clock). This file holds every raftkv flag the
//! harness sets.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_nemeses::FaultKind;
use faultline_workloads::{Client, Completion, RaftKvClient, Request};

use super::{ClientContext, NodeParams, TargetClient, TargetDriver, TargetError, TargetOptions};
use crate::backend::{NodeSpec, Peering, Program, Readiness, WalFiles};

/// The port raftkv listens on, for clients and peers alike, where a node has an address of
/// its own.
pub const RAFTKV_PORT: u16 = 8080;
/// raftkv's own default wait for a request's commit (`--request-timeout-ms`).
pub const RAFTKV_REQUEST_TIMEOUT_MS: u64 = 2_000;

pub struct RaftKv;

/// raftkv's options for a run, the same on every backend:
/// - planted bugs (`--bug`);
/// - it waits for a request's commit as long as the client waits for its answer
///   (`--op-timeout`; never less than raftkv's own 2 s), so a write that commits late is
///   acknowledged rather than cut off by the server first;
/// - the `disk` nemesis crashes nodes through its file layer that loses unsynced writes;
/// - `figure8` needs one log entry per append message, the granularity at which the
///   paper's Figure 8 happens: with bigger batches a new leader's no-op rides in the same
///   message as the old entries, and the interleaving cannot occur.
pub fn run_args(params: &NodeParams<'_>) -> Vec<String> {
    let mut args = Vec::new();
    if !params.bugs.is_empty() {
        args.extend(["--bug".to_string(), params.bugs.join(",")]);
    }
    args.extend([
        "--request-timeout-ms".to_string(),
        params
            .op_timeout_ms
            .max(RAFTKV_REQUEST_TIMEOUT_MS)
            .to_string(),
    ]);
    if params.nemesis.contains(&FaultKind::Disk) {
        args.push("--lose-unsynced".to_string());
    }
    if params.nemesis.contains(&FaultKind::Figure8) {
        args.extend(["--max-append-entries".to_string(), "1".to_string()]);
    }
    args
}

#[async_trait]
impl TargetDriver for RaftKv {
    fn name(&self) -> &'static str {
        "raftkv"
    }

    fn node_spec(&self, params: &NodeParams<'_>) -> Result<NodeSpec, TargetError> {
        let mut args: Vec<String> = [
            "--id",
            "{id}",
            "--peers",
            "{peers}",
            "--data-dir",
            "{data_dir}",
            "--listen",
            "{listen}",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.extend(run_args(params));
        Ok(NodeSpec {
            target: self.name().to_string(),
            program: Program::Bundled {
                name: "raftkv",
                path: params.bundled_binary.map(|p| p.to_path_buf()),
            },
            args,
            // Set, not inherited: a harness run with RUST_LOG=debug would flood node logs.
            env: vec![("RUST_LOG".into(), "info".into())],
            client_port: RAFTKV_PORT,
            peering: Peering::PerLink,
            peer_entry: "{id}={addr}".into(),
            readiness: Readiness::ClientPort,
            log_files: Vec::new(),
            wal: Some(WalFiles {
                dir: "wal".into(),
                prefix: "wal-".into(),
                suffix: ".log".into(),
            }),
            refused: Vec::new(),
            setup: Vec::new(),
            folder: None,
            packages: Vec::new(),
        })
    }

    async fn client(
        &self,
        addrs: &[String],
        _options: &TargetOptions,
        _context: &ClientContext,
    ) -> Result<Arc<dyn TargetClient>, TargetError> {
        let client = RaftKvClient::new(addrs).map_err(|e| TargetError::Client {
            target: "raftkv",
            reason: e.to_string(),
        })?;
        Ok(Arc::new(client))
    }
}

#[async_trait]
impl TargetClient for RaftKvClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        Client::call(self, process, request, timeout).await
    }

    async fn leader(&self) -> Option<usize> {
        RaftKvClient::leader(self).await
    }

    async fn commit_index(&self, node: usize) -> Option<u64> {
        RaftKvClient::commit_index(self, node).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NodeValues;
    use faultline_nemeses::NodeId;

    fn params<'a>(nemesis: &'a [FaultKind], bugs: &'a [String], op_ms: u64) -> NodeParams<'a> {
        NodeParams {
            nemesis,
            op_timeout_ms: op_ms,
            bugs,
            bundled_binary: None,
        }
    }

    #[test]
    fn raftkv_gets_what_the_faults_and_timeouts_need() {
        let p = params(&[FaultKind::Partition], &[], 2_000);
        assert_eq!(run_args(&p), ["--request-timeout-ms", "2000"]);
        let p = params(&[FaultKind::Disk, FaultKind::Figure8], &[], 10_000);
        assert_eq!(
            run_args(&p),
            [
                "--request-timeout-ms",
                "10000",
                "--lose-unsynced",
                "--max-append-entries",
                "1"
            ]
        );
        // A shorter client timeout leaves raftkv's own.
        assert_eq!(run_args(&params(&[], &[], 500))[1], "2000");
        let bugs = ["stale-read".to_string(), "lost-ack".to_string()];
        assert_eq!(
            run_args(&params(&[], &bugs, 2_000))[..2],
            ["--bug", "stale-read,lost-ack"]
        );
    }

    #[test]
    fn the_command_is_rendered_per_node() {
        let bugs = ["stale-read".to_string()];
        let spec = RaftKv.node_spec(&params(&[], &bugs, 2_000)).unwrap();
        spec.check().unwrap();
        let values = NodeValues {
            id: NodeId(2),
            name: "n2".into(),
            host: "10.213.1.12".into(),
            port: RAFTKV_PORT,
            listen: "0.0.0.0:8080".into(),
            data_dir: "/data/node".into(),
            peers: vec![
                (NodeId(1), "n1".into(), "10.213.1.11:8080".into()),
                (NodeId(2), "n2".into(), "10.213.1.12:8080".into()),
            ],
            peer_listen: String::new(),
            peer_advertise: String::new(),
            target_dir: String::new(),
        };
        assert_eq!(spec.program.name(), "raftkv");
        assert_eq!(
            spec.render_args(&values),
            [
                "--id",
                "2",
                "--peers",
                "1=10.213.1.11:8080,2=10.213.1.12:8080",
                "--data-dir",
                "/data/node",
                "--listen",
                "0.0.0.0:8080",
                "--bug",
                "stale-read",
                "--request-timeout-ms",
                "2000"
            ]
        );
        assert!(spec.clock_faults());
    }
}
