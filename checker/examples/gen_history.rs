//! Writes a generated, linearizable kv history as faultline JSONL on stdout, for timing
//! `faultline check` on big histories (the benchmark's 1M-op case, measured with
//! `/usr/bin/time -v` for peak memory).
//!
//! `cargo run --release -p faultline-checker --example gen_history -- OPS [CLIENTS] [SEED] [KEYS]`
//! (1% info ops; defaults: 30 clients, seed 7, 10 keys; 1 key is a single register).

use std::io::{self, Write};
use std::process::ExitCode;

use faultline_checker::format::write_jsonl;
use faultline_checker::gen::{kv_history, GenConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| -> Option<u64> {
        args.get(i)
            .map_or(Some(default), |s| s.replace('_', "").parse().ok())
    };
    let (Some(ops), Some(clients), Some(seed), Some(keys)) =
        (num(0, 1_000_000), num(1, 30), num(2, 7), num(3, 10))
    else {
        eprintln!("usage: gen_history OPS [CLIENTS] [SEED] [KEYS]");
        return ExitCode::from(2);
    };
    let history = kv_history(&GenConfig {
        ops: ops as usize,
        keys: keys.max(1) as usize,
        clients: clients as usize,
        info_rate: 0.01,
        seed,
    });
    let stdout = io::stdout().lock();
    match write_jsonl(stdout, &history.events) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "gen_history: {e}");
            ExitCode::FAILURE
        }
    }
}
