//! The model: what the store may hold for one key, and the state after
//! an operation with its answer.

use std::collections::HashSet;

use super::super::history::Call;
use super::{Outcome, SearchOp};

/// A version: known, or known only to be at least some number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Version {
    Is(i64),
    AtLeast(i64),
}

/// What the model knows of one key: a set of possible stored rows. In a
/// check from the start every field is known but versions and creation
/// times an unknown outcome left open; a window starts knowing nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct State {
    /// Whether a row (live or soft-deleted) exists; `None`: unknown.
    exists: Option<bool>,
    /// If it exists, whether it is live.
    live: Option<bool>,
    /// If it exists, its value.
    value: Option<u64>,
    /// If it exists, its version.
    version: Version,
    /// If it exists, its `created_at`.
    created: Option<i64>,
}

impl State {
    pub(super) fn absent() -> State {
        State {
            exists: Some(false),
            live: None,
            value: None,
            version: Version::AtLeast(i64::MIN),
            created: None,
        }
    }

    pub(super) fn anything() -> State {
        State {
            exists: None,
            ..State::absent()
        }
    }

    fn require_absent(&mut self) -> bool {
        match self.exists {
            Some(exists) => !exists,
            None => {
                *self = State::absent();
                true
            }
        }
    }

    fn require_row(&mut self) -> bool {
        if self.exists == Some(false) {
            return false;
        }
        self.exists = Some(true);
        true
    }

    fn require_live(&mut self) -> bool {
        if !self.require_row() {
            return false;
        }
        match self.live {
            Some(live) => live,
            None => {
                self.live = Some(true);
                true
            }
        }
    }

    /// No live row: absent, or soft-deleted.
    fn require_not_live(&mut self) -> bool {
        if self.exists == Some(false) {
            return true;
        }
        match self.live {
            Some(live) => !live,
            None => {
                self.live = Some(false);
                true
            }
        }
    }

    fn observe_value(&mut self, value: u64, allowed: Option<&HashSet<u64>>) -> bool {
        match self.value {
            Some(v) => v == value,
            None => {
                if allowed.is_some_and(|a| !a.contains(&value)) {
                    return false;
                }
                self.value = Some(value);
                true
            }
        }
    }

    fn observe_version(&mut self, version: i64) -> bool {
        match self.version {
            Version::Is(v) => v == version,
            Version::AtLeast(min) if version >= min => {
                self.version = Version::Is(version);
                true
            }
            Version::AtLeast(_) => false,
        }
    }

    fn observe_created(&mut self, created: i64) -> bool {
        match self.created {
            Some(c) => c == created,
            None => {
                self.created = Some(created);
                true
            }
        }
    }

    /// Whether the version may be below `version` (a write that made
    /// `version` replaced this row).
    fn below(&self, version: i64) -> bool {
        match self.version {
            Version::Is(v) | Version::AtLeast(v) => v < version,
        }
    }

    /// The version after a change whose new version is not known.
    fn bumped(&self) -> Version {
        match self.version {
            Version::Is(v) | Version::AtLeast(v) => Version::AtLeast(v.saturating_add(1)),
        }
    }

    /// A write of `value` that told its row: replaces what is there.
    fn written(&mut self, value: u64, created_at: i64, updated_at: i64) -> bool {
        if self.exists == Some(true)
            && !(self.below(updated_at) && self.observe_created(created_at))
        {
            return false;
        }
        *self = State {
            exists: Some(true),
            live: Some(true),
            value: Some(value),
            version: Version::Is(updated_at),
            created: Some(created_at),
        };
        true
    }

    /// A write of `value` that took effect without telling its row.
    fn written_unseen(&mut self, value: u64) {
        let (version, created) = if self.exists == Some(true) {
            (self.bumped(), self.created)
        } else {
            (Version::AtLeast(i64::MIN), None)
        };
        *self = State {
            exists: Some(true),
            live: Some(true),
            value: Some(value),
            version,
            created,
        };
    }
}

