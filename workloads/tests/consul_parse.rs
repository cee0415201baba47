//! `ConsulClient`'s parsing of Consul HTTP API bodies, from the documented shapes in
//! `tests/fixtures/consul/` (see its README: not recorded from a live agent, as no Consul
//! binary can be installed here). Parsing only: this is not a test of Consul.

use std::path::PathBuf;

use faultline_checker::Value;
use faultline_workloads::consul::{
    entry_value, parse_kv_entry, parse_leader_host, parse_session_id, txn_committed,
};

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/consul")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn kv_entries_give_value_indexes_and_holder() {
    let e = parse_kv_entry(&fixture("kv_get.json")).unwrap();
    assert_eq!(
        (e.key.as_str(), e.modify_index, e.lock_index),
        ("r0", 200, 0)
    );
    assert_eq!(e.session, None);
    assert_eq!(entry_value(Some(&e)), Value::Int(42));

    let lock = parse_kv_entry(&fixture("kv_get_locked.json")).unwrap();
    assert_eq!(lock.lock_index, 7);
    assert_eq!(
        lock.session.as_deref(),
        Some("adf4238a-882b-9ddc-4a9d-5b6758e4159e")
    );
    assert_eq!(entry_value(Some(&lock)), Value::Str("p4".into()));

    let empty = parse_kv_entry(&fixture("kv_get_no_value.json")).unwrap();
    assert_eq!(empty.value, None);
    assert_eq!(entry_value(Some(&empty)), Value::Null);
    assert_eq!(entry_value(None), Value::Null);
    assert!(parse_kv_entry(&serde_json::json!([])).is_none());
}

#[test]
fn sessions_transactions_and_leader() {
    assert_eq!(
        parse_session_id(&fixture("session_create.json")).as_deref(),
        Some("adf4238a-882b-9ddc-4a9d-5b6758e4159e")
    );
    assert!(txn_committed(200, &fixture("txn_committed.json")));
    assert!(!txn_committed(409, &fixture("txn_rolled_back.json")));
    assert_eq!(
        parse_leader_host(&fixture("status_leader.json")).as_deref(),
        Some("10.1.10.12")
    );
    assert_eq!(parse_leader_host(&fixture("status_no_leader.json")), None);
}
