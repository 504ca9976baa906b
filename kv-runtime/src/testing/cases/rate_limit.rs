//! Rate limits: the backend's sliding-window counter and the table limit on top.

use super::{clocked, T0};
use crate::testing::schemas::*;
use crate::{Ctx, ErrorCode, Store};

/// The backend's quota primitive is a true sliding window per bucket.
pub async fn rate_limit_window_slides_per_bucket(store: Store) {
    use crate::backend::{RateDecision, Window};
    let b = store.backend().rate_counter();
    let three_per_second = Window {
        max: 3,
        window_ms: 1_000,
    };
    // `None`: admitted; `Some(ms)`: refused, retry in ms.
    let hit = |scope: &'static str, bucket: &'static str, now: i64| async move {
        match b
            .consume(scope, bucket, three_per_second, 1, now)
            .await
            .unwrap()
        {
            RateDecision::Admitted(_) => None,
            RateDecision::Limited { retry_after_ms, .. } => Some(retry_after_ms),
        }
    };
    let banner = "conformanceBanner";
    assert_eq!(hit(banner, "u1", 0).await, None);
    assert_eq!(hit(banner, "u1", 100).await, None);
    assert_eq!(hit(banner, "u1", 200).await, None);
    assert_eq!(hit(banner, "u1", 300).await, Some(700));
    assert_eq!(hit(banner, "u1", 999).await, Some(1));
    // Another bucket, and another scope, have their own budgets.
    assert_eq!(hit(banner, "u2", 300).await, None);
    assert_eq!(hit("conformanceNote", "u1", 300).await, None);
    // At t=1000 the write at t=0 has left the window: one slot opens, not three
    // (a fixed window would reset them all).
    assert_eq!(hit(banner, "u1", 1_000).await, None);
    assert_eq!(hit(banner, "u1", 1_050).await, Some(50));
    assert_eq!(hit(banner, "u1", 1_100).await, None);
    assert_eq!(hit(banner, "u1", 1_200).await, None);
    assert_eq!(hit(banner, "u1", 1_200).await, Some(800));
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

/// `RateCounter::sweep` forgets the buckets of a scope with no use left in
/// the window, and only those; a swept caller starts afresh.
pub async fn idle_rate_limit_buckets_are_swept(store: Store) {
    use crate::backend::{RateDecision, Window};
    let counter = store.backend().rate_counter();
    let w = Window {
        max: 1,
        window_ms: 1_000,
    };
    let admitted = |d: RateDecision| matches!(d, RateDecision::Admitted(_));
    for bucket in ["u1", "u2", "u3"] {
        let d = counter
            .consume("conformanceSweep", bucket, w, 1, 0)
            .await
            .unwrap();
        assert!(admitted(d), "{d:?}");
    }
    counter
        .consume("conformanceOther", "u1", w, 1, 0)
        .await
        .unwrap();
    // Still in their window: nothing to forget, and still counted.
    assert_eq!(counter.sweep("conformanceSweep", w, 500).await.unwrap(), 0);
    let d = counter
        .consume("conformanceSweep", "u1", w, 1, 500)
        .await
        .unwrap();
    assert!(!admitted(d), "{d:?}");
    // Past the window: forgotten, once.
    assert!(counter.sweep("conformanceSweep", w, 5_000).await.unwrap() > 0);
    assert_eq!(
        counter.sweep("conformanceSweep", w, 5_000).await.unwrap(),
        0
    );
    // Another scope is swept on its own.
    assert!(counter.sweep("conformanceOther", w, 5_000).await.unwrap() > 0);
    let d = counter
        .consume("conformanceSweep", "u1", w, 1, 5_000)
        .await
        .unwrap();
    assert!(admitted(d), "{d:?}");
}

/// A table's rate limit counts in the quota primitive (one mechanism): its
/// writes show in the counter under the table's name and the caller, and a
/// reset of that bucket frees the caller.
pub async fn table_rate_limits_count_in_the_quota_primitive(store: Store) {
    use crate::backend::Window;
    let (store, _clock) = clocked(&store);
    let t = store.table::<Limited>();
    let alice = Ctx::user("alice");
    for n in 0..3 {
        t.set(&alice, "k".to_owned(), Limited { n }).await.unwrap();
    }
    let w = Window {
        max: 3,
        window_ms: 1_000,
    };
    let counter = store.backend().rate_counter();
    let usage = counter
        .peek("conformanceLimited", "user:alice", w, T0)
        .await
        .unwrap();
    assert_eq!(usage.used, 3);
    assert_eq!(usage.full_until, Some(T0 + 1_000));
    let err = t
        .set(&alice, "k".to_owned(), Limited { n: 9 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert!(counter
        .reset("conformanceLimited", "user:alice")
        .await
        .unwrap());
    t.set(&alice, "k".to_owned(), Limited { n: 4 })
        .await
        .unwrap();
}
