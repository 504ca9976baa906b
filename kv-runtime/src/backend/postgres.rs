//! Placeholder until the postgres backend lands.

use crate::error::{Error, Result};

/// The postgres backend (not yet implemented).
#[derive(Debug)]
pub struct PostgresBackend;

impl PostgresBackend {
    /// Opens the backend from a URL.
    pub async fn open_url(url: &str) -> Result<crate::backend::memory::MemoryBackend> {
        Err(Error::Config(format!(
            "{url}: the postgres backend is not built yet"
        )))
    }
}
