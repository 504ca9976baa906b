//! The conformance cases, one public async function each. Each takes a store
//! over a backend holding none of the suite's tables and panics on failure.

use std::collections::BTreeSet;

use super::schemas::*;
use crate::{Ctx, ErrorCode, ManualClock, PageRequest, Store};

const T0: i64 = 1_700_000_000_000;

fn admin() -> Ctx {
    Ctx::user("ada").with_role("admin")
}

fn editor() -> Ctx {
    Ctx::user("ed").with_role("editor")
}

fn clocked(store: &Store) -> (Store, ManualClock) {
    let clock = ManualClock::new(T0);
    (store.with_clock(clock.clone()), clock)
}

fn note(text: &str) -> Note {
    Note {
        body: serde_json::json!({ "text": text }),
    }
}

/// `get` of a key never written is `None`.
pub async fn get_missing_is_none(store: Store) {
    let t = store.table::<Banner>();
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
    assert_eq!(
        store
            .table::<Note>()
            .get("nothing".to_owned())
            .await
            .unwrap(),
        None
    );
}

/// `set` returns the stored row and `get` (with no context) reads it back.
pub async fn set_then_get_round_trips(store: Store) {
    let (store, _clock) = clocked(&store);
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("hello"))
        .await
        .unwrap();
    assert_eq!(row.key, BannerKey::Banner);
    assert_eq!(row.value, Banner::new("hello"));
    assert_eq!(row.created_at, T0);
    assert_eq!(row.updated_at, T0);
    assert_eq!(row.deleted_at, None);
    let got = t.get(BannerKey::Banner).await.unwrap().expect("row exists");
    assert_eq!(got, row);
    let by_text = t.get_str("banner").await.unwrap().expect("row exists");
    assert_eq!(by_text, row);
}

/// Overwriting keeps `created_at` and moves `updated_at` forward.
pub async fn overwrite_keeps_created_at_and_bumps_updated_at(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    t.set(&admin(), BannerKey::Banner, Banner::new("one"))
        .await
        .unwrap();
    clock.set(T0 + 500);
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("two"))
        .await
        .unwrap();
    assert_eq!(row.created_at, T0);
    assert_eq!(row.updated_at, T0 + 500);
    assert_eq!(
        t.get(BannerKey::Banner)
            .await
            .unwrap()
            .unwrap()
            .value
            .message,
        "two"
    );
}

/// Every mutation in the same millisecond still gives a strictly greater
/// `updated_at`: set, set, soft rm, restore, set.
pub async fn updated_at_strictly_increases_within_one_millisecond(store: Store) {
    let (store, _clock) = clocked(&store);
    let t = store.table::<Banner>();
    let k = BannerKey::Banner;
    let mut seen = vec![
        t.set(&admin(), k, Banner::new("a"))
            .await
            .unwrap()
            .updated_at,
    ];
    seen.push(
        t.set(&admin(), k, Banner::new("b"))
            .await
            .unwrap()
            .updated_at,
    );
    assert!(t.rm(&admin(), k).await.unwrap());
    let restored = t.restore(&admin(), k).await.unwrap();
    assert!(
        restored.updated_at > seen[1] + 1,
        "rm and restore each bump updated_at"
    );
    seen.push(restored.updated_at);
    seen.push(
        t.set(&admin(), k, Banner::new("c"))
            .await
            .unwrap()
            .updated_at,
    );
    for pair in seen.windows(2) {
        assert!(
            pair[1] > pair[0],
            "updated_at must strictly increase: {seen:?}"
        );
    }
    // The version read back is the one a conflict check accepts.
    let current = t.get(k).await.unwrap().unwrap().updated_at;
    assert_eq!(current, *seen.last().unwrap());
    t.set_expecting(&admin(), k, Banner::new("d"), current)
        .await
        .unwrap();
    let stale = t
        .set_expecting(&admin(), k, Banner::new("e"), current)
        .await
        .unwrap_err();
    assert_eq!(
        stale.code(),
        ErrorCode::Conflict,
        "two writes in one ms must not share a version"
    );
}

/// A clock that steps back does not make `updated_at` go back.
pub async fn updated_at_increases_when_the_clock_steps_back(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let first = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    clock.set(T0 - 60_000);
    let second = t
        .set(&admin(), BannerKey::Banner, Banner::new("b"))
        .await
        .unwrap();
    assert!(second.updated_at > first.updated_at);
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    assert!(restored.updated_at > second.updated_at + 1);
}

/// A conflict-checked set with the current version writes.
pub async fn conflict_checked_set_with_current_version_succeeds(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(3));
    let next = t
        .set_expecting(
            &admin(),
            BannerKey::Banner,
            Banner::new("b"),
            row.updated_at,
        )
        .await
        .unwrap();
    assert!(next.updated_at > row.updated_at);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), next);
}

/// A stale version is CONFLICT carrying the current version; nothing changes.
pub async fn conflict_checked_set_with_stale_version_fails_and_changes_nothing(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let first = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(1));
    let second = t
        .set(&admin(), BannerKey::Banner, Banner::new("b"))
        .await
        .unwrap();
    let err = t
        .set_expecting(
            &admin(),
            BannerKey::Banner,
            Banner::new("c"),
            first.updated_at,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    match err {
        crate::Error::Conflict {
            current_updated_at, ..
        } => {
            assert_eq!(current_updated_at, Some(second.updated_at))
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), second);
}

/// Expecting a row that does not exist is CONFLICT, and creates nothing.
pub async fn conflict_checked_set_of_missing_row_is_conflict(store: Store) {
    let t = store.table::<Banner>();
    let err = t
        .set_expecting(&admin(), BannerKey::Banner, Banner::new("a"), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(matches!(
        err,
        crate::Error::Conflict {
            current_updated_at: None,
            ..
        }
    ));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
}

/// A soft-deleted row reads as missing, so expecting its old version is CONFLICT.
pub async fn conflict_checked_set_of_soft_deleted_row_is_conflict(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let err = t
        .set_expecting(
            &admin(),
            BannerKey::Banner,
            Banner::new("b"),
            row.updated_at,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        crate::Error::Conflict {
            current_updated_at: None,
            ..
        }
    ));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
}

