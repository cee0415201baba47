//! `faultline image build`: builds (or finds cached) the base and node images, with a spinner
//! showing the current step and its latest output line, then prints tags, ids and sizes.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::docker::{DockerApi, DEFAULT_CALL_TIMEOUT_MS};
use crate::image::{default_raftkv_binary, ensure_base_image, ensure_node_image, ImageProgress};

/// Arguments of `faultline image build` (the CLI maps its flags onto this).
#[derive(Debug, Clone, Default)]
pub struct ImageBuildArgs {
    /// raftkv binary to put in the node image; default: beside the faultline executable.
    pub raftkv: Option<PathBuf>,
    /// Only the base image (no raftkv binary needed).
    pub base_only: bool,
}

/// Runs the command; the returned error is for the binary's edge to print (exit code 3).
pub async fn image_build(args: ImageBuildArgs) -> anyhow::Result<()> {
    let api = DockerApi::connect(DEFAULT_CALL_TIMEOUT_MS).await?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix}: {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let report = |p: ImageProgress| match p {
        ImageProgress::Step(step) => {
            bar.println(format!("==> {step}"));
            bar.set_prefix(step);
        }
        ImageProgress::Line(line) => bar.set_message(line),
        ImageProgress::Cached(tag) => bar.println(format!("cached: {tag}")),
        ImageProgress::Built { tag, elapsed_ms } => bar.println(format!(
            "built: {tag} in {:.1} s",
            elapsed_ms as f64 / 1000.0
        )),
    };
    let image = if args.base_only {
        ensure_base_image(&api, &report).await
    } else {
        let binary = match args.raftkv.or_else(default_raftkv_binary) {
            Some(b) => b,
            None => {
                bar.finish_and_clear();
                anyhow::bail!(
                    "no raftkv binary found beside this executable: run \
                     `cargo build --release -p raftkv` or pass --raftkv PATH"
                );
            }
        };
        ensure_node_image(&api, &binary, &report).await
    };
    bar.finish_and_clear();
    let image = image?;
    println!(
        "{} {} ({:.1} MB){}",
        image.tag,
        image.id,
        image.size_bytes as f64 / 1e6,
        if image.built { "" } else { " [cached]" }
    );
    Ok(())
}
