//! The target folders' matrix (`faultline test-all --matrix targets`): etcd through its
//! Python adapter (valid under partition, kill and pause; stale serializable reads found),
//! Redis with Sentinel (lost acknowledged writes found) and ZooKeeper (sync reads valid
//! under partitions and kills; plain reads found stale), on the local backend and in
//! Docker (the cells with partitions of ZooKeeper in Docker only).
//!
//! Each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`), without what it
//! needs: etcd, Redis and ZooKeeper from Debian's packages locally; Docker (and root, for
//! the images) in Docker. The adapters' Python packages come from PyPI into a venv. The
//! two tests run one at a time.

mod support;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_folders_are_judged_as_known_on_the_local_backend() {
    let (Some(_), Some(_), Some(_)) = (
        support::local::etcd_binary(),
        support::local::redis(),
        support::local::zookeeper(),
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    support::matrix::run_targets_matrix("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_folders_are_judged_as_known_in_docker() {
    let Some(_) = support::docker::docker_with_base().await else {
        return;
    };
    let _serial = SERIAL.lock().await;
    support::matrix::run_targets_matrix("docker").await;
}