/// Many writers expecting the same version: exactly one wins.
pub async fn concurrent_conflict_checked_sets_admit_exactly_one(store: Store) {
    let (store, _clock) = clocked(&store);
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("start"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let t = t.clone();
        let expected = row.updated_at;
        tasks.push(tokio::spawn(async move {
            t.set_expecting(
                &admin(),
                BannerKey::Banner,
                Banner::new(&format!("w{i}")),
                expected,
            )
            .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task does not panic") {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::Conflict),
        }
    }
    assert_eq!(wins, 1, "exactly one conflict-checked write may win");
}

/// Hard rm removes; a second rm and an rm of a missing key report false.
pub async fn hard_rm_removes_and_reports(store: Store) {
    let t = store.table::<Note>();
    let k = "n1".to_owned();
    t.set(&editor(), &k, note("x")).await.unwrap();
    assert!(t.rm(&editor(), &k).await.unwrap());
    assert_eq!(t.get(&k).await.unwrap(), None);
    assert!(!t.rm(&editor(), &k).await.unwrap());
    assert!(!t.rm(&editor(), "never".to_owned()).await.unwrap());
    let page = t.list(&editor(), PageRequest::first(10)).await.unwrap();
    assert!(page.page.is_empty() && page.is_done);
}

/// Soft rm hides the row from get and list; restore brings it back intact.
pub async fn soft_rm_hides_row_and_restore_brings_it_back(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("keep me"))
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(10));
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
    assert!(
        !t.rm(&admin(), BannerKey::Banner).await.unwrap(),
        "already deleted reports false"
    );
    let page = t.list(&admin(), PageRequest::first(10)).await.unwrap();
    assert!(page.page.is_empty());
    clock.advance(std::time::Duration::from_millis(10));
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    assert_eq!(restored.value, row.value);
    assert_eq!(restored.created_at, row.created_at);
    assert_eq!(restored.deleted_at, None);
    assert!(restored.updated_at > row.updated_at);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), restored);
}

/// Restore of a live row returns it unchanged.
pub async fn restore_of_live_row_returns_it_unchanged(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("live"))
        .await
        .unwrap();
    let again = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    assert_eq!(again, row);
}

/// Restore of a key that never existed is NOT_FOUND; nothing is created.
pub async fn restore_of_unknown_key_is_not_found(store: Store) {
    let t = store.table::<Banner>();
    let err = t
        .restore(&admin(), BannerKey::Maintenance)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(t.get(BannerKey::Maintenance).await.unwrap(), None);
}

/// A set on a soft-deleted key revives it, and the returned row (and the
/// stored one) has no `deleted_at`.
pub async fn set_revives_soft_deleted_row_without_deleted_at(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let first = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(5));
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let revived = t
        .set(&admin(), BannerKey::Banner, Banner::new("b"))
        .await
        .unwrap();
    assert_eq!(revived.deleted_at, None);
    assert_eq!(revived.created_at, first.created_at);
    let stored = t
        .get(BannerKey::Banner)
        .await
        .unwrap()
        .expect("revived row is live");
    assert_eq!(stored, revived);
    let page = t.list(&admin(), PageRequest::first(10)).await.unwrap();
    assert_eq!(page.page, vec![revived]);
}

/// Soft-deleted rows are skipped before paging: every page but the last is
/// full, and the pages together hold each live row once, in key order.
pub async fn list_pages_are_full_despite_soft_deleted_rows(store: Store) {
    let t = store.table::<Banner>();
    for (i, k) in BannerKey::ALL.iter().enumerate() {
        t.set(&admin(), k, Banner::new(&format!("m{i}")))
            .await
            .unwrap();
    }
    let mut live: Vec<&str> = Vec::new();
    for (i, k) in BannerKey::ALL.iter().enumerate() {
        if i % 3 != 0 {
            assert!(t.rm(&admin(), k).await.unwrap());
        } else {
            live.push(k.as_str());
        }
    }
    live.sort_unstable();
    for size in 1..=5 {
        let mut request = PageRequest::first(size);
        let mut got: Vec<String> = Vec::new();
        loop {
            let page = t.list(&admin(), request.clone()).await.unwrap();
            if !page.is_done {
                assert_eq!(
                    page.page.len(),
                    size,
                    "a page that is not the last must be full"
                );
            }
            got.extend(page.page.iter().map(|r| r.key.as_str().to_owned()));
            match page.continue_cursor {
                Some(c) => request = PageRequest::after(c, size),
                None => {
                    assert!(page.is_done);
                    break;
                }
            }
        }
        assert_eq!(got, live, "page size {size}");
    }
}

/// A cursor keeps working while rows before and after it come and go.
pub async fn list_cursor_survives_inserts_and_deletes(store: Store) {
    let t = store.table::<Note>();
    for k in ["b", "d", "f", "h"] {
        t.set(&editor(), k.to_owned(), note(k)).await.unwrap();
    }
    let first = t.list(&editor(), PageRequest::first(2)).await.unwrap();
    let keys: Vec<_> = first.page.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, ["b", "d"]);
    let cursor = first.continue_cursor.expect("more rows follow");
    // Delete the row the cursor points at, and rows around it; add new ones.
    assert!(t.rm(&editor(), "d".to_owned()).await.unwrap());
    assert!(t.rm(&editor(), "f".to_owned()).await.unwrap());
    t.set(&editor(), "a".to_owned(), note("a")).await.unwrap();
    t.set(&editor(), "e".to_owned(), note("e")).await.unwrap();
    let next = t
        .list(&editor(), PageRequest::after(cursor, 2))
        .await
        .unwrap();
    let keys: Vec<_> = next.page.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, ["e", "h"]);
    assert!(next.is_done);
}

/// Malformed cursors, and cursors of another table, are INVALID_CURSOR.
pub async fn list_rejects_malformed_and_foreign_cursors(store: Store) {
    let notes = store.table::<Note>();
    for k in ["a", "b", "c"] {
        notes.set(&editor(), k.to_owned(), note(k)).await.unwrap();
    }
    let foreign = notes
        .list(&editor(), PageRequest::first(1))
        .await
        .unwrap()
        .continue_cursor
        .expect("more notes follow");
    let banners = store.table::<Banner>();
    banners
        .set(&admin(), BannerKey::Banner, Banner::new("x"))
        .await
        .unwrap();
    let bad = [
        foreign.as_str(),
        "",
        "not a cursor",
        "v1.zz.zz",
        "v9.00.00",
        "v1..",
        "v1.636f6e666f726d616e636542616e6e6572.zz",
        "\u{0}\u{1}",
        "🦀🦀🦀",
    ];
    for c in bad {
        let err = banners
            .list(&admin(), PageRequest::after(c, 10))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "cursor {c:?}");
    }
    let long = "v1.".to_owned() + &"a".repeat(100_000);
    let err = banners
        .list(&admin(), PageRequest::after(long, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidCursor);
}

