//! Programs installed from a package (etcd from Debian's `etcd-server`): the local backend
//! runs the first one on the PATH. The node image has them from its package list.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::build::BuildError;

/// The executable named `name` on `path` (a PATH value), if any.
pub fn find_on_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `name` on this process's PATH; the error says what is missing and `install`, how to
/// get it.
pub fn find(name: &str, install: &str) -> Result<PathBuf, BuildError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_on_path(name, &path).ok_or_else(|| BuildError::NotFound {
        what: format!(
            "the local backend runs the {name} on the PATH, and there is none (PATH={})",
            path.to_string_lossy()
        ),
        hint: format!("install it ({install}) or use --backend docker"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_only_where_an_executable_is() {
        let dir = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let etcd = dir.path().join("etcd");
        std::fs::write(&etcd, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([empty.path(), dir.path()]).unwrap();
        // Not executable yet: not a program to run.
        assert_eq!(find_on_path("etcd", &path), None);
        std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path("etcd", &path), Some(etcd));
        assert_eq!(find_on_path("etcd", empty.path().as_os_str()), None);
    }
}
