//! Changing a schema: version 2 reads version 1's rows migrated, version 1
//! cannot read version 2's rows (UNREADABLE, naming the version) and
//! cannot overwrite them (NEWER_SCHEMA), lists report unreadable rows
//! beside the page, replicas and watches keep serving the others, and
//! `migrate_all` moves every live row to version 2.

use kv_runtime::{Ctx, ErrorCode, Kv, KvVersion, PageRequest, Store};
use serde::{Deserialize, Serialize};

/// Version 1 as the old program declared it.
mod v1 {
    use super::*;

    #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kv(table = "versionedBanner", write_role = admin, soft_delete)]
    pub struct Banner {
        pub text: String,
    }
}

/// Version 1 as the new program keeps it, to read old rows.
#[derive(KvVersion, Deserialize)]
#[kv(version = 1)]
struct BannerV1 {
    text: String,
}

/// Version 2: the text was renamed, a flag added.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "versionedBanner", write_role = admin, soft_delete, version = 2, from = BannerV1)]
struct Banner {
    message: String,
    active: bool,
}

impl From<BannerV1> for Banner {
    fn from(old: BannerV1) -> Banner {
        Banner {
            message: old.text,
            active: true,
        }
    }
}

fn admin() -> Ctx {
    Ctx::user("ada").with_role("admin")
}

#[tokio::test]
async fn versions_migrate_on_read_and_never_clobber_newer_rows() {
    let store = Store::memory();
    let old = store.table::<v1::Banner>();
    let new = store.table::<Banner>();
    for key in ["a", "b", "c"] {
        old.set(&admin(), key.to_owned(), v1::Banner { text: key.into() })
            .await
            .unwrap();
    }
    // Version 2 reads version 1's rows, migrated.
    let a = new.get("a".to_owned()).await.unwrap().unwrap();
    assert_eq!(
        a.value,
        Banner {
            message: "a".into(),
            active: true
        }
    );
    // Version 2 writes "b": version 1 can no longer read it, nor overwrite it.
    new.set(
        &admin(),
        "b".to_owned(),
        Banner {
            message: "B".into(),
            active: false,
        },
    )
    .await
    .unwrap();
    let err = old.get("b".to_owned()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unreadable, "{err}");
    assert!(!err.is_retryable());
    let kv_runtime::Error::Unreadable { version, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*version, 2);
    let err = old
        .set(
            &admin(),
            "b".to_owned(),
            v1::Banner {
                text: "clobber".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NewerSchema, "{err}");
    assert_eq!(
        new.get("b".to_owned())
            .await
            .unwrap()
            .unwrap()
            .value
            .message,
        "B",
        "nothing was dropped"
    );
    // With a before-hook (which reads the row first), the same code.
    old.before_set("noop", |change| async move { Ok(change.value) });
    let err = old
        .set(
            &admin(),
            "b".to_owned(),
            v1::Banner {
                text: "clobber".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NewerSchema, "{err}");

    // Version 1 lists the rows it can read and reports the other beside.
    let page = old.list(&admin(), PageRequest::first(10)).await.unwrap();
    let keys: Vec<&str> = page.page.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "c"]);
    assert_eq!(page.unreadable.len(), 1);
    assert_eq!(
        (page.unreadable[0].key.as_str(), page.unreadable[0].version),
        ("b", 2)
    );
    // A replica of version 1 serves the others and counts the unreadable one.
    let replica = old.replica().await.unwrap();
    assert_eq!(replica.len(), 2);
    assert_eq!(replica.status().unreadable_rows, 1);

    // A soft-deleted version 1 row is left by the migration.
    old.set(&admin(), "d".to_owned(), v1::Banner { text: "d".into() })
        .await
        .unwrap();
    assert!(old.rm(&admin(), "d".to_owned()).await.unwrap());
    let mut pages = 0;
    let done = new
        .migrate_all_with(&admin(), |_| pages += 1)
        .await
        .unwrap();
    assert!(pages >= 1);
    assert_eq!(
        (
            done.migrated,
            done.current,
            done.soft_deleted,
            done.newer,
            done.busy
        ),
        (2, 1, 1, 0, 0),
        "{done:?}"
    );
    assert!(done.is_complete());
    // Every live row is version 2 now; running it again changes nothing.
    for key in ["a", "c"] {
        let raw = store
            .backend()
            .get("versionedBanner", key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(raw.value.schema(), 2, "{key}");
    }
    let again = new.migrate_all(&admin()).await.unwrap();
    assert_eq!((again.migrated, again.current), (0, 3));
    // The restored row comes back migrated.
    let d = new.restore(&admin(), "d".to_owned()).await.unwrap();
    assert_eq!(d.value.message, "d");
    // Migrating needs the write role.
    let err = new.migrate_all(&Ctx::anonymous()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
}

#[test]
fn a_chain_decodes_each_version() {
    assert_eq!(<Banner as KvVersion>::VERSION, 2);
    assert_eq!(<BannerV1 as KvVersion>::VERSION, 1);
    let from_v1 = Banner::decode_version(1, r#"{"text":"x"}"#).unwrap();
    assert!(from_v1.active);
    let v2 = Banner::decode_version(2, r#"{"message":"y","active":false}"#).unwrap();
    assert!(!v2.active);
    let err = Banner::decode_version(3, "{}").map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("version 3"), "{err}");
    let err = Banner::decode_version(1, r#"{"message":"wrong shape"}"#)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("version 1"), "{err}");
    let err = BannerV1::decode_version(0, "{}").map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("oldest"), "{err}");
}
