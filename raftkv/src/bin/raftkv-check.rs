//! `raftkv-check`: exhaustively model-check raftkv's Raft core (and the parts of the node
//! runtime it needs) with stateright, to the given bounds. Prints the states explored,
//! the time taken and, for every violated property, a step-by-step counterexample.
//! Exit code: 0 no violation, 1 a property was violated.
//!
//! ```sh
//! cargo run --release -p raftkv --bin raftkv-check -- --depth 14
//! cargo run --release -p raftkv --bin raftkv-check -- --bug old-term-commit --max-term 4 --dfs
//! ```

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use raftkv::model::{check, ClientOp, ModelOptions, Strategy};
use raftkv::raft::Bug;

/// Model-check the raftkv Raft core with stateright.
#[derive(Debug, Parser)]
#[command(name = "raftkv-check")]
struct Cli {
    /// Stop exploring at this depth (actions from the initial state); 0 = no depth bound.
    #[arg(long, default_value_t = 0)]
    depth: usize,
    /// Depth-first search instead of breadth-first.
    #[arg(long)]
    dfs: bool,
    /// Random walks (stateright's simulation, not exhaustive) with this seed instead of
    /// BFS/DFS; give --depth (walk length) and --seconds.
    #[arg(long)]
    simulate: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// Planted bug to enable (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    bug: Vec<String>,
    /// Number of nodes (ids 1..=N).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Client scripts: one per client, separated by ';', each a comma-separated list of
    /// w (write), r (read), a (acquire a lock). Example: "w,r;r".
    #[arg(long, default_value = "w;r")]
    clients: String,
    /// Largest term explored.
    #[arg(long, default_value_t = 2)]
    max_term: u64,
    /// Longest log explored.
    #[arg(long, default_value_t = 3)]
    max_log: u64,
    /// Crashes per run (a crashed node may restart from its disk).
    #[arg(long, default_value_t = 1)]
    max_crashes: u8,
    /// Timer firings (elections, heartbeats) per run, over all nodes.
    #[arg(long, default_value_t = 4)]
    max_timeouts: u8,
    /// Messages in flight (further sends are lost).
    #[arg(long, default_value_t = 4)]
    max_in_flight: usize,
    /// Entries per AppendEntries.
    #[arg(long, default_value_t = 1)]
    entries_per_msg: usize,
    /// The network never loses messages.
    #[arg(long)]
    no_loss: bool,
    /// The network may deliver a message more than once.
    #[arg(long)]
    duplicate: bool,
    /// Per-link FIFO delivery (the server's transport) instead of full reordering.
    #[arg(long)]
    fifo: bool,
    /// Run Raft's pre-vote round before elections.
    #[arg(long)]
    pre_vote: bool,
    /// Turn check-quorum off (shorter elections; the server runs with it on).
    #[arg(long)]
    no_check_quorum: bool,
    /// Client symmetry reduction (DFS only).
    #[arg(long)]
    symmetry: bool,
    /// Checker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop at the first violated property.
    #[arg(long)]
    stop_at_first: bool,
}

fn parse_clients(spec: &str) -> anyhow::Result<Vec<Vec<ClientOp>>> {
    let mut out = Vec::new();
    for script in spec.split(';').filter(|s| !s.trim().is_empty()) {
        let mut ops = Vec::new();
        for op in script.split(',') {
            ops.push(match op.trim() {
                "w" => ClientOp::Write,
                "r" => ClientOp::Read,
                "a" => ClientOp::Acquire,
                other => bail!("unknown client op {other:?} (use w, r or a)"),
            });
        }
        out.push(ops);
    }
    Ok(out)
}

fn run() -> anyhow::Result<bool> {
    let cli = Cli::parse();
    let mut bugs = BTreeSet::new();
    for b in &cli.bug {
        bugs.insert(b.parse::<Bug>().context("--bug")?);
    }
    if cli.symmetry && !cli.dfs {
        bail!("--symmetry needs --dfs (stateright reduces symmetry in DFS only)");
    }
    let opts = ModelOptions {
        nodes: (1..=cli.nodes).collect(),
        clients: parse_clients(&cli.clients)?,
        bugs,
        pre_vote: cli.pre_vote,
        check_quorum: !cli.no_check_quorum,
        max_entries_per_msg: cli.entries_per_msg,
        lossy: !cli.no_loss,
        duplicating: cli.duplicate,
        fifo: cli.fifo,
        max_in_flight: cli.max_in_flight,
        max_term: cli.max_term,
        max_log: cli.max_log,
        max_crashes: cli.max_crashes,
        max_timeouts: cli.max_timeouts,
        max_depth: cli.depth,
        strategy: match (cli.simulate, cli.dfs) {
            (Some(seed), _) => Strategy::Simulate { seed },
            (None, true) => Strategy::Dfs,
            (None, false) => Strategy::Bfs,
        },
        time_limit: cli.seconds.map(std::time::Duration::from_secs),
        symmetry: cli.symmetry,
        threads: cli.threads,
        stop_at_first_violation: cli.stop_at_first,
    };
    println!("raftkv-check: {opts:?}");
    let report = check(&opts);
    println!(
        "explored {} states ({} unique), max depth {}, in {:.2} s{}",
        report.states,
        report.unique_states,
        report.max_depth,
        report.elapsed.as_secs_f64(),
        if report.complete {
            ""
        } else {
            " (not exhaustive: random walks, a time limit or the first violation stopped it)"
        }
    );
    if report.violations.is_empty() {
        println!("no property violated within the bounds");
        return Ok(true);
    }
    for cex in &report.violations {
        println!();
        println!(
            "counterexample for \"{}\" ({} steps):",
            cex.property, cex.steps
        );
        for line in &cex.trace {
            println!("{line}");
        }
    }
    Ok(false)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("raftkv-check: {e:#}");
            ExitCode::from(3)
        }
    }
}
