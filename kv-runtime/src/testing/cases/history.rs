//! History: every committed change of a row recorded with it, nothing
//! else; paging; revert through the write pipeline; trimming.

use std::borrow::Borrow;
use std::time::Duration;

use super::{admin, clocked, editor, T0};
use crate::backend::{Expect, HistoryOp, Outcome, Payload, Write};
use crate::schema::{History, KvSchema};
use crate::testing::schemas::*;
use crate::{Ctx, ErrorCode, HistoryEntry, PageRequest, Store, Table};

/// Every record of `key`, newest first, read page by page.
async fn all<S: History>(
    t: &Table<S>,
    ctx: &Ctx,
    key: impl Borrow<S::Key>,
) -> Vec<HistoryEntry<S>> {
    let key = key.borrow();
    let mut out = Vec::new();
    let mut request = PageRequest::first(2);
    loop {
        let page = t.history(ctx, key, request).await.unwrap();
        assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
        out.extend(page.entries);
        match page.continue_cursor {
            Some(c) => request = PageRequest::after(c, 2),
            None => {
                assert!(page.is_done);
                return out;
            }
        }
    }
}

/// The `(op, version)` of each record, newest first.
fn ops<S: KvSchema>(entries: &[HistoryEntry<S>]) -> Vec<(HistoryOp, i64)> {
    entries.iter().map(|e| (e.op, e.version)).collect()
}

/// A set, another caller's set, a soft rm, a restore and a set are each
/// recorded, newest first, with the row's version after the change, the
/// value, the time, the caller and the schema version.
pub async fn history_records_every_change_with_its_version_value_and_caller(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Chronicle>();
    let k = ChronicleKey::Banner;
    let bob = Ctx::user("bob").with_role("admin");
    let one = t.set(&admin(), k, chronicle("one")).await.unwrap();
    clock.set(T0 + 10);
    let two = t.set(&bob, k, chronicle("two")).await.unwrap();
    clock.set(T0 + 20);
    assert!(t.rm(&admin(), k).await.unwrap());
    let deleted_at = store
        .backend()
        .get(Chronicle::TABLE, "banner")
        .await
        .unwrap()
        .unwrap()
        .updated_at;
    clock.set(T0 + 30);
    let back = t.restore(&bob, k).await.unwrap();
    clock.set(T0 + 40);
    let three = t
        .set(&Ctx::internal(), k, chronicle("three"))
        .await
        .unwrap();

    let entries = all(&t, &admin(), k).await;
    assert_eq!(
        ops(&entries)[..4],
        [
            (HistoryOp::Set, three.updated_at),
            (HistoryOp::Restore, back.updated_at),
            (HistoryOp::Rm, deleted_at),
            (HistoryOp::Set, two.updated_at),
        ],
        "keep = 4: the oldest set is trimmed"
    );
    assert_eq!(entries.len(), 4);
    let texts: Vec<&str> = entries.iter().map(|e| e.value.message.as_str()).collect();
    assert_eq!(texts, ["three", "two", "two", "two"]);
    let by: Vec<Option<&str>> = entries.iter().map(|e| e.updated_by.as_deref()).collect();
    assert_eq!(
        by,
        [Some("internal"), Some("bob"), Some("ada"), Some("bob")]
    );
    let at: Vec<i64> = entries.iter().map(|e| e.at).collect();
    assert_eq!(at, [T0 + 40, T0 + 30, T0 + 20, T0 + 10]);
    assert!(entries.iter().all(|e| e.schema_version == 1 && e.key == k));
    assert!(one.updated_at < two.updated_at);
    // Each record's version is the one the row had from that change on.
    assert_eq!(
        t.get(k).await.unwrap().unwrap().updated_at,
        entries[0].version
    );
    // Other keys have their own history.
    assert!(all(&t, &admin(), ChronicleKey::Motd).await.is_empty());
}

