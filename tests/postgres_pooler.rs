//! PgBouncer in transaction mode in front of the shared test server:
//! calls through it work; a change feed pointed through it is detected and
//! reported as unverified; with `listen_url` pointing at the server
//! directly, a watcher on another store sees every write and the feed is
//! verified. Needs `pgbouncer` (scripts/test.sh installs it) and
//! scripts/test.sh's variables.

mod support;

use std::time::Duration;
use support::{pg, pg_instance};

use kv_runtime::backend::FeedHealth;
use kv_runtime::{Ctx, Kv, PageRequest, Store};
use pg_instance::{Binaries, Bouncer};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "poolerCount", keys = [n, m], write_role = admin, soft_delete)]
struct Count {
    n: u32,
}

/// Hang detection only.
const BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {BOUND:?}"))
}

/// A fresh database on the test server, PgBouncer in front of the server,
/// the database's direct URL and its name.
async fn setup() -> Option<(Bouncer, Binaries, String, String)> {
    let url = pg::server_url()?;
    let bins = Binaries::from_env("the pooler tests")?;
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the test server's port");
    let direct = pg::fresh_database(&url).await;
    let name = direct.rsplit('/').next().expect("a database").to_owned();
    let bouncer = Bouncer::start(&bins, port)?;
    Some((bouncer, bins, direct, name))
}

/// Percent-encodes everything but letters and digits.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_a_transaction_pooler_work_and_its_feed_is_unverified() {
    let Some((bouncer, bins, _direct, db)) = setup().await else {
        return;
    };
    let through = format!(
        "{}?prepared_statements=off&op_timeout=2s",
        bouncer.url(bins.user(), &db)
    );
    let store = bounded("opening through PgBouncer", Store::open(&through))
        .await
        .expect("opens through PgBouncer");
    let t = store.table::<Count>();
    let admin = Ctx::user("ada").with_role("admin");
    let mut last = None;
    for n in 1..=20 {
        last = Some(
            bounded("a set", t.set(&admin, CountKey::N, Count { n }))
                .await
                .expect("writes through the pooler work"),
        );
    }
    let row = t.get(CountKey::N).await.unwrap().expect("the row");
    assert_eq!(row.value, Count { n: 20 });
    assert_eq!(Some(row.updated_at), last.map(|r| r.updated_at));
    t.set_expecting(&admin, CountKey::N, Count { n: 21 }, row.updated_at)
        .await
        .expect("a conditional write");
    assert!(t.rm(&admin, CountKey::N).await.unwrap());
    t.restore(&admin, CountKey::N).await.unwrap();
    assert_eq!(
        t.list(&admin, PageRequest::first(10))
            .await
            .unwrap()
            .page
            .len(),
        1
    );

    let health = store.health().await;
    assert!(health.backend.reachable, "{health:?}");
    match &health.backend.feed {
        FeedHealth::Unverified { reason } => {
            assert!(reason.contains("listen_url"), "says what to do: {reason}")
        }
        other => panic!("a feed through a transaction pooler is unverified, not {other:?}"),
    }
    assert!(!health.is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_listen_url_direct_a_watcher_sees_every_write() {
    let Some((bouncer, bins, direct, db)) = setup().await else {
        return;
    };
    let through = format!(
        "{}?prepared_statements=off&op_timeout=2s",
        bouncer.url(bins.user(), &db)
    );
    let listening = format!("{through}&listen_url={}", encode(&direct));
    let writer = bounded("opening the writer", Store::open(&through))
        .await
        .unwrap();
    let watcher = bounded("opening the watcher", Store::open(&listening))
        .await
        .unwrap();
    let health = watcher.health().await;
    assert_eq!(health.backend.feed, FeedHealth::Verified, "{health:?}");
    assert!(health.is_healthy());

    let mut states = watcher.table::<Count>().watch(CountKey::M).await.unwrap();
    let first = bounded("the first state", states.next())
        .await
        .expect("a state")
        .unwrap();
    assert!(first.row.is_none());
    let admin = Ctx::user("ada").with_role("admin");
    let t = writer.table::<Count>();
    for n in 1..=25 {
        t.set(&admin, CountKey::M, Count { n }).await.unwrap();
    }
    for n in 1..=25 {
        let event = bounded("a change", states.next())
            .await
            .expect("a state")
            .unwrap();
        assert!(!event.resynced, "no change is lost: {event:?}");
        assert_eq!(event.row.map(|r| r.value), Some(Count { n }));
    }
}
