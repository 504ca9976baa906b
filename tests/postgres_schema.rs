//! `kv_schema`: stores with different schemas in one database keep their
//! own tables and change feeds, and do not see each other's rows.

mod support;

use std::time::Duration;
use support::pg;

use kv_runtime::backend::FeedEvent;
use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "schemaDoc", keys = [shared, only_a])]
struct Doc {
    owner: String,
}

async fn next_change(feed: &mut kv_runtime::backend::FeedReceiver) -> kv_runtime::backend::Change {
    let event = tokio::time::timeout(Duration::from_secs(60), feed.recv())
        .await
        .expect("the feed delivers")
        .expect("the feed stays open");
    match event {
        FeedEvent::Change(c) => c,
        other => panic!("expected a row's change on a healthy server, got {other:?}"),
    }
}

/// Three stores on database `db`: schema `kv_a`; schema `kv_b` without
/// prepared statements (the unnamed path too); and the default schema.
async fn schema_stores(db: &str) -> (Store, Store, Store) {
    let a = Store::open(&format!("{db}?kv_schema=kv_a")).await.unwrap();
    let b = Store::open(&format!("{db}?kv_schema=kv_b&prepared_statements=off"))
        .await
        .unwrap();
    let plain = Store::open(db).await.unwrap();
    (a, b, plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schemas_in_one_database_do_not_see_each_other() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let (a, b, plain) = schema_stores(&db).await;
    let mut feed_a = a.backend().feed().subscribe();
    let mut feed_b = b.backend().feed().subscribe();
    let mut feed_plain = plain.backend().feed().subscribe();
    let ctx = Ctx::internal();
    let doc = |owner: &str| Doc {
        owner: owner.into(),
    };

    a.table::<Doc>()
        .set(&ctx, DocKey::Shared, doc("a"))
        .await
        .unwrap();
    a.table::<Doc>()
        .set(&ctx, DocKey::OnlyA, doc("a"))
        .await
        .unwrap();
    b.table::<Doc>()
        .set(&ctx, DocKey::Shared, doc("b"))
        .await
        .unwrap();
    plain
        .table::<Doc>()
        .set(&ctx, DocKey::Shared, doc("plain"))
        .await
        .unwrap();

    let owner = |s: &Store, key| {
        let t = s.table::<Doc>();
        async move { t.get(key).await.unwrap().map(|r| r.value.owner) }
    };
    assert_eq!(owner(&a, DocKey::Shared).await.as_deref(), Some("a"));
    assert_eq!(owner(&b, DocKey::Shared).await.as_deref(), Some("b"));
    assert_eq!(
        owner(&plain, DocKey::Shared).await.as_deref(),
        Some("plain")
    );
    assert_eq!(owner(&b, DocKey::OnlyA).await, None);
    assert_eq!(owner(&plain, DocKey::OnlyA).await, None);

    // Each feed carries its own schema's changes only, in order.
    for (feed, expected) in [
        (&mut feed_a, vec![("shared", "a"), ("only_a", "a")]),
        (&mut feed_b, vec![("shared", "b")]),
        (&mut feed_plain, vec![("shared", "plain")]),
    ] {
        for (key, who) in expected {
            let change = next_change(feed).await;
            assert_eq!(change.key, key);
            let row = change.row.expect("a live row");
            assert!(row.value.json().contains(who), "{}", row.value.json());
        }
    }
    b.table::<Doc>().rm(&ctx, DocKey::Shared).await.unwrap();
    assert_eq!(next_change(&mut feed_b).await.row, None);
    // a's first event after that is its own write, not b's delete.
    a.table::<Doc>()
        .set(&ctx, DocKey::Shared, doc("a2"))
        .await
        .unwrap();
    assert!(next_change(&mut feed_a)
        .await
        .row
        .is_some_and(|r| r.value.json().contains("a2")));

    // The tables are in the schemas; reopening an existing schema works.
    let admin = pg::admin(&db).await;
    for (schema, rows) in [("kv_a", 2i64), ("kv_b", 0)] {
        let n: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {schema}.kv_rows"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, rows, "{schema}");
    }
    drop(Store::open(&format!("{db}?kv_schema=kv_a")).await.unwrap());
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "schemaNote", keys = [home], history)]
struct Note {
    text: String,
}

#[derive(kv_runtime::Log, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[log(table = "schemaChat")]
struct Line {
    text: String,
}

/// History records and log entries are counted per schema (what `kv
/// tables` lists and an export names as not carried), with prepared
/// statements and without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_log_counts_stay_in_their_schema() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let (a, b, plain) = schema_stores(&db).await;
    let ctx = Ctx::internal();
    for (store, writes, lines) in [(&a, 3, 2), (&b, 1, 0), (&plain, 0, 1)] {
        for i in 0..writes {
            let note = Note {
                text: format!("v{i}"),
            };
            store
                .table::<Note>()
                .set(&ctx, NoteKey::Home, note)
                .await
                .unwrap();
        }
        for i in 0..lines {
            let line = Line {
                text: format!("l{i}"),
            };
            store
                .log::<Line>()
                .append(&ctx, "room".to_owned(), line)
                .await
                .unwrap();
        }
    }
    for (store, history, logs) in [
        (
            &a,
            vec![("schemaNote".to_owned(), 3)],
            vec![("schemaChat".to_owned(), 2)],
        ),
        (&b, vec![("schemaNote".to_owned(), 1)], vec![]),
        (&plain, vec![], vec![("schemaChat".to_owned(), 1)]),
    ] {
        let mut snapshot = store.backend().snapshot().await.unwrap();
        let other = snapshot.other_data().await.unwrap();
        assert_eq!(other.history_records, history);
        assert_eq!(other.log_entries, logs);
    }
}
