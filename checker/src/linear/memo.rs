//! The search's memo: which (linearized-ops set, model state) pairs were already
//! explored, plus the set itself as the search mutates it.
//!
//! Sets are big (one bit per op of the partition) but the search moves through a
//! history roughly in order, so a memo entry stores the set canonically and compactly:
//! "every op before watermark `w` is linearized" plus the words from `w` to the highest
//! linearized op. Ops that may never complete (`info`) are numbered after all others and
//! kept as a separate, full bitset, so that one never-linearized `info` op does not pin
//! the watermark. The set's hash is kept incrementally (XOR of a random 64-bit value per
//! op), so a lookup costs one state hash plus, on a hash match, a short compare.

use std::hash::{Hash, Hasher};

use hashbrown::HashTable;

/// The set of linearized ops of one partition. Ops `0..n_main` complete; ops
/// `n_main..` are `info` ops.
pub(crate) struct LinSet {
    main: Vec<u64>,
    pub(crate) info: Vec<u64>,
    n_main: usize,
    /// Smallest main op not in the set.
    watermark: usize,
    /// One past the highest main op in the set (or `watermark` if none above it).
    top: usize,
    hash: u64,
    op_hash: Vec<u64>,
}

impl LinSet {
    pub(crate) fn new(n_main: usize, n_info: usize, seed: u64) -> LinSet {
        let mut rng = seed;
        LinSet {
            main: vec![0; n_main.div_ceil(64)],
            info: vec![0; n_info.div_ceil(64)],
            n_main,
            watermark: 0,
            top: 0,
            hash: 0,
            op_hash: (0..n_main + n_info).map(|_| splitmix64(&mut rng)).collect(),
        }
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn contains(&self, op: usize) -> bool {
        if op >= self.n_main {
            let i = op - self.n_main;
            return self.info[i / 64] >> (i % 64) & 1 == 1;
        }
        self.main[op / 64] >> (op % 64) & 1 == 1
    }

    pub(crate) fn insert(&mut self, op: usize) {
        self.hash ^= self.op_hash[op];
        if op >= self.n_main {
            let i = op - self.n_main;
            self.info[i / 64] |= 1 << (i % 64);
            return;
        }
        self.main[op / 64] |= 1 << (op % 64);
        self.top = self.top.max(op + 1);
        if op == self.watermark {
            // Advance past the run of set bits, a word at a time.
            let mut w = op;
            while w < self.n_main {
                let ones = (self.main[w / 64] >> (w % 64)).trailing_ones() as usize;
                w += ones;
                if ones == 0 || w & 63 != 0 {
                    break;
                }
            }
            self.watermark = w.min(self.n_main);
            self.top = self.top.max(self.watermark);
        }
    }

    pub(crate) fn remove(&mut self, op: usize) {
        self.hash ^= self.op_hash[op];
        if op >= self.n_main {
            let i = op - self.n_main;
            self.info[i / 64] &= !(1 << (i % 64));
            return;
        }
        self.main[op / 64] &= !(1 << (op % 64));
        self.watermark = self.watermark.min(op);
        if op + 1 == self.top {
            // The highest set bit is now below `op`; bits below the watermark are all
            // set, so the scan stops at the watermark's word at the latest.
            let mut top = self.watermark;
            let lo = self.watermark / 64;
            let mut wi = op / 64;
            loop {
                let mut word = self.main[wi];
                if wi == op / 64 {
                    word &= (1u64 << (op % 64)) - 1;
                }
                if word != 0 {
                    top = top.max(wi * 64 + 64 - word.leading_zeros() as usize);
                    break;
                }
                if wi <= lo {
                    break;
                }
                wi -= 1;
            }
            self.top = top;
        }
    }

    /// The main words a memo entry stores: from the watermark's word to `top`'s.
    pub(crate) fn window(&self) -> (u32, &[u64]) {
        let start = self.watermark / 64;
        let end = self.top.div_ceil(64).max(start).min(self.main.len());
        (start as u32, &self.main[start..end])
    }
}

/// A memo entry: the set's compact words live in `Memo::words` at `offset..offset+len`
/// (one arena instead of an allocation per entry).
struct Entry<S> {
    hash: u64,
    start: u32,
    offset: u32,
    len: u32,
    state: S,
}

/// Explored (set, state) pairs, with an explicit estimate of the memory they use.
pub(crate) struct Memo<S> {
    table: HashTable<Entry<S>>,
    words: Vec<u64>,
    /// Entries ever inserted, forgotten ones included.
    inserted: u64,
}

impl<S: Eq + Hash> Memo<S> {
    pub(crate) fn new() -> Memo<S> {
        Memo {
            table: HashTable::new(),
            words: Vec::new(),
            inserted: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Entries ever inserted, forgotten ones included.
    pub(crate) fn inserted(&self) -> u64 {
        self.inserted
    }

    /// Bytes used: the table's slots (entry plus one control byte each, at its current
    /// capacity) and the word arena's capacity.
    pub(crate) fn bytes(&self) -> u64 {
        let slot = std::mem::size_of::<Entry<S>>() as u64 + 1;
        self.table.capacity() as u64 * slot + self.words.capacity() as u64 * 8
    }

    /// Forgets the entries whose sets' watermark word is below `min_start`: states far
    /// behind the search's position. The memo only prunes (an entry says "explored, and
    /// failed"), so forgetting one can cost time, if the search comes back that far, but
    /// never changes a verdict. Returns how many entries were dropped.
    pub(crate) fn forget_below(&mut self, min_start: u32) -> usize {
        let before = self.table.len();
        let mut words: Vec<u64> = Vec::new();
        let old = &self.words;
        self.table.retain(|e| {
            if e.start < min_start {
                return false;
            }
            let at = e.offset as usize;
            // The arena only shrinks here, so every offset still fits in a u32.
            e.offset = words.len() as u32;
            words.extend_from_slice(&old[at..at + e.len as usize]);
            true
        });
        words.shrink_to_fit();
        self.words = words;
        let len = self.table.len();
        self.table.shrink_to(len * 2, |e| e.hash);
        before - len
    }

    /// Records (`set`, `state`); false if it was already there. `None` if the word
    /// arena is full (2^32 words, 32 GiB: far beyond any memory limit).
    pub(crate) fn insert(&mut self, set: &LinSet, state: &S) -> Option<bool>
    where
        S: Clone,
    {
        let hash = mix(set.hash() ^ state_hash(state));
        let (start, window) = set.window();
        let info = &set.info;
        let words = &self.words;
        let found = self.table.find(hash, |e| {
            if e.hash != hash || e.start != start || e.state != *state {
                return false;
            }
            let at = e.offset as usize;
            let len = e.len as usize;
            len == window.len() + info.len()
                && same(&words[at..at + window.len()], window)
                && same(&words[at + window.len()..at + len], info)
        });
        if found.is_some() {
            return Some(false);
        }
        let offset = u32::try_from(self.words.len()).ok()?;
        let len = (window.len() + info.len()) as u32;
        self.words.extend_from_slice(window);
        self.words.extend_from_slice(info);
        self.inserted += 1;
        self.table.insert_unique(
            hash,
            Entry {
                hash,
                start,
                offset,
                len,
                state: state.clone(),
            },
            |e| e.hash,
        );
        Some(true)
    }
}

/// Slice equality without a `memcmp` call: these slices are a few words long.
#[inline]
fn same(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn state_hash<S: Hash>(state: &S) -> u64 {
    let mut h = FxHasher(0);
    state.hash(&mut h);
    h.0
}

/// A small multiplicative hasher (as rustc's FxHash); the result is mixed again before
/// it reaches the table, so its weak high bits do not matter.
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
}

/// SplitMix64's finaliser: spreads every input bit over the output.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: the next pseudo-random value of the sequence `state`.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix(*state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical form must not depend on the order ops were added and removed.
    #[test]
    fn canonical_after_any_insert_remove_order() {
        let mut a = LinSet::new(200, 3, 1);
        let mut b = LinSet::new(200, 3, 1);
        for i in 0..130 {
            a.insert(i);
        }
        a.insert(150);
        a.insert(201);
        for i in (0..130).rev() {
            b.insert(i);
        }
        b.insert(199);
        b.insert(150);
        b.insert(201);
        b.remove(199);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.window(), b.window());
        let mut memo: Memo<u8> = Memo::new();
        assert_eq!(memo.insert(&a, &0), Some(true));
        assert_eq!(memo.insert(&b, &0), Some(false));
        assert_eq!(memo.insert(&b, &1), Some(true));
        b.remove(5);
        assert_eq!(memo.insert(&b, &0), Some(true));
        b.insert(5);
        assert_eq!(memo.insert(&b, &0), Some(false));
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn watermark_and_top() {
        let mut s = LinSet::new(130, 0, 7);
        s.insert(0);
        s.insert(1);
        assert_eq!((s.watermark, s.top), (2, 2));
        s.insert(100);
        assert_eq!((s.watermark, s.top), (2, 101));
        s.remove(100);
        assert_eq!((s.watermark, s.top), (2, 2));
        s.remove(0);
        assert_eq!((s.watermark, s.top), (0, 2));
        s.remove(1);
        assert_eq!((s.watermark, s.top), (0, 0));
        for i in 0..130 {
            s.insert(i);
        }
        assert_eq!((s.watermark, s.top), (130, 130));
        assert_eq!(s.window(), (2, &[0b11u64][..]));
    }
}