/// Pages are newest first, of the size asked for, and a cursor goes on
/// below its page even after newer changes; cursors of another key, and
/// malformed ones, are INVALID_CURSOR; the write role is required.
pub async fn history_pages_newest_first_with_a_cursor(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Journal>();
    let k = "log".to_owned();
    let mut versions = Vec::new();
    for i in 0..7 {
        clock.set(T0 + i);
        let row = t
            .set(&editor(), &k, journal(&format!("e{i}")))
            .await
            .unwrap();
        versions.push(row.updated_at);
    }
    versions.reverse();
    let first = t
        .history(&editor(), &k, PageRequest::first(3))
        .await
        .unwrap();
    let seen: Vec<i64> = first.entries.iter().map(|e| e.version).collect();
    assert_eq!(seen, versions[..3]);
    assert!(!first.is_done);
    // A change after the first page does not shift the next ones.
    t.set(&editor(), &k, journal("late")).await.unwrap();
    let cursor = first.continue_cursor.clone().expect("more pages");
    let second = t
        .history(&editor(), &k, PageRequest::after(cursor.clone(), 3))
        .await
        .unwrap();
    let seen: Vec<i64> = second.entries.iter().map(|e| e.version).collect();
    assert_eq!(seen, versions[3..6]);
    let third = t
        .history(
            &editor(),
            &k,
            PageRequest::after(second.continue_cursor.unwrap(), 3),
        )
        .await
        .unwrap();
    let seen: Vec<i64> = third.entries.iter().map(|e| e.version).collect();
    assert_eq!(seen, versions[6..]);
    assert!(third.is_done && third.continue_cursor.is_none());
    // An exact fit ends with is_done and no cursor.
    let whole = t
        .history(&editor(), &k, PageRequest::first(8))
        .await
        .unwrap();
    assert_eq!(whole.entries.len(), 8);
    assert!(whole.is_done && whole.continue_cursor.is_none());

    let other = "other".to_owned();
    let err = t
        .history(&editor(), &other, PageRequest::after(cursor, 3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidCursor);
    for bad in ["", "h1", "v1.00.00", "h1.zz.00.1"] {
        let err = t
            .history(&editor(), &k, PageRequest::after(bad, 3))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "{bad:?}");
    }
    let err = t
        .history(&editor(), &k, PageRequest::first(1001))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    let err = t
        .history(&Ctx::anonymous(), &k, PageRequest::first(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let err = t
        .history(&editor(), &String::new(), PageRequest::first(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidKey);
}

/// `revert` writes a recorded value back as a new change, recorded too
/// (as a `set` by the reverter); reverting to an `rm` record brings the
/// deleted value back, also after a hard delete.
pub async fn revert_writes_a_recorded_value_back_and_is_recorded(store: Store) {
    let t = store.table::<Chronicle>();
    let k = ChronicleKey::Alpha;
    let first = t.set(&admin(), k, chronicle("first")).await.unwrap();
    t.set(&admin(), k, chronicle("second")).await.unwrap();
    let bob = Ctx::user("bob").with_role("admin");
    let back = t.revert(&bob, k, first.updated_at).await.unwrap();
    assert_eq!(back.value.message, "first");
    assert_eq!(back.updated_by.as_deref(), Some("bob"));
    assert_eq!(t.get(k).await.unwrap(), Some(back.clone()));
    let newest = &all(&t, &admin(), k).await[0];
    assert_eq!(
        (newest.op, newest.version, newest.value.message.as_str()),
        (HistoryOp::Set, back.updated_at, "first")
    );
    assert_eq!(newest.updated_by.as_deref(), Some("bob"));
    // Reverting to the deletion: the value the row had, live again.
    assert!(t.rm(&admin(), k).await.unwrap());
    let rm = all(&t, &admin(), k).await[0].version;
    t.set(&admin(), k, chronicle("third")).await.unwrap();
    let again = t.revert(&admin(), k, rm).await.unwrap();
    assert_eq!(again.value.message, "first");
    // A hard delete leaves the history; revert re-creates the row.
    let j = store.table::<Journal>();
    let key = "gone".to_owned();
    let made = j.set(&editor(), &key, journal("kept")).await.unwrap();
    assert!(j.rm(&editor(), &key).await.unwrap());
    let entries = all(&j, &editor(), &key).await;
    assert_eq!(entries[0].op, HistoryOp::Rm);
    assert!(entries[0].version > made.updated_at);
    let reborn = j.revert(&editor(), &key, made.updated_at).await.unwrap();
    assert_eq!(reborn.value.text, "kept");
    assert!(reborn.updated_at > entries[0].version);
}

/// `revert_expecting` over a version the row no longer has is CONFLICT,
/// and so is a plain `revert` when the row changes between its read and
/// its write; neither writes nor records anything.
pub async fn revert_of_a_stale_version_is_conflict(store: Store) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let t = store.table::<Chronicle>();
    let k = ChronicleKey::Beta;
    let old = t.set(&admin(), k, chronicle("old")).await.unwrap();
    let seen = t.set(&admin(), k, chronicle("seen")).await.unwrap();
    let now = t.set(&admin(), k, chronicle("now")).await.unwrap();
    let before = all(&t, &admin(), k).await;
    let err = t
        .revert_expecting(&admin(), k, old.updated_at, seen.updated_at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(
        matches!(err, crate::Error::Conflict { current_updated_at, .. } if current_updated_at == Some(now.updated_at)),
        "{err:?}"
    );
    assert_eq!(t.get(k).await.unwrap(), Some(now.clone()));
    assert_eq!(all(&t, &admin(), k).await, before);
    // Over the current version it goes through.
    let back = t
        .revert_expecting(&admin(), k, old.updated_at, now.updated_at)
        .await
        .unwrap();
    assert_eq!(back.value.message, "old");

    // A change made after the revert read the row (here, by a hook that
    // runs before the revert's write) is not overwritten.
    let sneaked = Arc::new(AtomicBool::new(false));
    {
        let (sneaked, other) = (Arc::clone(&sneaked), t.clone());
        t.before_set("sneak", move |change| {
            let (sneaked, other) = (Arc::clone(&sneaked), other.clone());
            async move {
                if !sneaked.swap(true, Ordering::SeqCst) {
                    other
                        .set(&Ctx::internal(), ChronicleKey::Beta, chronicle("sneaky"))
                        .await
                        .map_err(|e| crate::hooks::HookError::new(e.to_string()))?;
                }
                Ok(change.value)
            }
        });
    }
    let err = t.revert(&admin(), k, seen.updated_at).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err:?}");
    assert_eq!(t.get(k).await.unwrap().unwrap().value.message, "sneaky");
    assert_eq!(all(&t, &admin(), k).await[0].value.message, "sneaky");
}

/// A version the history does not hold (never one of the row's, or
/// trimmed) is NOT_FOUND and changes nothing.
pub async fn revert_to_an_unknown_version_is_not_found(store: Store) {
    let t = store.table::<Chronicle>();
    let k = ChronicleKey::Motd;
    let first = t.set(&admin(), k, chronicle("m0")).await.unwrap();
    for i in 1..=4 {
        t.set(&admin(), k, chronicle(&format!("m{i}")))
            .await
            .unwrap();
    }
    let current = t.get(k).await.unwrap();
    let next = current.as_ref().map_or(0, |r| r.updated_at + 1);
    for version in [first.updated_at, next, 1, i64::MAX, -1] {
        let err = t.revert(&admin(), k, version).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{version}");
        assert!(
            matches!(err, crate::Error::NoSuchVersion { version: v, .. } if v == version),
            "{err:?}"
        );
    }
    assert_eq!(t.get(k).await.unwrap(), current);
    assert_eq!(all(&t, &admin(), k).await.len(), 4);
}

/// Writes that do not commit leave no record: refused by the write role,
/// the key, validation, an expectation, a hook or a newer schema; and
/// operations that change nothing (rm of no live row, restore of a live
/// or unknown one) record nothing either.
pub async fn no_record_without_a_committed_change(store: Store) {
    let t = store.table::<Chronicle>();
    let k = ChronicleKey::Banner;
    let row = t.set(&admin(), k, chronicle("kept")).await.unwrap();
    let before = all(&t, &admin(), k).await;
    assert_eq!(before.len(), 1);

    let refused = [
        t.set(&Ctx::anonymous(), k, chronicle("forbidden"))
            .await
            .unwrap_err(),
        t.set(&admin(), k, chronicle("")).await.unwrap_err(),
        t.set_expecting(&admin(), k, chronicle("stale"), row.updated_at - 1)
            .await
            .unwrap_err(),
        t.set_if_absent(&admin(), k, chronicle("absent"))
            .await
            .unwrap_err(),
        t.revert_expecting(&admin(), k, row.updated_at, row.updated_at + 1)
            .await
            .unwrap_err(),
    ];
    let codes: Vec<ErrorCode> = refused.iter().map(|e| e.code()).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::Forbidden,
            ErrorCode::ValidationFailed,
            ErrorCode::Conflict,
            ErrorCode::Conflict,
            ErrorCode::Conflict
        ]
    );
    t.before_set("veto", |change| async move {
        if change.value.message == "vetoed" {
            return Err(crate::hooks::HookError::new("not this"));
        }
        Ok(change.value)
    });
    t.before_rm("keep", |_| async {
        Err(crate::hooks::HookError::new("no"))
    });
    let err = t.set(&admin(), k, chronicle("vetoed")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    assert_eq!(
        t.rm(&admin(), k).await.unwrap_err().code(),
        ErrorCode::Rejected
    );
    assert_eq!(all(&t, &admin(), k).await, before, "nothing was recorded");

    // Nothing to change: no record.
    t.restore(&admin(), k).await.unwrap(); // already live
    let err = t.restore(&admin(), ChronicleKey::Beta).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(!t.rm(&admin(), ChronicleKey::Beta).await.unwrap());
    assert_eq!(all(&t, &admin(), k).await, before);
    assert!(all(&t, &admin(), ChronicleKey::Beta).await.is_empty());

    // A newer schema's row is not overwritten, and not recorded.
    let backend = store.backend();
    let write = |expect| Write {
        key: "motd",
        expect,
        updated_by: None,
        now: store.now(),
        history: Chronicle::HISTORY,
    };
    let newer = Payload::versioned(r#"{"message":"v2"}"#, 2);
    let out = backend
        .set(Chronicle::TABLE, write(Expect::Any), newer)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done(_)), "{out:?}");
    let older = Payload::versioned(r#"{"message":"v1"}"#, 1);
    let out = backend
        .set(Chronicle::TABLE, write(Expect::Any), older)
        .await
        .unwrap();
    assert_eq!(out, Outcome::NewerSchema { stored: 2 });
    let records = backend
        .history(Chronicle::TABLE, "motd", None, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.schema(), 2);
    // The typed history reports it beside the page instead of failing.
    let page = t
        .history(&admin(), ChronicleKey::Motd, PageRequest::first(10))
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    assert_eq!(page.unreadable.len(), 1);
    assert_eq!(page.unreadable[0].schema_version, 2);
    assert_eq!(page.unreadable[0].op, HistoryOp::Set);
}

/// `revert` is a write like any other: the write role, the `before_set`
/// hooks (which see it as `revert`) and the rate limit apply.
pub async fn revert_goes_through_the_write_pipeline(store: Store) {
    let t = store.table::<Chronicle>();
    let k = ChronicleKey::Banner;
    let first = t.set(&admin(), k, chronicle("first")).await.unwrap();
    t.set(&admin(), k, chronicle("second")).await.unwrap();
    let err = t
        .revert(&Ctx::user("eve"), k, first.updated_at)
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::Forbidden { op: "revert", .. }),
        "{err:?}"
    );
    t.before_set("no-going-back", |change| async move {
        if change.value.message == "first" {
            return Err(crate::hooks::HookError::new("first is retired"));
        }
        Ok(change.value)
    });
    let err = t.revert(&admin(), k, first.updated_at).await.unwrap_err();
    assert!(
        matches!(&err, crate::Error::Rejected { op: "revert", hook, .. } if hook == "no-going-back"),
        "{err:?}"
    );
    assert_eq!(t.get(k).await.unwrap().unwrap().value.message, "second");

    let (store, _clock) = clocked(&store);
    let limited = store.table::<LimitedHistory>();
    let guest = Ctx::anonymous().with_client_addr("192.0.2.7");
    let key = "n".to_owned();
    let zero = limited
        .set(&guest, &key, LimitedHistory { n: 0 })
        .await
        .unwrap();
    limited
        .set(&guest, &key, LimitedHistory { n: 1 })
        .await
        .unwrap();
    limited.revert(&guest, &key, zero.updated_at).await.unwrap();
    let err = limited
        .revert(&guest, &key, zero.updated_at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert_eq!(all(&limited, &guest, &key).await.len(), 3);
}