/// The model: the state after `op` takes effect on `state`, or `None` when
/// its answer cannot come from `state`. `allowed`: in a window, the values
/// the state before it may hold (those written earlier).
pub(super) fn step(state: &State, op: &SearchOp, allowed: Option<&HashSet<u64>>) -> Option<State> {
    let mut s = state.clone();
    let ok = match (&op.call, &op.outcome) {
        (
            Call::Get,
            Outcome::Row {
                value,
                created_at,
                updated_at,
            },
        ) => {
            s.require_live()
                && s.observe_value(*value, allowed)
                && s.observe_version(*updated_at)
                && s.observe_created(*created_at)
        }
        (Call::Get, Outcome::NoRow) => s.require_not_live(),

        (
            Call::Set { value },
            Outcome::Row {
                value: got,
                created_at,
                updated_at,
            },
        ) => got == value && s.written(*value, *created_at, *updated_at),
        (Call::Set { value }, Outcome::Unknown) => {
            s.written_unseen(*value);
            true
        }

        (
            Call::SetExpecting { value, expected },
            Outcome::Row {
                value: got,
                created_at,
                updated_at,
            },
        ) => {
            got == value
                && updated_at > expected
                && s.require_live()
                && s.observe_version(*expected)
                && s.written(*value, *created_at, *updated_at)
        }
        (Call::SetExpecting { .. }, Outcome::Conflict(None)) => s.require_not_live(),
        (Call::SetExpecting { expected, .. }, Outcome::Conflict(Some(current))) => {
            current != expected && s.require_live() && s.observe_version(*current)
        }
        (Call::SetExpecting { value, expected }, Outcome::Unknown) => {
            let applies = s.require_live() && s.observe_version(*expected);
            if applies {
                s.written_unseen(*value);
            }
            applies
        }

        (
            Call::SetIfAbsent { value },
            Outcome::Row {
                value: got,
                created_at,
                updated_at,
            },
        ) => got == value && s.require_not_live() && s.written(*value, *created_at, *updated_at),
        (Call::SetIfAbsent { .. }, Outcome::Conflict(Some(current))) => {
            s.require_live() && s.observe_version(*current)
        }
        (Call::SetIfAbsent { value }, Outcome::Unknown) => {
            let applies = s.require_not_live();
            if applies {
                s.written_unseen(*value);
            }
            applies
        }

        (Call::Rm, Outcome::Removed(true)) | (Call::Rm, Outcome::Unknown) => {
            let applies = s.require_live();
            if applies {
                s.version = s.bumped();
                s.live = Some(false);
            }
            applies
        }
        (Call::Rm, Outcome::Removed(false)) => s.require_not_live(),

        (
            Call::Restore,
            Outcome::Row {
                value,
                created_at,
                updated_at,
            },
        ) => {
            let fits = s.require_row()
                && s.observe_value(*value, allowed)
                && s.observe_created(*created_at)
                && match s.live {
                    // A live row comes back unchanged.
                    Some(true) => s.observe_version(*updated_at),
                    Some(false) => s.below(*updated_at),
                    // Either: unchanged, or revived with a greater version.
                    None => match s.version {
                        Version::Is(v) | Version::AtLeast(v) => v <= *updated_at,
                    },
                };
            if fits {
                s.live = Some(true);
                s.version = Version::Is(*updated_at);
            }
            fits
        }
        (Call::Restore, Outcome::NotFound) => s.require_absent(),
        (Call::Restore, Outcome::Unknown) => {
            let applies = s.require_row();
            if applies {
                match s.live {
                    Some(true) => {}
                    Some(false) => s.version = s.bumped(),
                    None => {
                        s.version = match s.version {
                            Version::Is(v) | Version::AtLeast(v) => Version::AtLeast(v),
                        }
                    }
                }
                s.live = Some(true);
            }
            applies
        }

        _ => false,
    };
    ok.then_some(s)
}
