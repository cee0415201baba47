//! Programs that ship with faultline (raftkv): where the binary a run uses comes from. An
//! explicit path wins. Otherwise, when faultline runs from a source checkout (`cargo run`),
//! the program is built from the same tree first, so a node never runs a stale server
//! (cargo makes this a no-op when nothing changed); an installed faultline uses the binary
//! beside it.

use std::path::{Path, PathBuf};

use super::build::{run_streaming, BuildError, BuildProgress, ProgressFn};

/// Longest `cargo build --release --bin <name>` from scratch (2 cores: about 2 minutes).
const CARGO_BUILD_TIMEOUT_MS: u64 = 20 * 60 * 1000;

/// The source checkout this harness was compiled from, when it is still there.
fn source_workspace() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// The Cargo target directory holding this executable (`<target>/release/faultline` or
/// `<target>/<profile>/deps/<test>`), recognised by the `CACHEDIR.TAG` Cargo writes there;
/// None for an installed binary.
fn own_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent()?;
    }
    let target = dir.parent()?;
    target
        .join("CACHEDIR.TAG")
        .is_file()
        .then(|| target.to_path_buf())
}

/// The binary of the bundled program `name`: `explicit` when given (made absolute, because
/// local nodes run in their own folders), else built from the source tree, else beside
/// this executable.
pub async fn locate(
    name: &str,
    explicit: Option<&Path>,
    progress: ProgressFn<'_>,
) -> Result<PathBuf, BuildError> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        }
        return Err(BuildError::NotFound {
            what: format!("the {name} binary {} does not exist", path.display()),
            hint: format!("pass the path of a built {name} to --{name}"),
        });
    }
    if let (Some(workspace), Some(target)) = (source_workspace(), own_target_dir()) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // `--bin` without `-p`: every workspace member is selected, so features resolve as
        // for `cargo build`/`cargo test` of the whole workspace and nothing recompiles.
        let command = format!("cargo build --release --bin {name}");
        progress(BuildProgress::Step(command));
        let mut cmd = tokio::process::Command::new(cargo);
        cmd.current_dir(&workspace)
            .args(["build", "--release", "--bin", name, "--target-dir"])
            .arg(&target);
        run_streaming("cargo build", cmd, CARGO_BUILD_TIMEOUT_MS, progress).await?;
        let built = target.join("release").join(name);
        if built.is_file() {
            return Ok(built);
        }
    }
    beside_executable(name).ok_or_else(|| BuildError::NotFound {
        what: format!("no {name} binary beside this executable"),
        hint: format!("run `cargo build --release --bin {name}` or pass --{name} PATH"),
    })
}

/// Where cargo puts the bundled program `name` relative to this executable: beside it (the
/// `faultline` binary), or one level up (a test binary in `deps/`).
pub fn beside_executable(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(name), dir.parent()?.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_explicit_path_comes_back_absolute() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("raftkv"), b"x").expect("write");
        let cwd = std::env::current_dir().expect("cwd");
        let rel = pathdiff(dir.path(), &cwd);
        let found = locate("raftkv", Some(&rel), &|_| {}).await.expect("found");
        assert!(found.is_absolute(), "{}", found.display());
        assert!(found.is_file());
        let missing = locate("raftkv", Some(Path::new("no/such/raftkv")), &|_| {}).await;
        assert!(missing
            .expect_err("missing")
            .to_string()
            .contains("no/such/raftkv"));
    }

    /// `target/raftkv` relative to `base` (through `..` as needed).
    fn pathdiff(target: &Path, base: &Path) -> PathBuf {
        let ups = base.components().count().saturating_sub(1);
        let mut rel = PathBuf::new();
        for _ in 0..ups {
            rel.push("..");
        }
        for c in target.components().skip(1) {
            rel.push(c);
        }
        rel.join("raftkv")
    }
}
