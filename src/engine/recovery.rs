//! Recovery on start (DESIGN §5, steps 1, 2 and 4), each step idempotent:
//!
//! 1. visibility: rows that disagree with their history are rebuilt, first,
//!    since the steps after it read those rows;
//! 2. timers: overdue timers fire now (their `timer_fired` is recorded before
//!    any workflow replays, so replay finds them); pending ones are re-armed,
//!    and a run with one is woken now if it has more to do than wait for it
//!    (see [`Engine::wake_if_not_asleep`]);
//! 4. active workflows: listed for the host, which spawns a process for each
//!    that is not asleep on a timer (see [`Engine::runnable_page`]); replay in
//!    that process brings it to the live handoff.
//!
//! Each step walks the store page by page. A workflow whose timer cannot
//! fire, or whose history cannot be projected, is reported and skipped; it
//! never blocks the others.
//!
//! The fault point [`crate::faults::Point::Recovery`] sits between steps 1
//! and 2: a crash there must leave a store the next start recovers fully.

use std::collections::HashSet;

use crate::event::{Event, RecordedEvent};
use crate::faults::{self, Point};
use crate::ids::WorkflowId;
use crate::replay::Resolver;
use crate::status::{RunSummary, WorkflowStatus};
use crate::store::{DEADLINE_COMMAND, DEFAULT_PAGE, ReconcileReport, TimerEntry};

use super::{Engine, Result};

/// What recovery did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecoveryReport {
    /// Overdue timers fired.
    pub timers_fired: usize,
    /// Future timers re-armed.
    pub timers_armed: usize,
    /// Timers that could not fire (left armed for a retry), with the reason.
    pub timer_failures: Vec<String>,
    /// Runs with a future timer woken because they had more to do.
    pub runs_woken: usize,
    /// What visibility reconciliation did.
    pub visibility: ReconcileReport,
}

impl Engine {
    /// Runs recovery steps 1 and 2; the host then pages through
    /// [`Engine::runnable_page`] for step 4.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        self.ensure_open()?;
        let inner = &self.inner;
        let mut report = RecoveryReport::default();

        // Page by page: bounded memory and work per step, whatever the store holds.
        let mut after = None;
        loop {
            let (page, next) = inner
                .store
                .reconcile_visibility_page(after.as_ref(), DEFAULT_PAGE)
                .await?;
            for (workflow_id, reason) in &page.broken {
                inner.listener.warning(&format!(
                    "recovery: history of {workflow_id} cannot be projected, skipped: {reason}"
                ));
            }
            report.visibility.rebuilt += page.rebuilt;
            report.visibility.broken.extend(page.broken);
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }

        // Visibility is repaired; no timer has fired or been armed, no run
        // has been resumed.
        faults::hit(Point::Recovery);

        let now = inner.clock.now();
        let mut cursor = None;
        loop {
            let page = inner
                .store
                .pending_timers_page(cursor, DEFAULT_PAGE)
                .await?;
            for (timer, error) in &page.broken {
                report
                    .timer_failures
                    .push(format!("timer row {timer} cannot be read: {error}"));
            }
            let (overdue, future): (Vec<_>, Vec<_>) = page
                .timers
                .into_iter()
                .partition(|entry| entry.fire_at <= now);
            report.timers_armed += future.len();
            // A deadline is no sleep: its run is runnable anyway.
            let sleepers: Vec<WorkflowId> = future
                .iter()
                .filter(|entry| entry.command != DEADLINE_COMMAND)
                .map(|entry| entry.workflow_id.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for entry in future {
                inner.wheel.arm(entry);
            }
            self.fire_overdue(overdue, &mut report).await;
            // A run with timers in several pages is looked at once per page:
            // waking is idempotent, and memory stays bounded by the page.
            // Their runs in one read: a page of sleepers costs one query.
            let mut runs = inner.store.read_current_runs(&sleepers).await?;
            for workflow_id in &sleepers {
                match self.wake_if_not_asleep(workflow_id, runs.remove(workflow_id)).await {
                    Ok(woken) => report.runs_woken += usize::from(woken),
                    Err(error) => inner.listener.warning(&format!(
                        "recovery: could not tell whether {workflow_id} waits only for its timer, left asleep: {error}"
                    )),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        for failure in &report.timer_failures {
            inner.listener.warning(&format!("recovery: {failure}"));
        }
        Ok(report)
    }

    /// Wakes the running run of `workflow_id`, which has a pending timer, if
    /// it has more to do than wait for a timer. Returns whether it woke it.
    ///
    /// While the engine runs, a run loses its process with a pending timer
    /// only by eviction, which happens only when it is idle (see
    /// [`super::RunHandle::evict`]), and whatever arrives later wakes it. A
    /// run whose process died with the VM had no such check, and no wake-up
    /// reaches it for what was recorded before the crash: it is asleep only
    /// if the last thing it recorded is the start of a timer (so nothing
    /// came after that it has not seen), and it has no activity in flight
    /// (to dispatch again), no child without an outcome (whose ending may
    /// have been lost with the VM), no parent that ended without closing it
    /// (its policy closes it when it loads), no message waiting to be taken, and no
    /// cancellation request (which interrupts the wait). Otherwise it needs
    /// its process now; if it turns out idle it is evicted again.
    ///
    /// `read` is the run as a batched read found it, if it did; otherwise it
    /// is read here.
    async fn wake_if_not_asleep(
        &self,
        workflow_id: &WorkflowId,
        read: Option<(RunSummary, Vec<RecordedEvent>)>,
    ) -> Result<bool> {
        let read = match read {
            Some(read) => Some(read),
            None => self.inner.store.read_current_run(workflow_id).await?,
        };
        let Some((run, segment)) = read else {
            return Ok(false);
        };
        if run.status != WorkflowStatus::Running {
            return Ok(false);
        }
        let resolver = Resolver::from_segment(run.run_id, &segment)?;
        let last_started_a_timer = matches!(
            segment.last().map(|recorded| &recorded.event),
            Some(Event::TimerStarted { .. })
        );
        // A child whose parent ended without closing it must be closed now.
        let orphaned = match resolver.parent() {
            Some(parent) => self
                .orphaned(parent, workflow_id, run.run_id, resolver.cancel_requested())
                .await?
                .is_some(),
            None => false,
        };
        let asleep = last_started_a_timer
            && !orphaned
            && !resolver.has_work_in_flight()
            && !resolver.has_messages()
            && !resolver.cancel_requested();
        if !asleep {
            self.inner.listener.wake(workflow_id, &run.workflow_type);
        }
        Ok(!asleep)
    }

    /// Fires overdue timers concurrently, so that the writer commits them in
    /// a few batches; a timer that cannot fire is armed for a retry.
    async fn fire_overdue(&self, overdue: Vec<TimerEntry>, report: &mut RecoveryReport) {
        let firing: Vec<_> = overdue
            .into_iter()
            .map(|entry| {
                let engine = self.clone();
                self.inner.runtime.spawn(async move {
                    let result = engine.fire_timer(&entry).await;
                    (entry, result)
                })
            })
            .collect();
        for task in firing {
            match task.await {
                Ok((_, Ok(()))) => report.timers_fired += 1,
                Ok((entry, Err(error))) => {
                    report.timer_failures.push(format!(
                        "timer {} of {}: {error}",
                        entry.timer_id, entry.workflow_id
                    ));
                    self.inner.wheel.arm(entry);
                }
                Err(join_error) => report
                    .timer_failures
                    .push(format!("timer task failed: {join_error}")),
            }
        }
    }
}
