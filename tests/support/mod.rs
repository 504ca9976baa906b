//! Helpers shared by the integration tests, one file per concern. Every
//! test file includes them the same way, `mod support;`, and uses the
//! subset it needs:
//!
//! - `skip`: tests that need a service skip loudly outside CI, fail in CI;
//! - `wait`: bounded waits (hang detection, never a speed check);
//! - `tempdir`, `rng`: temporary directories, random test inputs;
//! - `sqlite`: stores over fresh SQLite files;
//! - `pg`, `pg_server`: the test PostgreSQL server, a database per test,
//!   stopping and starting the server;
//! - `pg_instance`: private servers a test starts for itself (TLS, paused,
//!   stopped) and a PgBouncer in front of one;
//! - `process`: child processes, run as the `kv-test-worker` binary
//!   (`tests/worker/`);
//! - `tables`: tables shared with that worker;
//! - `watch`: the watch and replica scenarios that run on every backend;
//! - `history`, `linearizability`, `campaign`: histories of concurrent
//!   operations (recorded by the worker), their checker, and runs of
//!   workers whose history is checked.
#![allow(dead_code)] // each test file uses its own subset

pub mod campaign;
pub mod history;
pub mod linearizability;
pub mod pg;
pub mod pg_instance;
pub mod pg_server;
pub mod process;
pub mod rng;
pub mod skip;
pub mod sqlite;
pub mod tables;
pub mod tempdir;
pub mod wait;
pub mod watch;
