//! `Checker`: the oracle of the simulation. It watches what nodes commit, apply, elect
//! and answer, and reports the first violation of a Raft safety property:
//! election safety, log matching, leader completeness, state machine safety, durability
//! of acknowledged writes and linearizability of reads.

use std::collections::BTreeMap;

use crate::raft::{Index, NodeId, Raft, Term};

/// A broken property, with enough detail to start debugging from the trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("election safety: term {term} has two leaders, {first} and {second}")]
    ElectionSafety {
        term: Term,
        first: NodeId,
        second: NodeId,
    },
    #[error("log matching: nodes {a} and {b} agree on the entry at {agree_at} but differ at {differ_at}")]
    LogMatching {
        a: NodeId,
        b: NodeId,
        agree_at: Index,
        differ_at: Index,
    },
    #[error("leader completeness: leader {leader} of term {term} lacks entry {index} (term {entry_term}) committed in term {committed_term}")]
    LeaderCompleteness {
        leader: NodeId,
        term: Term,
        index: Index,
        entry_term: Term,
        committed_term: Term,
    },
    #[error("committed entry changed: index {index} was committed with term {was}, node {node} now commits term {now}")]
    CommitChanged {
        index: Index,
        was: Term,
        node: NodeId,
        now: Term,
    },
    #[error("state machine safety: node {node} applied a different entry (term {term}) at index {index} than another node (term {other_term})")]
    StateMachineSafety {
        node: NodeId,
        index: Index,
        term: Term,
        other_term: Term,
    },
    #[error("acknowledged write lost: the write acknowledged at index {index} (term {acked_term}) was replaced by term {term} at node {node}")]
    AckedWriteLost {
        node: NodeId,
        index: Index,
        acked_term: Term,
        term: Term,
    },
    #[error("stale read at node {node}: read saw applied index {saw} but index {committed} was committed before the read began")]
    StaleRead {
        node: NodeId,
        saw: Index,
        committed: Index,
    },
    #[error("core contract: {0}")]
    Contract(String),
    #[error("liveness: no write committed on all nodes within {ticks} ticks after healing")]
    Liveness { ticks: u64 },
}

impl Violation {
    /// Short name of the broken property (used by tests that expect a specific one).
    pub fn property(&self) -> &'static str {
        match self {
            Violation::ElectionSafety { .. } => "election-safety",
            Violation::LogMatching { .. } => "log-matching",
            Violation::LeaderCompleteness { .. } => "leader-completeness",
            Violation::CommitChanged { .. } => "commit-changed",
            Violation::StateMachineSafety { .. } => "state-machine-safety",
            Violation::AckedWriteLost { .. } => "acked-write-lost",
            Violation::StaleRead { .. } => "stale-read",
            Violation::Contract(_) => "contract",
            Violation::Liveness { .. } => "liveness",
        }
    }
}

/// History-wide facts the checks compare against.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    /// Who led each term, over the whole run (across crashes).
    leaders: BTreeMap<Term, NodeId>,
    /// For each committed index: the entry term and the earliest term in which some node knew it committed.
    committed: BTreeMap<Index, (Term, Term)>,
    /// For each applied index: the entry term and the state machine digest after applying it.
    applied: BTreeMap<Index, (Term, u64)>,
    /// Writes acknowledged to clients: index -> term.
    acked: BTreeMap<Index, Term>,
    max_committed: Index,
}

impl Checker {
    /// Highest index any node has known to be committed.
    pub fn max_committed(&self) -> Index {
        self.max_committed
    }

    pub fn acked_count(&self) -> usize {
        self.acked.len()
    }

    /// `node` is leader of `term` now.
    pub fn on_leader(&mut self, raft: &Raft) -> Result<(), Violation> {
        let (node, term) = (raft.id(), raft.term());
        let first = *self.leaders.entry(term).or_insert(node);
        if first != node {
            return Err(Violation::ElectionSafety {
                term,
                first,
                second: node,
            });
        }
        // Leader completeness: everything known committed in an earlier term is in our log.
        for (&index, &(entry_term, committed_term)) in &self.committed {
            if committed_term >= term || index <= raft.snapshot_meta().index {
                continue;
            }
            if raft.log_term(index) != Some(entry_term) {
                return Err(Violation::LeaderCompleteness {
                    leader: node,
                    term,
                    index,
                    entry_term,
                    committed_term,
                });
            }
        }
        Ok(())
    }

    /// Record what `raft` knows to be committed in (`from`, commit index].
    pub fn on_commit(&mut self, raft: &Raft, from: Index) -> Result<(), Violation> {
        let lo = from.max(raft.snapshot_meta().index) + 1;
        for index in lo..=raft.commit_index() {
            let Some(term) = raft.log_term(index) else {
                return Err(Violation::Contract(format!(
                    "node {} commit {} beyond its log",
                    raft.id(),
                    index
                )));
            };
            match self.committed.get(&index) {
                Some(&(was, _)) if was != term => {
                    return Err(Violation::CommitChanged {
                        index,
                        was,
                        node: raft.id(),
                        now: term,
                    })
                }
                Some(_) => {}
                None => {
                    self.committed.insert(index, (term, raft.term()));
                }
            }
        }
        self.max_committed = self.max_committed.max(raft.commit_index());
        Ok(())
    }

    /// `node`'s state machine reached `digest` after applying (`index`, `term`).
    pub fn on_apply(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        digest: u64,
    ) -> Result<(), Violation> {
        if let Some(&acked_term) = self.acked.get(&index) {
            if acked_term != term {
                return Err(Violation::AckedWriteLost {
                    node,
                    index,
                    acked_term,
                    term,
                });
            }
        }
        let &mut (other_term, other_digest) = self.applied.entry(index).or_insert((term, digest));
        if other_digest != digest {
            return Err(Violation::StateMachineSafety {
                node,
                index,
                term,
                other_term,
            });
        }
        Ok(())
    }

    /// A client was told its write at (`index`, `term`) succeeded.
    pub fn on_ack(&mut self, node: NodeId, index: Index, term: Term) -> Result<(), Violation> {
        if let Some(&(applied_term, _)) = self.applied.get(&index) {
            if applied_term != term {
                return Err(Violation::AckedWriteLost {
                    node,
                    index,
                    acked_term: term,
                    term: applied_term,
                });
            }
        }
        self.acked.insert(index, term);
        Ok(())
    }

    /// A read registered when `required` was committed observed the state at `saw`.
    pub fn on_read(&self, node: NodeId, saw: Index, required: Index) -> Result<(), Violation> {
        if saw < required {
            return Err(Violation::StaleRead {
                node,
                saw,
                committed: required,
            });
        }
        Ok(())
    }

    /// Log matching between two live nodes: once they agree on (index, term), every
    /// earlier entry both hold must be identical.
    pub fn check_log_matching(a: &Raft, b: &Raft) -> Result<(), Violation> {
        let lo = a.first_index().max(b.first_index());
        let hi = a.last_index().min(b.last_index());
        let mut i = hi;
        while i >= lo && i > 0 {
            if a.log_term(i) == b.log_term(i) {
                let agree_at = i;
                let mut j = i;
                while j >= lo && j > 0 {
                    if a.log_entry(j) != b.log_entry(j) {
                        return Err(Violation::LogMatching {
                            a: a.id(),
                            b: b.id(),
                            agree_at,
                            differ_at: j,
                        });
                    }
                    j -= 1;
                }
                return Ok(());
            }
            i -= 1;
        }
        Ok(())
    }
}
