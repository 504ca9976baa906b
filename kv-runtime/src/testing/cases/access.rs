//! Access: write roles and predicates, and refused writes changing nothing.

use super::admin;
use crate::testing::schemas::*;
use crate::{Ctx, ErrorCode, PageRequest, Store};

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
