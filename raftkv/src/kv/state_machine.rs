//! The deterministic KV + lock state machine that every replica applies in log order.
//!
//! Fencing tokens come from `last_token`, a counter in the replicated state (and in
//! snapshots), so every grant on every replica gets the same, strictly increasing token,
//! whichever node is leader. The one exception is `--bug token-reuse`, where the leader
//! stamps a token from its own memory into the command and the state machine trusts it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::{Command, Op, OpError, Reply};

/// Limits that keep one client from growing the state without bound.
pub const MAX_KEY_BYTES: usize = 1024;
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
pub const MAX_TTL_MS: u64 = 10 * 60 * 1000;

/// The current holder of a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub lease_id: u64,
    pub token: u64,
    pub ttl_ms: u64,
    pub expires_at_ms: u64,
}

/// Replicated application state. Field order and BTreeMaps keep snapshots byte-identical
/// across replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    data: BTreeMap<String, String>,
    /// Highest fencing token accepted by a fenced write, per key.
    fences: BTreeMap<String, u64>,
    locks: BTreeMap<String, Lease>,
    /// Last fencing token granted.
    last_token: u64,
    /// Largest `now_ms` seen in any command: the state machine's notion of time. Taking the
    /// max keeps time monotonic even if a new leader's clock is behind the old one's.
    clock_ms: u64,
    /// Log index of the last applied entry.
    applied_index: u64,
}

