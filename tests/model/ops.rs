//! The operations of a sequence, and their proptest strategies.
//!
//! An operation names what to do, not the exact data: a key by index into
//! a fixed pool, an expected version as "the current one" or "one the key
//! had before", a cursor as "the n-th one held". The driver resolves these
//! against the model's state when it runs the operation, so that any
//! subsequence of a sequence is still a meaningful sequence: that is what
//! lets proptest shrink a failure by dropping operations.

use proptest::prelude::*;

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tbl {
    /// `schema::Note`: free keys, soft delete, rate limit.
    Note,
    /// `schema::Flag`: declared keys, hard delete.
    Flag,
}

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// User `ada`, role `admin`.
    Ada,
    /// User `bo`, role `admin`.
    Bo,
    /// User `cy`, no role: forbidden.
    Cy,
    /// Anonymous, no role: forbidden.
    Anonymous,
    /// Anonymous with role `admin`: rate-limited in the shared anonymous
    /// bucket, `updated_by` none.
    AnonymousAdmin,
    /// Anonymous with role `admin` and a client address: rate-limited by
    /// the address.
    AddrAdmin,
    /// The server itself: passes the role check, exempt from rate limits.
    Internal,
}

/// Key text of `schema::Note` by index: valid keys in a mixed byte order,
/// then invalid ones (empty, a control character, over 256 bytes).
pub const NOTE_KEYS: &[&str] = &["b", "a", "ab", "B", "b\u{e9}", "~", "a b", "z"];
/// Invalid key text.
pub const BAD_KEYS: &[&str] = &["", "bell\u{7}", "@257"];
/// The declared keys of `schema::Flag`, as text.
pub const FLAG_KEYS: &[&str] = &["gamma", "alpha", "delta-1", "beta", "Zeta"];
/// Text that is no key of `schema::Flag`.
pub const NOT_FLAG_KEYS: &[&str] = &["omega", "Alpha", ""];

/// A key pick: valid (index into the table's keys) or invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPick {
    /// The n-th key of the table (modulo their number).
    Valid(u8),
    /// The n-th invalid key text (modulo their number).
    Bad(u8),
}

impl KeyPick {
    /// The key text for table `t`.
    pub fn text(self, t: Tbl) -> String {
        let pick = |list: &[&str], i: u8| list[usize::from(i) % list.len()].to_owned();
        match (t, self) {
            (Tbl::Note, KeyPick::Valid(i)) => pick(NOTE_KEYS, i),
            (Tbl::Flag, KeyPick::Valid(i)) => pick(FLAG_KEYS, i),
            (Tbl::Note, KeyPick::Bad(i)) => {
                let text = pick(BAD_KEYS, i);
                if text == "@257" {
                    "k".repeat(257)
                } else {
                    text
                }
            }
            (Tbl::Flag, KeyPick::Bad(i)) => pick(NOT_FLAG_KEYS, i),
        }
    }
}

/// A value: `text` and `note`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Val {
    /// At most 12 bytes to be valid.
    pub text: String,
    /// Any; the value's JSON must stay within 48 bytes.
    pub note: String,
}

/// The version `set_expecting` expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionPick {
    /// The live row's `updated_at` (the right one), or the last version the
    /// key had when it has no live row.
    Current,
    /// The n-th version the key has had (modulo their number): stale unless
    /// it is the last one.
    Earlier(u8),
    /// One more than the current one.
    Next,
    /// A version no row had.
    Never,
}

/// The cursor a `list` continues from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorPick {
    /// No cursor: the first page.
    First,
    /// The n-th cursor held from earlier pages, of either table (modulo
    /// their number; the first page when there is none).
    Held(u8),
    /// Text that is no cursor.
    Garbage,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `set`.
    Set {
        t: Tbl,
        who: Who,
        key: KeyPick,
        value: Val,
    },
    /// `set_expecting`.
    SetExpecting {
        t: Tbl,
        who: Who,
        key: KeyPick,
        value: Val,
        version: VersionPick,
    },
    /// `set_if_absent`.
    SetIfAbsent {
        t: Tbl,
        who: Who,
        key: KeyPick,
        value: Val,
    },
    /// `rm`.
    Rm { t: Tbl, who: Who, key: KeyPick },
    /// `restore` (only `Note` has soft delete).
    Restore { who: Who, key: KeyPick },
    /// `purge(retention)`.
    Purge { t: Tbl, retention_ms: i64 },
    /// `get_str` (and `get` for a valid key).
    Get { t: Tbl, key: KeyPick },
    /// `list`, one page.
    List {
        t: Tbl,
        who: Who,
        num_items: usize,
        cursor: CursorPick,
    },
    /// The clock moves (back when negative).
    Clock { delta_ms: i64 },
    /// Registers the hooks of `schema::register_hooks` on both tables (the
    /// first time only).
    Hooks,
}

