//! The in-memory view of a node's log: entries after the latest snapshot, plus the
//! commit and applied indexes. It mirrors what the runtime stored (every change here is
//! also emitted as a `Persist` by the core).

use super::types::{Entry, Index, SnapshotMeta, Term};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RaftLog {
    /// Last index/term covered by the snapshot (0/0 without one).
    pub snapshot: SnapshotMeta,
    /// Entries `snapshot.index + 1 ..= last_index()`.
    entries: Vec<Entry>,
    pub committed: Index,
    pub applied: Index,
}

impl RaftLog {
    pub fn new(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Self {
        RaftLog {
            snapshot,
            entries,
            committed: snapshot.index,
            applied: snapshot.index,
        }
    }

    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// Term at `index`, `None` if compacted away (below the snapshot) or beyond the end.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index < self.snapshot.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.first_index()) as usize].term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index < self.first_index() || index > self.last_index() {
            return None;
        }
        Some(&self.entries[(index - self.first_index()) as usize])
    }

    /// Entries in [lo, hi] (clamped to what is held in memory).
    pub fn slice(&self, lo: Index, hi: Index) -> &[Entry] {
        let lo = lo.max(self.first_index());
        let hi = hi.min(self.last_index());
        if lo > hi {
            return &[];
        }
        let a = (lo - self.first_index()) as usize;
        let b = (hi - self.first_index()) as usize;
        &self.entries[a..=b]
    }

    /// Entries from `lo` on, limited to `max_entries` and roughly `max_bytes` (always at least one).
    pub fn batch(&self, lo: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for e in self.slice(lo, self.last_index()) {
            if out.len() >= max_entries
                || (!out.is_empty() && bytes + e.data.size_bytes() > max_bytes)
            {
                break;
            }
            bytes += e.data.size_bytes();
            out.push(e.clone());
        }
        out
    }

    /// Is a log ending at (`last_index`, `last_term`) at least as up-to-date as ours (§5.4.1)?
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// The first index of the run of entries with the same term as `index`, walking back.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(term) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding an entry of `term`, if any (terms are non-decreasing in a log).
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        if self.snapshot.term == term && self.entries.first().is_none_or(|e| e.term != term) {
            return Some(self.snapshot.index);
        }
        self.entries
            .iter()
            .rev()
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Append one entry at the end.
    pub fn push(&mut self, e: Entry) {
        debug_assert_eq!(e.index, self.last_index() + 1);
        self.entries.push(e);
    }

    /// Drop entries with index >= `from`.
    pub fn truncate_from(&mut self, from: Index) {
        if from <= self.first_index() {
            self.entries.clear();
        } else if from <= self.last_index() {
            self.entries.truncate((from - self.first_index()) as usize);
        }
    }

    /// Drop entries up to and including `meta.index` and record the new snapshot point.
    /// Entries after it are kept only if the log holds `meta.index` with `meta.term`.
    pub fn compact_to(&mut self, meta: SnapshotMeta) {
        if self.term(meta.index) == Some(meta.term) {
            let keep_from = (meta.index + 1).max(self.first_index());
            let kept: Vec<Entry> = self.slice(keep_from, self.last_index()).to_vec();
            self.entries = kept;
        } else {
            self.entries.clear();
        }
        self.snapshot = meta;
        self.committed = self.committed.max(meta.index);
        self.applied = self.applied.max(meta.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::EntryData;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            data: EntryData::Noop,
        }
    }

    #[test]
    fn terms_slices_and_compaction() {
        let mut log = RaftLog::new(
            SnapshotMeta::default(),
            vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2), e(5, 3)],
        );
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.last_term(), 3);
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(6), None);
        assert_eq!(log.first_index_of_term_at(4), 3);
        assert_eq!(log.last_index_of_term(2), Some(4));
        assert_eq!(log.last_index_of_term(7), None);
        assert_eq!(log.slice(2, 3).len(), 2);
        assert!(log.is_up_to_date(1, 4));
        assert!(!log.is_up_to_date(9, 2));
        log.compact_to(SnapshotMeta { index: 3, term: 2 });
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(2), None);
        assert_eq!(log.last_index(), 5);
        log.truncate_from(5);
        assert_eq!(log.last_index(), 4);
        log.compact_to(SnapshotMeta { index: 9, term: 4 });
        assert_eq!(log.last_index(), 9);
        assert_eq!(log.committed, 9);
    }

    #[test]
    fn batch_respects_limits_but_sends_one() {
        let big = |i| Entry {
            index: i,
            term: 1,
            data: EntryData::Normal(vec![0; 100]),
        };
        let log = RaftLog::new(SnapshotMeta::default(), (1..=10).map(big).collect());
        assert_eq!(log.batch(1, 4, 1 << 20).len(), 4);
        assert_eq!(log.batch(1, 100, 250).len(), 2);
        assert_eq!(log.batch(1, 100, 10).len(), 1);
        assert_eq!(log.batch(11, 100, 10).len(), 0);
    }

    /// What the log should say, kept naively: every term by index plus the snapshot point.
    struct Oracle {
        terms: Vec<Term>,
        snap: (Index, Term),
    }

    impl Oracle {
        fn last(&self) -> Index {
            self.terms.len() as Index
        }
        fn term(&self, i: Index) -> Option<Term> {
            if i == self.snap.0 {
                Some(self.snap.1)
            } else if i < self.snap.0 || i > self.last() {
                None
            } else {
                Some(self.terms[(i - 1) as usize])
            }
        }
    }

    proptest::proptest! {
        /// Random appends, truncations and compactions agree with the naive oracle.
        #[test]
        fn matches_a_naive_oracle(ops in proptest::collection::vec((0u8..3, 0u64..1000, proptest::bool::ANY), 1..60)) {
            let mut log = RaftLog::new(SnapshotMeta::default(), Vec::new());
            let mut o = Oracle { terms: Vec::new(), snap: (0, 0) };
            for (op, x, flag) in ops {
                match op {
                    0 => {
                        let term = log.last_term() + x % 2;
                        log.push(e(log.last_index() + 1, term));
                        o.terms.push(term);
                    }
                    1 => {
                        let from = o.snap.0 + 1 + x % (o.last() - o.snap.0 + 1);
                        log.truncate_from(from);
                        o.terms.truncate((from - 1) as usize);
                    }
                    _ => {
                        if o.last() == o.snap.0 {
                            continue;
                        }
                        let at = o.snap.0 + 1 + x % (o.last() - o.snap.0);
                        let term = if flag { o.terms[(at - 1) as usize] } else { o.terms[(at - 1) as usize] + 100 };
                        log.compact_to(SnapshotMeta { index: at, term });
                        if !flag {
                            o.terms.truncate(at as usize);
                            o.terms[(at - 1) as usize] = term;
                        }
                        o.snap = (at, term);
                    }
                }
                proptest::prop_assert_eq!(log.last_index(), o.last());
                proptest::prop_assert_eq!(log.last_term(), o.term(o.last()).unwrap_or(0));
                for i in 0..=o.last() + 1 {
                    proptest::prop_assert_eq!(log.term(i), o.term(i), "term at {}", i);
                }
                for i in log.first_index()..=o.last() {
                    let mut first = i;
                    while first > log.first_index() && o.term(first - 1) == o.term(i) {
                        first -= 1;
                    }
                    proptest::prop_assert_eq!(log.first_index_of_term_at(i), first);
                }
                for t in 0..=log.last_term() + 1 {
                    let want = (o.snap.0..=o.last()).rev().find(|&i| o.term(i) == Some(t));
                    proptest::prop_assert_eq!(log.last_index_of_term(t), want, "last index of term {}", t);
                }
            }
        }
    }
}
