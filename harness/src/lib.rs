//! faultline: a Jepsen-style test harness. Dependencies run one way:
//! [`cli`] (one module per subcommand) -> [`run`] (one test, end to end) and [`matrix`]
//! (the detection matrix) -> [`target`] (what each system under test is) -> [`backend`]
//! (where nodes run: Docker, local processes, or a cluster faultline did not start).
//! [`results`] is the schema runs and checks write; [`report`] and [`serve`] read it.

pub mod backend;
pub mod cli;
pub mod matrix;
pub mod report;
pub mod results;
pub mod run;
pub mod serve;
pub mod target;
