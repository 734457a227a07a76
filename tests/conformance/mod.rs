//! The store conformance suite: every test in [`suite`] runs against every
//! backend, each test on a fresh store (a new `MemoryStore`, or a new SQLite
//! file in its own temporary directory). [`sqlite_only`] holds what only a
//! file-backed store can show (reopening, open errors, schema versions,
//! repairing tampered rows).

mod histories;
mod sqlite_only;
mod suite;

use std::sync::Arc;

use aion::store::Store;
use aion::store::memory::MemoryStore;
use aion::store::sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A store under test, with whatever must outlive it.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

/// A fresh in-memory store.
pub async fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

/// A fresh SQLite store in its own temporary directory.
pub async fn sqlite() -> Fixture {
    let dir = TempDir::new().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("aion.db"), SqliteOptions::default())
        .await
        .expect("a fresh SQLite store opens");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Instantiates every conformance test for one backend, as module `$backend`
/// whose tests build their store with `$fixture`. Adding a test to [`suite`]
/// means adding its name here; a name missing here shows as dead code.
macro_rules! conformance_suite {
    ($backend:ident, $fixture:path) => {
        conformance_suite!(@tests $backend, $fixture;
            append_and_read_round_trip,
            read_from_a_seq,
            read_a_range_of_seqs,
            appends_across_batches_chain,
            one_batch_with_several_workflows_and_chained_requests,
            stale_expected_seq_writes_nothing,
            concurrent_appends_on_one_head_have_one_winner,
            a_conflicting_request_does_not_stop_the_rest_of_its_batch,
            invalid_appends_are_rejected_and_write_nothing,
            active_list_follows_the_projected_status,
            run_chain_spans_continue_as_new,
            due_timers_include_the_boundary_and_exclude_the_future,
            rescheduling_a_timer_replaces_it,
            cancelling_a_timer_removes_it,
            appended_timer_events_maintain_the_timers_table,
            listing_filters_orders_and_pages,
            search_attributes_follow_the_latest_run,
            attribute_kinds_are_fixed_by_first_use,
            reconcile_is_a_noop_on_a_consistent_store,
            a_closed_store_refuses_calls,
            the_head_is_the_history_s_last_seq,
            the_history_head_has_the_head_and_the_latest_run,
            the_current_run_is_read_from_its_start,
            current_runs_are_read_in_one_batch_as_one_by_one,
            running_pages_walk_running_workflows_by_id,
            reconcile_pages_cover_every_history_once,
            timer_pages_follow_due_order,
            timers_of_one_workflow,
            activity_attempts_are_kept_per_run_until_it_ends,
        );
    };
    (@tests $backend:ident, $fixture:path; $($test:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let fixture = $fixture().await;
                    crate::conformance::suite::$test(fixture.store.clone()).await;
                    fixture.store.close().await;
                }
            )+
        }
    };
}

conformance_suite!(memory, crate::conformance::memory);
conformance_suite!(sqlite, crate::conformance::sqlite);
