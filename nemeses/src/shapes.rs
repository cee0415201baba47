//! `Shapes`: what a run narrows each fault kind to (`--partition-shapes`, `--clock-skews`),
//! and the parser of those comma-separated name lists.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::ClockShape;
use crate::fault::PartitionShape;

/// Narrows what the nemesis draws within a fault kind, as Jepsen's nemesis package takes
/// targets per fault: a test aimed at one kind of bug can make the fault that exposes it
/// the only one drawn. An empty list means every shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shapes {
    pub partition: Vec<PartitionShape>,
    pub clock: Vec<ClockShape>,
}

impl Shapes {
    pub fn is_empty(&self) -> bool {
        self.partition.is_empty() && self.clock.is_empty()
    }
}

/// `partition: isolate-leader; clock: bump-back`, naming only the narrowed kinds (empty
/// when nothing is narrowed).
impl fmt::Display for Shapes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
        let mut parts = Vec::new();
        if !self.partition.is_empty() {
            parts.push(format!("partition: {}", list(&self.partition)));
        }
        if !self.clock.is_empty() {
            parts.push(format!("clock: {}", list(&self.clock)));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Parses a comma-separated list of the names of `all` (`what` names them in the error),
/// dropping repeats.
pub fn parse_names<T: Copy + PartialEq + fmt::Display>(
    s: &str,
    all: &[T],
    what: &str,
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some(&found) = all.iter().find(|x| x.to_string() == part) else {
            let known: Vec<String> = all.iter().map(ToString::to_string).collect();
            return Err(format!(
                "unknown {what} {part:?}; expected a comma-separated list of: {}",
                known.join(", ")
            ));
        };
        if !out.contains(&found) {
            out.push(found);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_lists_parse_and_name_the_known_ones() {
        assert_eq!(
            parse_names(
                "isolate-leader, one-way,isolate-leader",
                &PartitionShape::ALL,
                "x"
            ),
            Ok(vec![PartitionShape::IsolateLeader, PartitionShape::OneWay])
        );
        assert_eq!(
            parse_names("bump-back", &ClockShape::ALL, "clock skew"),
            Ok(vec![ClockShape::BumpBack])
        );
        let shapes = Shapes {
            partition: vec![PartitionShape::IsolateLeader, PartitionShape::Bridge],
            clock: vec![ClockShape::BumpBack],
        };
        assert_eq!(
            shapes.to_string(),
            "partition: isolate-leader, bridge; clock: bump-back"
        );
        assert_eq!(Shapes::default().to_string(), "");
        let err = parse_names("bump-back,sideways", &ClockShape::ALL, "clock skew").unwrap_err();
        assert!(
            err.contains("unknown clock skew \"sideways\"") && err.contains("strobe"),
            "{err}"
        );
    }
}
