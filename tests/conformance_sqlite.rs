//! The backend conformance suite on the SQLite backend, unchanged: each case
//! gets a new database file in its own temporary directory, removed when
//! the case's store is dropped.

mod support;

kv_runtime::conformance_suite!(support::sqlite::temp_store());
