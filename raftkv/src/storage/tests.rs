//! Storage tests: durability across reopen, torn-tail recovery, truncation, compaction.

use super::*;
use std::fs;

fn ent(index: u64, term: u64) -> LogRecord {
    LogRecord {
        index,
        term,
        data: format!("cmd-{index}-{term}").into_bytes(),
    }
}

fn opts() -> WalOptions {
    WalOptions {
        fsync: true,
        lazy_write: false,
        segment_max_bytes: 1 << 20,
    }
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<_> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

#[test]
fn append_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, rec) = Storage::open(dir.path(), opts()).unwrap();
        assert_eq!(rec, Recovered::default());
        s.append(&(1..=10).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.set_hard_state(HardState {
            term: 1,
            vote: Some(2),
            commit: 8,
        })
        .unwrap();
        s.sync().unwrap();
    }
    let (mut s, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, (1..=10).map(|i| ent(i, 1)).collect::<Vec<_>>());
    assert_eq!(
        rec.hard_state,
        HardState {
            term: 1,
            vote: Some(2),
            commit: 8
        }
    );
    // Appending after reopen continues the same log.
    s.append(&[ent(11, 2)]).unwrap();
    s.sync().unwrap();
    drop(s);
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries.len(), 11);
}

#[test]
fn unsynced_records_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&[ent(1, 1)]).unwrap();
        s.sync().unwrap();
        s.append(&[ent(2, 1)]).unwrap();
    }
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, vec![ent(1, 1)]);
}

#[test]
fn conflicting_suffix_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&(1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.sync().unwrap();
        s.append(&[ent(3, 2), ent(4, 2)]).unwrap();
        s.sync().unwrap();
    }
    let (mut s, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(
        rec.entries,
        vec![ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]
    );
    s.truncate_from(2).unwrap();
    s.sync().unwrap();
    drop(s);
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, vec![ent(1, 1)]);
}

#[test]
fn torn_tail_at_every_byte_offset_of_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let base: Vec<_> = (1..=4).map(|i| ent(i, 1)).collect();
    let (seg, full, prefix_len) = {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&base).unwrap();
        s.sync().unwrap();
        let seg = only_segment(dir.path());
        let prefix_len = fs::metadata(&seg).unwrap().len() as usize;
        s.append(&[ent(5, 1)]).unwrap();
        s.sync().unwrap();
        let full = fs::read(&seg).unwrap();
        (seg, full, prefix_len)
    };
    for cut in prefix_len..full.len() {
        fs::write(&seg, &full[..cut]).unwrap();
        let (mut s, rec) = Storage::open(dir.path(), opts()).unwrap();
        assert_eq!(rec.entries, base, "cut at byte {cut}");
        // The torn bytes are gone from the file, and the log can grow again.
        assert_eq!(fs::metadata(&seg).unwrap().len() as usize, prefix_len);
        s.append(&[ent(5, 2)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
        assert_eq!(rec.entries.last(), Some(&ent(5, 2)));
    }
}

#[test]
fn flipped_byte_in_tail_is_cut_but_in_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&(1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.sync().unwrap();
    }
    let seg = only_segment(dir.path());
    let good = fs::read(&seg).unwrap();
    let mut tail = good.clone();
    let last = tail.len() - 2;
    tail[last] ^= 0xff;
    fs::write(&seg, &tail).unwrap();
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, (1..=4).map(|i| ent(i, 1)).collect::<Vec<_>>());

    let mut mid = good.clone();
    mid[12] ^= 0x01;
    fs::write(&seg, &mid).unwrap();
    let err = Storage::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)), "{err}");
}

#[test]
fn compaction_deletes_segments_and_reopen_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        fsync: true,
        lazy_write: false,
        segment_max_bytes: 256,
    };
    {
        let (mut s, _) = Storage::open(dir.path(), small).unwrap();
        for i in 1..=100 {
            s.append(&[ent(i, 1)]).unwrap();
            s.set_hard_state(HardState {
                term: 1,
                vote: Some(1),
                commit: i,
            })
            .unwrap();
            s.sync().unwrap();
        }
        let before = s.segment_count();
        assert!(before > 10, "{before} segments");
        s.save_snapshot(&Snapshot {
            index: 80,
            term: 1,
            meta: vec![],
            data: b"sm@80".to_vec(),
        })
        .unwrap();
        assert!(
            s.segment_count() < before / 2,
            "{} of {before}",
            s.segment_count()
        );
    }
    let (s, rec) = Storage::open(dir.path(), small).unwrap();
    assert_eq!(rec.snapshot.as_ref().map(|x| x.index), Some(80));
    assert_eq!(
        rec.entries,
        (81..=100).map(|i| ent(i, 1)).collect::<Vec<_>>()
    );
    assert_eq!(
        rec.hard_state,
        HardState {
            term: 1,
            vote: Some(1),
            commit: 100
        }
    );
    assert_eq!(s.snapshot_index(), 80);
}

