//! The child workflow state machine: started, then completed, failed or
//! cancelled.

use std::collections::BTreeMap;

use crate::event::{Event, ParentClose, SearchAttribute};
use crate::ids::{RunId, WorkflowId};
use crate::payload::Payload;

use super::{Outcome, Transition};

/// A child as its parent recorded it (`child_workflow_started`): all it takes
/// to start it again if a crash came between the record and the start.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildStarted {
    /// The child's workflow id.
    pub workflow_id: WorkflowId,
    /// Its type.
    pub workflow_type: String,
    /// Its input.
    pub input: Payload,
    /// Its first run (`None` in histories written before children started
    /// under a fixed run id).
    pub run_id: Option<RunId>,
    /// What happens to it when the parent's run ends first.
    pub parent_close: ParentClose,
    /// Its execution timeout, in milliseconds.
    pub execution_timeout_ms: Option<u64>,
    /// Its run timeout, in milliseconds.
    pub run_timeout_ms: Option<u64>,
    /// Its id reuse policy's name.
    pub id_reuse: Option<String>,
    /// Its first search attributes.
    pub search_attributes: BTreeMap<String, SearchAttribute>,
}

impl ChildStarted {
    /// The child of a `child_workflow_started` event.
    pub(crate) fn of(event: &Event) -> Option<Self> {
        match event {
            Event::ChildWorkflowStarted {
                child_workflow_id,
                workflow_type,
                input,
                run_id,
                parent_close,
                execution_timeout_ms,
                run_timeout_ms,
                id_reuse,
                search_attributes,
                ..
            } => Some(Self {
                workflow_id: child_workflow_id.clone(),
                workflow_type: workflow_type.clone(),
                input: input.clone(),
                run_id: *run_id,
                parent_close: parent_close.unwrap_or_default(),
                execution_timeout_ms: *execution_timeout_ms,
                run_timeout_ms: *run_timeout_ms,
                id_reuse: id_reuse.clone(),
                search_attributes: search_attributes.clone(),
            }),
            _ => None,
        }
    }
}

/// States of one child workflow command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ChildMachine {
    Started(Box<ChildStarted>),
    Closed(Outcome),
}

impl ChildMachine {
    pub(crate) fn on_event(&mut self, event: &Event) -> Transition {
        let outcome = match (&*self, event) {
            (ChildMachine::Started(_), Event::ChildWorkflowCompleted { result, .. }) => {
                Outcome::Completed(result.clone())
            }
            (
                ChildMachine::Started(_),
                Event::ChildWorkflowFailed {
                    error,
                    reason: None,
                    ..
                },
            ) => Outcome::Failed(error.clone()),
            (
                ChildMachine::Started(_),
                Event::ChildWorkflowFailed {
                    error,
                    reason: Some(reason),
                    ..
                },
            ) => Outcome::Error {
                reason: reason.clone(),
                value: error.clone(),
            },
            (ChildMachine::Started(_), Event::ChildWorkflowCancelled { .. }) => Outcome::Cancelled,
            (ChildMachine::Closed(_), Event::ChildWorkflowCancelled { .. }) => {
                return Transition::Applied;
            }
            _ => return Transition::Unexpected,
        };
        *self = ChildMachine::Closed(outcome);
        Transition::Applied
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self {
            ChildMachine::Started(_) => None,
            ChildMachine::Closed(outcome) => Some(outcome.clone()),
        }
    }

    pub(crate) fn started(&self) -> Option<&ChildStarted> {
        match self {
            ChildMachine::Started(child) => Some(child),
            ChildMachine::Closed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> ChildMachine {
        let event = Event::ChildWorkflowStarted {
            command: 0,
            child_workflow_id: WorkflowId::new("child").unwrap(),
            workflow_type: "Child".into(),
            input: Payload::etf(vec![0]),
            run_id: None,
            parent_close: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            id_reuse: None,
            search_attributes: BTreeMap::new(),
        };
        ChildMachine::Started(Box::new(ChildStarted::of(&event).unwrap()))
    }

    #[test]
    fn closes_once() {
        let child = WorkflowId::new("child").unwrap();
        let mut machine = started();
        assert_eq!(
            machine.started().map(|c| c.parent_close),
            Some(ParentClose::Terminate)
        );
        assert_eq!(
            machine.on_event(&Event::ChildWorkflowCompleted {
                command: 0,
                child_workflow_id: child.clone(),
                result: Payload::etf(vec![1]),
            }),
            Transition::Applied
        );
        assert_eq!(
            machine.outcome(),
            Some(Outcome::Completed(Payload::etf(vec![1])))
        );
        assert_eq!(
            machine.on_event(&Event::ChildWorkflowFailed {
                command: 0,
                child_workflow_id: child,
                error: Payload::etf(vec![2]),
                reason: None,
            }),
            Transition::Unexpected
        );
    }

    #[test]
    fn an_ending_without_code_is_an_error_with_its_reason() {
        let mut machine = started();
        machine.on_event(&Event::ChildWorkflowFailed {
            command: 0,
            child_workflow_id: WorkflowId::new("child").unwrap(),
            error: Payload::etf_atom("nil"),
            reason: Some("timed_out".into()),
        });
        assert_eq!(
            machine.outcome(),
            Some(Outcome::Error {
                reason: "timed_out".into(),
                value: Payload::etf_atom("nil"),
            })
        );
    }
}
