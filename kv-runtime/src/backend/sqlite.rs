//! Placeholder until the sqlite backend lands.

use crate::error::{Error, Result};

/// The sqlite backend (not yet implemented).
#[derive(Debug)]
pub struct SqliteBackend;

impl SqliteBackend {
    /// Opens the backend from a URL.
    pub async fn open_url(url: &str) -> Result<crate::backend::memory::MemoryBackend> {
        Err(Error::Config(format!(
            "{url}: the sqlite backend is not built yet"
        )))
    }
}