#[test]
fn installed_snapshot_that_conflicts_discards_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&(1..=10).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.sync().unwrap();
        s.save_snapshot(&Snapshot {
            index: 5,
            term: 3,
            meta: vec![],
            data: vec![1],
        })
        .unwrap();
        s.append(&[ent(6, 3)]).unwrap();
        s.sync().unwrap();
    }
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.snapshot.unwrap().term, 3);
    assert_eq!(rec.entries, vec![ent(6, 3)]);
}

#[test]
fn installed_snapshot_ahead_of_log_then_new_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&(1..=3).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.sync().unwrap();
        s.save_snapshot(&Snapshot {
            index: 50,
            term: 2,
            meta: vec![],
            data: vec![],
        })
        .unwrap();
        s.append(&[ent(51, 2), ent(52, 2)]).unwrap();
        s.sync().unwrap();
    }
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, vec![ent(51, 2), ent(52, 2)]);
}

#[test]
fn matching_snapshot_keeps_the_suffix() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&(1..=10).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.sync().unwrap();
        s.save_snapshot(&Snapshot {
            index: 5,
            term: 1,
            meta: vec![],
            data: vec![],
        })
        .unwrap();
    }
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, (6..=10).map(|i| ent(i, 1)).collect::<Vec<_>>());
}

#[test]
fn crash_between_snapshot_file_and_mark_keeps_a_consistent_log() {
    // The snapshot file was written but the WAL mark was not: entries it covers are
    // dropped on open, the rest continue it.
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), opts()).unwrap();
        s.append(&(1..=10).map(|i| ent(i, 1)).collect::<Vec<_>>())
            .unwrap();
        s.sync().unwrap();
    }
    SnapshotFile::new(dir.path(), true)
        .unwrap()
        .save(&Snapshot {
            index: 5,
            term: 1,
            meta: vec![],
            data: vec![],
        })
        .unwrap();
    let (_, rec) = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(rec.entries, (6..=10).map(|i| ent(i, 1)).collect::<Vec<_>>());
}

#[test]
fn missing_middle_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        fsync: true,
        lazy_write: false,
        segment_max_bytes: 128,
    };
    {
        let (mut s, _) = Storage::open(dir.path(), small).unwrap();
        for i in 1..=30 {
            s.append(&[ent(i, 1)]).unwrap();
            s.sync().unwrap();
        }
    }
    let mut segs: Vec<_> = fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 4);
    fs::remove_file(&segs[2]).unwrap();
    assert!(matches!(
        Storage::open(dir.path(), small),
        Err(StorageError::Corrupt(_))
    ));
}

#[test]
fn every_synced_batch_is_fsynced_unless_the_no_fsync_bug_is_on() {
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let o = WalOptions {
            fsync,
            lazy_write: false,
            segment_max_bytes: 1 << 20,
        };
        let (mut s, _) = Storage::open(dir.path(), o).unwrap();
        for i in 1..=5 {
            s.append(&[ent(i, 1)]).unwrap();
            s.sync().unwrap();
        }
        // A sync with nothing queued needs no fsync.
        s.sync().unwrap();
        assert_eq!(s.fsync_count(), if fsync { 5 } else { 0 });
        drop(s);
        // Without a crash of the OS the data is still there either way.
        let (_, rec) = Storage::open(dir.path(), o).unwrap();
        assert_eq!(rec.entries.len(), 5);
    }
}

