//! The detection matrix behind `faultline test-all`: which (workload, nemesis, bug) runs
//! to make and what each must conclude ([`cell`]), and how each cell ended ([`outcome`]).
//! Correct raftkv must be `valid` under every nemesis; each planted bug must be found
//! (`invalid`, or a fencing violation for `token-reuse`) by its matching nemesis within a
//! number of tries. A bug that goes undetected fails the matrix as surely as a false alarm
//! does: a harness that cannot find a planted bug proves nothing about the real ones. A
//! run whose fault could not be injected is no evidence either way: its cell reads
//! `skipped`, with the reason, and does not fail the matrix.
//!
//! Every run is an ordinary `faultline test` run with its own results folder, so any cell
//! can be repeated from its `config.json`.

pub mod cell;
pub mod outcome;

pub use cell::{default_matrix, select, Cell, Expect};
pub use outcome::{exit_code, header, run_cell, CellOutcome, CellStatus, Try};
