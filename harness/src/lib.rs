//! faultline: a Jepsen-style test harness. Dependencies run one way:
//! [`cli`] (one module per subcommand) -> [`run`] (one test, end to end) and [`matrix`]
//! (the detection matrix) -> [`target`] (what each system under test is) -> [`backend`]
//! (where nodes run: Docker, local processes, or a cluster faultline did not start).
//! [`report`] and [`serve`] read what runs wrote.

pub mod backend;
pub mod cli;
pub mod matrix;
pub mod report;
pub mod run;
pub mod serve;
pub mod target;
