//! The model-based tests (`tests/model/`) on the memory backend: random
//! operation sequences, each on a fresh store, compared with the reference
//! model. `KV_MODEL_CASES=100000 cargo test --test model_memory` runs a
//! long campaign.

mod model;
mod support;

use model::driver::{self, Fresh};

fn fresh() -> Fresh {
    Box::pin(async { (kv_runtime::Store::memory(), Box::new(()) as Box<dyn Send>) })
}

#[test]
fn random_sequences_match_the_model() {
    driver::check("memory", "tests/model/regressions/memory.txt", 512, fresh);
}

#[test]
fn regressions() {
    for (name, ops) in model::regressions::all() {
        driver::replay("memory", name, &ops, &fresh);
    }
}
