//! The child workflow state machine: started, then completed, failed or cancelled.

use crate::event::Event;

use super::{Outcome, Transition};

/// States of one child workflow command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ChildMachine {
    Started,
    Closed(Outcome),
}

impl ChildMachine {
    pub(crate) fn on_event(&mut self, event: &Event) -> Transition {
        let outcome = match (&*self, event) {
            (ChildMachine::Started, Event::ChildWorkflowCompleted { result, .. }) => {
                Outcome::Completed(result.clone())
            }
            (ChildMachine::Started, Event::ChildWorkflowFailed { error, .. }) => {
                Outcome::Failed(error.clone())
            }
            (ChildMachine::Started, Event::ChildWorkflowCancelled { .. }) => Outcome::Cancelled,
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
            ChildMachine::Started => None,
            ChildMachine::Closed(outcome) => Some(outcome.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkflowId;
    use crate::payload::Payload;

    #[test]
    fn closes_once() {
        let child = WorkflowId::new("child").unwrap();
        let mut machine = ChildMachine::Started;
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
            }),
            Transition::Unexpected
        );
    }
}
