//! The replica's rows: an immutable hash trie of hash tables, swapped
//! whole.
//!
//! A snapshot is a tree of fixed depth: branches of up to 32 children
//! chosen by successive bits of the key's hash, and leaves that are hash
//! tables of about 32 rows, keyed by the row's own key text (no second
//! copy of the key). A table of a few dozen rows is a single leaf (depth
//! 0): a lookup is then exactly the work of a raw `ArcSwap<HashMap>`
//! lookup (one snapshot load, one hash, one probe, one `Arc` clone); a
//! larger one adds one pointer step per level (two at 100 000 rows).
//!
//! The next snapshot is built from the current one by path copying: a
//! change copies the branches on its key's path (up to 32 pointers each)
//! and its leaf; everything else is shared. What a change costs is its
//! atomic reference-count updates (about 20 cycles each, and they do not
//! overlap), so it is bounded by the depth: about 60 of them at 1 000
//! rows, 150 at 100 000, where copying a flat map of 100 000 rows meant
//! 200 000. The depth follows the table's size (a rebuild when the row
//! count has moved fourfold, amortised `O(1)` per change).
//!
//! The measurements that chose this design are in the repository's
//! BENCHMARKS.md ("Replica").

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::row::Row;
use crate::schema::{KvKey, KvSchema};

/// Bits of the hash per branch level: 32 children.
const BITS: u32 = 5;
/// The hash bits the trie uses start here: hashbrown uses the low bits for
/// the bucket and the top seven for its tags, so these are independent of
/// both for any leaf under 2^32 buckets.
const FIRST_BIT: u32 = 32;
/// At most this many bits (2^25 leaves), below hashbrown's tag bits.
const MAX_BITS: u32 = 25;
/// Rows per leaf the shape aims at.
const LEAF_ROWS: usize = 32;

/// The hash of key text, for the trie and the leaves alike. Seeded per
/// process.
#[derive(Clone)]
pub(crate) struct KeyHasher(foldhash::fast::RandomState);

impl KeyHasher {
    pub(crate) fn new() -> Self {
        KeyHasher(foldhash::fast::RandomState::default())
    }

    #[inline]
    fn hash(&self, key: &str) -> u64 {
        self.0.hash_one(key)
    }
}

type Leaf<S> = HashTable<Arc<Row<S>>>;

enum Node<S: KvSchema> {
    Branch(Box<[Arc<Node<S>>]>),
    Leaf(Leaf<S>),
}

impl<S: KvSchema> Clone for Node<S> {
    fn clone(&self) -> Self {
        match self {
            Node::Branch(children) => Node::Branch(children.clone()),
            Node::Leaf(rows) => Node::Leaf(rows.clone()),
        }
    }
}

/// Where a trie of `bits` hash bits branches: the bits of each level, the
/// top level taking the remainder so that the others are full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    bits: u32,
}

impl Shape {
    /// The shape for `len` rows: leaves of about [`LEAF_ROWS`].
    fn for_rows(len: usize) -> Shape {
        let leaves = (len / LEAF_ROWS).max(1).next_power_of_two();
        Shape {
            bits: leaves.trailing_zeros().min(MAX_BITS),
        }
    }

    fn depth(self) -> u32 {
        self.bits.div_ceil(BITS)
    }

    /// The child index at `level` (0 = the root) for `hash`.
    #[inline]
    fn index(self, hash: u64, level: u32) -> usize {
        // The root takes the bits left over; each level below takes BITS.
        let below = (self.depth() - 1 - level) * BITS;
        let width = if level == 0 { self.bits - below } else { BITS };
        ((hash >> (FIRST_BIT + below)) & ((1 << width) - 1)) as usize
    }

    fn width(self, level: u32) -> u32 {
        if level == 0 {
            self.bits - (self.depth() - 1) * BITS
        } else {
            BITS
        }
    }
}

fn key_of<S: KvSchema>(row: &Arc<Row<S>>) -> &str {
    row.key.as_str()
}

/// The row with key text `key` (whose hash is `hash`) under `node`.
#[inline]
fn find<'a, S: KvSchema>(
    mut node: &'a Node<S>,
    shape: Shape,
    hash: u64,
    key: &str,
) -> Option<&'a Arc<Row<S>>> {
    let mut level = 0;
    loop {
        match node {
            Node::Leaf(rows) => return rows.find(hash, |r| key_of(r) == key),
            Node::Branch(children) => {
                node = &children[shape.index(hash, level)];
                level += 1;
            }
        }
    }
}

