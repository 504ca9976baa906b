//! The backend conformance suite on the PostgreSQL backend.
//!
//! Each case gets a database of its own on the test server (see
//! `support/pg.rs`), so the cases run in parallel like any others. Without
//! `KV_TEST_POSTGRES_URL` the cases skip loudly (and fail in CI); run them
//! with `scripts/test.sh --test conformance_postgres`.

mod support;

use support::pg;

kv_runtime::conformance_suite!({
    let Some(url) = pg::server_url() else {
        return;
    };
    async move { pg::fresh_store(&url).await }
});
