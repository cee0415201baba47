//! The detection matrix behind `faultline test-all`: which (workload, nemesis, bug) runs
//! to make and what each must conclude ([`cell`]), and how each cell ended ([`outcome`]).
//! Correct raftkv must be `valid` under every nemesis; each planted bug must be found
//! (`invalid`, or a fencing violation for `token-reuse`) by its matching nemesis within a
//! number of tries. A bug that goes undetected fails the matrix as surely as a false alarm
//! does: a harness that cannot find a planted bug proves nothing about the real ones. A
//! run whose fault could not be injected is no evidence either way: its cell reads
//! `skipped`, with the reason, and does not fail the matrix.
//!
//! With `--seeds N` every cell runs on N seeds instead, and the matrix reports per cell how
//! often the runs showed what it looks for ([`rate`]), how soon, and under which faults
//! ([`detection`]).
//!
//! Every run is an ordinary `faultline test` run with its own results folder, so any cell
//! can be repeated from its `config.json`.

pub mod cell;
pub mod detection;
pub mod outcome;
pub mod rate;

pub use cell::{default_matrix, matrix, select, targets_matrix, Cell, Expect, MatrixChoice};
pub use detection::Detection;
pub use outcome::{
    exit_code, header, judge_seeds, rate_header, run_cell, run_cell_seeds, CellOutcome, CellStatus,
    Try,
};
pub use rate::Rate;
