//! Node images without a registry: the debootstrapped Debian base (`faultline-base:<hash>`)
//! and the node image with the raftkv binary on top (`faultline-node:<hash>`). Both are
//! cached by a hash of their inputs, so a build only happens when an input changed. The
//! inputs (script, package list, Dockerfile) are compiled into the binary, so `faultline`
//! can build images from any working directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::docker::{DockerApi, DockerError};

pub const BASE_SCRIPT: &str = include_str!("../../docker/build-base.sh");
pub const BASE_PACKAGES: &str = include_str!("../../docker/base-packages.txt");
pub const NODE_DOCKERFILE: &str = include_str!("../../docker/node.Dockerfile");

pub const BASE_REPO: &str = "faultline-base";
pub const NODE_REPO: &str = "faultline-node";

/// debootstrap downloads ~60 MB and unpacks ~150 packages: about 30 s on a good mirror.
/// Thirty minutes covers a slow mirror; past that something is stuck.
const BASE_BUILD_TIMEOUT_MS: u64 = 30 * 60 * 1000;
/// Importing a ~120 MB tar into the daemon.
const IMPORT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// The node build only copies one file onto the base.
const NODE_BUILD_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// Installing debootstrap with apt-get (update included).
const APT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Largest raftkv binary accepted into a build context (debug info makes it big, not huge).
const MAX_BINARY_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("building the base image needs {what}: {hint}")]
    Missing { what: String, hint: String },
    #[error("{step} failed: {detail}")]
    StepFailed { step: &'static str, detail: String },
    #[error("{step} timed out after {timeout_ms} ms")]
    Timeout { step: &'static str, timeout_ms: u64 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}

/// A progress report; the CLI shows these on a spinner, tests log them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageProgress {
    /// A step started (`debootstrap`, `import`, `build node image`...).
    Step(String),
    /// A line of output inside the current step.
    Line(String),
    /// The image was already present: nothing built.
    Cached(String),
    /// An image was built; with how long it took.
    Built { tag: String, elapsed_ms: u64 },
}

pub type ProgressFn<'a> = &'a (dyn Fn(ImageProgress) + Send + Sync);

/// An image that exists in the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub tag: String,
    pub id: String,
    pub size_bytes: i64,
    /// False when the image was already cached.
    pub built: bool,
}

/// Short hex digest of `parts`, each length-prefixed so (ab, c) and (a, bc) differ.
fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let full = h.finalize();
    full.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The base image tag for the compiled-in script and package list.
pub fn base_tag() -> String {
    format!(
        "{BASE_REPO}:{}",
        digest(&[
            b"faultline-base v1",
            BASE_SCRIPT.as_bytes(),
            BASE_PACKAGES.as_bytes()
        ])
    )
}

/// The node image tag for a base image id and a binary's bytes.
pub fn node_tag(base_id: &str, binary: &[u8]) -> String {
    format!(
        "{NODE_REPO}:{}",
        digest(&[
            b"faultline-node v1",
            base_id.as_bytes(),
            NODE_DOCKERFILE.as_bytes(),
            binary
        ])
    )
}

/// Longest `cargo build --release -p raftkv` from scratch (2 cores: about 2 minutes).
const CARGO_BUILD_TIMEOUT_MS: u64 = 20 * 60 * 1000;

/// The source checkout this harness was compiled from, when it is still there.
fn source_workspace() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    dir.join("raftkv")
        .join("Cargo.toml")
        .is_file()
        .then_some(dir)
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

/// The raftkv binary for the node image. An explicit path wins. Otherwise, when faultline
/// runs from a source checkout (`cargo run -p faultline`), raftkv is built from the same
/// tree first, so the image never holds a stale server (cargo makes this a no-op when
/// nothing changed); an installed faultline uses the raftkv beside it.
pub async fn locate_raftkv_binary(
    explicit: Option<&Path>,
    progress: ProgressFn<'_>,
) -> Result<PathBuf, ImageError> {
    if let Some(path) = explicit {
        if path.is_file() {
            // Absolute, because local nodes run with their data directory as working
            // directory, where a relative path would not resolve.
            return Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        }
        return Err(ImageError::Missing {
            what: format!("the raftkv binary {}", path.display()),
            hint: "no such file: pass the path of a built raftkv to --raftkv".into(),
        });
    }
    if let (Some(workspace), Some(target)) = (source_workspace(), own_target_dir()) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        progress(ImageProgress::Step(
            "cargo build --release -p raftkv".into(),
        ));
        let mut cmd = tokio::process::Command::new(cargo);
        cmd.current_dir(&workspace)
            .args(["build", "--release", "-p", "raftkv", "--target-dir"])
            .arg(&target);
        run_streaming("cargo build raftkv", cmd, CARGO_BUILD_TIMEOUT_MS, progress).await?;
        let built = target.join("release").join("raftkv");
        if built.is_file() {
            return Ok(built);
        }
    }
    default_raftkv_binary().ok_or_else(|| ImageError::Missing {
        what: "the raftkv binary".into(),
        hint: "none beside this executable: run `cargo build --release -p raftkv` or pass \
               --raftkv PATH"
            .into(),
    })
}