fn table() -> impl Strategy<Value = Tbl> {
    prop_oneof![3 => Just(Tbl::Note), 2 => Just(Tbl::Flag)]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        6 => Just(Who::Ada),
        3 => Just(Who::Bo),
        1 => Just(Who::Cy),
        1 => Just(Who::Anonymous),
        1 => Just(Who::AnonymousAdmin),
        1 => Just(Who::AddrAdmin),
        4 => Just(Who::Internal),
    ]
}

fn key() -> impl Strategy<Value = KeyPick> {
    prop_oneof![
        // Mostly a few keys, so that rows are written again and again.
        12 => (0u8..3).prop_map(KeyPick::Valid),
        3 => (0u8..8).prop_map(KeyPick::Valid),
        1 => (0u8..3).prop_map(KeyPick::Bad),
    ]
}

fn value() -> impl Strategy<Value = Val> {
    // Mostly valid: at most 12 bytes of text, and a value's JSON within
    // 48 bytes (which the 20-byte note leaves 7 for the text).
    let chars = || proptest::sample::select(vec!['a', 'b', 'a', 'b', '!', '?']);
    let text = prop_oneof![
        6 => proptest::collection::vec(chars(), 0..8),
        1 => proptest::collection::vec(chars(), 8..15),
    ]
    .prop_map(|chars| chars.into_iter().collect::<String>());
    let note = prop_oneof![
        6 => Just(""),
        3 => Just("x"),
        1 => Just(super::schema::SEALED),
        1 => Just(super::schema::UNSEAL),
        1 => Just("twenty-bytes-of-note"),
        1 => Just("nul\u{0}"),
    ];
    (text, note).prop_map(|(text, note)| Val {
        text,
        note: note.to_owned(),
    })
}

fn version() -> impl Strategy<Value = VersionPick> {
    prop_oneof![
        6 => Just(VersionPick::Current),
        3 => any::<u8>().prop_map(VersionPick::Earlier),
        1 => Just(VersionPick::Next),
        1 => Just(VersionPick::Never),
    ]
}

fn cursor() -> impl Strategy<Value = CursorPick> {
    prop_oneof![
        2 => Just(CursorPick::First),
        5 => any::<u8>().prop_map(CursorPick::Held),
        1 => Just(CursorPick::Garbage),
    ]
}

fn clock() -> impl Strategy<Value = i64> {
    prop_oneof![
        // Several writes in one millisecond.
        2 => Just(0i64),
        4 => 1i64..50,
        4 => 500i64..7_000,
        // Back a little, or further than a rate window.
        2 => -50i64..0,
        1 => -8_000i64..-500,
    ]
}

fn retention() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 1_000i64..2_500,
        // Under a second, or over a century: CONFIG.
        1 => proptest::sample::select(vec![0i64, 999, 3_153_600_000_001]),
    ]
}

/// One operation, weighted towards writes.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (table(), who(), key(), value())
            .prop_map(|(t, who, key, value)| Op::Set { t, who, key, value }),
        5 => (table(), who(), key(), value(), version()).prop_map(
            |(t, who, key, value, version)| Op::SetExpecting { t, who, key, value, version }
        ),
        3 => (table(), who(), key(), value())
            .prop_map(|(t, who, key, value)| Op::SetIfAbsent { t, who, key, value }),
        5 => (table(), who(), key()).prop_map(|(t, who, key)| Op::Rm { t, who, key }),
        3 => (who(), key()).prop_map(|(who, key)| Op::Restore { who, key }),
        3 => (prop_oneof![3 => Just(Tbl::Note), 1 => Just(Tbl::Flag)], retention()).prop_map(|(t, retention_ms)| Op::Purge { t, retention_ms }),
        4 => (table(), key()).prop_map(|(t, key)| Op::Get { t, key }),
        4 => (
            table(),
            who(),
            prop_oneof![6 => 1usize..4, 1 => Just(0usize), 1 => Just(1_001usize)],
            cursor()
        )
            .prop_map(|(t, who, num_items, cursor)| Op::List { t, who, num_items, cursor }),
        5 => clock().prop_map(|delta_ms| Op::Clock { delta_ms }),
        1 => Just(Op::Hooks),
    ]
}

/// A sequence of `1..=max_len` operations.
pub fn sequence(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..=max_len)
}
