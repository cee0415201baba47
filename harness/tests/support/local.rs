//! Local clusters for tests: a node description's cluster in a temporary folder, the
//! programs it needs (etcd on the PATH, libfaketime) as prerequisites, how a `faultline test`
//! child ended, and the node processes a run left behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use faultline::backend::local::{LocalCluster, LocalClusterConfig};
use faultline::backend::NodeSpec;

use super::prereq;

/// `nodes` nodes of `spec` running `program` in a temporary folder (dropping the folder's
/// guard removes it), each accepting connections.
pub async fn cluster(
    nodes: u32,
    spec: NodeSpec,
    program: &Path,
) -> (Arc<LocalCluster>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LocalClusterConfig {
        nodes,
        spec,
        program: program.to_path_buf(),
        root: dir.path().join("nodes"),
        // The tests drive every fault by hand, clocks included.
        clock_faults: true,
    };
    let cluster = LocalCluster::create(&config).await.expect("cluster starts");
    cluster.wait_listening(20_000).await.expect("nodes listen");
    (Arc::new(cluster), dir)
}

/// The `etcd` on the PATH.
pub fn etcd_binary() -> Option<PathBuf> {
    prereq::check(
        prereq::ETCD,
        faultline::backend::installed::find("etcd", "apt-get install etcd-server"),
    )
}

/// Debian's `redis-server` and `redis-sentinel` on the PATH, for `targets/redis-sentinel`.
pub fn redis() -> Option<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["redis-server", "redis-sentinel"]
        .iter()
        .find(|p| faultline::backend::installed::find_on_path(p, &path).is_none())
        .map_or(Ok(()), |p| {
            Err(format!(
                "no {p} on the PATH (apt-get install redis-server redis-sentinel)"
            ))
        });
    prereq::check(prereq::REDIS, found)
}

/// Debian's ZooKeeper (its jar, and a `java` on the PATH), for `targets/zookeeper`.
pub fn zookeeper() -> Option<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = if faultline::backend::installed::find_on_path("java", &path).is_none() {
        Err("no java on the PATH (apt-get install zookeeper)".to_string())
    } else if !Path::new("/usr/share/java/zookeeper.jar").is_file() {
        Err("no /usr/share/java/zookeeper.jar (apt-get install zookeeper)".to_string())
    } else {
        Ok(())
    };
    prereq::check(prereq::ZOOKEEPER, found)
}

/// libfaketime, for clock faults.
pub fn faketime() -> Option<PathBuf> {
    let found = faultline::backend::local::faketime::find_libfaketime()
        .map_err(|why| format!("clock faults need libfaketime ({why})"));
    prereq::check(prereq::FAKETIME, found)
}

/// How one `faultline test` child ended, and what it wrote.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// `<latest>/results.json`, when there is one.
    pub results: Option<serde_json::Value>,
    /// The run folder `latest` points to.
    pub run_dir: Option<PathBuf>,
}

impl Run {
    /// Runs `faultline` as `command` says (arguments, environment, working directory),
    /// killing it past `timeout`; `latest` is the results folder's `latest` link.
    pub async fn wait(
        mut command: tokio::process::Command,
        latest: &Path,
        timeout: Duration,
    ) -> Run {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start faultline");
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .expect("faultline test exceeded its time limit")
            .expect("faultline output");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            results: std::fs::read_to_string(latest.join("results.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok()),
            run_dir: std::fs::canonicalize(latest).ok(),
        }
    }

    pub fn describe(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(30).collect();
        format!(
            "exit {:?}\nstdout: {}\nstderr (tail, newest first):\n{}",
            self.code,
            self.stdout,
            tail.join("\n")
        )
    }
}

/// Processes whose command line mentions `program` and `dir` (a run's folder).
pub fn processes_under(program: &str, dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(program) && cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}
