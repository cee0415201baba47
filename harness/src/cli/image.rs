//! `faultline image build`: builds (or finds cached) the base and node images, with a spinner
//! showing the current step and its latest output line, then prints tags, ids and sizes.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::build::BuildProgress;
use crate::backend::bundled;
use crate::backend::docker::image::{ensure_base_image, ensure_node_image};
use crate::backend::docker::{DockerApi, DEFAULT_CALL_TIMEOUT_MS};

/// Flags of `faultline image build`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImageBuildArgs {
    /// raftkv binary to put in the node image (default: built from this source tree, or
    /// found beside the faultline executable).
    #[arg(long, value_name = "PATH")]
    pub raftkv: Option<PathBuf>,
    /// Only the debootstrapped base image (no raftkv binary needed).
    #[arg(long)]
    pub base_only: bool,
}

/// `faultline image ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Build the node image (and its base) unless a cached one matches its inputs.
    Build(ImageBuildArgs),
}

/// Runs `faultline image ...` and returns its exit code (0, or 3 on any failure).
pub fn command(cmd: ImageCommand) -> std::process::ExitCode {
    let ImageCommand::Build(args) = cmd;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::from(crate::cli::exit::BAD_INPUT);
        }
    };
    match runtime.block_on(image_build(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(crate::cli::exit::BAD_INPUT)
        }
    }
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
    let report = |p: BuildProgress| match p {
        BuildProgress::Step(step) => {
            bar.println(format!("==> {step}"));
            bar.set_prefix(step);
        }
        BuildProgress::Line(line) => bar.set_message(line),
        BuildProgress::Cached(tag) => bar.println(format!("cached: {tag}")),
        BuildProgress::Built { tag, elapsed_ms } => bar.println(format!(
            "built: {tag} in {:.1} s",
            elapsed_ms as f64 / 1000.0
        )),
    };
    let image = if args.base_only {
        ensure_base_image(&api, &[], &report).await
    } else {
        match bundled::locate("raftkv", args.raftkv.as_deref(), &report).await {
            Ok(binary) => ensure_node_image(&api, "raftkv", &binary, &report).await,
            Err(e) => Err(e.into()),
        }
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
