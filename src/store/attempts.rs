//! The retry state of activities in flight: which attempt an activity is
//! at, when its next attempt may start, the last failure and the latest
//! heartbeat details.
//!
//! This is kept beside history, not in it: one event per attempt or per
//! heartbeat would grow a history without bound. What history needs is
//! recorded on the activity's final event (`attempts`, `last_failure`). A
//! record lives while its activity is in flight; a run's records go when the
//! run ends (in the same transaction as its last event).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Result;
use crate::ids::{RunId, WorkflowId};
use crate::payload::Payload;
use crate::time::Timestamp;

/// Where an activity in flight stands between attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityAttempt {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The run whose command it is.
    pub run_id: RunId,
    /// The activity's command ordinal in the run.
    pub command: u32,
    /// The state.
    pub state: AttemptState,
}

/// The mutable part of an [`ActivityAttempt`] (stored as one JSON body).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptState {
    /// The latest attempt that started, from 1.
    pub attempt: u32,
    /// When the next attempt may start: the activity waits out a retry
    /// backoff until then. `None` while `attempt` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
    /// The failure of the latest failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Payload>,
    /// The latest heartbeat details any attempt reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Payload>,
}

/// The table of [`ActivityAttempt`]s, one per activity in flight.
#[async_trait]
pub trait ActivityAttemptStore: Send + Sync {
    /// Writes (or replaces) the record of an activity.
    async fn save_activity_attempt(&self, attempt: &ActivityAttempt) -> Result<()>;

    /// The record of command `command` of run `run_id`, if any.
    async fn activity_attempt(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
        command: u32,
    ) -> Result<Option<ActivityAttempt>>;

    /// Every record of the workflow's current run, by command.
    async fn activity_attempts_of(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Vec<ActivityAttempt>>;
}
