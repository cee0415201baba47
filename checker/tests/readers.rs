//! Readers against the corpus and against hostile input: every corpus file reads and pairs;
//! no byte string, random text or mutation of a valid history makes any reader panic; and
//! JSONL written by the writer reads back equal.

use std::path::{Path, PathBuf};

use faultline_checker::format::{self, Format};
use faultline_checker::{Event, EventType, Process, Value};
use proptest::prelude::*;

const FORMATS: [Format; 4] = [Format::Auto, Format::Jsonl, Format::Edn, Format::JepsenLog];

/// Porcupine's histories, part of the repository (`tests/data/porcupine`).
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine")
}

/// Every file named in the corpus manifest reads with auto-detection into a history whose
/// invokes and completions pair up.
#[test]
fn every_corpus_file_reads() {
    let dir = corpus_dir();
    let manifest = std::fs::read_to_string(dir.join("verdicts.tsv")).unwrap();
    let mut files = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let name = line.split('\t').next().unwrap();
        let path = dir.join(name);
        let h = format::read_path(&path, Format::Auto)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!h.events.is_empty(), "{name}: no events");
        assert_eq!(h.events.len(), h.lines.len());
        let ops = h.ops().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!ops.is_empty(), "{name}: no ops");
        let expected = if name.ends_with(".log") {
            Format::JepsenLog
        } else {
            Format::Edn
        };
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(format::detect(&text, None).unwrap(), expected, "{name}");
        files += 1;
    }
    assert!(files >= 50, "only {files} corpus files listed");
}

/// Timed-out completions in the etcd logs carry the invoke's value and the error.
#[test]
fn etcd_timeouts_become_info_with_error() {
    let h = format::read_path(&corpus_dir().join("etcd/etcd_000.log"), Format::Auto).unwrap();
    let ops = h.ops().unwrap();
    let timed_out: Vec<_> = ops
        .iter()
        .filter(|o| o.error.as_deref() == Some("timed-out"))
        .collect();
    assert!(!timed_out.is_empty());
    for op in timed_out {
        assert_eq!(op.outcome, faultline_checker::Outcome::Info, "{op}");
        if op.f != "read" {
            assert!(!op.value.is_null(), "{op}");
        }
    }
}

/// Converting a corpus log to JSONL and back gives the same events.
#[test]
fn corpus_round_trips_through_jsonl() {
    let dir = corpus_dir();
    for name in ["etcd/etcd_000.log", "kv/c10-ok.txt"] {
        let h = format::read_path(&dir.join(name), Format::Auto).unwrap();
        let mut buf = Vec::new();
        format::write_jsonl(&mut buf, &h.events).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let back = format::read_str(&text, None, Format::Auto).unwrap();
        assert_eq!(back.events, h.events, "{name}");
    }
}

fn run_all_readers(text: &str) {
    for f in FORMATS {
        // Errors are fine; panics (and stack overflows) are not. A history that reads
        // must also pair without panicking.
        if let Ok(h) = format::read_str(text, Some(Path::new("fuzz")), f) {
            assert_eq!(h.events.len(), h.lines.len());
            let _ = h.ops();
        }
    }
}

const SEEDS: [&str; 3] = [
    "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
     INFO  jepsen.util - 0\t:ok\t:read\t3\nINFO  jepsen.util - 2\t:info\t:cas\t:timed-out\n\
     INFO  jepsen.util - 3\t:fail\t:read\t:timed-out\n",
    "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
     [#jepsen.history.Op{:index 1 :time 5 :type :ok :process 0 :f :append :key \"0\" :value #{1 \\a 2.5 nil}}]\n\
     ; comment\n{:process :nemesis :type :info :f :start :value {:a [1 (2)]} :error \"x\\ny\"}\n",
    "{\"index\":0,\"time_ns\":12,\"process\":3,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k1\",\"value\":4}\n\
     {\"index\":1,\"time_ns\":19,\"process\":3,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k1\",\"value\":[4,{\"a\":null}]}\n\
     {\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":\"n1\",\"error\":\"\\u00e9\"}\n",
];

/// Characters that matter to the three grammars, so random text hits interesting paths.
fn syntax_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        r#"([\[\](){}#:;,"\\ \t\n0-9a-z.+\-_/NMé]|nil|true|:invoke|:ok|:info|:fail|jepsen.util - |\\u00|\{"process":|"type"){0,60}"#,
    )
    .unwrap()
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), syntax_text()).prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in muts {
        let len = chars.len().max(1);
        match m {
            Mutation::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Mutation::Insert(at, s) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, s.chars());
            }
            Mutation::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                if at < end {
                    let copy: Vec<char> = chars[at..end].to_vec();
                    chars.splice(end..end, copy);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        ".{0,8}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::btree_map(".{0,4}", inner, 0..3).prop_map(Value::Map),
        ]
    })
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            any::<u64>().prop_map(Process::Client),
            Just(Process::Nemesis)
        ],
        prop_oneof![
            Just(EventType::Invoke),
            Just(EventType::Ok),
            Just(EventType::Fail),
            Just(EventType::Info)
        ],
        "[a-z-]{1,8}",
        proptest::option::of(".{0,6}"),
        value(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(".{0,6}"),
    )
        .prop_map(|(process, kind, f, key, value, time_ns, error)| Event {
            index: 0,
            time_ns,
            process,
            kind,
            f,
            key,
            value,
            error,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        run_all_readers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn syntax_soup_never_panics(text in syntax_text()) {
        run_all_readers(&text);
    }

    #[test]
    fn mutated_histories_never_panic(
        seed in 0usize..SEEDS.len(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        run_all_readers(&apply(SEEDS[seed], &muts));
    }

    #[test]
    fn jsonl_round_trip(mut events in prop::collection::vec(event(), 0..12)) {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let mut buf = Vec::new();
        format::write_jsonl(&mut buf, &events).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let back = format::read_str(&text, None, Format::Jsonl).unwrap();
        prop_assert_eq!(back.events, events);
    }
}

#[test]
fn deep_nesting_in_every_format_is_an_error() {
    let deep = "[".repeat(200_000);
    for (text, own) in [
        (deep.clone(), Format::Edn),
        (
            format!("{{:process 0 :type :invoke :f :read :value {deep}}}"),
            Format::Edn,
        ),
        (
            format!("INFO  jepsen.util - 0\t:invoke\t:read\t{deep}"),
            Format::JepsenLog,
        ),
        (
            format!("{{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{deep}}}"),
            Format::Jsonl,
        ),
    ] {
        assert!(format::read_str(&text, None, own).is_err(), "{own}");
        assert!(
            format::read_str(&text, None, Format::Auto).is_err(),
            "auto for {own}"
        );
        // Read as another format it may or may not be an error, but must not crash.
        run_all_readers(&text);
    }
}
