//! faultline: a Jepsen-style test harness. The binary's subcommands live in [`cli`], one
//! module each; run orchestration, cluster backends, the results store and the report are
//! their own modules beside it.

pub mod cli;
pub mod docker;
pub mod image;
pub mod image_cmd;
pub mod local;
pub mod matrix;
pub mod report;
pub mod run;
pub mod serve;
pub mod target;
