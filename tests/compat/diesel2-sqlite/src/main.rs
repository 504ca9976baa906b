//! kv beside diesel 2 with SQLite. diesel's `sqlite` feature alone links the
//! system's SQLite; kv's default features compile SQLite in, and since
//! libsqlite3-sys features unify, diesel uses that one too (see the
//! version printed).

#[path = "../../common/kv_check.rs"]
mod kv_check;

use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::Text;

diesel::table! {
    notes (id) {
        id -> Integer,
        body -> Text,
    }
}

/// Writes and reads a row with diesel; returns SQLite's version.
fn neighbour(path: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let url = path.to_str().ok_or("the path is not UTF-8")?;
    let mut conn = SqliteConnection::establish(url)?;
    diesel::sql_query("CREATE TABLE notes (id INTEGER PRIMARY KEY NOT NULL, body TEXT NOT NULL)")
        .execute(&mut conn)?;
    diesel::insert_into(notes::table)
        .values((notes::id.eq(1), notes::body.eq("written by diesel")))
        .execute(&mut conn)?;
    let body: String = notes::table
        .filter(notes::id.eq(1))
        .select(notes::body)
        .first(&mut conn)?;
    assert_eq!(body, "written by diesel");
    let version =
        diesel::select(diesel::dsl::sql::<Text>("sqlite_version()")).get_result(&mut conn)?;
    Ok(version)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = kv_check::Scratch::new("diesel2-sqlite");
    let version = neighbour(&dir.join("app.db")).expect("diesel works");
    kv_check::run(&dir.join("kv.db")).await;
    println!("diesel 2 (SQLite {version}) and kv both wrote and read their rows");
}
