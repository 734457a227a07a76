//! Starting a run, and loading a running one for replay.

use std::sync::Arc;

use crate::event::{Event, ParentRef, RecordedEvent};
use crate::ids::{RunId, WorkflowId};
use crate::replay::Resolver;
use crate::status::WorkflowStatus;
use crate::store::{StoreError, deadlines};

use super::{Engine, EngineError, Result, RunHandle, RunInfo, RunOwner, StartRequest};

/// Where a new run comes from, when not from a plain start.
#[derive(Clone, Debug, Default)]
pub(super) struct Lineage {
    /// The run id to use (fixed earlier, so that a start repeated after a
    /// crash is recognised); a fresh one when `None`.
    pub(super) run_id: Option<RunId>,
    /// The parent command, for a child workflow.
    pub(super) parent: Option<ParentRef>,
}

impl Engine {
    /// Records `workflow_started` for a new run and returns its handle.
    ///
    /// A workflow id whose latest run is still running is refused with
    /// [`EngineError::AlreadyStarted`]; the id of a finished workflow starts a
    /// new run segment in the same history if the request's
    /// [`super::IdReuse`] allows it, else [`EngineError::IdReuseRefused`].
    pub async fn start_workflow(&self, request: StartRequest) -> Result<RunHandle> {
        self.start_with(request, Vec::new()).await
    }

    /// Starts a run as [`Engine::start_workflow`] does, with `then` (events
    /// that are not commands, such as a signal's arrival) in the same append.
    pub(super) async fn start_with(
        &self,
        request: StartRequest,
        then: Vec<Event>,
    ) -> Result<RunHandle> {
        self.start_as(request, then, Lineage::default()).await
    }

    /// Starts a run as [`Engine::start_with`] does, under `lineage`'s run id
    /// and parent (a child workflow's first run).
    pub(super) async fn start_as(
        &self,
        request: StartRequest,
        then: Vec<Event>,
        lineage: Lineage,
    ) -> Result<RunHandle> {
        self.ensure_open()?;
        let generated = request.workflow_id.is_none();
        let workflow_id = request.workflow_id.unwrap_or_else(WorkflowId::generate);
        let cell = self.cell(&workflow_id);
        let mut recorder = cell.recorder.lock().await;
        if generated {
            recorder.set_head(0);
        } else if let Some(latest) = self.latest_run(&workflow_id).await? {
            if latest.status == WorkflowStatus::Running {
                return Err(EngineError::AlreadyStarted {
                    workflow_id,
                    run_id: latest.run_id,
                });
            }
            if !request.id_reuse.allows(latest.status) {
                return Err(EngineError::IdReuseRefused {
                    workflow_id,
                    status: latest.status,
                    policy: request.id_reuse,
                });
            }
            recorder.set_head(latest.last_seq);
        } else {
            recorder.set_head(0);
        }
        let run_id = lineage.run_id.unwrap_or_else(RunId::generate);
        let started = Event::WorkflowStarted {
            run_id,
            parent_run_id: None,
            workflow_type: request.workflow_type.clone(),
            input: request.input.clone(),
            package_version: None,
            execution_timeout_ms: request.timeouts.execution_ms,
            run_timeout_ms: request.timeouts.run_ms,
            search_attributes: request.search_attributes,
            parent: lineage.parent,
            reset_from: None,
        };
        let mut events = vec![started];
        events.extend(then);
        let mut resolver = Resolver::new(run_id);
        let recorded = match recorder.append(events).await {
            Ok(recorded) => recorded,
            Err(StoreError::SequenceConflict { .. }) => {
                // Someone started it between our read and our append.
                return Err(match self.latest_run(&workflow_id).await? {
                    Some(latest) if latest.status == WorkflowStatus::Running => {
                        EngineError::AlreadyStarted {
                            workflow_id,
                            run_id: latest.run_id,
                        }
                    }
                    _ => StoreError::Backend(format!("concurrent start of {workflow_id}; retry"))
                        .into(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        for event in &recorded {
            resolver.apply(event)?;
        }
        for deadline in deadlines(&recorded[0]) {
            self.inner.wheel.arm(deadline);
        }
        let info = RunInfo {
            workflow_id,
            run_id,
            workflow_type: request.workflow_type,
            input: request.input,
            started_at: recorded[0].envelope.recorded_at,
        };
        Ok(self.install(&cell, info, resolver, None))
    }

    /// Loads the latest run of a running workflow for replay, owned by `owner`.
    /// Any earlier handle on the workflow is superseded.
    pub async fn load_run(
        &self,
        workflow_id: &WorkflowId,
        owner: Option<Arc<dyn RunOwner>>,
    ) -> Result<RunHandle> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        // Only the latest run is read, from its workflow_started on.
        let Some((run, segment)) = self.inner.store.read_current_run(workflow_id).await? else {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        };
        if run.status.is_terminal() {
            return Err(EngineError::NotRunning {
                workflow_id: workflow_id.clone(),
                status: run.status,
            });
        }
        let run_id = run.run_id;
        let segment = segment.as_slice();
        let resolver = Resolver::from_segment(run_id, segment)?;
        let Event::WorkflowStarted {
            workflow_type,
            input,
            ..
        } = &segment[0].event
        else {
            return Err(StoreError::Corrupt {
                location: workflow_id.to_string(),
                reason: "run segment does not open with workflow_started".into(),
            }
            .into());
        };
        let info = RunInfo {
            workflow_id: workflow_id.clone(),
            run_id,
            workflow_type: workflow_type.clone(),
            input: input.clone(),
            started_at: segment[0].envelope.recorded_at,
        };
        // A child left running by a crash of its parent's ending is closed
        // now, by its policy, and loaded again (if it still runs).
        if let Some(parent) = resolver.parent()
            && let Some(policy) = self
                .orphaned(parent, workflow_id, run_id, resolver.cancel_requested())
                .await?
        {
            drop(recorder);
            self.close_orphan(workflow_id, policy).await?;
            return Box::pin(self.load_run(workflow_id, owner)).await;
        }
        recorder.set_head(segment.last().map_or(0, RecordedEvent::seq));
        // Loading again is trying again: a blocked run blocks anew if its
        // code still does not replay.
        self.unblock(workflow_id);
        Ok(self.install(&cell, info, resolver, owner))
    }
}
