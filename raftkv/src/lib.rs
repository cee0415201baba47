//! raftkv: the bundled Raft KV server.

pub mod kv;
pub mod model;
pub mod node;
pub mod raft;
pub mod server;
pub mod sim;
pub mod storage;
pub mod transport;
