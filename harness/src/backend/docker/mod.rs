//! The Docker backend: a private network per run and N node containers driven through
//! bollard, implementing the nemeses' `Cluster` trait. Every daemon call has a time limit;
//! every object is labelled with its run so teardown (explicit, on drop, on signal) and the
//! next run's stale cleanup find it.

pub mod api;
pub mod cleanup;
pub mod cluster;
pub mod error;
pub mod guard;
pub mod image;
pub mod packet;
pub mod subnet;

pub use api::{DockerApi, DEFAULT_CALL_TIMEOUT_MS};
pub use cleanup::{cleanup_stale_runs, teardown_run, Removed};
pub use cluster::{new_run_id, DockerCluster, DockerClusterConfig, Member, PeerLinks};
pub use error::DockerError;
pub use guard::{TeardownGuard, TeardownHandle};
