//! Generated histories for benchmarks and tests: clients issuing reads, writes and
//! compare-and-sets against a real, sequential in-memory key-value store, with random
//! overlap. Each op takes effect at one instant between its invoke and its completion, so
//! every generated history is linearizable (for the `kv` model, initial nil). Deterministic
//! for a given seed.

use crate::history::{Event, EventType, History, Process, Value};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of operations (each is an invoke and a completion event).
    pub ops: usize,
    pub keys: usize,
    /// Concurrent clients. A client whose op ends `info` continues as a new process.
    pub clients: usize,
    /// Fraction of ops whose completion is `info` (half of them took effect).
    pub info_rate: f64,
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            ops: 10_000,
            keys: 10,
            clients: 30,
            info_rate: 0.01,
            seed: 1,
        }
    }
}

#[derive(Clone)]
enum Phase {
    Idle,
    /// Invoked; `effect` is whether it will take effect (false only for some `info`).
    Invoked {
        op: Pending,
    },
    /// Took effect (or never will); the completion is next.
    Done {
        op: Pending,
        kind: EventType,
        output: Value,
    },
}

#[derive(Clone)]
struct Pending {
    f: &'static str,
    key: usize,
    value: Value,
    info: bool,
    effect: bool,
}

struct Client {
    process: u64,
    phase: Phase,
}

/// A linearizable multi-key history of `read`, `write` and `cas` ops on integer values;
/// written values are unique, as in most Jepsen register tests.
pub fn kv_history(cfg: &GenConfig) -> History {
    let mut rng = Rng::new(cfg.seed);
    let keys = cfg.keys.max(1);
    let mut store: Vec<Value> = vec![Value::Null; keys];
    let mut clients: Vec<Client> = (0..cfg.clients.max(1) as u64)
        .map(|process| Client {
            process,
            phase: Phase::Idle,
        })
        .collect();
    let mut next_process = clients.len() as u64;
    let mut next_value: i64 = 1;
    let mut invoked = 0usize;
    let mut busy = 0usize;
    let mut events: Vec<Event> = Vec::with_capacity(cfg.ops * 2);
    let mut time_ns: u64 = 0;
    let info_per_million = (cfg.info_rate.clamp(0.0, 1.0) * 1e6) as u64;
    while invoked < cfg.ops || busy > 0 {
        time_ns += 1_000;
        let c = &mut clients[rng.below(cfg.clients.max(1) as u64) as usize];
        let phase = std::mem::replace(&mut c.phase, Phase::Idle);
        c.phase = match phase {
            Phase::Idle if invoked < cfg.ops => {
                invoked += 1;
                busy += 1;
                let key = rng.below(keys as u64) as usize;
                let roll = rng.below(100);
                let (f, value) = if roll < 50 {
                    ("read", Value::Null)
                } else if roll < 80 {
                    next_value += 1;
                    ("write", Value::Int(next_value))
                } else {
                    // Mostly the current value, so that many cas ops succeed.
                    let from = if rng.below(4) > 0 {
                        store[key].clone()
                    } else {
                        Value::Int(rng.below(next_value as u64 + 1) as i64)
                    };
                    next_value += 1;
                    ("cas", Value::List(vec![from, Value::Int(next_value)]))
                };
                let info = rng.below(1_000_000) < info_per_million;
                let effect = !info || rng.below(2) == 0;
                events.push(event(
                    c.process,
                    EventType::Invoke,
                    f,
                    key,
                    value.clone(),
                    time_ns,
                ));
                Phase::Invoked {
                    op: Pending {
                        f,
                        key,
                        value,
                        info,
                        effect,
                    },
                }
            }
            Phase::Idle => Phase::Idle,
            Phase::Invoked { op } => {
                let (mut kind, mut output) = (EventType::Ok, op.value.clone());
                if op.effect {
                    let cur = &mut store[op.key];
                    match op.f {
                        "read" => output = cur.clone(),
                        "write" => *cur = op.value.clone(),
                        _ => match op.value.as_list() {
                            Some([from, to]) if from == cur => *cur = to.clone(),
                            _ => kind = EventType::Fail,
                        },
                    }
                }
                if op.info {
                    kind = EventType::Info;
                    output = op.value.clone();
                }
                Phase::Done { op, kind, output }
            }
            Phase::Done { op, kind, output } => {
                events.push(event(c.process, kind, op.f, op.key, output, time_ns));
                busy -= 1;
                if kind == EventType::Info {
                    c.process = next_process;
                    next_process += 1;
                }
                Phase::Idle
            }
        };
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    History::from_events(events)
}

fn event(process: u64, kind: EventType, f: &str, key: usize, value: Value, time_ns: u64) -> Event {
    let mut e = Event::new(Process::Client(process), kind, f, value).with_key(&format!("k{key}"));
    e.time_ns = Some(time_ns);
    e
}

/// SplitMix64: a tiny, fast, seedable generator; statistical quality is ample for
/// choosing ops, and it keeps this module free of dependencies.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn generates_the_requested_mix() {
        let h = kv_history(&GenConfig {
            ops: 5_000,
            info_rate: 0.02,
            ..GenConfig::default()
        });
        let ops = h.ops().unwrap();
        assert_eq!(ops.len(), 5_000);
        let info = ops.iter().filter(|o| o.outcome == Outcome::Info).count();
        assert!((40..=160).contains(&info), "{info} info ops");
        assert!(ops.iter().all(|o| o.complete.is_some()));
        let keys: std::collections::HashSet<_> = ops.iter().map(|o| o.key.clone()).collect();
        assert_eq!(keys.len(), 10);
        assert_eq!(
            kv_history(&GenConfig::default()).events,
            kv_history(&GenConfig::default()).events
        );
    }
}