/// Page sizes above the maximum are refused; 0 means the default.
pub async fn list_page_size_is_bounded(store: Store) {
    let t = store.table::<Banner>();
    t.set(&admin(), BannerKey::Banner, Banner::new("x"))
        .await
        .unwrap();
    let err = t
        .list(&admin(), PageRequest::first(PageRequest::MAX_ITEMS + 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    let page = t.list(&admin(), PageRequest::first(0)).await.unwrap();
    assert_eq!(page.page.len(), 1);
}

/// Each `write_role` form admits exactly the callers it names; internal
/// callers always pass; `list` needs the write role too.
pub async fn write_roles_are_enforced(store: Store) {
    let anon = Ctx::anonymous();
    let user = Ctx::user("u1");
    let wrong_role = Ctx::user("u2").with_role("editor");
    let internal = Ctx::internal();

    let banners = store.table::<Banner>();
    for ctx in [&anon, &user, &wrong_role] {
        let err = banners
            .set(ctx, BannerKey::Banner, Banner::new("x"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{ctx:?}");
        let err = banners.list(ctx, PageRequest::first(1)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{ctx:?}");
        let err = banners.rm(ctx, BannerKey::Banner).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{ctx:?}");
        let err = banners.restore(ctx, BannerKey::Banner).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{ctx:?}");
    }
    banners
        .set(&admin(), BannerKey::Banner, Banner::new("x"))
        .await
        .unwrap();
    banners
        .set(&internal, BannerKey::Banner, Banner::new("y"))
        .await
        .unwrap();
    banners.list(&admin(), PageRequest::first(1)).await.unwrap();

    let health = store.table::<Health>();
    for ctx in [&anon, &user, &admin()] {
        let err = health
            .set(ctx, HealthKey::Db, Health { ok: true })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::Forbidden,
            "internal-only table, {ctx:?}"
        );
    }
    health
        .set(&internal, HealthKey::Db, Health { ok: true })
        .await
        .unwrap();
    // Reads are public.
    assert!(health.get(HealthKey::Db).await.unwrap().unwrap().value.ok);

    let guestbook = store.table::<Guestbook>();
    let row = guestbook
        .set(&anon, "hello".to_owned(), Guestbook { text: "hi".into() })
        .await
        .unwrap();
    assert_eq!(row.updated_by, None);
    assert!(guestbook.rm(&anon, "hello".to_owned()).await.unwrap());
}

/// A refused write leaves the stored row exactly as it was.
pub async fn forbidden_writes_change_nothing(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("orig"))
        .await
        .unwrap();
    let anon = Ctx::anonymous();
    assert!(t
        .set(&anon, BannerKey::Banner, Banner::new("evil"))
        .await
        .is_err());
    assert!(t
        .set_expecting(
            &anon,
            BannerKey::Banner,
            Banner::new("evil"),
            row.updated_at
        )
        .await
        .is_err());
    assert!(t.rm(&anon, BannerKey::Banner).await.is_err());
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
}

/// Sync and async predicates, reading application data and the user id.
pub async fn predicates_sync_and_async_decide(store: Store) {
    let flags = store.table::<Flag>();
    let allowed = Ctx::user("u").with_data(Permissions {
        can_edit_flags: true,
    });
    let denied = Ctx::user("u").with_data(Permissions {
        can_edit_flags: false,
    });
    flags
        .set(&allowed, "beta".to_owned(), Flag { on: true })
        .await
        .unwrap();
    let err = flags
        .set(&denied, "beta".to_owned(), Flag { on: false })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let err = flags
        .set(
            &Ctx::user("u").with_role("admin"),
            "beta".to_owned(),
            Flag { on: false },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::Forbidden,
        "roles do not matter to a predicate"
    );
    assert!(
        flags
            .get("beta".to_owned())
            .await
            .unwrap()
            .unwrap()
            .value
            .on
    );
    flags
        .set(&Ctx::internal(), "beta".to_owned(), Flag { on: false })
        .await
        .unwrap();

    let secrets = store.table::<Secret>();
    let owner = Ctx::user("owner");
    secrets
        .set(&owner, "s".to_owned(), Secret { text: "x".into() })
        .await
        .unwrap();
    assert!(secrets.rm(&owner, "s".to_owned()).await.unwrap());
    let err = secrets
        .restore(&Ctx::user("other"), "s".to_owned())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    secrets.restore(&owner, "s".to_owned()).await.unwrap();
}

/// A value breaking a field constraint is VALIDATION_FAILED naming the
/// field; the stored row is unchanged.
pub async fn validation_failure_names_fields_and_changes_nothing(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("fine"))
        .await
        .unwrap();
    for bad in [String::new(), "x".repeat(201)] {
        let err = t
            .set(
                &admin(),
                BannerKey::Banner,
                Banner {
                    active: true,
                    message: bad,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed);
        match &err {
            crate::Error::ValidationFailed { fields, .. } => {
                assert!(fields.iter().any(|f| f.path == "message"), "{fields:?}")
            }
            other => panic!("expected ValidationFailed, got {other:?}"),
        }
    }
    let err = t
        .set(
            &admin(),
            BannerKey::Maintenance,
            Banner {
                active: true,
                message: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
    assert_eq!(t.get(BannerKey::Maintenance).await.unwrap(), None);
}

/// A value over the table's size limit is refused.
pub async fn oversize_values_are_refused(store: Store) {
    let t = store.table::<Note>();
    let big = note(&"x".repeat(70_000));
    let err = t.set(&editor(), "big".to_owned(), big).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get("big".to_owned()).await.unwrap(), None);
    t.set(&editor(), "ok".to_owned(), note(&"x".repeat(60_000)))
        .await
        .unwrap();
}

/// A value that could not be read back (nesting too deep for the decoder)
/// is refused at write time rather than stored unreadable.
pub async fn unreadable_values_are_refused_at_write(store: Store) {
    let t = store.table::<Note>();
    let mut deep = serde_json::Value::Null;
    for _ in 0..1000 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    let err = t
        .set(&editor(), "deep".to_owned(), Note { body: deep })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get("deep".to_owned()).await.unwrap(), None);
    let mut ok = serde_json::Value::Null;
    for _ in 0..100 {
        ok = serde_json::Value::Array(vec![ok]);
    }
    let row = t
        .set(&editor(), "ok".to_owned(), Note { body: ok.clone() })
        .await
        .unwrap();
    assert_eq!(t.get("ok".to_owned()).await.unwrap().unwrap(), row);
    assert_eq!(row.value.body, ok);
}

/// Free string keys: empty, over 256 bytes, or with control characters are
/// INVALID_KEY everywhere; 256 bytes is accepted.
pub async fn free_string_keys_are_checked(store: Store) {
    let t = store.table::<Note>();
    let bad = [
        String::new(),
        "x".repeat(257),
        "a\nb".into(),
        "nul\u{0}".into(),
        "\u{7f}".into(),
    ];
    for k in bad {
        let err = t.set(&editor(), &k, note("x")).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidKey, "{k:?}");
        assert_eq!(t.get(&k).await.unwrap_err().code(), ErrorCode::InvalidKey);
        assert_eq!(
            t.get_str(&k).await.unwrap_err().code(),
            ErrorCode::InvalidKey
        );
        assert_eq!(
            t.rm(&editor(), &k).await.unwrap_err().code(),
            ErrorCode::InvalidKey
        );
    }
    let max = "é".repeat(128);
    assert_eq!(max.len(), 256);
    t.set(&editor(), &max, note("x")).await.unwrap();
    assert!(t.get(&max).await.unwrap().is_some());
    let page = t.list(&editor(), PageRequest::first(10)).await.unwrap();
    assert_eq!(page.page.len(), 1);
}

/// Key text that is not a declared key is INVALID_KEY, naming the keys.
pub async fn unknown_enum_key_text_is_invalid_key(store: Store) {
    let t = store.table::<Banner>();
    for text in ["baner", "Banner", "", "banner ", "site_banner"] {
        let err = t.get_str(text).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidKey, "{text:?}");
        let parsed: Result<BannerKey, _> = text.parse();
        assert_eq!(parsed.unwrap_err().code(), ErrorCode::InvalidKey);
    }
    let err = t.get_str("baner").await.unwrap_err();
    assert!(
        err.to_string().contains("banner"),
        "the message lists the keys: {err}"
    );
    assert_eq!(
        "site-banner".parse::<BannerKey>().unwrap(),
        BannerKey::SiteBanner
    );
}

/// The same key text in two tables names two rows.
pub async fn tables_are_independent(store: Store) {
    let notes = store.table::<Note>();
    let guestbook = store.table::<Guestbook>();
    notes
        .set(&editor(), "same".to_owned(), note("n"))
        .await
        .unwrap();
    guestbook
        .set(
            &Ctx::anonymous(),
            "same".to_owned(),
            Guestbook { text: "g".into() },
        )
        .await
        .unwrap();
    assert!(notes.rm(&editor(), "same".to_owned()).await.unwrap());
    assert_eq!(notes.get("same".to_owned()).await.unwrap(), None);
    assert_eq!(
        guestbook
            .get("same".to_owned())
            .await
            .unwrap()
            .unwrap()
            .value
            .text,
        "g"
    );
}

/// Keys with quotes, wildcards, backslashes, emoji and maximal length are
/// stored and read back exactly, and listed in byte order.
pub async fn hostile_keys_round_trip_in_byte_order(store: Store) {
    let t = store.table::<Note>();
    let keys = [
        "'; DROP TABLE kv; --",
        "\"quoted\"",
        "100%",
        "under_score",
        "_",
        "%",
        "back\\slash",
        "🦀 crab",
        "Ünïcödé",
        "a",
        "A",
        "a b",
        "x".repeat(256).leak(),
    ];
    for k in keys {
        t.set(&editor(), k.to_owned(), note(k)).await.unwrap();
    }
    for k in keys {
        let row = t
            .get(k.to_owned())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{k:?} missing"));
        assert_eq!(row.key, k);
        assert_eq!(row.value, note(k));
    }
    let page = t.list(&editor(), PageRequest::first(100)).await.unwrap();
    let listed: Vec<&str> = page.page.iter().map(|r| r.key.as_str()).collect();
    let expected: Vec<&str> = keys
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(listed, expected, "keys list in byte order");
    // Wildcards match themselves only.
    assert!(t.rm(&editor(), "%".to_owned()).await.unwrap());
    assert!(t.get("100%".to_owned()).await.unwrap().is_some());
    assert!(t.get("%".to_owned()).await.unwrap().is_none());
    assert!(t.get("_".to_owned()).await.unwrap().is_some());
    assert!(t.get("under_score".to_owned()).await.unwrap().is_some());
}

/// Values with quotes, NUL, emoji and 10 KB strings come back exactly, or
/// are refused with VALIDATION_FAILED (a backend that cannot store NUL in
/// JSON text); never stored altered.
pub async fn hostile_values_round_trip_or_are_refused(store: Store) {
    let t = store.table::<Note>();
    let values = [
        serde_json::json!({ "s": "it's \"quoted\" \\ back" }),
        serde_json::json!({ "s": "🦀 ünïcode ☃ \u{202e}rtl" }),
        serde_json::json!({ "s": "x".repeat(10_000) }),
        serde_json::json!({ "n": 1.5e300, "i": -9007199254740993i64, "u": u64::MAX }),
        serde_json::json!({ "nul": "a\u{0}b" }),
        serde_json::json!(["%", "_", "\\", "'"]),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("v{i}");
        match t.set(&editor(), &key, Note { body: v.clone() }).await {
            Ok(row) => {
                assert_eq!(&row.value.body, v);
                let got = t.get(&key).await.unwrap().expect("stored value reads back");
                assert_eq!(&got.value.body, v, "value {i} must read back exactly");
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::ValidationFailed, "value {i}: {e}");
                assert!(
                    v.to_string().contains("\\u0000"),
                    "only NUL may be refused, not {v}"
                );
                assert_eq!(t.get(&key).await.unwrap(), None);
            }
        }
    }
}

