//! `Generator`: decides the next request of one client task, from a seeded RNG, the
//! workload and what this client has seen so far.
//!
//! One generator per client task; all generators of a run share a [`KeySpace`] so that
//! written values are unique across the run (a read then names exactly one write, which
//! keeps the checker's search small) and register keys rotate together.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use faultline_checker::{EventType, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::completion::{Completion, Lease};
use crate::request::Request;
use crate::workload::Workload;

/// Registers in use at once by the `register` workload.
pub const REGISTER_ACTIVE_KEYS: u64 = 3;
/// Operations issued on each group of active registers before moving to fresh ones. Bounds
/// the length of each key's history, hence the linearizability search's cost.
pub const REGISTER_OPS_PER_GROUP: u64 = 600;
/// Keys of the `kv` workload.
pub const KV_KEYS: u64 = 32;
/// Locks of the `lock` workload; each protects the register of the same name.
pub const LOCKS: u64 = 2;
/// Lease length the lock workload asks for. Long enough to hold across a few operations,
/// short enough that a client cut off by a partition loses its lease during the test.
pub const LOCK_TTL_MS: u64 = 3_000;
/// Operations a lock holder performs before releasing (at most).
const LOCK_MAX_OPS_HELD: u32 = 5;

/// State shared by all generators of one run.
#[derive(Debug)]
pub struct KeySpace {
    workload: Workload,
    next_value: AtomicI64,
    issued: AtomicU64,
}

impl KeySpace {
    pub fn new(workload: Workload) -> Arc<KeySpace> {
        Arc::new(KeySpace {
            workload,
            next_value: AtomicI64::new(1),
            issued: AtomicU64::new(0),
        })
    }

    pub fn workload(&self) -> Workload {
        self.workload
    }

    fn fresh_value(&self) -> i64 {
        self.next_value.fetch_add(1, Ordering::Relaxed)
    }

    /// Every register key a read or write may have touched so far: the keys the final
    /// reads must cover.
    pub fn keys_used(&self) -> Vec<String> {
        match self.workload {
            Workload::Register => {
                let issued = self.issued.load(Ordering::Relaxed);
                let groups = issued.div_ceil(REGISTER_OPS_PER_GROUP).max(1);
                (0..groups * REGISTER_ACTIVE_KEYS)
                    .map(|i| format!("r{i}"))
                    .collect()
            }
            Workload::Kv => (0..KV_KEYS).map(|i| format!("k{i}")).collect(),
            Workload::Lock => (0..LOCKS).map(|i| resource_key(&lock_name(i))).collect(),
        }
    }
}

fn lock_name(i: u64) -> String {
    format!("l{i}")
}

/// The register protected by lock `lock`: the key of the same name (raftkv keeps locks
/// and keys apart), which is how the fencing checker pairs writes with their lock.
pub fn resource_key(lock: &str) -> String {
    lock.to_string()
}

/// The lease a lock-workload client holds, and how many more operations it will do.
#[derive(Debug)]
struct Held {
    lease: Lease,
    ops_left: u32,
}

/// Next-request decisions for one client task.
#[derive(Debug)]
pub struct Generator {
    keys: Arc<KeySpace>,
    rng: StdRng,
    /// Last value this client saw per key (read or written), so that a cas usually names
    /// a value that may still be current and has a real chance to succeed.
    last_seen: HashMap<String, i64>,
    held: Option<Held>,
}

impl Generator {
    /// Generator of client task `worker` in a run seeded with `seed`.
    pub fn new(keys: Arc<KeySpace>, seed: u64, worker: u64) -> Generator {
        // Distinct, reproducible streams per worker (splitmix-style odd multiplier).
        let stream = seed ^ worker.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Generator {
            keys,
            rng: StdRng::seed_from_u64(stream),
            last_seen: HashMap::new(),
            held: None,
        }
    }

    /// The next request for logical process `process`.
    pub fn next_request(&mut self, process: u64) -> Request {
        match self.keys.workload {
            Workload::Register => {
                let n = self.keys.issued.fetch_add(1, Ordering::Relaxed);
                let group = n / REGISTER_OPS_PER_GROUP;
                let i =
                    group * REGISTER_ACTIVE_KEYS + self.rng.random_range(0..REGISTER_ACTIVE_KEYS);
                self.read_write_cas(format!("r{i}"), [40, 30, 30])
            }
            Workload::Kv => {
                self.keys.issued.fetch_add(1, Ordering::Relaxed);
                let key = format!("k{}", self.rng.random_range(0..KV_KEYS));
                self.read_write_cas(key, [50, 35, 15])
            }
            Workload::Lock => {
                self.keys.issued.fetch_add(1, Ordering::Relaxed);
                self.lock_request(process)
            }
        }
    }

