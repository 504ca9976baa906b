//! The conformance cases, one public async function each, in one file per
//! concern. Each takes a store over a backend holding none of the suite's
//! tables and panics on failure.
//!
//! To add a case, write it as `pub async fn name(store: Store)` in the file
//! of its concern (a new file also needs its `pub mod` line below), and add
//! its name under that module in the list of
//! [`__conformance_cases!`](crate::__conformance_cases). That list is the
//! only one: `conformance_suite!` expands it into one `#[test]` per case,
//! and [`CASES`] is built from it. A listed name without its function does
//! not compile (here, not in the user's tests); a `pub async fn` in this
//! folder that is not listed fails the unit test at the bottom of this file.

pub mod access;
pub mod conflicts;
pub mod delete;
pub mod feed;
pub mod files;
pub mod history;
pub mod hooks;
pub mod keys;
pub mod list;
pub mod log;
pub mod purge;
pub mod quota;
pub mod rate_limit;
pub mod rows;
pub mod transfer;
pub mod validation;
pub mod versions;

use std::future::Future;
use std::pin::Pin;

use super::schemas::Note;
use crate::{Ctx, ManualClock, Store};

const T0: i64 = 1_700_000_000_000;

fn admin() -> Ctx {
    Ctx::user("ada").with_role("admin")
}

fn editor() -> Ctx {
    Ctx::user("ed").with_role("editor")
}

fn clocked(store: &Store) -> (Store, ManualClock) {
    let clock = ManualClock::new(T0);
    (store.with_clock(clock.clone()), clock)
}

fn note(text: &str) -> Note {
    Note {
        body: serde_json::json!({ "text": text }),
    }
}

/// Every conformance case, by the module it lives in: the one list that
/// `conformance_suite!` and [`CASES`] are made from. Add a new case here,
/// under its module.
///
/// Calls `$crate::PATH! { ARGS module: [case, ...], ... }` for
/// `__conformance_cases!(PATH! { ARGS })`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($($callback:ident)::+ ! { $($args:tt)* }) => {
        $crate::$($callback)::+! {
            $($args)*
            rows: [
                get_missing_is_none,
                set_then_get_round_trips,
                tables_are_independent,
                updated_by_records_the_caller,
                pages_keep_each_rows_writer,
                scan_returns_every_row_including_soft_deleted_ones,
                schema_versions_are_kept_and_newer_rows_not_overwritten,
            ],
            versions: [
                overwrite_keeps_created_at_and_bumps_updated_at,
                updated_at_strictly_increases_within_one_millisecond,
                updated_at_increases_when_the_clock_steps_back,
                versions_are_not_reused_after_a_hard_delete,
                versions_are_not_reused_after_a_purge,
            ],
            conflicts: [
                conflict_checked_set_with_current_version_succeeds,
                conflict_checked_set_with_stale_version_fails_and_changes_nothing,
                conflict_checked_set_of_missing_row_is_conflict,
                conflict_checked_set_of_soft_deleted_row_is_conflict,
                concurrent_conflict_checked_sets_admit_exactly_one,
                set_if_absent_creates_a_missing_row,
                set_if_absent_revives_a_soft_deleted_row,
                set_if_absent_of_a_live_row_is_conflict,
                concurrent_set_if_absent_admits_exactly_one,
                rm_and_restore_check_the_expectation,
            ],
            delete: [
                hard_rm_removes_and_reports,
                soft_rm_hides_row_and_restore_brings_it_back,
                restore_of_live_row_returns_it_unchanged,
                restore_of_unknown_key_is_not_found,
                set_revives_soft_deleted_row_without_deleted_at,
            ],
            list: [
                list_pages_are_full_despite_soft_deleted_rows,
                list_cursor_survives_inserts_and_deletes,
                list_rejects_malformed_and_foreign_cursors,
                list_page_size_is_bounded,
                list_skips_undeclared_keys_and_keeps_pages_full,
                forged_cursors_holding_any_bytes_are_invalid_cursor,
            ],
            access: [
                write_roles_are_enforced,
                forbidden_writes_change_nothing,
                predicates_sync_and_async_decide,
            ],
            validation: [
                validation_failure_names_fields_and_changes_nothing,
                oversize_values_are_refused,
                unreadable_values_are_refused_at_write,
                hostile_values_round_trip_and_nul_is_refused_everywhere,
                the_largest_key_and_value_round_trip,
            ],
            keys: [
                free_string_keys_are_checked,
                unknown_enum_key_text_is_invalid_key,
                hostile_keys_round_trip_in_byte_order,
            ],
            feed: [
                change_feed_reports_commits_in_order,
            ],
            rate_limit: [
                rate_limit_window_slides_per_bucket,
                rate_limit_is_a_sliding_window_per_caller,
                idle_rate_limit_buckets_are_swept,
                table_rate_limits_count_in_the_quota_primitive,
            ],
            quota: [
                quota_primitive_consumes_records_peeks_and_resets,
                quota_uses_from_a_clock_ahead_still_count,
                concurrent_consumes_admit_exactly_max,
                quota_check_consume_record_reset,
                quota_owners_and_counts_are_checked,
                quota_hooks_refuse_and_observe,
            ],
            log: [
                log_appends_number_entries_per_parent,
                log_concurrent_appends_get_consecutive_seqs,
                log_idempotent_appends_replay_the_first_entry,
                log_append_many_is_all_or_nothing,
                log_list_pages_forwards_and_backwards,
                log_rm_restore_and_rm_many,
                log_roles_guard_writes_and_reads,
                log_purge_removes_old_soft_deleted_entries,
                log_tail_follows_new_entries,
                log_feed_reports_entry_changes,
                log_hooks_change_refuse_and_observe,
                log_rate_limit_counts_entries,
                log_store_numbers_and_lists,
            ],
            hooks: [
                before_set_hooks_change_values_and_see_previous,
                hooks_can_refuse_writes_and_deletes,
                panicking_hooks_do_not_poison_the_store,
                before_set_hooks_rerun_when_the_row_appears_meanwhile,
                before_rm_hooks_rerun_when_the_row_changes_meanwhile,
            ],
            purge: [
                purge_removes_only_old_soft_deleted_rows,
                purge_honours_retention_and_runs_in_background,
            ],
            files: [
                clean_files_deletes_unreferenced_files,
            ],
            history: [
                history_records_every_change_with_its_version_value_and_caller,
                history_pages_newest_first_with_a_cursor,
                revert_writes_a_recorded_value_back_and_is_recorded,
                revert_of_a_stale_version_is_conflict,
                revert_to_an_unknown_version_is_not_found,
                no_record_without_a_committed_change,
                revert_goes_through_the_write_pipeline,
                history_keeps_the_newest_records_per_row,
                history_older_than_keep_for_is_trimmed_on_change_and_by_purge,
                removals_are_recorded_and_versions_stay_unique,
                racing_writes_record_exactly_the_committed_changes,
            ],
            transfer: [
                tables_lists_rows_deleted_rows_and_floors,
                import_restores_rows_exactly_and_publishes_them,
                import_keeps_each_rows_schema_version,
                import_keeps_newer_rows_and_is_idempotent,
                import_raises_the_version_floor,
                snapshot_reads_as_of_one_moment,
                snapshot_counts_history_records_and_log_entries,
                diagnose_reports_checks,
            ],
        }
    };
}