fn check_key(key: &str) -> Result<(), OpError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(OpError::BadRequest(format!(
            "key must be 1..={MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

impl StateMachine {
    pub fn new() -> StateMachine {
        StateMachine::default()
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.data.get(key)
    }

    pub fn last_token(&self) -> u64 {
        self.last_token
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Records that the entry at `index` was applied without a command (a Raft no-op).
    pub fn skip(&mut self, index: u64) {
        self.applied_index = self.applied_index.max(index);
    }

    /// Applies the command of the log entry at `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Result<Reply, OpError> {
        self.applied_index = self.applied_index.max(index);
        self.clock_ms = self.clock_ms.max(cmd.now_ms);
        let now = self.clock_ms;
        match &cmd.op {
            Op::Put { key, value, token } => {
                check_key(key)?;
                if value.len() > MAX_VALUE_BYTES {
                    return Err(OpError::BadRequest("value too large".into()));
                }
                if let Some(token) = *token {
                    let accepted = self.fences.get(key).copied().unwrap_or(0);
                    if token < accepted {
                        return Err(OpError::StaleToken { token, accepted });
                    }
                    self.fences.insert(key.clone(), token);
                }
                self.data.insert(key.clone(), value.clone());
                Ok(Reply::Written { ok: true })
            }
            Op::Delete { key } => {
                check_key(key)?;
                let existed = self.data.remove(key).is_some();
                Ok(Reply::Deleted { ok: true, existed })
            }
            Op::Cas { key, from, to } => {
                check_key(key)?;
                let current = self.data.get(key);
                if current != from.as_ref() {
                    return Err(OpError::CasFailed {
                        current: current.cloned(),
                    });
                }
                self.data.insert(key.clone(), to.clone());
                Ok(Reply::Written { ok: true })
            }
            Op::Acquire {
                name,
                owner,
                ttl_ms,
                leader_token,
            } => {
                check_key(name)?;
                if *ttl_ms == 0 || *ttl_ms > MAX_TTL_MS {
                    return Err(OpError::BadRequest(format!(
                        "ttl_ms must be 1..={MAX_TTL_MS}"
                    )));
                }
                if let Some(held) = self.locks.get(name) {
                    if held.expires_at_ms > now {
                        return Err(OpError::LockHeld {
                            owner: held.owner.clone(),
                            expires_at_ms: held.expires_at_ms,
                        });
                    }
                }
                let token = match leader_token {
                    // --bug token-reuse: trust the leader's in-memory counter.
                    Some(t) => *t,
                    None => self.last_token + 1,
                };
                self.last_token = self.last_token.max(token);
                let lease = Lease {
                    owner: owner.clone(),
                    // The log index is unique per grant even when tokens are not (bug mode).
                    lease_id: index,
                    token,
                    ttl_ms: *ttl_ms,
                    expires_at_ms: now.saturating_add(*ttl_ms),
                };
                let reply = Reply::Granted {
                    token,
                    lease_id: index,
                    expires_at_ms: lease.expires_at_ms,
                };
                self.locks.insert(name.clone(), lease);
                Ok(reply)
            }
            Op::KeepAlive { name, lease_id } => {
                let lease = self.current_lease(name, *lease_id)?;
                lease.expires_at_ms = now.saturating_add(lease.ttl_ms);
                Ok(Reply::Granted {
                    token: lease.token,
                    lease_id: lease.lease_id,
                    expires_at_ms: lease.expires_at_ms,
                })
            }
            Op::Release { name, lease_id } => {
                self.current_lease(name, *lease_id)?;
                self.locks.remove(name);
                Ok(Reply::Released { ok: true })
            }
        }
    }

    fn current_lease(&mut self, name: &str, lease_id: u64) -> Result<&mut Lease, OpError> {
        let now = self.clock_ms;
        match self.locks.get_mut(name) {
            Some(l) if l.lease_id == lease_id && l.expires_at_ms > now => Ok(l),
            _ => Err(OpError::NotHeld { lease_id }),
        }
    }

    /// Serializes the whole state (for Raft snapshots).
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn restore(bytes: &[u8]) -> Result<StateMachine, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(now_ms: u64, op: Op) -> Command {
        Command { now_ms, op }
    }

    fn put(key: &str, value: &str, token: Option<u64>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            token,
        }
    }

    fn acquire(name: &str, owner: &str, ttl_ms: u64) -> Op {
        Op::Acquire {
            name: name.into(),
            owner: owner.into(),
            ttl_ms,
            leader_token: None,
        }
    }

    fn granted(r: Result<Reply, OpError>) -> (u64, u64) {
        match r {
            Ok(Reply::Granted {
                token, lease_id, ..
            }) => (token, lease_id),
            other => panic!("expected grant, got {other:?}"),
        }
    }

    #[test]
    fn put_get_delete_cas() {
        let mut sm = StateMachine::new();
        assert_eq!(
            sm.apply(1, &cmd(0, put("a", "1", None))),
            Ok(Reply::Written { ok: true })
        );
        assert_eq!(sm.get("a").map(String::as_str), Some("1"));
        let cas = |from: Option<&str>, to: &str| Op::Cas {
            key: "a".into(),
            from: from.map(String::from),
            to: to.into(),
        };
        assert_eq!(
            sm.apply(2, &cmd(0, cas(Some("0"), "2"))),
            Err(OpError::CasFailed {
                current: Some("1".into())
            })
        );
        assert!(sm.apply(3, &cmd(0, cas(Some("1"), "2"))).is_ok());
        assert_eq!(sm.get("a").map(String::as_str), Some("2"));
        assert_eq!(
            sm.apply(4, &cmd(0, Op::Delete { key: "a".into() })),
            Ok(Reply::Deleted {
                ok: true,
                existed: true
            })
        );
        assert_eq!(sm.get("a"), None);
        // CAS from absent.
        assert!(sm.apply(5, &cmd(0, cas(None, "x"))).is_ok());
        assert_eq!(sm.applied_index(), 5);
        assert!(matches!(
            sm.apply(6, &cmd(0, put("", "v", None))),
            Err(OpError::BadRequest(_))
        ));
    }

    #[test]
    fn tokens_strictly_increase_and_leases_expire_by_entry_time() {
        let mut sm = StateMachine::new();
        let (t1, l1) = granted(sm.apply(1, &cmd(1000, acquire("L", "a", 100))));
        assert!(matches!(
            sm.apply(2, &cmd(1050, acquire("L", "b", 100))),
            Err(OpError::LockHeld { .. })
        ));
        // Keep-alive at 1090 extends to 1190.
        assert!(sm
            .apply(
                3,
                &cmd(
                    1090,
                    Op::KeepAlive {
                        name: "L".into(),
                        lease_id: l1
                    }
                )
            )
            .is_ok());
        assert!(matches!(
            sm.apply(4, &cmd(1150, acquire("L", "b", 100))),
            Err(OpError::LockHeld { .. })
        ));
        // An entry with an older timestamp does not move time backwards.
        assert!(matches!(
            sm.apply(5, &cmd(10, acquire("L", "b", 100))),
            Err(OpError::LockHeld { .. })
        ));
        let (t2, l2) = granted(sm.apply(6, &cmd(1200, acquire("L", "b", 100))));
        assert!(t2 > t1);
        assert_ne!(l1, l2);
        // The expired holder can neither keep alive nor release.
        assert_eq!(
            sm.apply(
                7,
                &cmd(
                    1210,
                    Op::Release {
                        name: "L".into(),
                        lease_id: l1
                    }
                )
            ),
            Err(OpError::NotHeld { lease_id: l1 })
        );
        assert!(sm
            .apply(
                8,
                &cmd(
                    1220,
                    Op::Release {
                        name: "L".into(),
                        lease_id: l2
                    }
                )
            )
            .is_ok());
        let (t3, _) = granted(sm.apply(9, &cmd(1230, acquire("L", "c", 100))));
        let (t4, _) = granted(sm.apply(10, &cmd(1230, acquire("M", "c", 100))));
        assert!(t3 > t2 && t4 > t3);
    }

    #[test]
    fn fenced_writes_reject_lower_tokens() {
        let mut sm = StateMachine::new();
        assert!(sm.apply(1, &cmd(0, put("r", "a", Some(5)))).is_ok());
        assert!(sm.apply(2, &cmd(0, put("r", "b", Some(5)))).is_ok());
        assert_eq!(
            sm.apply(3, &cmd(0, put("r", "c", Some(4)))),
            Err(OpError::StaleToken {
                token: 4,
                accepted: 5
            })
        );
        assert_eq!(sm.get("r").map(String::as_str), Some("b"));
        // Other keys are fenced independently; unfenced writes are not checked.
        assert!(sm.apply(4, &cmd(0, put("s", "x", Some(1)))).is_ok());
        assert!(sm.apply(5, &cmd(0, put("r", "d", None))).is_ok());
        assert!(sm.apply(6, &cmd(0, put("r", "e", Some(6)))).is_ok());
    }

    #[test]
    fn snapshot_restores_tokens_and_replicas_agree() {
        let cmds: Vec<Command> = (0..50)
            .map(|i| match i % 5 {
                0 => cmd(i * 40, acquire(&format!("l{}", i % 3), "o", 60)),
                1 => cmd(
                    i * 40,
                    put(&format!("k{}", i % 7), &i.to_string(), Some(i / 5)),
                ),
                2 => cmd(
                    i * 40,
                    Op::Delete {
                        key: format!("k{}", i % 4),
                    },
                ),
                3 => cmd(
                    i * 40,
                    Op::Cas {
                        key: "c".into(),
                        from: None,
                        to: i.to_string(),
                    },
                ),
                _ => cmd(
                    i * 40,
                    Op::Release {
                        name: "l0".into(),
                        lease_id: 1,
                    },
                ),
            })
            .collect();
        let mut a = StateMachine::new();
        let mut b = StateMachine::new();
        let mut results_a = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            results_a.push(a.apply(i as u64 + 1, c));
            if i == 25 {
                b = StateMachine::restore(&a.snapshot()).unwrap();
                assert_eq!(a, b);
            }
        }
        for (i, c) in cmds.iter().enumerate().skip(26) {
            assert_eq!(b.apply(i as u64 + 1, c), results_a[i]);
        }
        assert_eq!(a.snapshot(), b.snapshot());
        assert!(a.last_token() >= 3);
    }

    #[test]
    fn leader_token_is_trusted_only_when_stamped() {
        // Under --bug token-reuse a new leader stamps a token it computed from stale state:
        // the state machine grants it even though it was already granted.
        let mut sm = StateMachine::new();
        let (t1, _) = granted(sm.apply(1, &cmd(0, acquire("a", "x", 1000))));
        let stale = Op::Acquire {
            name: "b".into(),
            owner: "y".into(),
            ttl_ms: 1000,
            leader_token: Some(t1),
        };
        let (t2, _) = granted(sm.apply(2, &cmd(0, stale)));
        assert_eq!(t1, t2);
    }
}
