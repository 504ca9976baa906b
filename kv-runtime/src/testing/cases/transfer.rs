//! Moving rows between stores: the tables a backend lists, exact imports,
//! snapshots that stay as of one moment, self-checks.

use std::sync::Arc;
use std::time::Duration;

use super::{admin, clocked, editor, note, T0};
use crate::backend::{
    Backend, CheckState, FeedEvent, FeedReceiver, ImportMode, ImportOptions, Payload, RawRow,
    RowImport, TableInfo,
};
use crate::testing::schemas::*;
use crate::Store;

const BANNER: &str = "conformanceBanner";
const NOTE: &str = "conformanceNote";

fn raw(key: &str, message: &str, updated_at: i64, deleted_at: Option<i64>) -> RawRow {
    RawRow {
        key: key.to_owned(),
        value: Payload::from_json(
            serde_json::json!({ "active": true, "message": message }).to_string(),
        ),
        created_at: T0 - 1000,
        updated_at,
        deleted_at,
        updated_by: Some(Arc::from("cli:alice")),
    }
}

/// The suite's tables among `backend.tables()`.
async fn own_tables(backend: &dyn Backend) -> Vec<TableInfo> {
    let mut tables = backend.tables().await.unwrap();
    tables.retain(|t| t.name.starts_with("conformance"));
    tables
}

fn info<'a>(tables: &'a [TableInfo], name: &str) -> &'a TableInfo {
    tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("table {name} is listed: {tables:?}"))
}

/// The value as JSON (PostgreSQL hands back equal JSON, not the same text).
fn json(p: &Payload) -> serde_json::Value {
    serde_json::from_str(p.json()).expect("a stored value is JSON")
}

/// `row` as stored equals `expected` field by field (the value as JSON).
fn assert_same(row: &RawRow, expected: &RawRow) {
    assert_eq!(row.key, expected.key);
    assert_eq!(json(&row.value), json(&expected.value), "{}", row.key);
    assert_eq!(row.value.schema(), expected.value.schema(), "{}", row.key);
    assert_eq!(
        (
            row.created_at,
            row.updated_at,
            row.deleted_at,
            &row.updated_by
        ),
        (
            expected.created_at,
            expected.updated_at,
            expected.deleted_at,
            &expected.updated_by
        ),
        "{}",
        row.key
    );
}

/// The changes of table `table` waiting on `feed` now: `(key, live
/// updated_at)`, after waiting (bounded) for `at_least` of them.
async fn changes(
    feed: &mut FeedReceiver,
    table: &str,
    at_least: usize,
) -> Vec<(String, Option<i64>)> {
    let mut seen = Vec::new();
    while seen.len() < at_least {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .expect("the change arrives within 10 s")
            .expect("the feed stays open");
        match event {
            FeedEvent::Change(c) if c.table == table => {
                seen.push((c.key, c.row.map(|r| r.updated_at)));
            }
            // Other tables' changes and log entries are not the import's.
            FeedEvent::Change(_) | FeedEvent::Entry(_) => {}
            FeedEvent::Resync => panic!("no resync expected on a healthy backend"),
        }
    }
    seen
}

/// `Backend::tables` lists every table holding a row or a version floor,
/// in name order, with its row counts and floor.
pub async fn tables_lists_rows_deleted_rows_and_floors(store: Store) {
    let backend = store.backend();
    assert!(own_tables(&**backend).await.is_empty());
    let (store, clock) = clocked(&store);
    let banners = store.table::<Banner>();
    for key in [BannerKey::Alpha, BannerKey::Beta, BannerKey::Gamma] {
        banners.set(&admin(), key, Banner::new("x")).await.unwrap();
    }
    assert!(banners.rm(&admin(), BannerKey::Beta).await.unwrap());
    let notes = store.table::<Note>();
    notes
        .set(&editor(), "gone".to_owned(), note("n"))
        .await
        .unwrap();
    clock.set(T0 + 7);
    let removed = notes.get("gone".to_owned()).await.unwrap().unwrap();
    assert!(notes.rm(&editor(), "gone".to_owned()).await.unwrap());
    let tables = own_tables(&**backend).await;
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, [BANNER, NOTE], "name order, byte-wise");
    let b = info(&tables, BANNER);
    assert_eq!((b.rows, b.deleted_rows, b.version_floor), (3, 1, None));
    // A table without rows is still listed while it has a floor.
    let n = info(&tables, NOTE);
    assert_eq!((n.rows, n.deleted_rows), (0, 0));
    assert!(n.version_floor >= Some(removed.updated_at));
}

