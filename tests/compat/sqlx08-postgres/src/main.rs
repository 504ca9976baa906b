//! kv (with its default SQLite backend) beside sqlx 0.8 used only for
//! PostgreSQL, with sqlx's default features and `json`: sqlx's lockfile
//! still carries its SQLite driver, whose `links = "sqlite3"` kv must share.
//! Connects only when `KV_TEST_POSTGRES_URL` is set.

#[path = "../../common/kv_check.rs"]
mod kv_check;

use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json;

/// A round trip through PostgreSQL when a server is given; otherwise builds
/// the pool and a query without connecting. Says which it did.
async fn neighbour() -> Result<&'static str, sqlx::Error> {
    let options = PgPoolOptions::new().max_connections(1);
    let query =
        sqlx::query_as::<_, (String, Json<serde_json::Value>)>("SELECT $1::text, $2::jsonb")
            .bind("written by sqlx")
            .bind(Json(serde_json::json!({ "n": 1 })));
    let Ok(url) = std::env::var("KV_TEST_POSTGRES_URL") else {
        let _pool = options.connect_lazy("postgres://kv@127.0.0.1:1/unused")?;
        drop(query);
        return Ok("PostgreSQL not contacted: KV_TEST_POSTGRES_URL is unset");
    };
    let pool = options.connect(&url).await?;
    let (text, json) = query.fetch_one(&pool).await?;
    assert_eq!(text, "written by sqlx");
    assert_eq!(json.0, serde_json::json!({ "n": 1 }));
    pool.close().await;
    Ok("a PostgreSQL round trip")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = kv_check::Scratch::new("sqlx08-postgres");
    let did = neighbour().await.expect("sqlx works");
    kv_check::run(&dir.join("kv.db")).await;
    println!("sqlx 0.8 ({did}) and kv (SQLite) both work");
}
