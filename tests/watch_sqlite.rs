//! Watch streams on the SQLite backend: the shared scenarios.

mod support;

use support::sqlite::store_in;
use support::tempdir::TempDir;
use support::watch;

#[tokio::test]
async fn first_item_is_the_current_state() {
    let dir = TempDir::new("watch");
    watch::first_item_is_the_current_state(store_in(&dir).await).await;
}

#[tokio::test]
async fn watch_sees_each_change_in_order() {
    let dir = TempDir::new("watch");
    watch::watch_sees_each_change_in_order(store_in(&dir).await).await;
}

#[tokio::test]
async fn watch_sees_hard_deletes() {
    let dir = TempDir::new("watch");
    watch::watch_sees_hard_deletes(store_in(&dir).await).await;
}

#[tokio::test]
async fn watch_keeps_commit_order_of_a_burst() {
    let dir = TempDir::new("watch");
    watch::watch_keeps_commit_order_of_a_burst(store_in(&dir).await).await;
}

#[tokio::test]
async fn table_watch_starts_with_every_live_row() {
    let dir = TempDir::new("watch");
    watch::table_watch_starts_with_every_live_row(store_in(&dir).await).await;
}

#[tokio::test]
async fn dropping_watches_and_replicas_leaks_nothing() {
    let dir = TempDir::new("watch");
    let store = store_in(&dir).await;
    watch::dropping_watches_and_replicas_leaks_nothing(store).await;
}
