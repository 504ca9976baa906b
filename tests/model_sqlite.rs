//! The model-based tests (`tests/model/`) on the SQLite backend: random
//! operation sequences, each on a new database file, compared with the
//! reference model. `KV_MODEL_CASES=20000 cargo test --test model_sqlite`
//! runs a long campaign.

mod model;
mod support;

use model::driver::{self, Fresh};

fn fresh() -> Fresh {
    Box::pin(async {
        let (store, dir) = support::sqlite::temp_store().await;
        (store, Box::new(dir) as Box<dyn Send>)
    })
}

#[test]
fn random_sequences_match_the_model() {
    driver::check("sqlite", "tests/model/regressions/sqlite.txt", 256, fresh);
}

#[test]
fn regressions() {
    for (name, ops) in model::regressions::all() {
        driver::replay("sqlite", name, &ops, &fresh);
    }
}
