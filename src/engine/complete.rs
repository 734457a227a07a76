//! How runs end: recording an ending (never over one history already holds),
//! and reading how a run ended.

use crate::event::Event;
use crate::faults::{self, Point};
use crate::ids::{RunId, WorkflowId};
use crate::payload::Payload;
use crate::status::{RunSummary, WorkflowStatus};

use super::child::Family;
use super::{Engine, EngineError, LiveRun, Result, WorkflowCell, lock};

/// How a run's process ended, as the host saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// The code returned this value.
    Completed(Payload),
    /// The code failed with this error.
    Failed(Payload),
    /// The code let a cancellation request end it, with the request's reason.
    Cancelled(Payload),
}

/// How a run ended, read from history.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminal {
    /// The run.
    pub run_id: RunId,
    /// Its final status.
    pub status: WorkflowStatus,
    /// The result, error or cancellation reason, when the status has one.
    pub value: Option<Payload>,
}

impl Engine {
    /// Records how run `run_id` ended, unless its history already holds an
    /// ending (which is kept, never overwritten), and releases its replay
    /// state. Returns the run's recorded ending.
    pub async fn complete_run(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
        outcome: RunOutcome,
    ) -> Result<Terminal> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        let latest = self.existing_run(workflow_id).await?;
        // Without replay state (loaded elsewhere, or released), assume the
        // run may have armed timers.
        let released = release_if(&cell, |run| run.resolver.run_id() == run_id);
        let may_have_timers = released
            .as_ref()
            .is_none_or(|run| run.resolver.may_have_timers());
        if latest.run_id != run_id || latest.status != WorkflowStatus::Running {
            drop(recorder);
            return self.run_terminal(workflow_id, run_id).await;
        }
        // Read before the ending is durable: after it, a failed read would
        // leave the parent untold and the children open, with no retry.
        let family = match &released {
            Some(run) => Family::of(&run.resolver),
            None => self.family_from_store(workflow_id, &latest).await?,
        };
        recorder.set_head(latest.last_seq);
        let (status, value, event) = match outcome {
            RunOutcome::Completed(result) => (
                WorkflowStatus::Completed,
                result.clone(),
                Event::WorkflowCompleted { result },
            ),
            RunOutcome::Failed(error) => (
                WorkflowStatus::Failed,
                error.clone(),
                Event::WorkflowFailed { error },
            ),
            RunOutcome::Cancelled(reason) => (
                WorkflowStatus::Cancelled,
                reason.clone(),
                Event::WorkflowCancelled { reason },
            ),
        };
        cell.append(&mut recorder, vec![event]).await?;
        // Durable with its visibility row; the host, which wakes awaiters
        // once this returns, has not heard.
        faults::hit(Point::Terminal);
        drop(recorder);
        if may_have_timers {
            // A timer left armed would fire as a no-op (its row is gone);
            // disarming frees it now. Most runs end with none pending, and
            // then the wheel is not woken at all.
            self.inner.wheel.disarm_workflow(workflow_id);
        }
        let terminal = Terminal {
            run_id,
            status,
            value: Some(value),
        };
        self.after_ending(workflow_id, &terminal, family).await;
        Ok(terminal)
    }

    /// Drops the replay state of a run whose process stopped without an
    /// outcome (crash, shutdown), if `generation` still owns it.
    pub fn release_run(&self, workflow_id: &WorkflowId, generation: u64) {
        if let Some(cell) = self.existing_cell(workflow_id) {
            release_if(&cell, |run| run.generation == generation);
        }
    }

    /// The latest run of a workflow, from the store's runs (never from the
    /// visibility row, which is only a projection for listing).
    pub(super) async fn latest_run(&self, workflow_id: &WorkflowId) -> Result<Option<RunSummary>> {
        Ok(self.inner.store.history_head(workflow_id).await?.latest_run)
    }

    pub(super) async fn existing_run(&self, workflow_id: &WorkflowId) -> Result<RunSummary> {
        self.latest_run(workflow_id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            })
    }

    /// How the latest run ended, or `None` while it runs.
    pub async fn terminal(&self, workflow_id: &WorkflowId) -> Result<Option<Terminal>> {
        self.ensure_open()?;
        let latest = self.existing_run(workflow_id).await?;
        if !latest.status.is_terminal() {
            return Ok(None);
        }
        // A terminal run ends with its ending.
        let ending = self
            .inner
            .store
            .read_from(workflow_id, latest.last_seq)
            .await?;
        Ok(Some(Terminal {
            run_id: latest.run_id,
            status: latest.status,
            value: ending
                .first()
                .and_then(|recorded| ending_value(&recorded.event)),
        }))
    }

    /// How run `run_id` ended (an older run's ending needs the history).
    pub(super) async fn run_terminal(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Terminal> {
        let run = self.find_run(workflow_id, run_id).await?;
        let last = self
            .inner
            .store
            .read_range(workflow_id, run.last_seq, run.last_seq)
            .await?;
        Ok(Terminal {
            run_id,
            status: run.status,
            value: last
                .first()
                .and_then(|recorded| ending_value(&recorded.event)),
        })
    }
}

/// The value a run's ending carries: result, error, reason or successor input.
pub(super) fn ending_value(event: &Event) -> Option<Payload> {
    match event {
        Event::WorkflowCompleted { result } => Some(result.clone()),
        Event::WorkflowFailed { error } => Some(error.clone()),
        Event::WorkflowCancelled { reason } | Event::WorkflowTerminated { reason } => {
            Some(reason.clone())
        }
        Event::WorkflowContinuedAsNew { input, .. } => Some(input.clone()),
        _ => None,
    }
}

/// Drops the cell's replay state if `owns` says so; returns what it dropped.
pub(super) fn release_if(
    cell: &WorkflowCell,
    owns: impl FnOnce(&LiveRun) -> bool,
) -> Option<LiveRun> {
    let mut live = lock(&cell.live);
    if live.as_ref().is_some_and(owns) {
        live.take()
    } else {
        None
    }
}
