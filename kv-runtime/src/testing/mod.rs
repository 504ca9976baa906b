//! The backend conformance suite (feature `testing`).
//!
//! Every backend must pass it unchanged. It is written against [`Store`]
//! and the [`Backend`](crate::backend::Backend) trait only, so a backend of
//! your own runs it the same way the shipped ones do:
//!
//! ```ignore
//! // tests/conformance_mine.rs
//! kv_runtime::conformance_suite!(async { kv_runtime::Store::with_backend(MyBackend::connect().await) });
//! ```
//!
//! The expression is evaluated once per case and must give a store over an
//! empty backend (or at least one without the suite's tables, whose names
//! all start with `conformance`), or a store together with something to keep
//! alive until the case ends, such as a temporary directory ([`Fixture`]).
//! Each case becomes its own `#[test]`.

#[doc(hidden)]
pub mod cases;
#[doc(hidden)]
pub mod schemas;

use std::future::Future;

use crate::Store;

/// What a conformance factory gives: a [`Store`], or a store and a guard
/// that must outlive it (dropped after the store, e.g. the temporary
/// directory holding its database file).
pub trait Fixture {
    /// The store the case runs on.
    fn store(&self) -> Store;
}

impl Fixture for Store {
    fn store(&self) -> Store {
        self.clone()
    }
}

impl<G> Fixture for (Store, G) {
    fn store(&self) -> Store {
        self.0.clone()
    }
}

/// Runs one async case to completion on a fresh multi-thread Tokio runtime.
pub fn run<F: Future<Output = ()>>(case: F) {
    // Two workers, so that concurrent cases really run in parallel and a
    // backend without atomic writes fails them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built for the test");
    runtime.block_on(case);
}

/// Expands to one `#[test]` per conformance case, each given a fresh store
/// from `$factory` (an expression of type `impl Future<Output = F>` where
/// `F` is a [`Fixture`]: a `Store`, or a `(Store, guard)`).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            get_missing_is_none,
            set_then_get_round_trips,
            overwrite_keeps_created_at_and_bumps_updated_at,
            updated_at_strictly_increases_within_one_millisecond,
            updated_at_increases_when_the_clock_steps_back,
            conflict_checked_set_with_current_version_succeeds,
            conflict_checked_set_with_stale_version_fails_and_changes_nothing,
            conflict_checked_set_of_missing_row_is_conflict,
            conflict_checked_set_of_soft_deleted_row_is_conflict,
            concurrent_conflict_checked_sets_admit_exactly_one,
            hard_rm_removes_and_reports,
            soft_rm_hides_row_and_restore_brings_it_back,
            restore_of_live_row_returns_it_unchanged,
            restore_of_unknown_key_is_not_found,
            set_revives_soft_deleted_row_without_deleted_at,
            list_pages_are_full_despite_soft_deleted_rows,
            list_cursor_survives_inserts_and_deletes,
            list_rejects_malformed_and_foreign_cursors,
            list_page_size_is_bounded,
            write_roles_are_enforced,
            forbidden_writes_change_nothing,
            predicates_sync_and_async_decide,
            validation_failure_names_fields_and_changes_nothing,
            oversize_values_are_refused,
            unreadable_values_are_refused_at_write,
            free_string_keys_are_checked,
            unknown_enum_key_text_is_invalid_key,
            tables_are_independent,
            hostile_keys_round_trip_in_byte_order,
            hostile_values_round_trip_or_are_refused,
            updated_by_records_the_caller,
            purge_removes_only_old_soft_deleted_rows,
            rate_limit_window_slides_per_bucket,
            change_feed_reports_commits_in_order,
            rate_limit_is_a_sliding_window_per_caller,
            before_update_hooks_change_values_and_see_previous,
            hooks_can_refuse_writes_and_deletes,
            panicking_hooks_do_not_poison_the_store,
            purge_honours_retention_and_runs_in_background,
            clean_files_deletes_unreferenced_files,
            list_skips_undeclared_keys_and_keeps_pages_full,
            set_if_absent_creates_a_missing_row,
            set_if_absent_revives_a_soft_deleted_row,
            set_if_absent_of_a_live_row_is_conflict,
            concurrent_set_if_absent_admits_exactly_one,
            before_update_hooks_rerun_when_the_row_appears_meanwhile,
            before_rm_hooks_rerun_when_the_row_changes_meanwhile,
            rm_and_restore_check_the_expectation,
            versions_are_not_reused_after_a_hard_delete,
            versions_are_not_reused_after_a_purge
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testing::run(async {
                    let fixture = $factory.await;
                    let store = $crate::testing::Fixture::store(&fixture);
                    $crate::testing::cases::$case(store).await;
                    drop(fixture);
                });
            }
        )*
    };
}
