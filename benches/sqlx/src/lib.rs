//! Nothing here: the bench is `benches/sqlx.rs`.
