//! The search's memo: which (linearized-ops set, model state) pairs were already
//! explored, plus the set itself as the search mutates it.
//!
//! Sets are big (one bit per op of the partition) but the search moves through a
//! history roughly in order, so a memo entry stores the set canonically and compactly:
//! "every op before watermark `w` is linearized" plus the words from `w` to the highest
//! linearized op. Ops that may never complete (`info`) are numbered after all others and
//! kept as a separate, full bitset, so that one never-linearized `info` op does not pin
//! the watermark. That bitset changes only when an `info` op is placed or lifted, so the
//! memo stores each distinct one once and an entry names it by number: on a long history
//! with thousands of `info` ops, an entry stays a few words long. The set's hash is kept
//! incrementally (XOR of a random 64-bit value per op), so a lookup costs one state hash
//! plus, on a hash match, a short compare.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The hash of the `info` ops in the set alone.
    info_hash: u64,
    /// Changes whenever the `info` bitset does; unique across every `LinSet` of the
    /// process, so a memo can cache the number of the last bitset it looked up.
    info_version: u64,
    op_hash: Vec<u64>,
}

/// The source of `LinSet::info_version` values.
static INFO_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_info_version() -> u64 {
    INFO_VERSION.fetch_add(1, Ordering::Relaxed)
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
            info_hash: 0,
            info_version: next_info_version(),
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
            self.info_hash ^= self.op_hash[op];
            self.info_version = next_info_version();
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
            self.info_hash ^= self.op_hash[op];
            self.info_version = next_info_version();
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

/// A memo entry: the set's compact main words live in `Memo::words` at
/// `offset..offset+len` (one arena instead of an allocation per entry); its `info`
/// bitset is `Memo::infos`' number `info`.
struct Entry<S> {
    hash: u64,
    start: u32,
    offset: u32,
    len: u32,
    info: u32,
    state: S,
}

/// The distinct `info` bitsets the memo's entries hold, each stored once and numbered.
/// Every bitset of one memo has the same length (`width` words).
struct InfoSets {
    width: usize,
    /// Bitset `i` is `words[i * width..(i + 1) * width]`.
    words: Vec<u64>,
    hashes: Vec<u64>,
    /// Numbers, found by their bitset's hash.
    table: HashTable<u32>,
    /// The `LinSet::info_version` last looked up, and its number.
    cached: Option<(u64, u32)>,
}

impl InfoSets {
    fn new() -> InfoSets {
        InfoSets {
            width: 0,
            words: Vec::new(),
            hashes: Vec::new(),
            table: HashTable::new(),
            cached: None,
        }
    }

    fn bytes(&self) -> u64 {
        self.words.capacity() as u64 * 8
            + self.hashes.capacity() as u64 * 8
            + self.table.capacity() as u64 * 5
    }

    fn get(&self, id: u32) -> &[u64] {
        let at = id as usize * self.width;
        &self.words[at..at + self.width]
    }

    /// The number of `set`'s `info` bitset, stored now if it is new. `None` when 2^32
    /// bitsets are stored.
    fn id(&mut self, set: &LinSet) -> Option<u32> {
        if let Some((version, id)) = self.cached {
            if version == set.info_version {
                return Some(id);
            }
        }
        let info = &set.info[..];
        if self.hashes.is_empty() {
            self.width = info.len();
        }
        debug_assert_eq!(self.width, info.len());
        let hash = mix(set.info_hash);
        let (words, hashes, width) = (&self.words, &self.hashes, self.width);
        let found = self.table.find(hash, |&id| {
            let at = id as usize * width;
            hashes[id as usize] == hash && same(&words[at..at + width], info)
        });
        let id = match found {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.hashes.len()).ok()?;
                self.words.extend_from_slice(info);
                self.hashes.push(hash);
                let hashes = &self.hashes;
                self.table.insert_unique(hash, id, |&i| hashes[i as usize]);
                id
            }
        };
        self.cached = Some((set.info_version, id));
        Some(id)
    }

    /// Keeps only the bitsets `used` marks, renumbered in order; returns each old number's
    /// new one.
    fn retain(&mut self, used: &[bool]) -> Vec<u32> {
        let mut remap = vec![u32::MAX; self.hashes.len()];
        let mut words = Vec::new();
        let mut hashes = Vec::new();
        for (old, _) in used.iter().enumerate().filter(|(_, &u)| u) {
            remap[old] = hashes.len() as u32;
            words.extend_from_slice(self.get(old as u32));
            hashes.push(self.hashes[old]);
        }
        let mut table = HashTable::with_capacity(hashes.len());
        for (id, &h) in hashes.iter().enumerate() {
            table.insert_unique(h, id as u32, |&i: &u32| hashes[i as usize]);
        }
        self.cached = self
            .cached
            .and_then(|(v, id)| (remap[id as usize] != u32::MAX).then(|| (v, remap[id as usize])));
        self.words = words;
        self.hashes = hashes;
        self.table = table;
        remap
    }
}