/// Where `cargo build --release -p raftkv` puts raftkv relative to this executable: beside it
/// (the `faultline` binary), or one level up (a test binary in `deps/`).
pub fn default_raftkv_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("raftkv"), dir.parent()?.join("raftkv")]
        .into_iter()
        .find(|p| p.is_file())
}

async fn inspect(api: &DockerApi, tag: &str) -> Result<Option<ImageRef>, DockerError> {
    match api
        .call("inspect image", tag, api.docker().inspect_image(tag))
        .await
    {
        Ok(info) => Ok(Some(ImageRef {
            tag: tag.to_string(),
            id: info.id.unwrap_or_default(),
            size_bytes: info.size.unwrap_or(0),
            built: false,
        })),
        Err(e) if e.has_status(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes sure the base image exists, building it if its inputs changed.
pub async fn ensure_base_image(
    api: &DockerApi,
    progress: ProgressFn<'_>,
) -> Result<ImageRef, ImageError> {
    let tag = base_tag();
    if let Some(found) = inspect(api, &tag).await? {
        progress(ImageProgress::Cached(tag));
        return Ok(found);
    }
    let started = Instant::now();
    preflight_base_build(progress).await?;

    let work_dir = std::env::temp_dir().join(format!(
        "faultline-base-{}",
        tag.rsplit(':').next().unwrap_or("x")
    ));
    tokio::fs::create_dir_all(&work_dir)
        .await
        .map_err(io_err(format!("create {}", work_dir.display())))?;
    let result = build_and_import_base(api, &tag, &work_dir, progress).await;
    // The tar is only an intermediate: the image now holds the content.
    if let Err(e) = tokio::fs::remove_dir_all(&work_dir).await {
        tracing::warn!(error = %e, dir = %work_dir.display(), "could not remove build dir");
    }
    result?;
    let mut image = inspect(api, &tag).await?.ok_or(ImageError::StepFailed {
        step: "import",
        detail: format!("{tag} missing after import"),
    })?;
    image.built = true;
    progress(ImageProgress::Built {
        tag,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(image)
}

async fn build_and_import_base(
    api: &DockerApi,
    tag: &str,
    work_dir: &Path,
    progress: ProgressFn<'_>,
) -> Result<(), ImageError> {
    let script = work_dir.join("build-base.sh");
    let packages = work_dir.join("base-packages.txt");
    let tar_path = work_dir.join("rootfs.tar");
    tokio::fs::write(&script, BASE_SCRIPT)
        .await
        .map_err(io_err("write build-base.sh"))?;
    tokio::fs::write(&packages, BASE_PACKAGES)
        .await
        .map_err(io_err("write base-packages.txt"))?;

    progress(ImageProgress::Step(
        "debootstrap Debian bookworm root filesystem".into(),
    ));
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(&script).arg(&packages).arg(&tar_path);
    run_streaming("debootstrap", cmd, BASE_BUILD_TIMEOUT_MS, progress).await?;

    progress(ImageProgress::Step(format!("import {tag}")));
    let bytes = tokio::fs::read(&tar_path)
        .await
        .map_err(io_err(format!("read {}", tar_path.display())))?;
    let (repo, version) = tag.split_once(':').unwrap_or((tag, "latest"));
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(version.into()),
        changes: vec!["CMD [\"bash\"]".into()],
        ..Default::default()
    };
    let import = async {
        let mut stream =
            api.docker()
                .create_image(Some(options), Some(bollard::body_full(bytes.into())), None);
        while let Some(info) = stream.next().await {
            if let Some(status) = info?.status {
                progress(ImageProgress::Line(status));
            }
        }
        Ok(())
    };
    api.call_with_timeout("import", tag, IMPORT_TIMEOUT_MS, import)
        .await?;
    Ok(())
}

/// Checks (and where it can, fixes) what the base build needs: root and debootstrap.
async fn preflight_base_build(progress: ProgressFn<'_>) -> Result<(), ImageError> {
    if !is_root() {
        return Err(ImageError::Missing {
            what: "root".into(),
            hint: "debootstrap must chroot: run `sudo faultline image build` once; later runs \
                   reuse the cached image"
                .into(),
        });
    }
    if find_in_path("debootstrap").is_some() {
        return Ok(());
    }
    if find_in_path("apt-get").is_none() {
        return Err(ImageError::Missing {
            what: "debootstrap".into(),
            hint: "install the `debootstrap` package with your distribution's package manager"
                .into(),
        });
    }
    progress(ImageProgress::Step(
        "install debootstrap (apt-get install -y debootstrap)".into(),
    ));
    let mut update = tokio::process::Command::new("apt-get");
    update.args(["update", "-q"]);
    run_streaming("apt-get update", update, APT_TIMEOUT_MS, progress).await?;
    let mut install = tokio::process::Command::new("apt-get");
    install
        .args([
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "debootstrap",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_streaming(
        "apt-get install debootstrap",
        install,
        APT_TIMEOUT_MS,
        progress,
    )
    .await?;
    if find_in_path("debootstrap").is_none() {
        return Err(ImageError::Missing {
            what: "debootstrap".into(),
            hint: "apt-get reported success but debootstrap is not on PATH".into(),
        });
    }
    Ok(())
}

fn is_root() -> bool {
    // The real uid is the first number on /proc/self/status's `Uid:` line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // sbin is often missing from a non-login PATH, yet that is where debootstrap lives.
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Runs a command, forwarding each output line as progress and keeping the last lines for
/// the error message. Killed on timeout.
async fn run_streaming(
    step: &'static str,
    mut cmd: tokio::process::Command,
    timeout_ms: u64,
    progress: ProgressFn<'_>,
) -> Result<(), ImageError> {
    // debootstrap and apt live in sbin; make sure children find them too.
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{path}:/usr/sbin:/sbin"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(io_err(format!("start {step}")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let mut tail: Vec<String> = Vec::new();
        let mut out = stdout.map(|s| BufReader::new(s).lines());
        let mut err = stderr.map(|s| BufReader::new(s).lines());
        loop {
            let line = tokio::select! {
                l = async { out.as_mut()?.next_line().await.ok().flatten() }, if out.is_some() => {
                    if l.is_none() { out = None; }
                    l
                }
                l = async { err.as_mut()?.next_line().await.ok().flatten() }, if err.is_some() => {
                    if l.is_none() { err = None; }
                    l
                }
                else => break,
            };
            if let Some(line) = line {
                progress(ImageProgress::Line(line.clone()));
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        let status = child.wait().await;
        (status, tail)
    };
    match tokio::time::timeout(Duration::from_millis(timeout_ms), run).await {
        Err(_) => Err(ImageError::Timeout { step, timeout_ms }),
        Ok((Err(e), _)) => Err(io_err(format!("wait for {step}"))(e)),
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), tail)) => Err(ImageError::StepFailed {
            step,
            detail: format!("{status}; last output:\n{}", tail.join("\n")),
        }),
    }
}

/// Makes sure the node image for `raftkv_binary` exists (building the base first if needed).
pub async fn ensure_node_image(
    api: &DockerApi,
    raftkv_binary: &Path,
    progress: ProgressFn<'_>,
) -> Result<ImageRef, ImageError> {
    let base = ensure_base_image(api, progress).await?;
    let meta = tokio::fs::metadata(raftkv_binary)
        .await
        .map_err(io_err(format!("raftkv binary {}", raftkv_binary.display())))?;
    if meta.len() > MAX_BINARY_BYTES {
        return Err(ImageError::StepFailed {
            step: "read raftkv binary",
            detail: format!("{} is {} bytes", raftkv_binary.display(), meta.len()),
        });
    }
    let binary = tokio::fs::read(raftkv_binary)
        .await
        .map_err(io_err(format!("read {}", raftkv_binary.display())))?;
    let tag = node_tag(&base.id, &binary);
    if let Some(found) = inspect(api, &tag).await? {
        progress(ImageProgress::Cached(tag));
        return Ok(found);
    }
    let started = Instant::now();
    progress(ImageProgress::Step(format!("build {tag}")));
    let context = node_build_context(&binary).map_err(io_err("make build context"))?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tag.clone()),
        rm: true,
        forcerm: true,
        buildargs: Some(HashMap::from([("BASE".to_string(), base.tag.clone())])),
        labels: Some(HashMap::from([
            ("faultline.image".to_string(), "node".to_string()),
            ("faultline.base".to_string(), base.tag.clone()),
        ])),
        ..Default::default()
    };
    let build = async {
        let mut stream =
            api.docker()
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(info) = stream.next().await {
            let info = info?;
            if let Some(line) = info.stream {
                let line = line.trim_end();
                if !line.is_empty() {
                    progress(ImageProgress::Line(line.to_string()));
                }
            }
        }
        Ok(())
    };
    api.call_with_timeout("build", &tag, NODE_BUILD_TIMEOUT_MS, build)
        .await?;
    let mut image = inspect(api, &tag).await?.ok_or(ImageError::StepFailed {
        step: "build node image",
        detail: format!("{tag} missing after build"),
    })?;
    image.built = true;
    progress(ImageProgress::Built {
        tag,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(image)
}

/// The tar the daemon builds the node image from: the Dockerfile and the binary.
fn node_build_context(binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", NODE_DOCKERFILE.as_bytes(), 0o644),
        ("raftkv", binary, 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, name, data)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_every_input() {
        let a = node_tag("sha256:base1", b"binary-a");
        assert_eq!(a, node_tag("sha256:base1", b"binary-a"), "stable");
        assert_ne!(a, node_tag("sha256:base2", b"binary-a"));
        assert_ne!(a, node_tag("sha256:base1", b"binary-b"));
        assert!(a.starts_with("faultline-node:") && a.len() == "faultline-node:".len() + 16);
        assert!(base_tag().starts_with("faultline-base:"));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }

    #[test]
    fn compiled_in_inputs_are_the_docker_folder() {
        assert!(BASE_SCRIPT.contains("debootstrap --variant=minbase"));
        for pkg in [
            "iptables",
            "iproute2",
            "libfaketime",
            "etcd-server",
            "ca-certificates",
        ] {
            assert!(
                BASE_PACKAGES.lines().any(|l| l.trim() == pkg),
                "{pkg} missing from base-packages.txt"
            );
        }
        assert!(NODE_DOCKERFILE.contains("FROM ${BASE}"));
    }

    #[test]
    fn build_context_holds_dockerfile_and_executable_binary() {
        let tar_bytes = node_build_context(b"\x7fELF fake").expect("tar");
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().to_string();
            seen.push((path, entry.header().mode().expect("mode"), entry.size()));
        }
        assert_eq!(
            seen,
            vec![
                (
                    "Dockerfile".to_string(),
                    0o644,
                    NODE_DOCKERFILE.len() as u64
                ),
                ("raftkv".to_string(), 0o755, 9)
            ]
        );
    }

    #[tokio::test]
    async fn an_explicit_raftkv_path_comes_back_absolute() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("raftkv"), b"x").expect("write");
        let cwd = std::env::current_dir().expect("cwd");
        let rel = pathdiff(dir.path(), &cwd);
        let found = locate_raftkv_binary(Some(&rel), &|_| {})
            .await
            .expect("found");
        assert!(found.is_absolute(), "{}", found.display());
        assert!(found.is_file());
        let missing = locate_raftkv_binary(Some(Path::new("no/such/raftkv")), &|_| {}).await;
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

    #[tokio::test]
    async fn streaming_runner_reports_lines_and_failures() {
        let lines = std::sync::Mutex::new(Vec::new());
        let progress = |p: ImageProgress| {
            if let ImageProgress::Line(l) = p {
                lines.lock().expect("lock").push(l);
            }
        };
        let mut ok = tokio::process::Command::new("sh");
        ok.args(["-c", "echo one; echo two >&2"]);
        run_streaming("ok", ok, 10_000, &progress)
            .await
            .expect("ok");
        let mut got = lines.lock().expect("lock").clone();
        got.sort();
        assert_eq!(got, ["one", "two"]);

        let mut bad = tokio::process::Command::new("sh");
        bad.args(["-c", "echo why; exit 3"]);
        let err = run_streaming("bad", bad, 10_000, &progress)
            .await
            .expect_err("exit 3 fails");
        assert!(err.to_string().contains("why"), "{err}");

        let mut slow = tokio::process::Command::new("sleep");
        slow.arg("5");
        let err = run_streaming("slow", slow, 100, &progress)
            .await
            .expect_err("times out");
        assert!(matches!(err, ImageError::Timeout { step: "slow", .. }));
    }
}
