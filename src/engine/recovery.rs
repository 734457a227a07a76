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
//! A workflow whose timer cannot fire, or whose history cannot be projected,
//! is reported and skipped; it never blocks the others.

use crate::store::ReconcileReport;

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
        let mut report = RecoveryReport {
            visibility: inner.store.reconcile_visibility().await?,
            ..RecoveryReport::default()
        };
        for (workflow_id, reason) in &report.visibility.broken {
            inner
                .listener
                .warning(&format!("recovery: history of {workflow_id} cannot be projected, skipped: {reason}"));
        }

        let now = inner.clock.now();
        let (overdue, future): (Vec<_>, Vec<_>) = inner
            .store
            .pending_timers()
            .await?
            .into_iter()
            .partition(|entry| entry.fire_at <= now);
        report.timers_armed = future.len();
        for entry in future {
            inner.wheel.arm(entry);
        }
        // Fire concurrently so that the writer commits them in a few batches.
        let firing: Vec<_> = overdue
            .into_iter()
            .map(|entry| {
                let engine = self.clone();
                inner.runtime.spawn(async move {
                    let result = engine.fire_timer(&entry).await;
                    (entry, result)
                })
            })
            .collect();
        for task in firing {
            match task.await {
                Ok((_, Ok(()))) => report.timers_fired += 1,
                Ok((entry, Err(error))) => {
                    report
                        .timer_failures
                        .push(format!("timer {} of {}: {error}", entry.timer_id, entry.workflow_id));
                    inner.wheel.arm(entry);
                }
                Err(join_error) => report.timer_failures.push(format!("timer task failed: {join_error}")),
            }
        }
        for failure in &report.timer_failures {
            inner.listener.warning(&format!("recovery: {failure}"));
        }

        Ok(report)
    }
}
