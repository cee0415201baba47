//! `RunDir`: one run's results folder, `results/<test>/<YYYYmmddTHHMMSS>/`, and the
//! `latest` links (`results/latest` and `results/<test>/latest`) that point at it.
//!
//! The folder and `config.json` are written before anything else happens, so even a run
//! that fails to start (or is killed) leaves a folder saying what it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::config::TestConfig;

/// Runs started in the same second get `-2`, `-3`, ... suffixes, up to this many.
const MAX_SAME_SECOND: u32 = 100;

/// A results-folder I/O failure, naming the path. The I/O error is part of the message,
/// not a source of its own, so a chain of errors prints it once.
#[derive(Debug, thiserror::Error)]
#[error("the results folder {}: {cause}", path.display())]
pub struct ResultsError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError + '_ {
    move |cause| ResultsError {
        path: path.to_path_buf(),
        cause,
    }
}

/// `YYYYmmddTHHMMSS` in UTC for a Unix time.
pub fn timestamp(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// One run's folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `<results>/<test>/<timestamp>/`, writes `config.json` and points the
    /// `latest` links at it.
    pub fn create(config: &TestConfig) -> Result<RunDir, ResultsError> {
        let test_dir = config.results_dir.join(config.test_name());
        std::fs::create_dir_all(&test_dir).map_err(at(&test_dir))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let stamp = timestamp(now);
        let mut path = test_dir.join(&stamp);
        let mut n = 1;
        // create_dir (not _all) fails if it exists: two runs never share a folder.
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < MAX_SAME_SECOND => {
                    n += 1;
                    path = test_dir.join(format!("{stamp}-{n}"));
                }
                Err(e) => return Err(at(&path)(e)),
            }
        }
        let dir = RunDir { path };
        dir.write_json("config.json", config)?;
        // A target described by a file: the file as this run read it, beside the config, so
        // the run can be understood (and repeated) after the target's folder changes.
        if let crate::target::Target::File(file) = &config.target {
            if let Ok(t) = crate::target::file::TargetFile::load(file) {
                let copy = dir.path.join("target.toml");
                std::fs::write(&copy, &t.text).map_err(at(&copy))?;
                dir.log(&format!(
                    "target {} from {}: {}",
                    t.name,
                    t.folder.display(),
                    t.about
                ));
            }
        }
        // A run killed while writing a file (SIGKILL) left its temporary copy behind: the
        // next run of the test removes it from the folder `latest` still points at.
        if let Ok(previous) = std::fs::read_link(test_dir.join("latest")) {
            remove_stale_temporaries(&test_dir.join(previous));
        }
        remove_stale_temporaries(&test_dir);
        remove_stale_temporaries(&config.results_dir);
        // Links are a convenience: a failure to make them does not stop the run.
        let name = dir.path.file_name().map(PathBuf::from).unwrap_or_default();
        if let Err(e) = relink(&test_dir.join("latest"), &name) {
            tracing::warn!("could not update latest link: {e}");
        }
        let rel = Path::new(&config.test_name()).join(&name);
        if let Err(e) = relink(&config.results_dir.join("latest"), &rel) {
            tracing::warn!("could not update latest link: {e}");
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn history(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }

    pub fn nodes(&self) -> PathBuf {
        self.path.join("nodes")
    }

    /// Writes `name` as pretty JSON, via a temporary file and a rename so a reader never
    /// sees half a file.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), ResultsError> {
        let path = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            serde_json::to_writer_pretty(&mut f, value).map_err(std::io::Error::other)?;
            f.write_all(b"\n")?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(at(&path))
    }

    /// Appends a line to the run's `faultline.log` (phases and problems, for a person
    /// reading the folder later). Best effort: a log line is never worth failing a run.
    pub fn log(&self, line: &str) {
        let path = self.path.join("faultline.log");
        let res = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                writeln!(f, "{} {line}", timestamp(now.as_secs()))
            });
        if let Err(e) = res {
            tracing::warn!("{}: {e}", path.display());
        }
    }
}

/// A temporary file (`.<name>.tmp`, written then renamed over `<name>`) older than this
/// belongs to a writer that died: a write takes milliseconds.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the stale temporary files (and temporary `latest` links) directly in `dir`. One
/// younger than [`STALE_TEMPORARY`] may be a live writer's (another run of the same test)
/// and is left alone.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMPORARY);
        if stale {
            match std::fs::remove_file(e.path()) {
                Ok(()) => tracing::info!("removed {}, left by a run that died", e.path().display()),
                Err(err) => tracing::warn!("{}: {err}", e.path().display()),
            }
        }
    }
}

/// Points symlink `link` at `target`, replacing an existing link atomically (a temporary
/// link renamed over it). Refuses to replace anything that is not a symlink.
fn relink(link: &Path, target: &Path) -> std::io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if !meta.file_type().is_symlink() {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a symlink",
                link.display()
            )));
        }
    }
    let tmp = link.with_file_name(format!(".latest.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(0), "19700101T000000");
        // 2026-11-23 11:30:05 UTC
        assert_eq!(timestamp(1_795_433_405), "20261123T113005");
        // Leap day.
        assert_eq!(timestamp(951_782_400), "20000229T000000");
    }

    #[test]
    fn creates_folder_config_and_latest_links() {
        let root = tempfile::tempdir().unwrap();
        let config = TestConfig {
            results_dir: root.path().to_path_buf(),
            seed: 5,
            ..TestConfig::default()
        };
        let a = RunDir::create(&config).unwrap();
        let b = RunDir::create(&config).unwrap();
        assert_ne!(a.path(), b.path(), "same-second runs get distinct folders");
        let saved: TestConfig =
            serde_json::from_slice(&std::fs::read(a.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(saved, config);
        let latest = root.path().join("latest");
        assert_eq!(
            std::fs::canonicalize(&latest).unwrap(),
            std::fs::canonicalize(b.path()).unwrap()
        );
        let test_latest = root.path().join("raftkv-register").join("latest");
        assert_eq!(
            std::fs::canonicalize(test_latest).unwrap(),
            std::fs::canonicalize(b.path()).unwrap()
        );
        // A temporary file a killed run left in the latest folder goes; a fresh one stays.
        let old = b.path().join(".results.json.tmp");
        let fresh = b.path().join(".report.html.tmp");
        std::fs::write(&old, "half").unwrap();
        std::fs::write(&fresh, "half").unwrap();
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let c = RunDir::create(&config).unwrap();
        assert!(!old.exists(), "the stale temporary file was removed");
        assert!(fresh.exists(), "a fresh one may be a live writer's");
        c.log("phase one");
        let log = std::fs::read_to_string(c.path().join("faultline.log")).unwrap();
        assert!(log.ends_with(" phase one\n"), "{log}");
    }
}