/// `updated_by` is the user id, `"internal"` for server calls, none for
/// anonymous callers; soft rm and restore record their caller too.
pub async fn updated_by_records_the_caller(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    assert_eq!(row.updated_by.as_deref(), Some("ada"));
    let row = t
        .set(&Ctx::internal(), BannerKey::Banner, Banner::new("b"))
        .await
        .unwrap();
    assert_eq!(row.updated_by.as_deref(), Some("internal"));
    assert_eq!(
        t.get(BannerKey::Banner)
            .await
            .unwrap()
            .unwrap()
            .updated_by
            .as_deref(),
        Some("internal")
    );
    let other_admin = Ctx::user("grace").with_role("admin");
    assert!(t.rm(&other_admin, BannerKey::Banner).await.unwrap());
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    assert_eq!(restored.updated_by.as_deref(), Some("ada"));
}

/// `purge` removes exactly the rows soft-deleted before the cut-off.
pub async fn purge_removes_only_old_soft_deleted_rows(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    for k in [BannerKey::Alpha, BannerKey::Beta, BannerKey::Gamma] {
        t.set(&admin(), k, Banner::new(k.as_str())).await.unwrap();
    }
    assert!(t.rm(&admin(), BannerKey::Alpha).await.unwrap()); // deleted at T0
    clock.set(T0 + 10_000);
    assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap()); // deleted at T0 + 10s
    let purged = store
        .backend()
        .purge("conformanceBanner", T0 + 5_000)
        .await
        .unwrap();
    let keys: Vec<&str> = purged.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["alpha"]);
    let err = t.restore(&admin(), BannerKey::Alpha).await.unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::NotFound,
        "a purged row is gone for good"
    );
    t.restore(&admin(), BannerKey::Beta).await.unwrap();
    assert!(t.get(BannerKey::Gamma).await.unwrap().is_some());
    assert!(store
        .backend()
        .purge("conformanceBanner", T0 + 60_000)
        .await
        .unwrap()
        .is_empty());
}

