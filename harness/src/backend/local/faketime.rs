//! Clock faults for local nodes: each node is started with libfaketime preloaded and its
//! own timestamp file, which `LocalCluster::clock` rewrites (content rendered by
//! `faultline_nemeses::clock::faketime_spec`, the same as the Docker backend's). Only the
//! wall clock is faked (`FAKETIME_DONT_FAKE_MONOTONIC=1`): faking `CLOCK_MONOTONIC` would
//! stall tokio's timers and raftkv's ticks. `FAKETIME_NO_CACHE=1` makes a running process
//! re-read the file on every clock call, so a fault takes hold at once.

use std::path::{Path, PathBuf};

/// Where Debian's `libfaketime` package puts the multi-threaded library (raftkv runs many
/// threads), per architecture; `FAULTLINE_LIBFAKETIME` overrides.
const CANDIDATES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
];

/// The libfaketime library to preload, or why there is none.
pub fn find_libfaketime() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FAULTLINE_LIBFAKETIME") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "FAULTLINE_LIBFAKETIME={} is not a file",
                path.display()
            ))
        };
    }
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "libfaketime is not installed (looked for {}); on Debian or Ubuntu: \
                 apt-get install libfaketime",
                CANDIDATES.join(", ")
            )
        })
}

/// The environment that preloads `library` and points it at `timestamp_file`.
pub fn env(library: &Path, timestamp_file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), library.display().to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE".into(),
            timestamp_file.display().to_string(),
        ),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// Replaces the timestamp file's content atomically (write a sibling, then rename), so a
/// node re-reading it mid-write never sees half a spec.
pub fn write_spec(timestamp_file: &Path, spec: &str) -> std::io::Result<()> {
    let tmp = timestamp_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{spec}\n"))?;
    std::fs::rename(&tmp, timestamp_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("faketime.rc");
        write_spec(&file, "+1.500").unwrap();
        write_spec(&file, "+0.000").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "+0.000\n");
        assert!(!file.with_extension("tmp").exists());
        let env = env(Path::new("/lib/x.so"), &file);
        assert!(env.contains(&("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into())));
        assert!(env.contains(&("FAKETIME_NO_CACHE".into(), "1".into())));
    }
}
