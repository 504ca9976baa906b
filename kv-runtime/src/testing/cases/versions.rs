//! Versions: `created_at` kept, `updated_at` strictly increasing, never reused.

use super::{admin, clocked, editor, note, T0};
use crate::testing::schemas::*;
use crate::{ErrorCode, Store};

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
