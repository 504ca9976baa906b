//! kv beside sqlx 0.8 with its SQLite driver: one process, one SQLite
//! library, a file for each.

#[path = "../../common/kv_check.rs"]
mod kv_check;

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Writes and reads a row with sqlx; returns SQLite's version.
async fn neighbour(path: &Path) -> Result<String, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO notes (id, body) VALUES (?, ?)")
        .bind(1_i64)
        .bind("written by sqlx")
        .execute(&pool)
        .await?;
    let (body,): (String,) = sqlx::query_as("SELECT body FROM notes WHERE id = ?")
        .bind(1_i64)
        .fetch_one(&pool)
        .await?;
    assert_eq!(body, "written by sqlx");
    let (version,): (String,) = sqlx::query_as("SELECT sqlite_version()")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(version)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = kv_check::Scratch::new("sqlx08-sqlite");
    let version = neighbour(&dir.join("app.db")).await.expect("sqlx works");
    kv_check::run(&dir.join("kv.db")).await;
    println!("sqlx 0.8 (SQLite {version}) and kv both wrote and read their rows");
}
