//! The activity state machine: scheduled, then completed, failed or cancelled.

use crate::event::Event;
use crate::payload::Payload;
use crate::time::Timestamp;

use super::{Outcome, PendingWork, Transition};

/// States of one activity command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ActivityMachine {
    Scheduled {
        activity_type: String,
        input: Payload,
        attempts: u32,
        scheduled_at: Timestamp,
    },
    Completed(Payload),
    Failed(Payload),
    Cancelled,
}

impl ActivityMachine {
    pub(crate) fn scheduled(
        activity_type: String,
        input: Payload,
        scheduled_at: Timestamp,
    ) -> Self {
        ActivityMachine::Scheduled {
            activity_type,
            input,
            attempts: 0,
            scheduled_at,
        }
    }

    pub(crate) fn on_event(&mut self, event: &Event) -> Transition {
        match (&mut *self, event) {
            (
                ActivityMachine::Scheduled { attempts, .. },
                Event::ActivityStarted { attempt, .. },
            ) => {
                *attempts = (*attempts).max(*attempt);
                Transition::Applied
            }
            (ActivityMachine::Scheduled { .. }, Event::ActivityCompleted { result, .. }) => {
                *self = ActivityMachine::Completed(result.clone());
                Transition::Applied
            }
            (ActivityMachine::Scheduled { .. }, Event::ActivityFailed { error, .. }) => {
                *self = ActivityMachine::Failed(error.clone());
                Transition::Applied
            }
            (ActivityMachine::Scheduled { .. }, Event::ActivityCancelled { .. }) => {
                *self = ActivityMachine::Cancelled;
                Transition::Applied
            }
            // A cancel that lost the race with the outcome changes nothing.
            (_, Event::ActivityCancelled { .. }) => Transition::Applied,
            _ => Transition::Unexpected,
        }
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self {
            ActivityMachine::Scheduled { .. } => None,
            ActivityMachine::Completed(result) => Some(Outcome::Completed(result.clone())),
            ActivityMachine::Failed(error) => Some(Outcome::Failed(error.clone())),
            ActivityMachine::Cancelled => Some(Outcome::Cancelled),
        }
    }

    pub(crate) fn pending(&self) -> Option<PendingWork> {
        match self {
            ActivityMachine::Scheduled {
                activity_type,
                input,
                attempts,
                scheduled_at,
            } => Some(PendingWork::Activity {
                activity_type: activity_type.clone(),
                input: input.clone(),
                attempts: *attempts,
                scheduled_at: *scheduled_at,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled() -> ActivityMachine {
        ActivityMachine::scheduled(
            "Shop.charge".into(),
            Payload::etf(vec![1]),
            Timestamp::EPOCH,
        )
    }

    #[test]
    fn completes_once() {
        let mut machine = scheduled();
        assert!(machine.outcome().is_none());
        let done = Event::ActivityCompleted {
            command: 0,
            result: Payload::etf(vec![2]),
            attempts: None,
            last_failure: None,
        };
        assert_eq!(machine.on_event(&done), Transition::Applied);
        assert_eq!(
            machine.outcome(),
            Some(Outcome::Completed(Payload::etf(vec![2])))
        );
        assert_eq!(machine.on_event(&done), Transition::Unexpected);
    }

    #[test]
    fn terminal_states_ignore_late_cancels() {
        let mut machine = scheduled();
        machine.on_event(&Event::ActivityFailed {
            command: 0,
            error: Payload::etf(vec![3]),
            attempts: None,
        });
        assert_eq!(
            machine.on_event(&Event::ActivityCancelled { command: 0 }),
            Transition::Applied
        );
        assert_eq!(
            machine.outcome(),
            Some(Outcome::Failed(Payload::etf(vec![3])))
        );
    }

    #[test]
    fn counts_attempts_while_pending() {
        let mut machine = scheduled();
        machine.on_event(&Event::ActivityStarted {
            command: 0,
            attempt: 2,
        });
        assert!(matches!(
            machine.pending(),
            Some(PendingWork::Activity { attempts: 2, .. })
        ));
        assert_eq!(
            machine.on_event(&Event::TimerFired {
                command: 0,
                timer_id: crate::ids::TimerId::from_stored("t"),
            }),
            Transition::Unexpected
        );
    }
}
