//! Sequences checked in: the subtle cases written out by hand, and every
//! failure the model-based tests found (each named after what it caught),
//! run on every backend by each `model_*` test file's `regressions` test.

use super::ops::{CursorPick, KeyPick, Op, Tbl, Val, VersionPick, Who};

fn val(text: &str, note: &str) -> Val {
    Val {
        text: text.to_owned(),
        note: note.to_owned(),
    }
}

fn set(t: Tbl, who: Who, key: u8, text: &str) -> Op {
    Op::Set {
        t,
        who,
        key: KeyPick::Valid(key),
        value: val(text, ""),
    }
}

/// Every checked-in sequence, by name.
pub fn all() -> Vec<(&'static str, Vec<Op>)> {
    use Tbl::{Flag, Note};
    use Who::{Ada, Bo, Internal};
    vec![
        (
            // Writes in one millisecond and after the clock steps back
            // still get increasing versions; a stale one conflicts.
            "versions_with_a_clock_stepping_back",
            vec![
                set(Note, Ada, 0, "a"),
                set(Note, Internal, 0, "b"),
                Op::Clock { delta_ms: -40 },
                set(Note, Bo, 0, "c"),
                Op::Rm {
                    t: Note,
                    who: Internal,
                    key: KeyPick::Valid(0),
                },
                Op::Restore {
                    who: Internal,
                    key: KeyPick::Valid(0),
                },
                Op::SetExpecting {
                    t: Note,
                    who: Internal,
                    key: KeyPick::Valid(0),
                    value: val("d", ""),
                    version: VersionPick::Earlier(1),
                },
                Op::SetExpecting {
                    t: Note,
                    who: Internal,
                    key: KeyPick::Valid(0),
                    value: val("d", ""),
                    version: VersionPick::Current,
                },
            ],
        ),
        (
            // A hard delete and a purge raise the floor: a re-created row
            // never gets a version it had, even with the clock back.
            "recreated_rows_after_hard_delete_and_purge",
            vec![
                set(Flag, Internal, 1, "a"),
                set(Flag, Internal, 1, "b"),
                Op::Rm {
                    t: Flag,
                    who: Internal,
                    key: KeyPick::Valid(1),
                },
                Op::Clock { delta_ms: -30 },
                set(Flag, Internal, 1, "c"),
                set(Note, Internal, 2, "a"),
                Op::Rm {
                    t: Note,
                    who: Internal,
                    key: KeyPick::Valid(2),
                },
                Op::Clock { delta_ms: 3_000 },
                Op::Purge {
                    t: Note,
                    retention_ms: 1_000,
                },
                Op::Restore {
                    who: Internal,
                    key: KeyPick::Valid(2),
                },
                Op::Clock { delta_ms: -5_000 },
                set(Note, Internal, 2, "b"),
            ],
        ),
        (
            // A cursor held while rows before and after it come and go.
            "cursor_held_across_changes",
            vec![
                set(Note, Internal, 0, "b"),
                set(Note, Internal, 1, "a"),
                set(Note, Internal, 2, "ab"),
                set(Note, Internal, 5, "~"),
                Op::List {
                    t: Note,
                    who: Ada,
                    num_items: 2,
                    cursor: CursorPick::First,
                },
                Op::Rm {
                    t: Note,
                    who: Internal,
                    key: KeyPick::Valid(2),
                },
                set(Note, Internal, 7, "z"),
                Op::List {
                    t: Note,
                    who: Ada,
                    num_items: 2,
                    cursor: CursorPick::Held(0),
                },
                Op::List {
                    t: Flag,
                    who: Ada,
                    num_items: 2,
                    cursor: CursorPick::Held(0),
                },
            ],
        ),
        (
            // Hooks refuse before the conflict check, and a refused write
            // still used its rate-limit slot.
            "hooks_and_rate_limit",
            vec![
                Op::Hooks,
                Op::Set {
                    t: Note,
                    who: Ada,
                    key: KeyPick::Valid(0),
                    value: val("a", "sealed"),
                },
                Op::Set {
                    t: Note,
                    who: Ada,
                    key: KeyPick::Valid(0),
                    value: val("b", ""),
                },
                Op::Rm {
                    t: Note,
                    who: Ada,
                    key: KeyPick::Valid(0),
                },
                Op::Set {
                    t: Note,
                    who: Ada,
                    key: KeyPick::Valid(0),
                    value: val("c?", "unseal"),
                },
                Op::Clock { delta_ms: 4_999 },
                Op::Set {
                    t: Note,
                    who: Ada,
                    key: KeyPick::Valid(0),
                    value: val("c?", "unseal"),
                },
                Op::Clock { delta_ms: 1 },
                Op::Set {
                    t: Note,
                    who: Ada,
                    key: KeyPick::Valid(0),
                    value: val("c?", "unseal"),
                },
            ],
        ),
        (
            // Hits counted before the clock stepped back are later than
            // the new `now`, and still in the window: the fourth write
            // waits for the oldest of them (documented on
            // `RateCounter::hit`).
            "rate_limit_counts_hits_from_before_the_clock_stepped_back",
            vec![
                set(Note, Bo, 0, "a"),
                set(Note, Bo, 1, "b"),
                set(Note, Bo, 2, "c"),
                Op::Clock { delta_ms: -1_000 },
                set(Note, Bo, 3, "d"),
                Op::Clock { delta_ms: 5_999 },
                set(Note, Bo, 3, "d"),
                Op::Clock { delta_ms: 1 },
                set(Note, Bo, 3, "d"),
            ],
        ),
    ]
}
