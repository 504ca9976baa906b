//! kv beside the newest rusqlite: the app's own rusqlite and kv's are one
//! crate.

#[path = "../../common/kv_check.rs"]
mod kv_check;

use std::path::Path;

/// Writes and reads a row with rusqlite; returns SQLite's version.
fn neighbour(path: &Path) -> rusqlite::Result<String> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")?;
    conn.execute(
        "INSERT INTO notes (id, body) VALUES (?1, ?2)",
        (1, "written by rusqlite"),
    )?;
    let body: String = conn.query_row("SELECT body FROM notes WHERE id = ?1", [1], |r| r.get(0))?;
    assert_eq!(body, "written by rusqlite");
    Ok(rusqlite::version().to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = kv_check::Scratch::new("rusqlite-newest");
    let version = neighbour(&dir.join("app.db")).expect("rusqlite works");
    kv_check::run(&dir.join("kv.db")).await;
    println!("rusqlite (SQLite {version}) and kv both wrote and read their rows");
}
