//! `Workload`: which kind of operations a test issues, by name (`register`, `kv`, `lock`),
//! and the key layout of each, which the harness needs for the final reads and to pick the
//! checker's model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The workloads faultline knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Reads, writes and compare-and-sets on a few registers at a time; registers are
    /// retired after a bounded number of operations so each key's history stays small
    /// enough for the linearizability search.
    #[default]
    Register,
    /// Reads, writes and compare-and-sets spread over many keys.
    Kv,
    /// Lock acquire with a lease, writes fenced with the lock's token, reads of the
    /// protected register, release.
    Lock,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Register, Workload::Kv, Workload::Lock];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Kv => "kv",
            Workload::Lock => "lock",
        }
    }

    /// The operations (`f` names) the workload issues, final reads included: what a
    /// client must support to run it.
    pub fn ops(self) -> &'static [&'static str] {
        match self {
            Workload::Register | Workload::Kv => &["read", "write", "cas"],
            Workload::Lock => &["acquire", "release", "fenced-write", "read"],
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown workload name.
#[derive(Debug, thiserror::Error)]
#[error("unknown workload {0:?}; expected one of: register, kv, lock")]
pub struct UnknownWorkload(pub String);

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Workload, UnknownWorkload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
            assert_eq!(
                serde_json::to_string(&w).unwrap(),
                format!("\"{}\"", w.name())
            );
        }
        let err = "bank".parse::<Workload>().unwrap_err().to_string();
        assert!(err.contains("register, kv, lock"), "{err}");
    }
}
