//! Conflict checks: `set_expecting`, `set_if_absent`, and the expectation on `rm` and
//! `restore`, alone and under concurrent writers.

use super::{admin, clocked, editor, note};
use crate::testing::schemas::*;
use crate::{ErrorCode, Store};

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
        history: None,
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
