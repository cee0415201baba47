//! The Python a target's adapter runs with (`{python}`): `python3` from the PATH, or, when
//! the target file lists `python_requirements`, a virtual environment with them installed
//! by pip. Venvs are cached under `~/.cache/faultline/venvs/<hash of the requirements>` and
//! made once: a new one is built in a temporary folder and renamed into place, so two runs
//! making the same venv at once both end with a complete one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Longest a venv may take to make (pip downloads the requirements).
const VENV_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The interpreter for `requirements`; making the venv if needed.
pub async fn python_for(requirements: &[String]) -> Result<String, String> {
    if requirements.is_empty() {
        return Ok("python3".into());
    }
    if let Some(bad) = requirements.iter().find(|r| !is_requirement(r)) {
        return Err(format!(
            "python_requirements: {bad:?} is not a requirement pip takes here (a name, \
             extras and a version specifier)"
        ));
    }
    let dir = cache_root().join(venv_name(requirements));
    let python = dir.join("bin").join("python");
    if python.is_file() && dir.join(".complete").is_file() {
        return Ok(python.display().to_string());
    }
    tokio::time::timeout(VENV_TIMEOUT, make_venv(&dir, requirements))
        .await
        .map_err(|_| {
            format!(
                "making the venv {} took over {VENV_TIMEOUT:?}",
                dir.display()
            )
        })??;
    Ok(python.display().to_string())
}

/// Where venvs are kept: `$XDG_CACHE_HOME/faultline/venvs`, else `~/.cache/...`, else the
/// system's temporary folder.
fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("faultline").join("venvs")
}

/// The venv's folder name: a hash of the sorted requirements.
fn venv_name(requirements: &[String]) -> String {
    let mut sorted: Vec<&str> = requirements.iter().map(|r| r.trim()).collect();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    for r in sorted {
        h.update(r.as_bytes());
        h.update(b"\n");
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A requirement as pip takes it, without options or URLs: `kazoo==2.10.0`,
/// `redis[hiredis]>=5`.
fn is_requirement(r: &str) -> bool {
    let r = r.trim();
    !r.is_empty()
        && r.len() <= 200
        && r.starts_with(|c: char| c.is_ascii_alphanumeric())
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.[],=<>!~ ".contains(&b))
}

async fn make_venv(dir: &Path, requirements: &[String]) -> Result<(), String> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("venv"),
        std::process::id()
    ));
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    run(
        tokio::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&tmp),
        "python3 -m venv",
    )
    .await?;
    run(
        tokio::process::Command::new(tmp.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(requirements),
        "pip install",
    )
    .await?;
    // A venv's scripts name its folder, so it is made where it will stay: the rename only
    // publishes it. python -m venv writes absolute paths into bin/ only for scripts; the
    // interpreter itself is found through pyvenv.cfg next to it, which holds no path.
    tokio::fs::write(tmp.join(".complete"), b"")
        .await
        .map_err(|e| format!("marking the venv complete: {e}"))?;
    match tokio::fs::rename(&tmp, dir).await {
        Ok(()) => Ok(()),
        // Another run published the same venv first: use it.
        Err(_) if dir.join(".complete").is_file() => {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            Ok(())
        }
        Err(e) => Err(format!("moving the venv into {}: {e}", dir.display())),
    }
}

async fn run(cmd: &mut tokio::process::Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_plain_specifiers() {
        for ok in ["kazoo==2.10.0", "redis[hiredis]>=5,<6", "six"] {
            assert!(is_requirement(ok), "{ok}");
        }
        for bad in [
            "--index-url=http://x",
            "git+https://x",
            "./local",
            "a;rm -rf /",
            "",
        ] {
            assert!(!is_requirement(bad), "{bad}");
        }
    }

    #[test]
    fn the_venv_depends_on_the_set_of_requirements_only() {
        let a = venv_name(&["b==1".into(), "a==2".into()]);
        assert_eq!(a, venv_name(&["a==2".into(), "b==1".into()]));
        assert_ne!(a, venv_name(&["a==3".into(), "b==1".into()]));
    }
}