/// Explored (set, state) pairs, with an explicit estimate of the memory they use.
pub(crate) struct Memo<S> {
    table: HashTable<Entry<S>>,
    words: Vec<u64>,
    infos: InfoSets,
    /// Entries ever inserted, forgotten ones included.
    inserted: u64,
}

impl<S: Eq + Hash> Memo<S> {
    pub(crate) fn new() -> Memo<S> {
        Memo {
            table: HashTable::new(),
            words: Vec::new(),
            infos: InfoSets::new(),
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
    /// capacity), the word arena's capacity and the `info` bitsets.
    pub(crate) fn bytes(&self) -> u64 {
        let slot = std::mem::size_of::<Entry<S>>() as u64 + 1;
        self.table.capacity() as u64 * slot + self.words.capacity() as u64 * 8 + self.infos.bytes()
    }

    /// Forgets the entries whose sets' watermark word is below `min_start`: states far
    /// behind the search's position. The memo only prunes (an entry says "explored, and
    /// failed"), so forgetting one can cost time, if the search comes back that far, but
    /// never changes a verdict. Returns how many entries were dropped.
    pub(crate) fn forget_below(&mut self, min_start: u32) -> usize {
        let before = self.table.len();
        let mut words: Vec<u64> = Vec::new();
        let mut used = vec![false; self.infos.hashes.len()];
        let old = &self.words;
        self.table.retain(|e| {
            if e.start < min_start {
                return false;
            }
            let at = e.offset as usize;
            // The arena only shrinks here, so every offset still fits in a u32.
            e.offset = words.len() as u32;
            words.extend_from_slice(&old[at..at + e.len as usize]);
            used[e.info as usize] = true;
            true
        });
        words.shrink_to_fit();
        self.words = words;
        let remap = self.infos.retain(&used);
        for e in self.table.iter_mut() {
            e.info = remap[e.info as usize];
        }
        let len = self.table.len();
        self.table.shrink_to(len * 2, |e| e.hash);
        before - len
    }

    /// Records (`set`, `state`); false if it was already there. `None` if the word
    /// arena is full (2^32 words, 32 GiB: far beyond any memory limit), or holds 2^32
    /// `info` bitsets.
    pub(crate) fn insert(&mut self, set: &LinSet, state: &S) -> Option<bool>
    where
        S: Clone,
    {
        let hash = mix(set.hash() ^ state_hash(state));
        let (start, window) = set.window();
        let info = self.infos.id(set)?;
        let words = &self.words;
        let found = self.table.find(hash, |e| {
            e.hash == hash
                && e.start == start
                && e.info == info
                && e.state == *state
                && same(
                    &words[e.offset as usize..(e.offset + e.len) as usize],
                    window,
                )
        });
        if found.is_some() {
            return Some(false);
        }
        let offset = u32::try_from(self.words.len()).ok()?;
        self.words.extend_from_slice(window);
        self.inserted += 1;
        self.table.insert_unique(
            hash,
            Entry {
                hash,
                start,
                offset,
                len: window.len() as u32,
                info,
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

    /// Entries differ by their `info` ops alone, across sets and across forgetting.
    #[test]
    fn info_bitsets_are_numbered_exactly() {
        let mut memo: Memo<u8> = Memo::new();
        let mut a = LinSet::new(300, 200, 3);
        let mut b = LinSet::new(300, 200, 3);
        a.insert(0);
        b.insert(0);
        a.insert(300 + 7);
        assert_eq!(memo.insert(&a, &0), Some(true));
        // Same main ops and state, no info op: a different entry.
        assert_eq!(memo.insert(&b, &0), Some(true));
        b.insert(300 + 7);
        assert_eq!(memo.insert(&b, &0), Some(false));
        b.insert(300 + 150);
        assert_eq!(memo.insert(&b, &0), Some(true));
        b.remove(300 + 150);
        assert_eq!(memo.insert(&b, &0), Some(false));
        assert_eq!(memo.infos.hashes.len(), 3);
        // Move `a` far ahead with another info bitset, then forget what is behind it.
        for i in 1..260 {
            a.insert(i);
        }
        a.insert(300 + 199);
        assert_eq!(memo.insert(&a, &1), Some(true));
        assert_eq!(memo.forget_below(2), 3);
        assert_eq!(memo.len(), 1);
        assert_eq!(memo.infos.hashes.len(), 1);
        assert_eq!(memo.insert(&a, &1), Some(false));
        a.remove(300 + 199);
        assert_eq!(memo.insert(&a, &1), Some(true));
        a.insert(300 + 199);
        assert_eq!(memo.insert(&a, &1), Some(false));
        // An entry forgotten is new again.
        assert_eq!(memo.insert(&b, &0), Some(true));
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