/// One immutable state of the replica's rows.
pub(crate) struct Snapshot<S: KvSchema> {
    root: Arc<Node<S>>,
    shape: Shape,
    len: usize,
}

impl<S: KvSchema> Snapshot<S> {
    /// No rows.
    pub(crate) fn empty() -> Self {
        Snapshot {
            root: Arc::new(Node::Leaf(Leaf::<S>::new())),
            shape: Shape { bits: 0 },
            len: 0,
        }
    }

    /// The row with key text `key`.
    #[inline]
    pub(crate) fn get(&self, hasher: &KeyHasher, key: &str) -> Option<&Arc<Row<S>>> {
        find(&self.root, self.shape, hasher.hash(key), key)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every row, in no particular order.
    pub(crate) fn values(&self) -> Vec<&Arc<Row<S>>> {
        fn walk<'a, S: KvSchema>(node: &'a Node<S>, out: &mut Vec<&'a Arc<Row<S>>>) {
            match node {
                Node::Leaf(rows) => out.extend(rows.iter()),
                Node::Branch(children) => children.iter().for_each(|c| walk(c, out)),
            }
        }
        let mut out = Vec::with_capacity(self.len);
        walk(&self.root, &mut out);
        out
    }

    /// A snapshot of `rows` (keys unique), shaped for their number.
    fn build(hasher: &KeyHasher, rows: Vec<Arc<Row<S>>>) -> Self {
        let shape = Shape::for_rows(rows.len());
        let len = rows.len();
        let hashed: Vec<(u64, Arc<Row<S>>)> = rows
            .into_iter()
            .map(|r| (hasher.hash(key_of(&r)), r))
            .collect();
        Snapshot {
            root: Arc::new(Self::build_node(hasher, shape, 0, hashed)),
            shape,
            len,
        }
    }

    fn build_node(
        hasher: &KeyHasher,
        shape: Shape,
        level: u32,
        rows: Vec<(u64, Arc<Row<S>>)>,
    ) -> Node<S> {
        if level == shape.depth() {
            let mut leaf = Leaf::<S>::with_capacity(rows.len());
            for (hash, row) in rows {
                leaf.insert_unique(hash, row, |r| hasher.hash(key_of(r)));
            }
            return Node::Leaf(leaf);
        }
        let mut parts: Vec<Vec<(u64, Arc<Row<S>>)>> = (0..1usize << shape.width(level))
            .map(|_| Vec::new())
            .collect();
        for (hash, row) in rows {
            parts[shape.index(hash, level)].push((hash, row));
        }
        Node::Branch(
            parts
                .into_iter()
                .map(|part| Arc::new(Self::build_node(hasher, shape, level + 1, part)))
                .collect(),
        )
    }
}

/// The next snapshot, being built from the current one by path copying:
/// a node is copied the first time the batch changes something under it
/// (`Arc::make_mut`: a node only this builder holds is changed in place).
pub(crate) struct Builder<'a, S: KvSchema> {
    hasher: &'a KeyHasher,
    root: Arc<Node<S>>,
    shape: Shape,
    len: usize,
}

impl<'a, S: KvSchema> Builder<'a, S> {
    pub(crate) fn new(hasher: &'a KeyHasher, from: &Snapshot<S>) -> Self {
        Builder {
            hasher,
            root: Arc::clone(&from.root),
            shape: from.shape,
            len: from.len,
        }
    }

    /// The leaf for `hash`, copied along its path where still shared.
    fn leaf_mut(&mut self, hash: u64) -> &mut Leaf<S> {
        let shape = self.shape;
        let mut node = Arc::make_mut(&mut self.root);
        let mut level = 0;
        loop {
            match node {
                Node::Leaf(rows) => return rows,
                Node::Branch(children) => {
                    node = Arc::make_mut(&mut children[shape.index(hash, level)]);
                    level += 1;
                }
            }
        }
    }

    /// Stores `row` under its key, replacing any row there.
    pub(crate) fn insert(&mut self, row: Arc<Row<S>>) {
        let hasher = self.hasher;
        let hash = hasher.hash(key_of(&row));
        let leaf = self.leaf_mut(hash);
        match leaf.find_mut(hash, |r| key_of(r) == key_of(&row)) {
            Some(slot) => *slot = row,
            None => {
                leaf.insert_unique(hash, row, |r| hasher.hash(key_of(r)));
                self.len += 1;
            }
        }
    }