#[test]
fn no_fsync_bug_loses_synced_records_on_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let bug = WalOptions {
        fsync: false,
        lazy_write: true,
        segment_max_bytes: 1 << 20,
    };
    {
        let (mut s, _) = Storage::open(dir.path(), bug).unwrap();
        s.append(&[ent(1, 1)]).unwrap();
        s.set_hard_state(HardState {
            term: 1,
            vote: Some(1),
            commit: 1,
        })
        .unwrap();
        s.sync().unwrap();
        // "Crash" (kill -9): the process goes away without a flush.
    }
    let (mut s, rec) = Storage::open(dir.path(), bug).unwrap();
    assert!(rec.entries.is_empty(), "the synced entry should be lost");
    assert_eq!(rec.hard_state.vote, None, "the vote should be lost");
    // After the lazy interval, a sync does write (still without fsync).
    s.append(&[ent(1, 1)]).unwrap();
    std::thread::sleep(wal::LAZY_WRITE_INTERVAL);
    s.sync().unwrap();
    drop(s);
    let (_, rec) = Storage::open(dir.path(), bug).unwrap();
    assert_eq!(rec.entries, vec![ent(1, 1)]);
}

mod model {
    //! Property test: random appends (including overwrites of a suffix), hard-state
    //! updates, snapshots with compaction and reopens, against an in-memory model of what
    //! the log must contain. Small segments make rolling and segment deletion frequent.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Append {
            back: u8,
            n: u8,
        },
        HardState {
            vote: Option<u64>,
        },
        Snapshot {
            at: u8,
        },
        /// A leader's snapshot of a newer term at `last + 1 - back .. last + 3`: it never
        /// agrees with our log, so the whole log goes.
        Install {
            back: u8,
        },
        Reopen,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..4, 1u8..6).prop_map(|(back, n)| Step::Append { back, n }),
            1 => proptest::option::of(0u64..5).prop_map(|vote| Step::HardState { vote }),
            1 => any::<u8>().prop_map(|at| Step::Snapshot { at }),
            1 => (0u8..6).prop_map(|back| Step::Install { back }),
            1 => Just(Step::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn storage_matches_model(steps in proptest::collection::vec(step(), 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            let o = WalOptions { fsync: false, lazy_write: false,
        segment_max_bytes: 300 };
            let (mut s, _) = Storage::open(dir.path(), o).unwrap();
            let mut entries: Vec<LogRecord> = Vec::new();
            let mut snap = (0u64, 0u64);
            let mut hs = HardState::default();
            let mut term = 1u64;
            for st in steps {
                match st {
                    Step::Append { back, n } => {
                        let last = entries.last().map_or(snap.0, |e| e.index);
                        let start = last + 1 - u64::from(back).min(last - snap.0);
                        if start <= last {
                            // A new leader overwrites the suffix with a higher term.
                            term += 1;
                        }
                        let new: Vec<_> = (start..start + u64::from(n)).map(|i| ent(i, term)).collect();
                        entries.retain(|e| e.index < start);
                        entries.extend(new.iter().cloned());
                        s.append(&new).unwrap();
                        s.sync().unwrap();
                    }
                    Step::HardState { vote } => {
                        hs = HardState { term: hs.term + 1, vote, commit: hs.commit };
                        s.set_hard_state(hs).unwrap();
                        s.sync().unwrap();
                    }
                    Step::Snapshot { at } => {
                        if !entries.is_empty() {
                            let e = entries[usize::from(at) % entries.len()].clone();
                            s.save_snapshot(&Snapshot { index: e.index, term: e.term, meta: vec![], data: vec![] }).unwrap();
                            snap = (e.index, e.term);
                            entries.retain(|x| x.index > e.index);
                        }
                    }
                    Step::Install { back } => {
                        let last = entries.last().map_or(snap.0, |e| e.index);
                        let index = (last + 3).saturating_sub(u64::from(back)).max(snap.0 + 1);
                        term += 1;
                        s.save_snapshot(&Snapshot { index, term, meta: vec![], data: vec![] }).unwrap();
                        snap = (index, term);
                        entries.clear();
                    }
                    Step::Reopen => {
                        drop(s);
                        let (s2, rec) = Storage::open(dir.path(), o).unwrap();
                        s = s2;
                        prop_assert_eq!(&rec.entries, &entries);
                        prop_assert_eq!(rec.hard_state, hs);
                        prop_assert_eq!(rec.snapshot.map_or((0, 0), |x| (x.index, x.term)), snap);
                    }
                }
            }
            drop(s);
            let (_, rec) = Storage::open(dir.path(), o).unwrap();
            prop_assert_eq!(&rec.entries, &entries);
            prop_assert_eq!(rec.hard_state, hs);
        }
    }
}
