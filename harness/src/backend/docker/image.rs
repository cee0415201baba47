//! Node images without a registry: the debootstrapped Debian base (`faultline-base:<hash>`)
//! and the node image with a bundled program (raftkv) on top, in `/usr/local/bin`
//! (`faultline-node:<hash>`). Both are
//! cached by a hash of their inputs, so a build only happens when an input changed. The
//! inputs (script, package list, Dockerfile) are compiled into the binary, so `faultline`
//! can build images from any working directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{DockerApi, DockerError};
use crate::backend::build::{io_err, run_streaming, BuildError, BuildProgress, ProgressFn};

/// Why a node image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("building the base image needs {what}: {hint}")]
    Missing { what: String, hint: String },
}

pub const BASE_SCRIPT: &str = include_str!("../../../../docker/build-base.sh");
pub const BASE_PACKAGES: &str = include_str!("../../../../docker/base-packages.txt");
pub const NODE_DOCKERFILE: &str = include_str!("../../../../docker/node.Dockerfile");
pub const TARGET_DOCKERFILE: &str = include_str!("../../../../docker/target.Dockerfile");

pub const BASE_REPO: &str = "faultline-base";
pub const NODE_REPO: &str = "faultline-node";
pub const TARGET_REPO: &str = "faultline-target";

/// debootstrap downloads ~60 MB and unpacks ~150 packages: about 30 s on a good mirror.
/// Thirty minutes covers a slow mirror; past that something is stuck.
const BASE_BUILD_TIMEOUT_MS: u64 = 30 * 60 * 1000;
/// Importing a ~120 MB tar into the daemon.
const IMPORT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// The node build only copies one file onto the base.
const NODE_BUILD_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// Installing debootstrap with apt-get (update included).
const APT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Largest bundled binary accepted into a build context (debug info makes it big, not huge).
const MAX_BINARY_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest target folder copied into an image: scripts and small files, not data.
const MAX_FOLDER_BYTES: u64 = 64 * 1024 * 1024;
const MAX_FOLDER_FILES: usize = 1000;

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

/// The base image tag for the compiled-in script and package list, plus `extra` packages
/// (a target's; none for the built-in targets, whose tag is unchanged by this).
pub fn base_tag(extra: &[String]) -> String {
    let extra = extra_packages(extra);
    let mut parts: Vec<&[u8]> = vec![
        b"faultline-base v1",
        BASE_SCRIPT.as_bytes(),
        BASE_PACKAGES.as_bytes(),
    ];
    if !extra.is_empty() {
        parts.push(extra.as_bytes());
    }
    format!("{BASE_REPO}:{}", digest(&parts))
}

/// `extra` as lines of a package list, sorted, without duplicates and without the base
/// list's own packages, so the same set always gives the same image (and a target that
/// needs only base packages runs on the base image itself).
fn extra_packages(extra: &[String]) -> String {
    let base: std::collections::BTreeSet<&str> = BASE_PACKAGES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let set: std::collections::BTreeSet<&str> = extra.iter().map(|p| p.trim()).collect();
    set.into_iter()
        .filter(|p| !p.is_empty() && !base.contains(p))
        .map(|p| format!("{p}\n"))
        .collect()
}

