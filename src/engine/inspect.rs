//! Operators' reads: a workflow's whole history and its description, and
//! listings of workflows (by type, status, times and search attributes).

use crate::event::{RecordedEvent, ResetPoint};
use crate::ids::{RunId, WorkflowId};
use crate::replay::{PendingCommand, Resolver};
use crate::status::{RunSummary, WorkflowSummary, current_run, run_chain};
use crate::store::{ActivityAttempt, StoreError};
use crate::visibility::{
    ListCursor, ListFilter, ListPage, MAX_LIST_LIMIT, SearchAttributes, project_attributes,
};

use super::{Blocked, Engine, EngineError, Result};

/// An operator's view of one workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The visibility row (latest run).
    pub summary: WorkflowSummary,
    /// All runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// Commands of the latest run waiting for an outcome.
    pub pending: Vec<PendingCommand>,
    /// Why the latest run is blocked, if it is.
    pub blocked: Option<Blocked>,
    /// The retry state of the latest run's activities in flight that have
    /// one (an attempt failed, or one heartbeated), by command.
    pub attempts: Vec<ActivityAttempt>,
    /// The latest run's search attributes.
    pub search_attributes: SearchAttributes,
    /// Where the latest run was reset from, if a reset started it.
    pub reset_from: Option<ResetPoint>,
    /// Every run a reset started, with where it was reset from.
    pub resets: Vec<(RunId, ResetPoint)>,
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

    /// Status, runs and pending work of a workflow.
    pub async fn describe(&self, workflow_id: &WorkflowId) -> Result<Description> {
        let history = self.history(workflow_id).await?;
        let summary = WorkflowSummary::project(None, &history)
            .map_err(|error| StoreError::Corrupt {
                location: workflow_id.to_string(),
                reason: error.to_string(),
            })?
            .ok_or_else(|| EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            })?;
        let search_attributes = current_run(&history)
            .map(|(_, segment)| project_attributes(segment))
            .unwrap_or_default();
        let pending = match current_run(&history) {
            Some((run_id, segment)) if !summary.status.is_terminal() => {
                Resolver::from_segment(run_id, segment)?.pending()
            }
            _ => Vec::new(),
        };
        let blocked = self
            .blocked(workflow_id)
            .filter(|blocked| blocked.run_id == summary.run_id && !summary.status.is_terminal());
        let mut attempts = if pending.is_empty() {
            Vec::new()
        } else {
            self.inner
                .store
                .activity_attempts_of(workflow_id, summary.run_id)
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
        let resets: Vec<(RunId, ResetPoint)> = history
            .iter()
            .filter_map(|recorded| match &recorded.event {
                crate::event::Event::WorkflowStarted {
                    run_id,
                    reset_from: Some(point),
                    ..
                } => Some((*run_id, *point)),
                _ => None,
            })
            .collect();
        let reset_from = resets
            .iter()
            .find(|(run_id, _)| *run_id == summary.run_id)
            .map(|(_, point)| *point);
        Ok(Description {
            summary,
            runs: run_chain(&history),
            reset_from,
            resets,
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
