//! What each fuzz target checks, one module per target. Each `check`
//! takes the fuzzer's bytes and panics when kv misbehaves: a panic of its
//! own, an answer outside its documented set.
//!
//! These files are compiled twice: into the fuzz crate (`fuzz/src/lib.rs`,
//! nightly, cargo-fuzz) and into the stable test suite
//! (`tests/fuzz_regressions.rs`), which runs them on the seeds
//! (`fuzz/seeds/<target>/`) and on every input that once failed
//! (`fuzz/regressions/<target>/`). Both place the derive's modules
//! (`kv-macros/src/*.rs`) at their crate root, where `derive` finds them.

pub mod cursor;
pub mod derive;
pub mod keys;
pub mod router;

use std::sync::OnceLock;

/// One runtime for every input: the checks run async kv code to its end.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime")
    })
}
