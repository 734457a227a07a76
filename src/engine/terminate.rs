//! Ending a run from outside its code: [`Engine::terminate`], and a deadline
//! (execution or run timeout) expiring.

use std::sync::Arc;

use crate::event::Event;
use crate::faults::{self, Point};
use crate::ids::WorkflowId;
use crate::payload::Payload;
use crate::recorder::RecorderGuard;
use crate::status::{RunSummary, WorkflowStatus};
use crate::store::TimerEntry;

use super::child::Family;
use super::complete::{ending_value, release_if};
use super::{Engine, EngineError, Notice, Result, Terminal, WorkflowCell, lock};

impl Engine {
    /// Ends the running run of `workflow_id` now with `workflow_terminated`:
    /// no workflow code runs. Its owner is told to stop ([`Notice::Ended`]),
    /// its timers are dropped, and the listener hears the ending.
    ///
    /// A workflow that is not running gives [`EngineError::NotRunning`].
    pub async fn terminate(&self, workflow_id: &WorkflowId, reason: Payload) -> Result<Terminal> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let recorder = cell.recorder.lock().await;
        let latest = self.existing_run(workflow_id).await?;
        if latest.status.is_terminal() {
            return Err(EngineError::NotRunning {
                workflow_id: workflow_id.clone(),
                status: latest.status,
            });
        }
        self.end_run(
            &cell,
            recorder,
            &latest,
            Event::WorkflowTerminated { reason },
        )
        .await
    }

    /// Records `workflow_timed_out` for the deadline `entry` (whose row the
    /// caller found pending, under the recorder lock: its run is running).
    pub(super) async fn expire(
        &self,
        cell: &Arc<WorkflowCell>,
        recorder: RecorderGuard<'_>,
        entry: &TimerEntry,
    ) -> Result<()> {
        let latest = self.existing_run(&entry.workflow_id).await?;
        if latest.status.is_terminal() {
            return Ok(());
        }
        let timeout_ms = latest.started_at.until(entry.fire_at).as_millis() as u64;
        self.end_run(
            cell,
            recorder,
            &latest,
            Event::WorkflowTimedOut { timeout_ms },
        )
        .await?;
        Ok(())
    }

    /// Appends `ending` to `latest` (the running run), then drops the run's replay state and
    /// timers and tells its owner and the listener.
    async fn end_run(
        &self,
        cell: &Arc<WorkflowCell>,
        mut recorder: RecorderGuard<'_>,
        latest: &RunSummary,
        ending: Event,
    ) -> Result<Terminal> {
        let workflow_id = &cell.workflow_id;
        // Read before the ending is durable: after it, a failed read would
        // leave the parent untold and the children open, with no retry.
        let live_family = lock(&cell.live)
            .as_ref()
            .filter(|run| run.resolver.run_id() == latest.run_id)
            .map(|run| Family::of(&run.resolver));
        let family = match live_family {
            Some(family) => family,
            None => self.family_from_store(workflow_id, latest).await?,
        };
        recorder.set_head(latest.last_seq);
        let recorded = cell.append(&mut recorder, vec![ending]).await?;
        // Durable with its visibility row; owner and listener not told.
        faults::hit(Point::Terminal);
        let ended = &recorded[0].event;
        let status = WorkflowStatus::after(ended).unwrap_or(WorkflowStatus::Terminated);
        let value = ending_value(ended);
        // The run's code may not record anything after its ending.
        let released = release_if(cell, |run| run.resolver.run_id() == latest.run_id);
        drop(recorder);
        self.unpark(workflow_id);
        self.inner.wheel.disarm_workflow(workflow_id);
        if let Some(owner) = released.and_then(|run| run.owner) {
            owner.notify(Notice::Ended);
        }
        let terminal = Terminal {
            run_id: latest.run_id,
            status,
            value,
        };
        self.inner.listener.ended(workflow_id, &terminal);
        self.after_ending(workflow_id, &terminal, family).await;
        Ok(terminal)
    }
}