/// The backend's rate-limit counter is a true sliding window per bucket.
pub async fn rate_limit_window_slides_per_bucket(store: Store) {
    use crate::backend::RateDecision::{Admitted, Limited};
    use crate::backend::Window;
    let b = store.backend().rate_counter();
    let three_per_second = Window {
        max: 3,
        window_ms: 1_000,
    };
    let hit = |bucket: &'static str, now: i64| async move {
        b.hit("conformanceBanner", bucket, three_per_second, now)
            .await
            .unwrap()
    };
    assert_eq!(hit("u1", 0).await, Admitted);
    assert_eq!(hit("u1", 100).await, Admitted);
    assert_eq!(hit("u1", 200).await, Admitted);
    assert_eq!(
        hit("u1", 300).await,
        Limited {
            retry_after_ms: 700
        }
    );
    assert_eq!(hit("u1", 999).await, Limited { retry_after_ms: 1 });
    // Another bucket, and another scope, have their own budgets.
    assert_eq!(hit("u2", 300).await, Admitted);
    assert_eq!(
        b.hit("conformanceNote", "u1", three_per_second, 300)
            .await
            .unwrap(),
        Admitted
    );
    // At t=1000 the write at t=0 has left the window: one slot opens, not three
    // (a fixed window would reset them all).
    assert_eq!(hit("u1", 1_000).await, Admitted);
    assert_eq!(hit("u1", 1_050).await, Limited { retry_after_ms: 50 });
    assert_eq!(hit("u1", 1_100).await, Admitted);
    assert_eq!(hit("u1", 1_200).await, Admitted);
    assert_eq!(
        hit("u1", 1_200).await,
        Limited {
            retry_after_ms: 800
        }
    );
}

/// The change feed reports every committed change, in commit order, with
/// the row's state after it (none once no live row remains).
pub async fn change_feed_reports_commits_in_order(store: Store) {
    use crate::backend::FeedEvent;
    let mut feed = store.backend().feed().subscribe();
    let t = store.table::<Banner>();
    let notes = store.table::<Note>();
    let set = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    notes
        .set(&editor(), "n".to_owned(), note("n"))
        .await
        .unwrap();
    assert!(notes.rm(&editor(), "n".to_owned()).await.unwrap());
    // Refused and no-op writes publish nothing.
    assert!(t
        .set(&Ctx::anonymous(), BannerKey::Banner, Banner::new("x"))
        .await
        .is_err());
    assert!(!notes.rm(&editor(), "n".to_owned()).await.unwrap());
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), feed.recv())
            .await
            .expect("the change arrives within 10 s")
            .expect("the feed stays open");
        match event {
            FeedEvent::Change(c) if c.table.starts_with("conformance") => seen.push(c),
            FeedEvent::Change(_) => {}
            FeedEvent::Resync => panic!("no resync expected on a healthy backend"),
        }
    }
    let summary: Vec<(&str, &str, Option<i64>)> = seen
        .iter()
        .map(|c| {
            (
                c.table.as_str(),
                c.key.as_str(),
                c.row.as_ref().map(|r| r.updated_at),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("conformanceBanner", "banner", Some(set.updated_at)),
            ("conformanceBanner", "banner", None),
            ("conformanceBanner", "banner", Some(restored.updated_at)),
            (
                "conformanceNote",
                "n",
                seen[3].row.as_ref().map(|r| r.updated_at)
            ),
            ("conformanceNote", "n", None),
        ]
    );
    assert!(seen[3].row.is_some());
    assert_eq!(
        seen[2].row.as_ref().unwrap().value.json(),
        seen[0].row.as_ref().unwrap().value.json()
    );
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), feed.recv()).await;
    assert!(extra.is_err(), "nothing else was committed: {extra:?}");
}

