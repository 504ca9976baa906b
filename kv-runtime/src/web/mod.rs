//! The axum web layer (placeholder until the web issue lands).