    /// A read, write or cas on `key` with the given percentage weights.
    fn read_write_cas(&mut self, key: String, weights: [u32; 3]) -> Request {
        let roll = self.rng.random_range(0..weights.iter().sum::<u32>());
        if roll < weights[0] {
            Request::Read { key }
        } else if roll < weights[0] + weights[1] {
            Request::Write {
                key,
                value: self.keys.fresh_value(),
            }
        } else {
            let from = match self.last_seen.get(&key) {
                Some(v) => *v,
                // Nothing seen yet: any earlier value may be current; a miss is a cheap fail.
                None => self
                    .rng
                    .random_range(1..=self.keys.next_value.load(Ordering::Relaxed).max(1)),
            };
            Request::Cas {
                key,
                from,
                to: self.keys.fresh_value(),
            }
        }
    }

    fn lock_request(&mut self, process: u64) -> Request {
        match &mut self.held {
            None => {
                let lock = lock_name(self.rng.random_range(0..LOCKS));
                Request::Acquire {
                    lock,
                    owner: format!("p{process}"),
                    ttl_ms: LOCK_TTL_MS,
                }
            }
            Some(held) if held.ops_left == 0 => Request::Release {
                lock: held.lease.lock.clone(),
                token: held.lease.token,
                lease_id: held.lease.lease_id,
            },
            Some(held) => {
                held.ops_left -= 1;
                let key = resource_key(&held.lease.lock);
                if self.rng.random_range(0..100) < 25 {
                    Request::Read { key }
                } else {
                    Request::FencedWrite {
                        key,
                        token: held.lease.token,
                        value: self.keys.fresh_value(),
                    }
                }
            }
        }
    }