/// The table rate limit is a sliding window per caller, counted in the
/// backend, on `set` and `rm`; internal callers are exempt; a refused write
/// changes nothing and says when to retry.
pub async fn rate_limit_is_a_sliding_window_per_caller(store: Store) {
    use std::time::Duration;
    let (store, clock) = clocked(&store);
    let t = store.table::<Limited>();
    let alice = Ctx::user("alice");
    for n in 0..3 {
        t.set(&alice, "k".to_owned(), Limited { n }).await.unwrap();
        clock.advance(Duration::from_millis(100));
    }
    // t = T0 + 300: writes at T0, +100, +200 fill the window.
    let err = t
        .set(&alice, "k".to_owned(), Limited { n: 99 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    match err {
        crate::Error::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_millis(700))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(
        t.get("k".to_owned()).await.unwrap().unwrap().value.n,
        2,
        "nothing written"
    );
    let err = t.rm(&alice, "k".to_owned()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited, "rm counts too");
    assert!(t.get("k".to_owned()).await.unwrap().is_some());
    // Other callers have their own budgets; internal callers none at all.
    t.set(&Ctx::user("bob"), "b".to_owned(), Limited { n: 1 })
        .await
        .unwrap();
    let from_addr = Ctx::anonymous().with_client_addr("10.0.0.1");
    t.set(&from_addr, "a".to_owned(), Limited { n: 1 })
        .await
        .unwrap();
    for n in 0..10 {
        t.set(&Ctx::internal(), "i".to_owned(), Limited { n })
            .await
            .unwrap();
    }
    // Anonymous callers without an address share one bucket.
    for n in 0..3 {
        t.set(&Ctx::anonymous(), "anon".to_owned(), Limited { n })
            .await
            .unwrap();
    }
    let err = t
        .set(&Ctx::anonymous(), "anon".to_owned(), Limited { n: 9 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    // The window slides: at T0 + 1000 only the write at T0 has left it.
    clock.set(T0 + 1_000);
    t.set(&alice, "k".to_owned(), Limited { n: 3 })
        .await
        .unwrap();
    let err = t
        .set(&alice, "k".to_owned(), Limited { n: 4 })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::RateLimited,
        "a fixed window would have reset here"
    );
    clock.set(T0 + 1_100);
    t.set(&alice, "k".to_owned(), Limited { n: 5 })
        .await
        .unwrap();
    assert_eq!(t.get("k".to_owned()).await.unwrap().unwrap().value.n, 5);
}

/// `before_update` can change the value (which is validated again) and
/// sees the previous row; `after_update` sees the stored row.
pub async fn before_update_hooks_change_values_and_see_previous(store: Store) {
    use std::sync::{Arc, Mutex};
    let t = store.table::<Banner>();
    let seen_previous: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let stored: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let seen_previous = Arc::clone(&seen_previous);
        t.before_set("shout", move |change| {
            let seen_previous = Arc::clone(&seen_previous);
            async move {
                tokio::task::yield_now().await;
                seen_previous
                    .lock()
                    .unwrap()
                    .push(change.previous.map(|r| r.value.message));
                let mut value = change.value;
                value.message = value.message.to_uppercase();
                Ok(value)
            }
        });
    }
    t.before_set("suffix", |change| async move {
        let mut value = change.value;
        value.message.push('!');
        Ok(value)
    });
    {
        let stored = Arc::clone(&stored);
        t.after_set("record", move |done| {
            let stored = Arc::clone(&stored);
            async move {
                stored.lock().unwrap().push(done.row.value.message);
                Ok(())
            }
        });
    }
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("hi"))
        .await
        .unwrap();
    assert_eq!(row.value.message, "HI!");
    assert_eq!(
        t.get(BannerKey::Banner)
            .await
            .unwrap()
            .unwrap()
            .value
            .message,
        "HI!"
    );
    t.set(&admin(), BannerKey::Banner, Banner::new("again"))
        .await
        .unwrap();
    assert_eq!(
        *seen_previous.lock().unwrap(),
        [None, Some("HI!".to_owned())]
    );
    assert_eq!(*stored.lock().unwrap(), ["HI!", "AGAIN!"]);
    // A hook output breaking the constraints is refused like any value.
    t.before_set("blank", |change| async move {
        let mut value = change.value;
        value.message = "x".repeat(300);
        Ok(value)
    });
    let err = t
        .set(&admin(), BannerKey::Banner, Banner::new("z"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(
        t.get(BannerKey::Banner)
            .await
            .unwrap()
            .unwrap()
            .value
            .message,
        "AGAIN!"
    );
}

/// A refusing hook fails the write with REJECTED naming it; nothing changes.
pub async fn hooks_can_refuse_writes_and_deletes(store: Store) {
    use crate::hooks::HookError;
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("keep"))
        .await
        .unwrap();
    t.before_set("no-swearing", |change| async move {
        if change.value.message.contains("darn") {
            Err(HookError::new("keep it civil"))
        } else {
            Ok(change.value)
        }
    });
    t.before_rm("pinned", |removal| async move {
        if removal.row.key == BannerKey::Banner {
            Err(HookError::new("the banner is pinned"))
        } else {
            Ok(())
        }
    });
    let err = t
        .set(&admin(), BannerKey::Banner, Banner::new("darn"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    let text = err.to_string();
    assert!(
        text.contains("no-swearing") && text.contains("keep it civil"),
        "{text}"
    );
    let err = t.rm(&admin(), BannerKey::Banner).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    assert!(err.to_string().contains("pinned"));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
    // Other keys may still be removed; rm of a missing key calls no hook.
    t.set(&admin(), BannerKey::Maintenance, Banner::new("m"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Maintenance).await.unwrap());
    assert!(!t.rm(&admin(), BannerKey::Alpha).await.unwrap());
}

/// A panicking hook fails only its own write (INTERNAL); the store goes on;
/// after-hooks that fail or panic leave the committed write standing.
pub async fn panicking_hooks_do_not_poison_the_store(store: Store) {
    use crate::hooks::HookError;
    let t = store.table::<Banner>();
    t.before_set("explodes-on-boom", |change| async move {
        if change.value.message == "boom" {
            panic!("hook exploded");
        }
        Ok(change.value)
    });
    t.after_set("always-fails", |_| async {
        Err(HookError::new("mail server down"))
    });
    t.after_rm("always-panics", |_| async { panic!("after_rm exploded") });
    let err = t
        .set(&admin(), BannerKey::Banner, Banner::new("boom"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("hook exploded"));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("fine"))
        .await
        .unwrap();
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
    t.set(&admin(), BannerKey::Maintenance, Banner::new("still works"))
        .await
        .unwrap();
}

/// `purge` removes rows soft-deleted longer ago than the retention; the
/// background task does the same on its own; bad retentions are refused.
pub async fn purge_honours_retention_and_runs_in_background(store: Store) {
    use std::time::Duration;
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    for k in [BannerKey::Alpha, BannerKey::Beta, BannerKey::Gamma] {
        t.set(&admin(), k, Banner::new("x")).await.unwrap();
    }
    assert!(t.rm(&admin(), BannerKey::Alpha).await.unwrap());
    clock.advance(Duration::from_secs(3_600));
    assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap());
    clock.advance(Duration::from_secs(60));
    // Alpha was deleted 61 minutes ago, Beta 1 minute ago.
    assert_eq!(t.purge(Duration::from_secs(30 * 60)).await.unwrap(), 1);
    assert_eq!(
        t.restore(&admin(), BannerKey::Alpha)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
    assert_eq!(t.purge(Duration::from_secs(30 * 60)).await.unwrap(), 0);
    for bad in [
        Duration::ZERO,
        Duration::from_millis(10),
        Duration::from_secs(200 * 365 * 86_400),
    ] {
        assert_eq!(t.purge(bad).await.unwrap_err().code(), ErrorCode::Config);
        assert_eq!(
            t.spawn_purge(bad, Duration::from_secs(1))
                .unwrap_err()
                .code(),
            ErrorCode::Config
        );
    }
    // The background task purges Beta once it is old enough.
    clock.advance(Duration::from_secs(3_600));
    let task = t
        .spawn_purge(Duration::from_secs(30 * 60), Duration::from_millis(5))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match t.restore(&admin(), BannerKey::Beta).await {
            Err(e) if e.code() == ErrorCode::NotFound => break,
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => {
                // Not purged yet: put it back as it was and wait.
                assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap());
                clock.advance(Duration::from_secs(3_600));
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the background purge never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(task);
    assert!(
        t.get(BannerKey::Gamma).await.unwrap().is_some(),
        "live rows are untouched"
    );
}

/// With `clean_files`: an overwrite deletes the files it drops, a soft
/// delete keeps them (restore brings the row back intact), a purge or a
/// hard delete deletes them; a failing file store never fails the write.
pub async fn clean_files_deletes_unreferenced_files(store: Store) {
    use crate::files::FileId;
    use std::sync::Arc;
    use std::time::Duration;
    let (store, clock) = clocked(&store);
    let files = Arc::new(RecordingFiles::default());
    store.set_file_store(Arc::clone(&files));
    let t = store.table::<Attachment>();
    let a = |file: &str, thumbs: &[&str]| Attachment {
        file: file.to_owned(),
        thumbs: thumbs.iter().map(|s| FileId((*s).to_owned())).collect(),
        title: "t".into(),
    };
    t.set(&admin(), "doc".to_owned(), a("f1", &["t1", "t2"]))
        .await
        .unwrap();
    t.set(&admin(), "doc".to_owned(), a("f1", &["t2", "t3"]))
        .await
        .unwrap();
    assert_eq!(files.deleted(), ["t1"], "only the dropped thumbnail goes");
    assert!(t.rm(&admin(), "doc".to_owned()).await.unwrap());
    assert_eq!(files.deleted(), ["t1"], "a soft delete keeps files");
    let back = t.restore(&admin(), "doc".to_owned()).await.unwrap();
    assert_eq!(back.value, a("f1", &["t2", "t3"]));
    assert!(t.rm(&admin(), "doc".to_owned()).await.unwrap());
    clock.advance(Duration::from_secs(7_200));
    assert_eq!(t.purge(Duration::from_secs(3_600)).await.unwrap(), 1);
    let mut deleted = files.deleted();
    deleted.sort();
    assert_eq!(deleted, ["f1", "t1", "t2", "t3"]);

    let uploads = store.table::<Upload>();
    let up = |id: &str| Upload {
        file: Some(FileId(id.to_owned())),
    };
    uploads
        .set(&admin(), "u".to_owned(), up("u1"))
        .await
        .unwrap();
    assert!(uploads.rm(&admin(), "u".to_owned()).await.unwrap());
    assert!(
        files.deleted().contains(&"u1".to_owned()),
        "a hard delete deletes the file"
    );
    assert!(store.file_cleanup_failures().is_empty());
    // The file store fails: the write still succeeds; the failure is reported.
    files.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    uploads
        .set(&admin(), "v".to_owned(), up("v1"))
        .await
        .unwrap();
    let row = uploads
        .set(&admin(), "v".to_owned(), Upload { file: None })
        .await
        .unwrap();
    assert_eq!(row.value.file, None);
    let failures = store.file_cleanup_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].file_id, "v1");
    assert_eq!(failures[0].table, "conformanceUpload");
}

/// Rows whose key the schema does not declare are skipped by `list`, and
/// pages stay full unless last; hooks of one schema do not leak to another
/// schema over the same table.
pub async fn list_skips_undeclared_keys_and_keeps_pages_full(store: Store) {
    let declared = store.table::<Banner>();
    let any = store.table::<BannerAnyKey>();
    let v = || BannerAnyKey {
        active: true,
        message: "x".into(),
    };
    for k in [
        "aa-orphan",
        "ab-orphan",
        "ac-orphan",
        "b-orphan",
        "zz-orphan",
    ] {
        any.set(&admin(), k.to_owned(), v()).await.unwrap();
    }
    for k in [
        BannerKey::Alpha,
        BannerKey::Beta,
        BannerKey::Gamma,
        BannerKey::Zeta,
    ] {
        declared.set(&admin(), k, Banner::new("d")).await.unwrap();
    }
    let mut request = PageRequest::first(2);
    let mut got = Vec::new();
    loop {
        let page = declared.list(&admin(), request.clone()).await.unwrap();
        if !page.is_done {
            assert_eq!(
                page.page.len(),
                2,
                "a page that is not the last must be full"
            );
        }
        got.extend(page.page.iter().map(|r| r.key));
        match page.continue_cursor {
            Some(c) => request = PageRequest::after(c, 2),
            None => break,
        }
    }
    assert_eq!(
        got,
        [
            BannerKey::Alpha,
            BannerKey::Beta,
            BannerKey::Gamma,
            BannerKey::Zeta
        ]
    );
    // A hook registered on one schema does not apply to (or erase) the other's.
    declared.before_set("refuse-all", |_| async {
        Err(crate::hooks::HookError::new("no"))
    });
    any.set(&admin(), "free".to_owned(), v()).await.unwrap();
    let err = declared
        .set(&admin(), BannerKey::Alpha, Banner::new("z"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
}

/// `set_if_absent` (`Expect::NotLive`) creates a row that does not exist.
pub async fn set_if_absent_creates_a_missing_row(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set_if_absent(&admin(), BannerKey::Banner, Banner::new("first"))
        .await
        .unwrap();
    assert_eq!(row.value.message, "first");
    assert_eq!(row.created_at, row.updated_at);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), Some(row));
}

/// `set_if_absent` on a soft-deleted row revives it with the new value.
pub async fn set_if_absent_revives_a_soft_deleted_row(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let first = t
        .set(&admin(), BannerKey::Banner, Banner::new("old"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    clock.advance(std::time::Duration::from_millis(2));
    let revived = t
        .set_if_absent(&admin(), BannerKey::Banner, Banner::new("new"))
        .await
        .unwrap();
    assert_eq!(revived.value.message, "new");
    assert_eq!(revived.deleted_at, None);
    assert_eq!(revived.created_at, first.created_at);
    assert!(revived.updated_at > first.updated_at);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), Some(revived));
}

/// `set_if_absent` over a live row is CONFLICT carrying that row's version,
/// and changes nothing.
pub async fn set_if_absent_of_a_live_row_is_conflict(store: Store) {
    let t = store.table::<Banner>();
    let live = t
        .set(&admin(), BannerKey::Banner, Banner::new("live"))
        .await
        .unwrap();
    let err = t
        .set_if_absent(&admin(), BannerKey::Banner, Banner::new("other"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    match err {
        crate::Error::Conflict {
            current_updated_at, ..
        } => assert_eq!(current_updated_at, Some(live.updated_at)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), Some(live));
}

/// Many concurrent `set_if_absent` of one absent key: exactly one wins; the
/// others are CONFLICT with the winner's version.
pub async fn concurrent_set_if_absent_admits_exactly_one(store: Store) {
    let t = store.table::<Banner>();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.set_if_absent(&admin(), BannerKey::Banner, Banner::new(&format!("w{i}")))
                .await
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.expect("task does not panic") {
            Ok(row) => winners.push(row),
            Err(crate::Error::Conflict {
                current_updated_at, ..
            }) => conflicts.push(current_updated_at),
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one set_if_absent may win");
    let winner = winners.remove(0);
    assert_eq!(conflicts.len(), 15);
    assert!(conflicts.iter().all(|c| *c == Some(winner.updated_at)));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), Some(winner));
}

/// A `before_update` hook that saw no row, while another writer creates
/// the row between the hook and the write: the write does not overwrite
/// the row unseen; the hook runs again and sees it as `previous`.
pub async fn before_update_hooks_rerun_when_the_row_appears_meanwhile(store: Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let t = store.table::<Banner>();
    let runs = Arc::new(AtomicUsize::new(0));
    // (value being written, previous seen) per run.
    type Seen = Vec<(String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    {
        let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), t.clone());
        t.before_set("record", move |change| {
            let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), other.clone());
            async move {
                seen.lock().unwrap().push((
                    change.value.message.clone(),
                    change.previous.as_ref().map(|r| r.value.message.clone()),
                ));
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Another writer gets in between this hook and the write.
                    other
                        .set(&Ctx::internal(), BannerKey::Banner, Banner::new("sneaky"))
                        .await
                        .map_err(|e| crate::hooks::HookError::new(e.to_string()))?;
                }
                Ok(change.value)
            }
        });
    }
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("outer"))
        .await
        .unwrap();
    assert_eq!(row.value.message, "outer");
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), Some(row));
    let seen = seen.lock().unwrap().clone();
    let outer: Vec<Option<String>> = seen
        .iter()
        .filter(|(value, _)| value == "outer")
        .map(|(_, previous)| previous.clone())
        .collect();
    assert_eq!(
        outer,
        [None, Some("sneaky".to_owned())],
        "the hook must run again and see the row created meanwhile"
    );
}

