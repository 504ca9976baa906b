//! The `kv` command's work, as a library (the binary is `src/main.rs`; the
//! benchmarks call these functions directly).
//!
//! - [`mod@format`]: the export file, JSON Lines, and its checks;
//! - [`export`]: a store's snapshot into a file;
//! - [`import`]: a file back into a store, exactly, validated first;
//! - [`copy`]: one store into another, without a file;
//! - [`doctor`]: the checks of a store.
//!
//! Everything goes through the [`Backend`](kv_runtime::backend::Backend)
//! trait (`tables`, `snapshot`, `import`, `diagnose`), so it works the same
//! on every backend.

pub mod copy;
pub mod doctor;
pub mod export;
pub mod format;
pub mod import;
pub mod progress;

/// Rows read or written per backend call.
pub const BATCH: usize = 1000;
