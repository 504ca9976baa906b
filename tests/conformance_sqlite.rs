//! The backend conformance suite on the SQLite backend, unchanged: each case
//! gets a new database file in its own temporary directory, removed when
//! the case's store is dropped.

mod sqlite_support;

kv_runtime::conformance_suite!(sqlite_support::temp_store());