/// `Backend::import` writes rows exactly as given (value, times,
/// `deleted_at`, `updated_by`), soft-deleted ones too, publishes each on
/// the feed, and the typed table reads them back.
pub async fn import_restores_rows_exactly_and_publishes_them(store: Store) {
    let backend = store.backend();
    let mut feed = backend.feed().subscribe();
    let rows = vec![
        raw("alpha", "a", T0 + 10, None),
        raw("beta", "b \u{e9}\"'\\/", T0 + 20, Some(T0 + 20)),
        raw("gamma", "c", T0 + 30, None),
    ];
    let imported = backend
        .import(BANNER, rows.clone(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(imported.rows, [RowImport::Written; 3]);
    assert_eq!(imported.written(), 3);
    for expected in &rows {
        let stored = backend.get(BANNER, &expected.key).await.unwrap().unwrap();
        assert_same(&stored, expected);
    }
    let scanned = backend.scan(BANNER, None, 10).await.unwrap();
    assert_eq!(scanned.len(), 3);
    // In the given order; the soft-deleted row as gone.
    assert_eq!(
        changes(&mut feed, BANNER, 3).await,
        [
            ("alpha".to_owned(), Some(T0 + 10)),
            ("beta".to_owned(), None),
            ("gamma".to_owned(), Some(T0 + 30)),
        ]
    );
    let t = store.table::<Banner>();
    let alpha = t.get(BannerKey::Alpha).await.unwrap().unwrap();
    assert_eq!(alpha.value, Banner::new("a"));
    assert_eq!(alpha.updated_at, T0 + 10);
    assert_eq!(alpha.updated_by.as_deref(), Some("cli:alice"));
    assert_eq!(t.get(BannerKey::Beta).await.unwrap(), None);
    // The soft-deleted row is a real one: it restores, with a later version.
    let back = t.restore(&admin(), BannerKey::Beta).await.unwrap();
    assert!(back.updated_at > T0 + 20);
    assert_eq!(back.created_at, T0 - 1000);
}

/// An import keeps the schema version each row was written at
/// (`Payload::schema`): stored, published and read back, so that the
/// program reading it migrates from the right version. Rows that differ
/// only in it are not identical.
pub async fn import_keeps_each_rows_schema_version(store: Store) {
    let backend = store.backend();
    let mut feed = backend.feed().subscribe();
    let mut v2 = raw("alpha", "a", T0 + 10, None);
    v2.value = Payload::versioned(v2.value.json(), 2);
    let v1 = raw("beta", "b", T0 + 10, None);
    let imported = backend
        .import(
            BANNER,
            vec![v2.clone(), v1.clone()],
            ImportOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(imported.rows, [RowImport::Written; 2]);
    let stored = backend.get(BANNER, "alpha").await.unwrap().unwrap();
    assert_same(&stored, &v2);
    assert_eq!(stored.value.schema(), 2);
    let scanned = backend.scan(BANNER, None, 10).await.unwrap();
    let schemas: Vec<u32> = scanned.iter().map(|r| r.value.schema()).collect();
    assert_eq!(schemas, [2, 1]);
    let mut published = Vec::new();
    while published.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .expect("the change arrives within 10 s")
            .expect("the feed stays open");
        if let FeedEvent::Change(c) = event {
            if c.table == BANNER {
                let row = c.row.expect("a live row");
                published.push((c.key, row.value.schema()));
            }
        }
    }
    assert_eq!(published, [("alpha".to_owned(), 2), ("beta".to_owned(), 1)]);
    // The same value and times at another schema version is another row:
    // not "unchanged"; as new as the stored one, so kept, or overwritten.
    let mut as_v1 = v2.clone();
    as_v1.value = Payload::from_json(v2.value.json());
    let again = backend
        .import(
            BANNER,
            vec![as_v1.clone(), v1.clone()],
            ImportOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        again.rows,
        [
            RowImport::KeptNewer {
                stored_updated_at: T0 + 10
            },
            RowImport::Unchanged
        ]
    );
    let forced = backend
        .import(
            BANNER,
            vec![as_v1],
            ImportOptions {
                mode: ImportMode::Overwrite,
                ..ImportOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(forced.rows, [RowImport::Written]);
    let stored = backend.get(BANNER, "alpha").await.unwrap().unwrap();
    assert_eq!(stored.value.schema(), 1);
}

/// A stored row at least as new as the given one (and different) is kept
/// unless the mode is `Overwrite`; an identical one is left alone, so a
/// second import of the same rows changes nothing and publishes nothing.
pub async fn import_keeps_newer_rows_and_is_idempotent(store: Store) {
    let backend = store.backend();
    let rows = vec![
        raw("alpha", "a", T0 + 10, None),
        raw("beta", "b", T0 + 20, Some(T0 + 20)),
    ];
    let mut feed = backend.feed().subscribe();
    backend
        .import(BANNER, rows.clone(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(changes(&mut feed, BANNER, 2).await.len(), 2);
    let again = backend
        .import(BANNER, rows.clone(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(again.rows, [RowImport::Unchanged; 2]);
    // Newer in the store: an older row, or the same version with other content.
    let older = vec![
        raw("alpha", "old", T0 + 5, None),
        raw("beta", "other", T0 + 20, None),
    ];
    let kept = backend
        .import(BANNER, older.clone(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(
        kept.rows,
        [
            RowImport::KeptNewer {
                stored_updated_at: T0 + 10
            },
            RowImport::KeptNewer {
                stored_updated_at: T0 + 20
            },
        ]
    );
    assert_eq!(kept.kept(), 2);
    assert_same(
        &backend.get(BANNER, "alpha").await.unwrap().unwrap(),
        &rows[0],
    );
    // Nothing was published for unchanged or kept rows: the next change
    // on the feed is a later write's.
    store
        .table::<Note>()
        .set(&editor(), "marker".to_owned(), note("m"))
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .expect("the marker arrives within 10 s")
            .expect("the feed stays open");
        match event {
            FeedEvent::Change(c) if c.table == BANNER => panic!("no change expected: {c:?}"),
            FeedEvent::Change(c) if c.table == NOTE => break,
            _ => {}
        }
    }
    // Overwrite: the older rows win, and the table's floor rises to the
    // versions they replaced, as a hard delete would.
    let overwrite = ImportOptions {
        mode: ImportMode::Overwrite,
        version_floor: None,
    };
    let forced = backend
        .import(BANNER, older.clone(), overwrite)
        .await
        .unwrap();
    assert_eq!(forced.rows, [RowImport::Written; 2]);
    for expected in &older {
        assert_same(
            &backend.get(BANNER, &expected.key).await.unwrap().unwrap(),
            expected,
        );
    }
    let tables = own_tables(&**backend).await;
    assert!(info(&tables, BANNER).version_floor >= Some(T0 + 20));
}

/// `ImportOptions::version_floor` raises the table's floor in the same
/// step (also with no rows), so a row created later never reuses a version
/// of the source store.
pub async fn import_raises_the_version_floor(store: Store) {
    let backend = store.backend();
    let floor = T0 + 5_000;
    let options = ImportOptions {
        mode: ImportMode::KeepNewer,
        version_floor: Some(floor),
    };
    let imported = backend.import(NOTE, Vec::new(), options).await.unwrap();
    assert!(imported.rows.is_empty());
    let tables = own_tables(&**backend).await;
    assert_eq!(info(&tables, NOTE).version_floor, Some(floor));
    // A lower floor does not lower it.
    let lower = ImportOptions {
        version_floor: Some(T0),
        ..options
    };
    backend.import(NOTE, Vec::new(), lower).await.unwrap();
    let tables = own_tables(&**backend).await;
    assert_eq!(info(&tables, NOTE).version_floor, Some(floor));
    // The clock is behind the floor; a new row still gets a later version.
    let (store, _clock) = clocked(&store);
    let row = store
        .table::<Note>()
        .set(&editor(), "new".to_owned(), note("n"))
        .await
        .unwrap();
    assert!(row.updated_at > floor, "{} > {floor}", row.updated_at);
}

/// A snapshot reads every table as of the moment it was taken: rows
/// written, changed or deleted afterwards read as they were, and its table
/// list agrees with its rows.
pub async fn snapshot_reads_as_of_one_moment(store: Store) {
    let backend = store.backend();
    let t = store.table::<Banner>();
    for key in [BannerKey::Alpha, BannerKey::Beta] {
        t.set(&admin(), key, Banner::new("before")).await.unwrap();
    }
    let before = backend.scan(BANNER, None, 10).await.unwrap();
    let mut snapshot = backend.snapshot().await.unwrap();
    // Changes after the snapshot began.
    t.set(&admin(), BannerKey::Alpha, Banner::new("after"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap());
    t.set(&admin(), BannerKey::Gamma, Banner::new("new"))
        .await
        .unwrap();
    store
        .table::<Note>()
        .set(&editor(), "n".to_owned(), note("n"))
        .await
        .unwrap();
    let tables = snapshot.tables().await.unwrap();
    let own: Vec<&TableInfo> = tables
        .iter()
        .filter(|t| t.name.starts_with("conformance"))
        .collect();
    assert_eq!(own.len(), 1, "only the banner table existed: {own:?}");
    assert_eq!((own[0].rows, own[0].deleted_rows), (2, 0));
    // Paging through the snapshot, one row per page.
    let first = snapshot.scan(BANNER, None, 1).await.unwrap();
    let rest = snapshot.scan(BANNER, Some("alpha"), 10).await.unwrap();
    assert_eq!(first.len() + rest.len(), 2);
    assert_same(&first[0], &before[0]);
    assert_same(&rest[0], &before[1]);
    assert!(snapshot.scan(NOTE, None, 10).await.unwrap().is_empty());
    drop(snapshot);
    // The store itself moved on, and works after the snapshot is gone.
    assert_eq!(backend.scan(BANNER, None, 10).await.unwrap().len(), 3);
    let mut later = backend.snapshot().await.unwrap();
    assert_eq!(later.scan(BANNER, None, 10).await.unwrap().len(), 3);
}

/// A snapshot counts what an export does not carry: the history records of
/// each table that keeps them and the entries of each log (soft-deleted
/// ones included), as of the snapshot; tables without history and logs
/// without entries are not listed.
pub async fn snapshot_counts_history_records_and_log_entries(store: Store) {
    let mine = |items: Vec<(String, u64)>| -> Vec<(String, u64)> {
        items
            .into_iter()
            .filter(|(name, _)| name.starts_with("conformance"))
            .collect()
    };
    let backend = store.backend();
    let mut empty = backend.snapshot().await.unwrap();
    let none = empty.other_data().await.unwrap();
    assert!(mine(none.history_records).is_empty() && mine(none.log_entries).is_empty());
    drop(empty);

    let history = store.table::<Chronicle>();
    for message in ["one", "two", "three"] {
        history
            .set(&admin(), ChronicleKey::Banner, chronicle(message))
            .await
            .unwrap();
    }
    history
        .set(&admin(), ChronicleKey::Motd, chronicle("hello"))
        .await
        .unwrap();
    store
        .table::<Banner>()
        .set(&admin(), BannerKey::Alpha, Banner::new("no history"))
        .await
        .unwrap();
    let member = crate::Ctx::user("mo").with_role("member");
    let chat = store.log::<ChatLine>();
    for (room, text) in [(1, "hi"), (1, "there"), (2, "elsewhere")] {
        chat.append(&member, RoomId(room), ChatLine::new(text))
            .await
            .unwrap();
    }
    assert!(chat.rm(&member, RoomId(1), 1).await.unwrap());
    store
        .log::<AuditEvent>()
        .append(
            &crate::Ctx::internal(),
            "deploys".to_owned(),
            AuditEvent {
                what: "deployed".to_owned(),
            },
        )
        .await
        .unwrap();

    let mut snapshot = backend.snapshot().await.unwrap();
    // Changes after the snapshot began are not counted.
    history
        .set(&admin(), ChronicleKey::Alpha, chronicle("later"))
        .await
        .unwrap();
    chat.append(&member, RoomId(3), ChatLine::new("later"))
        .await
        .unwrap();
    let other = snapshot.other_data().await.unwrap();
    assert_eq!(
        mine(other.history_records),
        vec![("conformanceChronicle".to_owned(), 4)]
    );
    assert_eq!(
        mine(other.log_entries),
        vec![
            ("conformanceAudit".to_owned(), 1),
            ("conformanceChat".to_owned(), 3)
        ]
    );
}

/// `Backend::diagnose` reports its checks, none failed on a healthy store.
pub async fn diagnose_reports_checks(store: Store) {
    let checks = store.backend().diagnose().await;
    assert!(!checks.is_empty());
    for check in &checks {
        assert_ne!(check.state, CheckState::Failed, "{check:?}");
        assert!(!check.name.is_empty() && !check.detail.is_empty());
    }
}