/// `keep = N` keeps each row's newest N records, trimmed in the change's
/// own step; rows are trimmed independently.
pub async fn history_keeps_the_newest_records_per_row(store: Store) {
    let t = store.table::<Chronicle>();
    let mut versions = Vec::new();
    for i in 0..7 {
        let row = t
            .set(&admin(), ChronicleKey::Alpha, chronicle(&format!("a{i}")))
            .await
            .unwrap();
        versions.push(row.updated_at);
    }
    t.set(&admin(), ChronicleKey::Beta, chronicle("b"))
        .await
        .unwrap();
    let alpha = all(&t, &admin(), ChronicleKey::Alpha).await;
    let seen: Vec<i64> = alpha.iter().map(|e| e.version).collect();
    let mut newest: Vec<i64> = versions[3..].to_vec();
    newest.reverse();
    assert_eq!(seen, newest);
    let stored = store
        .backend()
        .history(Chronicle::TABLE, "alpha", None, 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 4, "trimmed in storage, not only in the page");
    assert_eq!(all(&t, &admin(), ChronicleKey::Beta).await.len(), 1);
}

/// `keep_for` drops a row's records older than the retention when the row
/// changes, and `purge` drops them for rows no longer written.
pub async fn history_older_than_keep_for_is_trimmed_on_change_and_by_purge(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Journal>();
    let (busy, quiet) = ("busy".to_owned(), "quiet".to_owned());
    t.set(&editor(), &busy, journal("b0")).await.unwrap();
    t.set(&editor(), &quiet, journal("q0")).await.unwrap();
    clock.advance(Duration::from_secs(30 * 60));
    t.set(&editor(), &busy, journal("b1")).await.unwrap();
    assert_eq!(all(&t, &editor(), &busy).await.len(), 2);
    clock.advance(Duration::from_secs(40 * 60)); // b0 and q0 are 70 min old
    t.set(&editor(), &busy, journal("b2")).await.unwrap();
    let texts: Vec<String> = all(&t, &editor(), &busy)
        .await
        .into_iter()
        .map(|e| e.value.text)
        .collect();
    assert_eq!(texts, ["b2", "b1"]);
    assert_eq!(
        all(&t, &editor(), &quiet).await.len(),
        1,
        "not written since"
    );
    assert_eq!(t.purge(Duration::from_secs(60)).await.unwrap(), 0);
    assert!(all(&t, &editor(), &quiet).await.is_empty());
    assert_eq!(all(&t, &editor(), &busy).await.len(), 2);
    // The row itself stays.
    assert!(t.get(&quiet).await.unwrap().is_some());
}

