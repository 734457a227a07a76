//! Recovery on start (DESIGN §5, steps 1, 2 and 4), each step idempotent:
//!
//! 1. visibility: rows that disagree with their history are rebuilt, first,
//!    since the steps after it read those rows;
//! 2. timers: overdue timers fire now (their `timer_fired` is recorded before
//!    any workflow replays, so replay finds them); pending ones are re-armed;
//! 4. active workflows: listed for the host, which spawns a process for each
//!    that is not asleep on a timer (see [`Engine::runnable_page`]); replay in
//!    that process brings it to the live handoff.
//!
//! Each step walks the store page by page. A workflow whose timer cannot
//! fire, or whose history cannot be projected, is reported and skipped; it
//! never blocks the others.

use crate::store::{DEFAULT_PAGE, ReconcileReport, TimerEntry};

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
            for entry in future {
                inner.wheel.arm(entry);
            }
            self.fire_overdue(overdue, &mut report).await;
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
