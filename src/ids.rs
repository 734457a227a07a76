//! Identifiers: workflow ids (chosen by users), run ids (one per execution) and
//! timer ids (derived from the run and the command that started the timer).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// The longest workflow id accepted, in bytes.
pub const MAX_WORKFLOW_ID_LEN: usize = 255;

/// A workflow id was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty. Give a non-empty id, or none to get a generated one.
    #[error("workflow id must not be empty")]
    Empty,
    /// The id is longer than [`MAX_WORKFLOW_ID_LEN`] bytes. Shorten it.
    #[error("workflow id is {0} bytes long; the limit is {MAX_WORKFLOW_ID_LEN}")]
    TooLong(usize),
    /// The id contains a control character. Use printable characters only.
    #[error("workflow id must not contain control characters")]
    ControlCharacter,
    /// A run id is not a UUID.
    #[error("run id {0:?} is not a UUID")]
    BadRunId(String),
}

/// Names one logical workflow and its whole history, across runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkflowId(String);

impl WorkflowId {
    /// Validates a user-chosen id.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id.len() > MAX_WORKFLOW_ID_LEN {
            return Err(IdError::TooLong(id.len()));
        }
        if id.chars().any(char::is_control) {
            return Err(IdError::ControlCharacter);
        }
        Ok(Self(id))
    }

    /// A fresh random id (UUIDv4 text).
    pub fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names one execution (run) of a workflow; continue-as-new starts a new run
/// under the same workflow id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(Uuid);

impl RunId {
    /// A fresh random run id.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses the hyphenated text form.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        Uuid::parse_str(text)
            .map(Self)
            .map_err(|_| IdError::BadRunId(text.to_owned()))
    }

    /// Builds a run id from a fixed number (tests and fixtures).
    pub const fn from_u128(n: u128) -> Self {
        Self(Uuid::from_u128(n))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Names one durable timer within a workflow's history.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(String);

impl TimerId {
    /// The timer started by command `command` of run `run_id`; unique within
    /// a workflow id because run ids are.
    pub fn for_command(run_id: RunId, command: u32) -> Self {
        Self(format!("{run_id}/{command}"))
    }

    /// The deadline of run `run_id` named `name` (`execution_timeout`,
    /// `run_timeout`): a timer that is no command's.
    pub fn deadline(run_id: RunId, name: &str) -> Self {
        Self(format!("{run_id}/{name}"))
    }

    /// Wraps an id read back from a store.
    pub fn from_stored(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_ids_are_validated() {
        assert_eq!(WorkflowId::new(""), Err(IdError::Empty));
        assert_eq!(WorkflowId::new("a".repeat(256)), Err(IdError::TooLong(256)));
        assert_eq!(WorkflowId::new("a\nb"), Err(IdError::ControlCharacter));
        assert_eq!(WorkflowId::new("order-42").unwrap().as_str(), "order-42");
    }

    #[test]
    fn run_ids_round_trip_through_text() {
        let run = RunId::generate();
        assert_eq!(RunId::parse(&run.to_string()), Ok(run));
        assert!(RunId::parse("nope").is_err());
    }

    #[test]
    fn timer_ids_name_run_and_command() {
        let run = RunId::from_u128(7);
        assert_eq!(
            TimerId::for_command(run, 3).as_str(),
            "00000000-0000-0000-0000-000000000007/3"
        );
    }
}
