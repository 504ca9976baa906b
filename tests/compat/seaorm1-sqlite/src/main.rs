//! kv beside sea-orm 1 over sqlx's SQLite driver.

#[path = "../../common/kv_check.rs"]
mod kv_check;

use std::path::Path;

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, Database, DbBackend, DbErr, EntityTrait, Set, Statement,
};

mod note {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "notes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes and reads a row with sea-orm; returns SQLite's version.
async fn neighbour(path: &Path) -> Result<String, DbErr> {
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display())).await?;
    db.execute_unprepared(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY NOT NULL, body TEXT NOT NULL)",
    )
    .await?;
    note::ActiveModel {
        id: Set(1),
        body: Set("written by sea-orm".to_owned()),
    }
    .insert(&db)
    .await?;
    let found = note::Entity::find_by_id(1).one(&db).await?;
    assert_eq!(found.map(|n| n.body).as_deref(), Some("written by sea-orm"));
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT sqlite_version() AS version",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no version row".to_owned()))?;
    let version = row.try_get("", "version")?;
    db.close().await?;
    Ok(version)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = kv_check::Scratch::new("seaorm1-sqlite");
    let version = neighbour(&dir.join("app.db")).await.expect("sea-orm works");
    kv_check::run(&dir.join("kv.db")).await;
    println!("sea-orm 1 (SQLite {version}) and kv both wrote and read their rows");
}
