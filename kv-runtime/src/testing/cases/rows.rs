//! Rows: reading back what was written, tables kept apart, `updated_by`.

use super::{admin, clocked, editor, note, T0};
use crate::row::PageRequest;
use crate::testing::schemas::*;
use crate::{Ctx, KvSchema, Store};

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

/// `updated_by` is the user id, `"internal"` for server calls (or the
/// name given with `Ctx::with_actor`), none for anonymous callers; soft rm and restore record their caller too.
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
    // An internal caller with a name (the command line, a job) is recorded
    // by that name; the name grants nothing to a user.
    let row = t
        .set(
            &Ctx::internal().with_actor("cli:alice"),
            BannerKey::Banner,
            Banner::new("c"),
        )
        .await
        .unwrap();
    assert_eq!(row.updated_by.as_deref(), Some("cli:alice"));
    let named_user = Ctx::user("ada").with_role("admin").with_actor("cli:x");
    let row = t
        .set(&named_user, BannerKey::Banner, Banner::new("d"))
        .await
        .unwrap();
    assert_eq!(row.updated_by.as_deref(), Some("ada"));
    let other_admin = Ctx::user("grace").with_role("admin");
    assert!(t.rm(&other_admin, BannerKey::Banner).await.unwrap());
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    assert_eq!(restored.updated_by.as_deref(), Some("ada"));
}

/// A page and a scan give each row its own writer, however the writers of
/// neighbouring rows alternate and repeat (backends share equal author
/// text within a batch).
pub async fn pages_keep_each_rows_writer(store: Store) {
    let t = store.table::<Note>();
    let writers = [
        Ctx::user("ed").with_role("editor"),
        Ctx::user("ed").with_role("editor"),
        Ctx::user("edith").with_role("editor"),
        Ctx::internal(),
        Ctx::user("ed").with_role("editor"),
        Ctx::internal().with_actor("cli:e"),
        Ctx::internal().with_actor("cli:e"),
    ];
    let expected = ["ed", "ed", "edith", "internal", "ed", "cli:e", "cli:e"];
    for (i, ctx) in writers.iter().enumerate() {
        t.set(ctx, format!("k{i}"), note("n")).await.unwrap();
    }
    let page = t.list(&editor(), PageRequest::first(100)).await.unwrap();
    let by: Vec<Option<&str>> = page.page.iter().map(|r| r.updated_by.as_deref()).collect();
    assert_eq!(by, expected.map(Some));
    let scanned = store.backend().scan(Note::TABLE, None, 100).await.unwrap();
    let by: Vec<Option<&str>> = scanned.iter().map(|r| r.updated_by.as_deref()).collect();
    assert_eq!(by, expected.map(Some));
    // What an export reads.
    let mut snapshot = store.backend().snapshot().await.unwrap();
    let exported = snapshot.scan(Note::TABLE, None, 100).await.unwrap();
    let by: Vec<Option<&str>> = exported.iter().map(|r| r.updated_by.as_deref()).collect();
    assert_eq!(by, expected.map(Some));
}

/// `Backend::scan` pages through every row, live and soft-deleted, in key
/// order, with the soft-deleted ones marked.
pub async fn scan_returns_every_row_including_soft_deleted_ones(store: Store) {
    let t = store.table::<Banner>();
    for key in [BannerKey::Alpha, BannerKey::Beta, BannerKey::Gamma] {
        t.set(&admin(), key, Banner::new("x")).await.unwrap();
    }
    assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap());
    let backend = store.backend();
    let first = backend.scan("conformanceBanner", None, 2).await.unwrap();
    let keys: Vec<&str> = first.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["alpha", "beta"]);
    assert!(first[0].is_live() && !first[1].is_live());
    let rest = backend
        .scan("conformanceBanner", Some("beta"), 10)
        .await
        .unwrap();
    let keys: Vec<&str> = rest.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["gamma"]);
    // `list` still skips the soft-deleted row.
    let live = backend.list("conformanceBanner", None, 10).await.unwrap();
    assert_eq!(live.len(), 2);
    assert!(backend
        .scan("conformanceNothing", None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Every row keeps the schema version of the value that wrote it (through
/// `rm` and `restore` too), and `set` refuses, atomically, to overwrite a
/// row (live or soft-deleted) that a newer version wrote.
pub async fn schema_versions_are_kept_and_newer_rows_not_overwritten(store: Store) {
    use crate::backend::{Expect, Outcome, Payload, RmMode, Write};
    let backend = store.backend();
    let write = |key| Write {
        key,
        expect: Expect::Any,
        updated_by: None,
        now: store.now(),
        history: None,
    };
    let table = "conformanceVersions";
    let stored = backend
        .set(table, write("k"), Payload::versioned(r#"{"n":2}"#, 2))
        .await
        .unwrap();
    assert!(matches!(stored, Outcome::Done(_)), "{stored:?}");
    let read = backend.get(table, "k").await.unwrap().expect("stored");
    assert_eq!(read.value.schema(), 2);
    // As JSON: PostgreSQL hands back equal JSON, not the same text.
    let value: serde_json::Value = serde_json::from_str(read.value.json()).unwrap();
    assert_eq!(value, serde_json::json!({ "n": 2 }));
    // An older writer is refused, and nothing changes.
    let older = backend
        .set(table, write("k"), Payload::versioned(r#"{"n":1}"#, 1))
        .await
        .unwrap();
    assert_eq!(older, Outcome::NewerSchema { stored: 2 });
    assert_eq!(backend.get(table, "k").await.unwrap(), Some(read.clone()));
    // Also over a soft-deleted row; rm and restore keep the version.
    let removed = backend.rm(table, write("k"), RmMode::Soft).await.unwrap();
    assert!(matches!(removed, Outcome::Done(_)), "{removed:?}");
    let gone = backend
        .get(table, "k")
        .await
        .unwrap()
        .expect("soft-deleted");
    assert_eq!(gone.value.schema(), 2);
    let older = backend
        .set(table, write("k"), Payload::versioned(r#"{"n":1}"#, 1))
        .await
        .unwrap();
    assert_eq!(older, Outcome::NewerSchema { stored: 2 });
    let restored = backend.restore(table, write("k")).await.unwrap();
    assert!(matches!(restored, Outcome::Done(_)), "{restored:?}");
    let listed = backend.list(table, None, 10).await.unwrap();
    assert_eq!(listed[0].value.schema(), 2);
    // The same or a newer version writes.
    for schema in [2, 3] {
        let json = format!(r#"{{"n":{schema}}}"#);
        let out = backend
            .set(table, write("k"), Payload::versioned(json, schema))
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        let scanned = backend.scan(table, None, 10).await.unwrap();
        assert_eq!(scanned[0].value.schema(), schema);
    }
}
