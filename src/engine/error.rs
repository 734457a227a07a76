//! Errors of engine operations.

use thiserror::Error;

use crate::faults::FaultError;
use crate::ids::{IdError, RunId, WorkflowId};
use crate::replay::ReplayError;
use crate::status::WorkflowStatus;
use crate::store::StoreError;
use crate::visibility::FilterError;

use super::IdReuse;

/// An engine operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed; see the inner error for what to do.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A workflow with this id is running. Wait for it, or pick another id.
    #[error("workflow {workflow_id} is already running (run {run_id})")]
    AlreadyStarted {
        /// The workflow.
        workflow_id: WorkflowId,
        /// Its running run.
        run_id: RunId,
    },
    /// The workflow's latest run has ended, and the start's id reuse policy
    /// refuses a new run under its id. Pick another id, or another policy.
    #[error(
        "workflow {workflow_id} already ran (its latest run is {status}) and id reuse policy {policy} refuses a new run"
    )]
    IdReuseRefused {
        /// The workflow.
        workflow_id: WorkflowId,
        /// How its latest run ended.
        status: WorkflowStatus,
        /// The policy that refused.
        policy: IdReuse,
    },
    /// No workflow has this id. Check the id and the engine instance.
    #[error("no workflow with id {workflow_id}")]
    NotFound {
        /// The id asked for.
        workflow_id: WorkflowId,
    },
    /// The workflow has no run with this id. Check the run id (see
    /// [`super::Engine::runs`]).
    #[error("workflow {workflow_id} has no run {run_id}")]
    RunNotFound {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The run asked for.
        run_id: RunId,
    },
    /// The workflow's latest run has ended; there is nothing to resume.
    #[error("workflow {workflow_id} is not running (status: {status})")]
    NotRunning {
        /// The workflow.
        workflow_id: WorkflowId,
        /// Its status.
        status: WorkflowStatus,
    },
    /// The workflow's code and history disagree (or the history is damaged).
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A workflow id was rejected.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// A command was recorded out of order: a bug in the runtime calling the
    /// engine, never in workflow code.
    #[error("invalid command for {workflow_id}: {reason}")]
    InvalidCommand {
        /// The workflow.
        workflow_id: WorkflowId,
        /// What was wrong.
        reason: String,
    },
    /// Another process took over this run (it was loaded again); this handle
    /// must stop.
    #[error("run {run_id} of {workflow_id} was taken over by a newer process")]
    Superseded {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The run.
        run_id: RunId,
    },
    /// The store is used by another engine (another VM or instance). Stop the
    /// other one, or give this engine its own store.
    #[error("the store at {location} is in use by another Aion engine")]
    StoreInUse {
        /// The store's location.
        location: String,
    },
    /// The run was loaded read-only (to answer a query) and this operation
    /// would record, wait or go past its history. A bug in the caller if it
    /// meant to drive the run; for a query's replay, the point to stop.
    #[error("run {run_id} of {workflow_id} is loaded read-only, to answer a query: {what}")]
    ReadOnly {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The run.
        run_id: RunId,
        /// What was refused.
        what: String,
    },
    /// A listing's filter cannot be used (a value of another kind than its
    /// search attribute's, a range over text). Fix the filter.
    #[error(transparent)]
    InvalidFilter(#[from] FilterError),
    /// A reset was refused because of where the workflow's latest run
    /// stands: it completed or continued as new (nothing to redo), or it
    /// runs and the reset did not say it may terminate it. Nothing was
    /// recorded.
    #[error("workflow {workflow_id} cannot be reset: {reason}")]
    ResetRefused {
        /// The workflow.
        workflow_id: WorkflowId,
        /// Why.
        reason: String,
    },
    /// A reset's point is not in the run (a seq outside it, or no completed
    /// activity to reset to). Nothing was recorded. Pick a seq of the run
    /// (see its history).
    #[error("invalid reset point for workflow {workflow_id}: {reason}")]
    InvalidResetPoint {
        /// The workflow.
        workflow_id: WorkflowId,
        /// What is wrong.
        reason: String,
    },
    /// `AION_FAULT` is set to something that names no fault point: no
    /// engine opens in this OS process. Fix or unset the variable (see
    /// [`crate::faults`]).
    #[error(transparent)]
    InvalidFault(#[from] FaultError),
    /// The engine was closed.
    #[error("the engine is closed")]
    Closed,
}

impl EngineError {
    /// A short, stable name for the error's kind (the `reason` the Elixir
    /// side sees).
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::Store(StoreError::SequenceConflict { .. }) => "sequence_conflict",
            EngineError::Store(StoreError::Open { .. }) => "store_open_failed",
            EngineError::Store(StoreError::Corrupt { .. }) => "store_corrupt",
            EngineError::Store(StoreError::SchemaTooNew { .. }) => "store_schema_too_new",
            EngineError::Store(StoreError::InvalidSearchAttribute { .. }) => {
                "invalid_search_attribute"
            }
            EngineError::Store(StoreError::Closed) | EngineError::Closed => "closed",
            EngineError::Store(_) => "store_error",
            EngineError::AlreadyStarted { .. } | EngineError::IdReuseRefused { .. } => {
                "already_started"
            }
            EngineError::NotFound { .. } | EngineError::RunNotFound { .. } => "not_found",
            EngineError::NotRunning { .. } => "not_running",
            EngineError::Replay(_) => "nondeterminism",
            EngineError::InvalidId(_) => "invalid_workflow_id",
            EngineError::InvalidCommand { .. } => "invalid_command",
            EngineError::Superseded { .. } => "superseded",
            EngineError::StoreInUse { .. } => "store_in_use",
            EngineError::ReadOnly { .. } => "read_only",
            EngineError::InvalidFilter(_) => "invalid_filter",
            EngineError::ResetRefused { .. } => "reset_refused",
            EngineError::InvalidResetPoint { .. } => "invalid_option",
            EngineError::InvalidFault(_) => "invalid_fault",
        }
    }

    /// The stable error code, for errors that have one (non-determinism).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            EngineError::Replay(error) => Some(error.code()),
            _ => None,
        }
    }
}