/// A hard rm and a purge are recorded with versions after the removed
/// row's, and a row created later gets a version after those: the
/// versions of a key's history stay unique and increasing.
pub async fn removals_are_recorded_and_versions_stay_unique(store: Store) {
    let (store, clock) = clocked(&store);
    let j = store.table::<Journal>();
    let k = "again".to_owned();
    for round in 0..3 {
        j.set(&editor(), &k, journal(&format!("r{round}")))
            .await
            .unwrap();
        assert!(j.rm(&editor(), &k).await.unwrap());
    }
    let entries = all(&j, &editor(), &k).await;
    assert_eq!(entries.len(), 6);
    let versions: Vec<i64> = entries.iter().map(|e| e.version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] > w[1]),
        "unique and increasing in the order of the changes, even within one millisecond: \
         {versions:?}"
    );
    assert_eq!(
        entries[0].value.text, "r2",
        "the rm keeps the value removed"
    );

    let t = store.table::<Chronicle>();
    let c = ChronicleKey::Motd;
    t.set(&admin(), c, chronicle("doomed")).await.unwrap();
    assert!(t.rm(&admin(), c).await.unwrap());
    clock.advance(Duration::from_secs(120));
    assert_eq!(t.purge(Duration::from_secs(60)).await.unwrap(), 1);
    let entries = all(&t, &admin(), c).await;
    assert_eq!(
        entries.iter().map(|e| e.op).collect::<Vec<_>>(),
        [HistoryOp::Purge, HistoryOp::Rm, HistoryOp::Set]
    );
    assert_eq!(entries[0].value.message, "doomed");
    assert_eq!(entries[0].updated_by.as_deref(), Some("internal"));
    assert!(entries[0].version > entries[1].version);
    let reborn = t.set(&admin(), c, chronicle("reborn")).await.unwrap();
    assert!(reborn.updated_at > entries[0].version);
    // The purged value can be reverted to.
    let back = t.revert(&admin(), c, entries[0].version).await.unwrap();
    assert_eq!(back.value.message, "doomed");
}