    /// Removes the row with key text `key`, if any.
    pub(crate) fn remove(&mut self, key: &str) {
        let hash = self.hasher.hash(key);
        if find(&self.root, self.shape, hash, key).is_none() {
            return; // nothing to copy
        }
        if let Ok(entry) = self.leaf_mut(hash).find_entry(hash, |r| key_of(r) == key) {
            entry.remove();
            self.len -= 1;
        }
    }

    /// The snapshot; reshaped when the number of rows has moved fourfold
    /// away from what the current shape is for.
    pub(crate) fn finish(self) -> Snapshot<S> {
        let ideal = Shape::for_rows(self.len);
        if ideal.bits >= self.shape.bits + 2 || ideal.bits + 2 <= self.shape.bits {
            let view = Snapshot {
                root: self.root,
                shape: self.shape,
                len: self.len,
            };
            let rows = view.values().into_iter().cloned().collect();
            return Snapshot::build(self.hasher, rows);
        }
        Snapshot {
            root: self.root,
            shape: self.shape,
            len: self.len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct V(u64);

    impl crate::KvVersion for V {
        const VERSION: u32 = 1;
        fn decode_version(version: u32, json: &str) -> Result<Self, crate::VersionError> {
            crate::version::decode_first(1, version, json)
        }
    }

    impl KvSchema for V {
        type Key = String;
        const TABLE: &'static str = "v";
        const SOFT_DELETE: bool = false;
        const WRITE_ROLE: crate::WriteRole = crate::WriteRole::Internal;
    }

    fn row(key: &str, n: u64) -> Arc<Row<V>> {
        Arc::new(Row {
            key: key.to_owned(),
            value: V(n),
            created_at: 1,
            updated_at: 1,
            deleted_at: None,
            updated_by: None,
        })
    }

    fn contents(s: &Snapshot<V>) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = s
            .values()
            .into_iter()
            .map(|r| (r.key.clone(), r.value.0))
            .collect();
        all.sort();
        all
    }

    /// Random inserts and removes, growing to thousands of rows (several
    /// levels) and shrinking again, in batches: the snapshot always holds
    /// what a plain map holds, and earlier snapshots never change.
    #[test]
    fn follows_a_plain_map_through_growth_and_shrinking() {
        let hasher = KeyHasher::new();
        let mut snapshot = Snapshot::<V>::empty();
        let mut model: BTreeMap<String, u64> = BTreeMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut depths = std::collections::BTreeSet::new();
        for round in 0..500u64 {
            let old = Snapshot {
                root: Arc::clone(&snapshot.root),
                shape: snapshot.shape,
                len: snapshot.len,
            };
            let before = contents(&old);
            let mut b = Builder::new(&hasher, &snapshot);
            let growing = round < 300;
            for _ in 0..(next() % 200) {
                let k = format!("k{}", next() % 20_000);
                if growing == (next() % 4 != 0) {
                    b.insert(row(&k, round));
                    model.insert(k, round);
                } else {
                    b.remove(&k);
                    model.remove(&k);
                }
            }
            snapshot = b.finish();
            depths.insert(snapshot.shape.depth());
            assert_eq!(snapshot.len(), model.len());
            if round % 7 != 0 {
                continue;
            }
            for (k, v) in &model {
                assert_eq!(snapshot.get(&hasher, k).map(|r| r.value.0), Some(*v));
            }
            let expected: Vec<(String, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
            assert_eq!(contents(&snapshot), expected);
            assert!(snapshot.get(&hasher, "absent").is_none());
            assert_eq!(contents(&old), before, "an earlier snapshot never changes");
        }
        assert!(
            depths.len() >= 2,
            "the shape changed with the size: {depths:?}"
        );
    }

    #[test]
    fn shapes_follow_the_size() {
        assert_eq!(Shape::for_rows(0).depth(), 0);
        assert_eq!(Shape::for_rows(40).depth(), 0);
        let thousand = Shape::for_rows(1_000);
        assert_eq!((thousand.bits, thousand.depth()), (5, 1));
        let big = Shape::for_rows(100_000);
        assert_eq!((big.bits, big.depth()), (12, 3));
        assert_eq!(
            (0..big.depth()).map(|l| big.width(l)).collect::<Vec<_>>(),
            vec![2, 5, 5]
        );
    }
}
