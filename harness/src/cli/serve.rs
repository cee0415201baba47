//! `faultline serve`: serves the results directory over HTTP ([`crate::serve`]) until
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::exit;
use crate::serve::router;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The results directory (holding `<test>/<timestamp>/` run folders).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,

    /// Address to listen on. Localhost by default: results are not meant to be public.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

/// Runs the server until Ctrl-C. Prints the URL once listening; exit 3 when the address
/// cannot be bound.
pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline serve: cannot start the runtime: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("faultline serve: cannot bind {}: {e}", args.bind);
                return ExitCode::from(exit::BAD_INPUT);
            }
        };
        let addr = listener.local_addr().unwrap_or(args.bind);
        if !args.results.is_dir() {
            eprintln!(
                "faultline serve: {} is not a directory yet; listing nothing until it is",
                args.results.display()
            );
        }
        println!("serving {} at http://{addr}/", args.results.display());
        let served = axum::serve(listener, router(&args.results))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        match served {
            Ok(()) => ExitCode::from(exit::VALID),
            Err(e) => {
                eprintln!("faultline serve: {e}");
                ExitCode::from(exit::BAD_INPUT)
            }
        }
    })
}