/// A `before_rm` hook that approved one version of the row, while another
/// writer changes the row before the delete: the delete does not take the
/// changed row unseen; the hook runs again, sees the new row, and only
/// then is it deleted.
pub async fn before_rm_hooks_rerun_when_the_row_changes_meanwhile(store: Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let t = store.table::<Banner>();
    t.set(&admin(), BannerKey::Banner, Banner::new("approved"))
        .await
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let deleted: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), t.clone());
        t.before_rm("record", move |removal| {
            let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), other.clone());
            async move {
                seen.lock().unwrap().push(removal.row.value.message.clone());
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Another writer changes the row after this approval.
                    other
                        .set(&Ctx::internal(), BannerKey::Banner, Banner::new("changed"))
                        .await
                        .map_err(|e| crate::hooks::HookError::new(e.to_string()))?;
                }
                Ok(())
            }
        });
    }
    {
        let deleted = Arc::clone(&deleted);
        t.after_rm("record", move |removal| {
            let deleted = Arc::clone(&deleted);
            async move {
                deleted.lock().unwrap().push(removal.row.value.message);
                Ok(())
            }
        });
    }
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        ["approved", "changed"],
        "the hook must run again and see the changed row"
    );
    assert_eq!(*deleted.lock().unwrap(), ["changed"]);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
}

