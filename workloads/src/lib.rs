//! faultline-workloads: what operations a test issues and how.
//!
//! - [`Workload`] names a workload; a [`Generator`] per client task decides requests.
//! - [`Client`] is a target's client; [`RaftKvClient`] speaks raftkv's HTTP API,
//!   [`EtcdClient`] etcd's v3 JSON gateway, [`ConsulClient`] Consul's KV and session API;
//!   each classifies every outcome as `ok`, `fail` or `info`.
//! - [`Runner`] runs one tokio task per logical process at a global rate, and the final
//!   reads; [`Recorder`] streams every event into `history.jsonl` as it happens.

pub mod b64;
pub mod client;
pub mod completion;
pub mod consul;
pub mod etcd;
pub mod generator;
pub mod raftkv;
pub mod rate;
pub mod recorder;
pub mod request;
pub mod runner;
pub mod workload;

pub use client::{indefinite, Client};
pub use completion::{Completion, Lease};
pub use consul::{ConsulClient, ConsulOptions};
pub use etcd::{EtcdClient, EtcdOptions, Fencing};
pub use generator::{Generator, KeySpace};
pub use raftkv::RaftKvClient;
pub use rate::RateLimiter;
pub use recorder::{Counts, CountsSnapshot, Recorder, RecorderError, RecorderHandle};
pub use request::Request;
pub use runner::{Runner, RunnerConfig, RunnerReport};
pub use workload::Workload;
