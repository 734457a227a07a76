//! Operators' reads: a workflow's whole history and its description, and
//! listings of workflows (by type, status, times and search attributes).

use crate::event::{RecordedEvent, ResetPoint};
use crate::ids::{RunId, WorkflowId};
use crate::replay::{PendingCommand, Resolver};
use crate::status::{HistorySize, RunSummary, WorkflowSummary};
use crate::store::ActivityAttempt;
use crate::visibility::{
    ListCursor, ListFilter, ListPage, MAX_LIST_LIMIT, SearchAttributes, project_attributes,
};

use super::{Blocked, Engine, EngineError, Result};

/// An operator's view of one workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The run as a visibility row would show it (a workflow's row shows
    /// its latest run).
    pub summary: WorkflowSummary,
    /// The run's place in the history (its first and last seq, the run it
    /// continues).
    pub run: RunSummary,
    /// The size of the run's history (all its events).
    pub history_size: HistorySize,
    /// The run's commands waiting for an outcome.
    pub pending: Vec<PendingCommand>,
    /// Why the run is blocked, if it is.
    pub blocked: Option<Blocked>,
    /// The retry state of the run's activities in flight that have
    /// one (an attempt failed, or one heartbeated), by command.
    pub attempts: Vec<ActivityAttempt>,
    /// The run's search attributes.
    pub search_attributes: SearchAttributes,
    /// Where the run was reset from, if a reset started it.
    pub reset_from: Option<ResetPoint>,
}

impl Engine {
    /// The whole history of a workflow.
    pub async fn history(&self, workflow_id: &WorkflowId) -> Result<Vec<RecordedEvent>> {
        self.ensure_open()?;
        let history = self.inner.store.read_history(workflow_id).await?;
        if history.is_empty() {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        }
        Ok(history)
    }

    /// Status and pending work of one run of a workflow: run `run_id`, or
    /// the latest when `None`. Only that run's events are read (the runs
    /// are listed by [`Engine::runs`]).
    pub async fn describe(
        &self,
        workflow_id: &WorkflowId,
        run_id: Option<RunId>,
    ) -> Result<Description> {
        let (run, segment) = self.read_run(workflow_id, run_id).await?;
        let updated_at = segment
            .last()
            .map_or(run.started_at, |recorded| recorded.envelope.recorded_at);
        let summary = WorkflowSummary::of_run(workflow_id.clone(), &run, updated_at);
        let search_attributes = project_attributes(&segment);
        let running = !run.status.is_terminal();
        let pending = if running {
            Resolver::from_segment(run.run_id, &segment)?.pending()
        } else {
            Vec::new()
        };
        let blocked = self
            .blocked(workflow_id)
            .filter(|blocked| blocked.run_id == run.run_id && running);
        let mut attempts = if pending.is_empty() {
            Vec::new()
        } else {
            self.inner
                .store
                .activity_attempts_of(workflow_id, run.run_id)
                .await?
        };
        // A backoff that is over: the next attempt runs (its start is not
        // saved, to spare a write per retry).
        let now = self.inner.clock.now();
        for attempt in &mut attempts {
            if attempt.state.retry_at.is_some_and(|at| at <= now) {
                attempt.state.attempt += 1;
                attempt.state.retry_at = None;
            }
        }
        Ok(Description {
            summary,
            history_size: HistorySize::of(&segment),
            reset_from: segment
                .first()
                .and_then(|started| started.event.reset_from()),
            run,
            pending,
            blocked,
            attempts,
            search_attributes,
        })
    }

    /// Up to `limit` (1 to [`MAX_LIST_LIMIT`]) workflows matching `filter`,
    /// after `after`, newest first (see [`crate::store::VisibilityStore::list`]).
    /// A filter that does not fit the store's attribute kinds gives
    /// [`EngineError::InvalidFilter`].
    pub async fn list(
        &self,
        filter: ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        let filter = self.resolve_filter(filter).await?;
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        Ok(self.inner.store.list(&filter, after, limit).await?)
    }

    /// How many workflows match `filter` (see [`Engine::list`]).
    pub async fn count(&self, filter: ListFilter) -> Result<u64> {
        let filter = self.resolve_filter(filter).await?;
        Ok(self.inner.store.count(&filter).await?)
    }

    async fn resolve_filter(&self, filter: ListFilter) -> Result<ListFilter> {
        self.ensure_open()?;
        let names = filter.attribute_names();
        let kinds = if names.is_empty() {
            Default::default()
        } else {
            self.inner.store.attribute_kinds(&names).await?
        };
        Ok(filter.resolve(&kinds)?)
    }
}