/// `Backend::rm` and `Backend::restore` check their expectation like
/// `set`: against the live row's version, in the same atomic step, and a
/// failed one changes nothing.
pub async fn rm_and_restore_check_the_expectation(store: Store) {
    use crate::backend::{Expect, Outcome, Removed, Restored, RmMode, Write};
    use crate::schema::KvSchema;
    let notes = store.table::<Note>();
    let banners = store.table::<Banner>();
    let k = "n".to_owned();
    let row = notes.set(&editor(), &k, note("x")).await.unwrap();
    let write = |key, expect| Write {
        key,
        expect,
        updated_by: None,
        now: store.now(),
    };
    let backend = store.backend();
    let conflict = |current| Outcome::<Removed>::Conflict {
        current_updated_at: current,
    };
    // rm: a stale version, and "no live row", are conflicts.
    for expect in [Expect::Version(row.updated_at - 1), Expect::NotLive] {
        let out = backend
            .rm(Note::TABLE, write("n", expect), RmMode::Hard)
            .await
            .unwrap();
        assert_eq!(out, conflict(Some(row.updated_at)), "{expect:?}");
        assert_eq!(notes.get(&k).await.unwrap(), Some(row.clone()));
    }
    match backend
        .rm(
            Note::TABLE,
            write("n", Expect::Version(row.updated_at)),
            RmMode::Hard,
        )
        .await
        .unwrap()
    {
        Outcome::Done(Removed::Row(before)) => assert_eq!(before.updated_at, row.updated_at),
        other => panic!("expected the row removed, got {other:?}"),
    }
    assert_eq!(notes.get(&k).await.unwrap(), None);
    // No live row: expecting one is a conflict; otherwise nothing to do.
    assert_eq!(
        backend
            .rm(
                Note::TABLE,
                write("n", Expect::Version(row.updated_at)),
                RmMode::Hard
            )
            .await
            .unwrap(),
        conflict(None)
    );
    for expect in [Expect::Any, Expect::NotLive] {
        assert_eq!(
            backend
                .rm(Note::TABLE, write("n", expect), RmMode::Hard)
                .await
                .unwrap(),
            Outcome::Done(Removed::NotLive),
            "{expect:?}"
        );
    }

    // restore, on a soft-deleted row: expecting a live row is a conflict
    // and revives nothing; "no live row" revives it.
    let b = banners
        .set(&admin(), BannerKey::Banner, Banner::new("b"))
        .await
        .unwrap();
    assert!(banners.rm(&admin(), BannerKey::Banner).await.unwrap());
    let out = backend
        .restore(
            Banner::TABLE,
            write("banner", Expect::Version(b.updated_at)),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        Outcome::Conflict {
            current_updated_at: None
        }
    );
    assert_eq!(banners.get(BannerKey::Banner).await.unwrap(), None);
    let revived = match backend
        .restore(Banner::TABLE, write("banner", Expect::NotLive))
        .await
        .unwrap()
    {
        Outcome::Done(Restored::Revived(row)) => row,
        other => panic!("expected the row revived, got {other:?}"),
    };
    assert!(revived.updated_at > b.updated_at);
    // On a live row: "no live row" and a stale version are conflicts; the
    // current version (or none) returns it unchanged.
    for expect in [Expect::NotLive, Expect::Version(b.updated_at)] {
        assert_eq!(
            backend
                .restore(Banner::TABLE, write("banner", expect))
                .await
                .unwrap(),
            Outcome::Conflict {
                current_updated_at: Some(revived.updated_at)
            },
            "{expect:?}"
        );
    }
    for expect in [Expect::Any, Expect::Version(revived.updated_at)] {
        assert_eq!(
            backend
                .restore(Banner::TABLE, write("banner", expect))
                .await
                .unwrap(),
            Outcome::Done(Restored::AlreadyLive(revived.clone())),
            "{expect:?}"
        );
    }
    // A key never written: not found, or a conflict when a row is expected.
    assert_eq!(
        backend
            .restore(Banner::TABLE, write("motd", Expect::Any))
            .await
            .unwrap(),
        Outcome::Done(Restored::NotFound)
    );
    assert_eq!(
        backend
            .restore(Banner::TABLE, write("motd", Expect::Version(1)))
            .await
            .unwrap(),
        Outcome::Conflict {
            current_updated_at: None
        }
    );
}

/// A row re-created after a hard delete never reuses a version of the
/// deleted row, even when the clock has not moved: a stale expected
/// version is CONFLICT against the new row.
pub async fn versions_are_not_reused_after_a_hard_delete(store: Store) {
    let (store, _clock) = clocked(&store);
    let t = store.table::<Note>();
    let k = "reborn".to_owned();
    let a = t.set(&editor(), &k, note("a")).await.unwrap();
    let b = t.set(&editor(), &k, note("b")).await.unwrap();
    assert!(b.updated_at > a.updated_at);
    assert!(t.rm(&editor(), &k).await.unwrap());
    let c = t.set(&editor(), &k, note("c")).await.unwrap();
    assert!(
        c.updated_at > a.updated_at && c.updated_at > b.updated_at,
        "the re-created row reuses a version: {} after {} and {}",
        c.updated_at,
        a.updated_at,
        b.updated_at
    );
    for stale in [a.updated_at, b.updated_at] {
        let err = t
            .set_expecting(&editor(), &k, note("stale"), stale)
            .await
            .unwrap_err();
        match err {
            crate::Error::Conflict {
                current_updated_at, ..
            } => assert_eq!(current_updated_at, Some(c.updated_at)),
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(t.get(&k).await.unwrap(), Some(c));
}

/// A row re-created after its soft-deleted predecessor was purged never
/// reuses one of its versions, even when the clock has stepped back.
pub async fn versions_are_not_reused_after_a_purge(store: Store) {
    use std::time::Duration;
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    let a = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    clock.advance(Duration::from_secs(10));
    assert_eq!(t.purge(Duration::from_secs(1)).await.unwrap(), 1);
    clock.set(T0);
    let b = t
        .set(&admin(), BannerKey::Banner, Banner::new("b"))
        .await
        .unwrap();
    // The soft delete bumped the version past `a`'s; the new row is above both.
    assert!(
        b.updated_at > a.updated_at + 1,
        "{} vs {}",
        b.updated_at,
        a.updated_at
    );
    for stale in [a.updated_at, a.updated_at + 1] {
        let err = t
            .set_expecting(&admin(), BannerKey::Banner, Banner::new("stale"), stale)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
    }
}