/// One conformance case: where it lives, and how to run it.
pub struct Case {
    /// The module of `testing::cases` it lives in.
    pub module: &'static str,
    /// Its name, which is also the name of its `#[test]`.
    pub name: &'static str,
    /// Runs it on a store.
    pub run: fn(Store) -> Pin<Box<dyn Future<Output = ()>>>,
}

/// Builds [`CASES`] from the list.
macro_rules! cases_table {
    ($($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        /// Every case, in the order of [`__conformance_cases!`](crate::__conformance_cases).
        pub const CASES: &[Case] = &[$($(
            Case {
                module: stringify!($module),
                name: stringify!($case),
                run: |store| Box::pin($module::$case(store)),
            },
        )*)*];
    };
}
pub(crate) use cases_table;

crate::__conformance_cases!(testing::cases::cases_table! {});

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::CASES;

    /// The `(module, name)` of every `pub async fn` at the top level of the
    /// files in this folder: every function written as a case.
    fn written_cases() -> BTreeSet<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testing/cases");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("the cases folder is readable") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let module = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("a case file is readable");
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    found.insert((module.clone(), rest[..end].to_owned()));
                }
            }
        }
        found
    }

    /// A case written but not listed would never run: `conformance_suite!`
    /// expands the list, not the folder.
    #[test]
    fn every_case_written_is_listed_under_its_module() {
        let written = written_cases();
        let listed: BTreeSet<(String, String)> = CASES
            .iter()
            .map(|c| (c.module.to_owned(), c.name.to_owned()))
            .collect();
        let unlisted: Vec<_> = written.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "these cases are not in __conformance_cases! (testing/cases/mod.rs), so no \
             backend runs them; add each under its module: {unlisted:?}"
        );
        let unwritten: Vec<_> = listed.difference(&written).collect();
        assert!(
            unwritten.is_empty(),
            "listed but not found as `pub async fn` in their module's file: {unwritten:?}"
        );
        assert!(written.len() >= 50, "the scan found only {written:?}");
    }

    /// Each case is listed once: its name is the name of a `#[test]`.
    #[test]
    fn case_names_are_unique() {
        let mut names = BTreeSet::new();
        for case in CASES {
            assert!(names.insert(case.name), "{} is listed twice", case.name);
        }
    }
}
