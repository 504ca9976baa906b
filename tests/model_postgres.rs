//! The model-based tests (`tests/model/`) on the PostgreSQL backend:
//! random operation sequences compared with the reference model. One
//! database per test; before each sequence its kv tables are emptied
//! (rows, version floors, rate counts) and the sequence gets a store of
//! its own (hooks start unregistered). Without `KV_TEST_POSTGRES_URL` the
//! tests skip loudly (and fail in CI): run them with
//! `scripts/test.sh --test model_postgres`, and a long campaign with
//! `KV_MODEL_CASES=20000 scripts/test.sh --test model_postgres`.

mod model;
mod support;

use kv_runtime::Store;
use model::driver::{self, Fresh};
use support::pg;

/// A new database of the test server, with kv's schema: its URL. `None`
/// (after saying so) when there is no test server.
fn database() -> Option<String> {
    let url = pg::server_url()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    Some(runtime.block_on(async {
        let db = pg::fresh_database(&url).await;
        // Opening creates the schema.
        drop(
            Store::open(&db)
                .await
                .unwrap_or_else(|e| panic!("cannot open a store on {db}: {e}")),
        );
        db
    }))
}

/// Empties the kv tables of `db` and opens a store on it (on the runtime
/// of the sequence, which drives its connections).
fn fresh_on(db: String) -> impl Fn() -> Fresh {
    move || {
        let db = db.clone();
        Box::pin(async move {
            let admin = pg::admin(&db).await;
            admin
                .batch_execute("TRUNCATE kv_rows, kv_tables, kv_rate")
                .await
                .expect("the kv tables empty");
            let store = Store::open(&db)
                .await
                .unwrap_or_else(|e| panic!("cannot open a store on {db}: {e}"));
            (store, Box::new(admin) as Box<dyn Send>)
        })
    }
}

#[test]
fn random_sequences_match_the_model() {
    let Some(db) = database() else {
        return;
    };
    driver::check(
        "postgres",
        "tests/model/regressions/postgres.txt",
        128,
        fresh_on(db),
    );
}

#[test]
fn regressions() {
    let Some(db) = database() else {
        return;
    };
    let fresh = fresh_on(db);
    for (name, ops) in model::regressions::all() {
        driver::replay("postgres", name, &ops, &fresh);
    }
}
