//! The durable timer state machine: started, then fired or cancelled.

use crate::event::Event;
use crate::ids::TimerId;
use crate::time::Timestamp;

use super::{Outcome, PendingWork, Transition};

/// States of one timer command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TimerMachine {
    Started { timer_id: TimerId, fire_at: Timestamp },
    Fired,
    Cancelled,
}

impl TimerMachine {
    pub(crate) fn on_event(&mut self, event: &Event) -> Transition {
        match (&*self, event) {
            (TimerMachine::Started { .. }, Event::TimerFired { .. }) => {
                *self = TimerMachine::Fired;
                Transition::Applied
            }
            (TimerMachine::Started { .. }, Event::TimerCancelled { .. }) => {
                *self = TimerMachine::Cancelled;
                Transition::Applied
            }
            // A late cancel, or a second delivery of the same fire, changes nothing.
            (TimerMachine::Fired | TimerMachine::Cancelled, Event::TimerCancelled { .. } | Event::TimerFired { .. }) => {
                Transition::Applied
            }
            _ => Transition::Unexpected,
        }
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self {
            TimerMachine::Started { .. } => None,
            TimerMachine::Fired => Some(Outcome::Fired),
            TimerMachine::Cancelled => Some(Outcome::Cancelled),
        }
    }

    pub(crate) fn pending(&self) -> Option<PendingWork> {
        match self {
            TimerMachine::Started { timer_id, fire_at } => Some(PendingWork::Timer {
                timer_id: timer_id.clone(),
                fire_at: *fire_at,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> TimerMachine {
        TimerMachine::Started {
            timer_id: TimerId::from_stored("r/1"),
            fire_at: Timestamp::from_millis(10),
        }
    }

    #[test]
    fn fires_once_and_tolerates_duplicates() {
        let mut machine = started();
        let fired = Event::TimerFired {
            command: 1,
            timer_id: TimerId::from_stored("r/1"),
        };
        assert_eq!(machine.on_event(&fired), Transition::Applied);
        assert_eq!(machine.outcome(), Some(Outcome::Fired));
        assert_eq!(machine.on_event(&fired), Transition::Applied);
        assert_eq!(machine.outcome(), Some(Outcome::Fired));
    }

    #[test]
    fn cancel_wins_when_first() {
        let mut machine = started();
        assert!(machine.pending().is_some());
        machine.on_event(&Event::TimerCancelled {
            command: 1,
            timer_id: TimerId::from_stored("r/1"),
        });
        assert_eq!(machine.outcome(), Some(Outcome::Cancelled));
        assert!(machine.pending().is_none());
    }

    #[test]
    fn other_events_are_unexpected() {
        let mut machine = started();
        assert_eq!(machine.on_event(&Event::ActivityCancelled { command: 1 }), Transition::Unexpected);
    }
}
