//! Readings: what a history's operations mean where the tools that write histories
//! disagree. Every reading takes an op's type the same way (`ok` happened once, between
//! its invoke and its completion; `info`, or an invoke never completed, may have happened
//! once at any point after its invoke, or never); they differ on two things:
//!
//! - an `ok` read that returned nil: "saw nil" (the register held nil: it was never
//!   written, or nil was written), or "value unknown" (legal in any state);
//! - a `fail` cas: "did not happen", or "happened, and saw a value other than `from`".
//!
//! A reading sets [`ModelSpec::nil_read_any`] and [`ModelSpec::cas_fail_observed`]; each
//! history [`Format`] has the reading its writers mean ([`Reading::for_format`]).

use std::fmt;
use std::str::FromStr;

use crate::format::Format;
use crate::model::ModelSpec;

/// A named set of semantics for a history's ops. See the module comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reading {
    /// Knossos's models (`knossos.model/register`, `cas-register`, `multi-register`) and
    /// Jepsen's op types, the meaning of a Jepsen `history.edn` or text log:
    /// - an `ok` read whose value is nil is legal in any state and changes nothing
    ///   (Knossos: `(or (nil? (:value op)) (= value (:value op)))`): Jepsen clients record
    ///   a read they know nothing about as nil. For kv, per key (as `multi-register`).
    /// - a `fail` op of any kind did not happen and is dropped
    ///   (`knossos.history/without-failures`), a failed cas included.
    /// - an `info` op, or an invoke with no completion, may take effect once at any point
    ///   after its invoke, or never, with its invoke's value.
    /// - a cas `[from to]` takes effect only in state `from`, and then sets `to`.
    ///
    /// One difference is left: Knossos takes an `ok` write's or cas's value from its
    /// completion (`knossos.history/complete`), the models here from its invoke. Jepsen's
    /// clients complete a write or cas with the value they invoked it with, so the two
    /// agree on Jepsen's histories; one whose completion names another value is read as
    /// its invoke says.
    Knossos,
    /// faultline's own JSONL histories: as Knossos, except that an `ok` read of nil saw
    /// nil, the value of a register never written (or written nil). Our clients record
    /// "key not found" as nil, so a stale read of a never-written key is caught.
    Faultline,
    /// Porcupine's etcd model (its tests on Jepsen's etcd logs): an `ok` read of nil saw
    /// nil ("key does not exist"), as faultline's; and a `fail` cas happened, atomically,
    /// and saw a value other than `from` (etcd answered "compare failed"), so it must fit
    /// a state other than `from` at some point between its invoke and its completion.
    Porcupine,
}

impl Reading {
    pub const ALL: [Reading; 3] = [Reading::Knossos, Reading::Faultline, Reading::Porcupine];
    pub const NAMES: &'static str = "knossos, faultline, porcupine";

    pub fn as_str(self) -> &'static str {
        match self {
            Reading::Knossos => "knossos",
            Reading::Faultline => "faultline",
            Reading::Porcupine => "porcupine",
        }
    }

    /// The reading a history in `format` means: Knossos's for Jepsen's formats (EDN and
    /// text logs), faultline's for faultline JSONL. `Auto` is read as JSONL, so it gets
    /// faultline's; detect the format first (`format::read_path_and_format`).
    pub fn for_format(format: Format) -> Reading {
        match format {
            Format::Edn | Format::JepsenLog => Reading::Knossos,
            Format::Jsonl | Format::Auto => Reading::Faultline,
        }
    }

    /// Whether an `ok` read that returned nil is legal in any state.
    pub fn nil_read_any(self) -> bool {
        self == Reading::Knossos
    }

    /// Whether a `fail` cas took effect and saw a value other than its `from`.
    pub fn cas_fail_observed(self) -> bool {
        self == Reading::Porcupine
    }

    /// `spec` with this reading's semantics.
    pub fn apply(self, mut spec: ModelSpec) -> ModelSpec {
        spec.nil_read_any = self.nil_read_any();
        spec.cas_fail_observed = self.cas_fail_observed();
        spec
    }

    /// The reading whose semantics `spec` has, if one has exactly them.
    pub fn of(spec: &ModelSpec) -> Option<Reading> {
        Reading::ALL.into_iter().find(|r| {
            r.nil_read_any() == spec.nil_read_any && r.cas_fail_observed() == spec.cas_fail_observed
        })
    }

    /// A name for the semantics of `spec`, checked starting from this reading: the name of
    /// the reading that has exactly them, else this reading's name and the flags that
    /// were turned on, e.g. `knossos+cas-fail-observed`.
    pub fn describe(self, spec: &ModelSpec) -> String {
        if let Some(r) = Reading::of(spec) {
            return r.as_str().to_string();
        }
        let mut name = self.as_str().to_string();
        if spec.nil_read_any && !self.nil_read_any() {
            name.push_str("+nil-read-any");
        }
        if spec.cas_fail_observed && !self.cas_fail_observed() {
            name.push_str("+cas-fail-observed");
        }
        name
    }
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown reading name.
#[derive(Debug, thiserror::Error)]
#[error("unknown reading {0:?}: expected one of {names}", names = Reading::NAMES)]
pub struct UnknownReading(pub String);

impl FromStr for Reading {
    type Err = UnknownReading;

    fn from_str(s: &str) -> Result<Reading, UnknownReading> {
        Reading::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReading(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelKind;

    #[test]
    fn names_round_trip() {
        for r in Reading::ALL {
            assert_eq!(r.to_string().parse::<Reading>().unwrap(), r);
        }
        let e = "jepsen".parse::<Reading>().unwrap_err().to_string();
        assert!(e.contains("knossos, faultline, porcupine"), "{e}");
    }

    #[test]
    fn each_format_has_its_writers_reading() {
        assert_eq!(Reading::for_format(Format::Edn), Reading::Knossos);
        assert_eq!(Reading::for_format(Format::JepsenLog), Reading::Knossos);
        assert_eq!(Reading::for_format(Format::Jsonl), Reading::Faultline);
        assert_eq!(Reading::for_format(Format::Auto), Reading::Faultline);
    }

    #[test]
    fn a_reading_sets_both_flags_and_is_named_back() {
        let spec = ModelSpec::new(ModelKind::CasRegister);
        for r in Reading::ALL {
            let s = r.apply(spec.clone());
            assert_eq!(Reading::of(&s), Some(r));
            for base in Reading::ALL {
                assert_eq!(base.describe(&s), r.as_str());
            }
        }
        let k = Reading::Knossos.apply(spec.clone());
        assert!(k.nil_read_any && !k.cas_fail_observed);
        let f = Reading::Faultline.apply(spec.clone());
        assert!(!f.nil_read_any && !f.cas_fail_observed);
        let p = Reading::Porcupine.apply(spec);
        assert!(!p.nil_read_any && p.cas_fail_observed);

        let mut both = k;
        both.cas_fail_observed = true;
        assert_eq!(Reading::of(&both), None);
        assert_eq!(
            Reading::Knossos.describe(&both),
            "knossos+cas-fail-observed"
        );
        assert_eq!(Reading::Porcupine.describe(&both), "porcupine+nil-read-any");
    }
}
