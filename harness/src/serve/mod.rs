//! The results server behind `faultline serve` (`crate::cli::serve`): a small HTTP server
//! for browsing the results directory. `/` lists
//! every run ([`runs`]), newest first, after the batches of repeated runs ([`batches`]); `/runs/<test>/<ts>/<file>` serves a run's files
//! ([`files`]), never anything outside the results directory. It binds to localhost by
//! default because results can hold anything the system under test logged.

pub mod batches;
pub mod files;
pub mod runs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

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
    let listed =
        tokio::task::spawn_blocking(move || (runs::list(&root), batches::list(&root))).await;
    match listed {
        Ok((runs, batches)) => Html(runs::render(&served.root, &runs, &batches)).into_response(),
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
