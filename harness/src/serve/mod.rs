//! `faultline serve`: a small HTTP server for browsing the results directory. `/` lists
//! every run ([`runs`]), newest first; `/runs/<test>/<ts>/<file>` serves a run's files
//! ([`files`]), never anything outside the results directory. It binds to localhost by
//! default because results can hold anything the system under test logged.

pub mod files;
pub mod runs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Args;

use crate::cli::exit;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The results directory (holding `<test>/<timestamp>/` run folders).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,

    /// Address to listen on. Localhost by default: results are not meant to be public.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

/// What every handler shares: where the results live.
#[derive(Debug)]
struct Served {
    root: PathBuf,
}

/// The server's routes for the results directory `root`. The directory is read on every
/// request, so runs that finish while the server is up appear on the next reload.
pub fn router(root: &Path) -> Router {
    let state = Arc::new(Served {
        root: root.to_path_buf(),
    });
    Router::new()
        .route("/", get(index))
        .route("/runs/{test}/{ts}/{*file}", get(file))
        .with_state(state)
}

async fn index(State(served): State<Arc<Served>>) -> Response {
    let root = served.root.clone();
    let listed = tokio::task::spawn_blocking(move || runs::list(&root)).await;
    match listed {
        Ok(runs) => Html(runs::render(&served.root, &runs)).into_response(),
        Err(e) => {
            tracing::error!("listing runs: {e}");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn file(
    State(served): State<Arc<Served>>,
    axum::extract::Path((test, ts, file)): axum::extract::Path<(String, String, String)>,
) -> Response {
    files::serve(&served.root, &test, &ts, &file).await
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
