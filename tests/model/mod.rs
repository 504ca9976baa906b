//! Model-based tests: random sequences of every table operation run
//! against a backend and against a small reference model written from the
//! documented semantics (README, `kv-runtime/docs/operations.md`,
//! `options.md`, `errors.md`, the `backend` module's guarantees), not from
//! kv's code. Every answer (the row, the boolean, the page, the error code
//! and its details) and every read must match the model.
//!
//! - `schema`: the two tables the sequences write, and their hooks;
//! - `ops`: the operations and how proptest generates them;
//! - `reference`: the reference model;
//! - `driver`: runs a sequence on a store and on the model, compares, and
//!   runs proptest over many sequences (shrinking a failure to a minimal
//!   one);
//! - `regressions`: sequences that once failed, checked in.
//!
//! Each backend has a test file of its own: `tests/model_memory.rs`,
//! `tests/model_sqlite.rs`, `tests/model_postgres.rs`.
#![allow(dead_code)] // each test file uses its own subset

pub mod driver;
pub mod ops;
pub mod reference;
pub mod regressions;
pub mod schema;
