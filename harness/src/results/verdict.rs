//! [`Verdict`]: what a run or a check concluded, and the one mapping from verdict to exit
//! code that every subcommand uses.

use serde::{Deserialize, Serialize};

/// A run's or a check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    /// The run itself failed (cluster did not start, bad input, history unreadable...).
    Error,
}

impl Verdict {
    /// 0 valid, 1 invalid, 2 unknown, 3 error (DESIGN.md).
    pub const fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
            Verdict::Error => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
        }
    }

    /// The verdict of several (a folder of histories, a batch of runs): `invalid` over a
    /// failed input over `unknown` over `valid`, so a gate fails on a violation first.
    pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let rank = |v: Verdict| match v {
            Verdict::Valid => 0,
            Verdict::Unknown => 1,
            Verdict::Error => 2,
            Verdict::Invalid => 3,
        };
        verdicts
            .into_iter()
            .max_by_key(|v| rank(*v))
            .unwrap_or(Verdict::Valid)
    }
}

impl From<&faultline_checker::Verdict> for Verdict {
    fn from(v: &faultline_checker::Verdict) -> Verdict {
        match v {
            faultline_checker::Verdict::Valid => Verdict::Valid,
            faultline_checker::Verdict::Invalid(_) => Verdict::Invalid,
            faultline_checker::Verdict::Unknown { .. } => Verdict::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_the_worst_of_many() {
        let all = [
            Verdict::Valid,
            Verdict::Invalid,
            Verdict::Unknown,
            Verdict::Error,
        ];
        assert_eq!(all.map(Verdict::exit_code), [0, 1, 2, 3]);
        assert_eq!(Verdict::worst([]), Verdict::Valid);
        assert_eq!(
            Verdict::worst([Verdict::Valid, Verdict::Unknown]),
            Verdict::Unknown
        );
        assert_eq!(
            Verdict::worst([Verdict::Unknown, Verdict::Error]),
            Verdict::Error
        );
        assert_eq!(
            Verdict::worst([Verdict::Error, Verdict::Invalid, Verdict::Valid]),
            Verdict::Invalid
        );
        assert_eq!(
            serde_json::to_string(&Verdict::Unknown).unwrap(),
            "\"unknown\""
        );
    }
}