/// Whether `name` can be a Debian package name (it reaches debootstrap's command line).
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// The node image tag for a base image id and a bundled binary's name and bytes.
pub fn node_tag(base_id: &str, name: &str, binary: &[u8]) -> String {
    format!(
        "{NODE_REPO}:{}",
        digest(&[
            b"faultline-node v2",
            base_id.as_bytes(),
            NODE_DOCKERFILE.as_bytes(),
            name.as_bytes(),
            binary
        ])
    )
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
    extra: &[String],
    progress: ProgressFn<'_>,
) -> Result<ImageRef, ImageError> {
    if let Some(bad) = extra.iter().find(|p| !is_package_name(p)) {
        return Err(BuildError::StepFailed {
            step: "package list",
            detail: format!("{bad:?} is not a Debian package name"),
        }
        .into());
    }
    let tag = base_tag(extra);
    if let Some(found) = inspect(api, &tag).await? {
        progress(BuildProgress::Cached(tag));
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
    let result = build_and_import_base(api, &tag, extra, &work_dir, progress).await;
    // The tar is only an intermediate: the image now holds the content.
    if let Err(e) = tokio::fs::remove_dir_all(&work_dir).await {
        tracing::warn!(error = %e, dir = %work_dir.display(), "could not remove build dir");
    }
    result?;
    let mut image = inspect(api, &tag).await?.ok_or(BuildError::StepFailed {
        step: "import",
        detail: format!("{tag} missing after import"),
    })?;
    image.built = true;
    progress(BuildProgress::Built {
        tag,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(image)
}

async fn build_and_import_base(
    api: &DockerApi,
    tag: &str,
    extra: &[String],
    work_dir: &Path,
    progress: ProgressFn<'_>,
) -> Result<(), ImageError> {
    let script = work_dir.join("build-base.sh");
    let packages = work_dir.join("base-packages.txt");
    let tar_path = work_dir.join("rootfs.tar");
    tokio::fs::write(&script, BASE_SCRIPT)
        .await
        .map_err(io_err("write build-base.sh"))?;
    tokio::fs::write(
        &packages,
        format!("{BASE_PACKAGES}{}", extra_packages(extra)),
    )
    .await
    .map_err(io_err("write base-packages.txt"))?;

    progress(BuildProgress::Step(
        "debootstrap Debian bookworm root filesystem".into(),
    ));
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(&script).arg(&packages).arg(&tar_path);
    run_streaming("debootstrap", cmd, BASE_BUILD_TIMEOUT_MS, progress).await?;

    progress(BuildProgress::Step(format!("import {tag}")));
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
                progress(BuildProgress::Line(status));
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
    progress(BuildProgress::Step(
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

/// Makes sure the node image holding the bundled program `name` (the file `binary`) exists,
/// building the base first if needed.
pub async fn ensure_node_image(
    api: &DockerApi,
    name: &str,
    binary: &Path,
    progress: ProgressFn<'_>,
) -> Result<ImageRef, ImageError> {
    let base = ensure_base_image(api, &[], progress).await?;
    let meta = tokio::fs::metadata(binary)
        .await
        .map_err(io_err(format!("{name} binary {}", binary.display())))?;
    if meta.len() > MAX_BINARY_BYTES {
        return Err(BuildError::StepFailed {
            step: "read the bundled binary",
            detail: format!("{} is {} bytes", binary.display(), meta.len()),
        }
        .into());
    }
    let bytes = tokio::fs::read(binary)
        .await
        .map_err(io_err(format!("read {}", binary.display())))?;
    let tag = node_tag(&base.id, name, &bytes);
    if let Some(found) = inspect(api, &tag).await? {
        progress(BuildProgress::Cached(tag));
        return Ok(found);
    }
    let context = node_build_context(name, &bytes).map_err(io_err("make build context"))?;
    build_on_base(api, &base, &tag, "node", context, progress).await
}

/// Makes sure the image for a target described by a file exists: the base with the
/// target's `packages`, and the target's `folder` at `/opt/faultline/target`.
pub async fn ensure_target_image(
    api: &DockerApi,
    packages: &[String],
    folder: &Path,
    progress: ProgressFn<'_>,
) -> Result<ImageRef, ImageError> {
    let base = ensure_base_image(api, packages, progress).await?;
    let files = folder_files(folder).map_err(io_err(format!("read {}", folder.display())))?;
    let mut parts: Vec<Vec<u8>> = vec![
        b"faultline-target v1".to_vec(),
        base.id.clone().into_bytes(),
        TARGET_DOCKERFILE.as_bytes().to_vec(),
    ];
    for (path, mode, data) in &files {
        parts.push(path.clone().into_bytes());
        parts.push(mode.to_le_bytes().to_vec());
        parts.push(data.clone());
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let tag = format!("{TARGET_REPO}:{}", digest(&refs));
    if let Some(found) = inspect(api, &tag).await? {
        progress(BuildProgress::Cached(tag));
        return Ok(found);
    }
    let context = target_build_context(&files).map_err(io_err("make build context"))?;
    build_on_base(api, &base, &tag, "target", context, progress).await
}

/// Builds `tag` from the build `context` (a tar with a Dockerfile taking `BASE`) on `base`.
async fn build_on_base(
    api: &DockerApi,
    base: &ImageRef,
    tag: &str,
    kind: &str,
    context: Vec<u8>,
    progress: ProgressFn<'_>,
) -> Result<ImageRef, ImageError> {
    let started = Instant::now();
    progress(BuildProgress::Step(format!("build {tag}")));
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        buildargs: Some(HashMap::from([("BASE".to_string(), base.tag.clone())])),
        labels: Some(HashMap::from([
            ("faultline.image".to_string(), kind.to_string()),
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
                    progress(BuildProgress::Line(line.to_string()));
                }
            }
        }
        Ok(())
    };
    api.call_with_timeout("build", tag, NODE_BUILD_TIMEOUT_MS, build)
        .await?;
    let mut image = inspect(api, tag).await?.ok_or(BuildError::StepFailed {
        step: "build node image",
        detail: format!("{tag} missing after build"),
    })?;
    image.built = true;
    progress(BuildProgress::Built {
        tag: tag.to_string(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(image)
}

/// Every regular file under `folder` as (relative path, mode, bytes), sorted by path;
/// hidden entries (`.git`, editor files) and Python caches are left out. Bounded by
/// [`MAX_FOLDER_BYTES`] and [`MAX_FOLDER_FILES`].
fn folder_files(folder: &Path) -> std::io::Result<Vec<(String, u32, Vec<u8>)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            total += meta.len();
            if total > MAX_FOLDER_BYTES || out.len() >= MAX_FOLDER_FILES {
                return Err(std::io::Error::other(format!(
                    "a target folder may hold at most {MAX_FOLDER_FILES} files and \
                     {MAX_FOLDER_BYTES} bytes"
                )));
            }
            let rel = entry
                .path()
                .strip_prefix(folder)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .into_owned();
            out.push((
                rel,
                meta.permissions().mode() & 0o777,
                std::fs::read(entry.path())?,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The tar the daemon builds a target's image from: the Dockerfile, and the folder's files
/// under `target/`.
fn target_build_context(files: &[(String, u32, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, path, data)
    };
    append("Dockerfile", TARGET_DOCKERFILE.as_bytes(), 0o644)?;
    for (path, mode, data) in files {
        append(&format!("target/{path}"), data, *mode)?;
    }
    builder.into_inner()
}

/// The tar the daemon builds the node image from: the Dockerfile, and the binary as
/// `bin/<name>`.
fn node_build_context(name: &str, binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let bin = format!("bin/{name}");
    for (path, data, mode) in [
        ("Dockerfile", NODE_DOCKERFILE.as_bytes(), 0o644),
        (bin.as_str(), binary, 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, path, data)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_every_input() {
        let a = node_tag("sha256:base1", "raftkv", b"binary-a");
        assert_eq!(a, node_tag("sha256:base1", "raftkv", b"binary-a"), "stable");
        assert_ne!(a, node_tag("sha256:base2", "raftkv", b"binary-a"));
        assert_ne!(a, node_tag("sha256:base1", "raftkv", b"binary-b"));
        assert_ne!(a, node_tag("sha256:base1", "other", b"binary-a"));
        assert!(a.starts_with("faultline-node:") && a.len() == "faultline-node:".len() + 16);
        assert!(base_tag(&[]).starts_with("faultline-base:"));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }

    #[test]
    fn only_packages_beyond_the_base_make_a_base_of_their_own() {
        let base = base_tag(&[]);
        assert_eq!(base_tag(&["etcd-server".into()]), base);
        let zk = base_tag(&["zookeeper".into()]);
        assert_ne!(zk, base);
        let same = ["etcd-server", "zookeeper", "zookeeper"].map(String::from);
        assert_eq!(zk, base_tag(&same));
        assert!(is_package_name("redis-server") && is_package_name("libc6"));
        for bad in ["a b", "-x", "X11", "pkg;reboot", "a"] {
            assert!(!is_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_target_folder_is_copied_without_hidden_files_and_keeps_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for (name, body) in [
            ("start.sh", "#!/bin/sh\n"),
            ("sub/x.txt", "x"),
            (".git/config", "hidden"),
            ("__pycache__/a.pyc", "cache"),
        ] {
            std::fs::create_dir_all(p.join(name).parent().unwrap()).unwrap();
            std::fs::write(p.join(name), body).unwrap();
        }
        std::fs::set_permissions(p.join("start.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let files = folder_files(p).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["start.sh", "sub/x.txt"]);
        assert_eq!(files[0].1, 0o755);
        let context = target_build_context(&files).unwrap();
        let mut archive = tar::Archive::new(&context[..]);
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("Dockerfile".to_string(), 0o644),
                ("target/start.sh".to_string(), 0o755),
                ("target/sub/x.txt".to_string(), 0o644),
            ]
        );
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
        let tar_bytes = node_build_context("raftkv", b"\x7fELF fake").expect("tar");
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
                ("bin/raftkv".to_string(), 0o755, 9)
            ]
        );
    }
}