/// Many tasks racing on one row with conflict-checked writes: the history
/// holds exactly the writes that returned Ok, with their versions and
/// values, and nothing of the ones refused.
pub async fn racing_writes_record_exactly_the_committed_changes(store: Store) {
    const TASKS: u32 = 6;
    const TRIES: u32 = 15;
    let t = store.table::<Journal>();
    let k = "race".to_owned();
    let start = t.set(&editor(), &k, journal("start")).await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (t, k) = (t.clone(), k.clone());
            tokio::spawn(async move {
                let mut committed = Vec::new();
                let mut refused = 0;
                for i in 0..TRIES {
                    let current = t.get(&k).await.unwrap().expect("the row exists");
                    let text = format!("t{task}-{i}");
                    match t
                        .set_expecting(&editor(), &k, journal(&text), current.updated_at)
                        .await
                    {
                        Ok(row) => committed.push((row.updated_at, text)),
                        Err(e) => {
                            assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
                            refused += 1;
                        }
                    }
                }
                (committed, refused)
            })
        })
        .collect();
    let mut committed = vec![(start.updated_at, "start".to_owned())];
    let mut refused = 0;
    for task in tasks {
        let (mine, theirs) = task.await.unwrap();
        committed.extend(mine);
        refused += theirs;
    }
    committed.sort();
    let mut recorded: Vec<(i64, String)> = all(&t, &editor(), &k)
        .await
        .into_iter()
        .map(|e| (e.version, e.value.text))
        .collect();
    recorded.reverse();
    assert_eq!(
        recorded, committed,
        "exactly the acknowledged writes ({refused} refused)"
    );
    assert_eq!(
        t.get(&k).await.unwrap().unwrap().updated_at,
        committed.last().unwrap().0
    );
}
