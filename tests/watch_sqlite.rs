//! Watch streams on the SQLite backend: the shared scenarios.

mod watch_support;

use watch_support::*;

#[tokio::test]
async fn first_item_is_the_current_state() {
    let dir = TempDir::new("watch");
    watch_support::first_item_is_the_current_state(sqlite_store(&dir).await).await;
}

#[tokio::test]
async fn watch_sees_each_change_in_order() {
    let dir = TempDir::new("watch");
    watch_support::watch_sees_each_change_in_order(sqlite_store(&dir).await).await;
}

#[tokio::test]
async fn watch_sees_hard_deletes() {
    let dir = TempDir::new("watch");
    watch_support::watch_sees_hard_deletes(sqlite_store(&dir).await).await;
}

#[tokio::test]
async fn watch_keeps_commit_order_of_a_burst() {
    let dir = TempDir::new("watch");
    watch_support::watch_keeps_commit_order_of_a_burst(sqlite_store(&dir).await).await;
}

#[tokio::test]
async fn table_watch_starts_with_every_live_row() {
    let dir = TempDir::new("watch");
    watch_support::table_watch_starts_with_every_live_row(sqlite_store(&dir).await).await;
}

#[tokio::test]
async fn dropping_watches_and_replicas_leaks_nothing() {
    let dir = TempDir::new("watch");
    let store = sqlite_store(&dir).await;
    watch_support::dropping_watches_and_replicas_leaks_nothing(store).await;
}