    /// Tells the generator how `request` ended, so later requests follow from it.
    pub fn observe(&mut self, request: &Request, completion: &Completion) {
        let ok = completion.kind == EventType::Ok;
        match request {
            Request::Read { key } if ok => {
                if let Value::Int(v) = completion.value {
                    self.last_seen.insert(key.clone(), v);
                }
            }
            Request::Write { key, value } | Request::FencedWrite { key, value, .. } if ok => {
                self.last_seen.insert(key.clone(), *value);
            }
            Request::Cas { key, to, .. } if ok => {
                self.last_seen.insert(key.clone(), *to);
            }
            Request::Acquire { .. } => {
                if let (true, Some(lease)) = (ok, completion.lease.clone()) {
                    let ops_left = self.rng.random_range(1..=LOCK_MAX_OPS_HELD);
                    self.held = Some(Held { lease, ops_left });
                }
            }
            // A rejected fenced write means a newer holder exists: our lease is gone. A
            // write whose outcome is unknown (`info`) tells the client nothing about its
            // lease, so it goes on as the holder (under its next process number), as an
            // application retrying after a timeout would; only fencing stops its writes if
            // the lease expired meanwhile.
            Request::FencedWrite { .. } if completion.error.as_deref() == Some("stale-token") => {
                self.held = None;
            }
            // Released, or the release was refused (the lease had expired): either way we
            // no longer hold it. An `info` release is treated the same; the lease expires.
            Request::Release { .. } => self.held = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ok_acquire(lock: &str, token: i64) -> Completion {
        let mut c = Completion::ok(Value::Int(token));
        c.lease = Some(Lease {
            lock: lock.to_string(),
            token,
            lease_id: 100 + token,
        });
        c
    }

    #[test]
    fn register_values_are_unique_across_generators() {
        let keys = KeySpace::new(Workload::Register);
        let mut gens: Vec<Generator> = (0..4).map(|w| Generator::new(keys.clone(), 7, w)).collect();
        let mut written = HashSet::new();
        for i in 0..2_000 {
            let g = &mut gens[i % 4];
            match g.next_request(i as u64 % 4) {
                Request::Write { value, .. } => assert!(written.insert(value), "dup {value}"),
                Request::Cas { to, .. } => assert!(written.insert(to), "dup {to}"),
                Request::Read { .. } => {}
                other => panic!("register workload issued {other:?}"),
            }
        }
        assert!(written.len() > 500);
    }

    #[test]
    fn register_keys_rotate_in_bounded_groups() {
        let keys = KeySpace::new(Workload::Register);
        let mut g = Generator::new(keys.clone(), 1, 0);
        let mut per_key: HashMap<String, u64> = HashMap::new();
        let total = REGISTER_OPS_PER_GROUP * 4;
        for _ in 0..total {
            *per_key
                .entry(g.next_request(0).key().to_string())
                .or_default() += 1;
        }
        // Each key belongs to one group, so it gets at most one group's operations.
        assert!(per_key.values().all(|&n| n <= REGISTER_OPS_PER_GROUP));
        assert_eq!(per_key.len() as u64, 4 * REGISTER_ACTIVE_KEYS);
        let used: HashSet<String> = keys.keys_used().into_iter().collect();
        assert!(per_key.keys().all(|k| used.contains(k)));
    }

    #[test]
    fn same_seed_same_requests() {
        let a = KeySpace::new(Workload::Kv);
        let b = KeySpace::new(Workload::Kv);
        let mut ga = Generator::new(a, 42, 3);
        let mut gb = Generator::new(b, 42, 3);
        for _ in 0..100 {
            assert_eq!(ga.next_request(3), gb.next_request(3));
        }
    }

    #[test]
    fn cas_names_the_last_value_seen() {
        let keys = KeySpace::new(Workload::Kv);
        let mut g = Generator::new(keys, 5, 0);
        // Teach it a value for every key, then every cas must name it.
        for i in 0..KV_KEYS {
            let key = format!("k{i}");
            g.observe(
                &Request::Read { key: key.clone() },
                &Completion::ok(Value::Int(1000 + i as i64)),
            );
        }
        let mut cases = 0;
        for _ in 0..500 {
            if let Request::Cas { key, from, .. } = g.next_request(0) {
                let i: i64 = key[1..].parse().unwrap();
                assert_eq!(from, 1000 + i);
                cases += 1;
            }
        }
        assert!(cases > 20);
    }

    #[test]
    fn lock_client_acquires_writes_with_its_token_then_releases() {
        let keys = KeySpace::new(Workload::Lock);
        let mut g = Generator::new(keys, 9, 0);
        let Request::Acquire {
            lock,
            owner,
            ttl_ms,
        } = g.next_request(4)
        else {
            panic!("first lock op must be acquire");
        };
        assert_eq!(owner, "p4");
        assert_eq!(ttl_ms, LOCK_TTL_MS);
        // Refused: it tries to acquire again.
        let acq = Request::Acquire {
            lock: lock.clone(),
            owner,
            ttl_ms,
        };
        g.observe(&acq, &Completion::fail(Value::Null, "lock-held"));
        assert!(matches!(g.next_request(4), Request::Acquire { .. }));
        g.observe(&acq, &ok_acquire(&lock, 17));
        let mut released = false;
        for _ in 0..=LOCK_MAX_OPS_HELD {
            let r = g.next_request(4);
            match &r {
                Request::FencedWrite { key, token, .. } => {
                    assert_eq!(*token, 17);
                    assert_eq!(key, &resource_key(&lock));
                }
                Request::Read { key } => assert_eq!(key, &resource_key(&lock)),
                Request::Release {
                    token, lease_id, ..
                } => {
                    assert_eq!((*token, *lease_id), (17, 117));
                    g.observe(&r, &Completion::ok(Value::Int(17)));
                    released = true;
                    break;
                }
                other => panic!("unexpected {other:?} while holding"),
            }
            g.observe(&r, &Completion::ok(r.invoke_value()));
        }
        assert!(
            released,
            "holder must release within {LOCK_MAX_OPS_HELD} ops"
        );
        assert!(matches!(g.next_request(4), Request::Acquire { .. }));
    }

    /// A lock client that holds token 5 and whose fenced write ended as `outcome`, and the
    /// lock it held.
    fn holder_after_write(outcome: fn(Value) -> Completion) -> (Generator, String) {
        let keys = KeySpace::new(Workload::Lock);
        let mut g = Generator::new(keys, 3, 1);
        let acq = g.next_request(1);
        g.observe(&acq, &ok_acquire(acq.key(), 5));
        let fw = Request::FencedWrite {
            key: resource_key(acq.key()),
            token: 5,
            value: 1,
        };
        g.observe(&fw, &outcome(fw.invoke_value()));
        (g, acq.key().to_string())
    }

    #[test]
    fn a_stale_token_drops_the_lease() {
        let (mut g, _) = holder_after_write(|v| Completion::fail(v, "stale-token"));
        assert!(matches!(g.next_request(1), Request::Acquire { .. }));
    }

    #[test]
    fn a_write_with_an_unknown_outcome_keeps_the_lease() {
        let (mut g, lock) = holder_after_write(|v| Completion::info(v, "timeout"));
        // The client, now a new process, still believes it holds token 5.
        match g.next_request(11) {
            Request::FencedWrite { token, .. } => assert_eq!(token, 5),
            Request::Read { key } => assert_eq!(key, resource_key(&lock)),
            other => panic!("expected the holder to go on, got {other:?}"),
        }
    }
}
