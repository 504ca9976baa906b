//! Deletes: hard and soft `rm`, `restore`, and a `set` reviving a deleted key.

use super::{admin, clocked, editor, note};
use crate::testing::schemas::*;
use crate::{ErrorCode, PageRequest, Store};

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
