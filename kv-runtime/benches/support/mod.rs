//! Shared by the PostgreSQL benches: reaching the server and a database of
//! the bench's own.

use tokio_postgres::{Client, NoTls};

/// A tokio-postgres client whose connection runs on the current runtime.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the benchmark server is reachable");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let start = base.find("://").map_or(0, |i| i + 3);
    let path = base[start..].find('/').map_or(base.len(), |i| start + i);
    if query.is_empty() {
        format!("{}/{db}", &base[..path])
    } else {
        format!("{}/{db}?{query}", &base[..path])
    }
}
