//! The durable timer state machine: started, then fired or cancelled.

use crate::event::Event;
use crate::ids::TimerId;
use crate::time::Timestamp;

use super::{Outcome, PendingWork, Transition};

/// States of one timer command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TimerMachine {
    Started {
        timer_id: TimerId,
        fire_at: Timestamp,
    },
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
            // A cancel that lost the race with the fire (or a repeated cancel)
            // changes nothing: the workflow asked to stop waiting on a timer
            // that had already ended, and history stays well-formed.
            (TimerMachine::Fired | TimerMachine::Cancelled, Event::TimerCancelled { .. }) => {
                Transition::Applied
            }
            // The engine records `timer_fired` only after finding the timer in
            // the timers table under the workflow's recorder lock, and both
            // `timer_fired` and `timer_cancelled` remove that row in the same
            // transaction. So a fire after a fire, or after a cancel, cannot be
            // written by the engine: the history is damaged, and accepting it
            // would hide the damage. `TimerFired` after `Cancelled` is
            // rejected for the same reason: unlike a cancel, a fire never
            // loses a race, because it is checked against the table first.
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

    fn fired() -> Event {
        Event::TimerFired {
            command: 1,
            timer_id: TimerId::from_stored("r/1"),
        }
    }

    fn cancelled() -> Event {
        Event::TimerCancelled {
            command: 1,
            timer_id: TimerId::from_stored("r/1"),
        }
    }

    #[test]
    fn a_second_fire_is_unexpected() {
        let mut machine = started();
        assert_eq!(machine.on_event(&fired()), Transition::Applied);
        assert_eq!(machine.outcome(), Some(Outcome::Fired));
        assert_eq!(machine.on_event(&fired()), Transition::Unexpected);
        assert_eq!(machine.outcome(), Some(Outcome::Fired));
    }

    #[test]
    fn a_cancel_that_lost_the_race_is_tolerated() {
        let mut machine = started();
        machine.on_event(&fired());
        assert_eq!(machine.on_event(&cancelled()), Transition::Applied);
        assert_eq!(machine.outcome(), Some(Outcome::Fired));
    }

    #[test]
    fn a_fire_after_a_cancel_is_unexpected() {
        let mut machine = started();
        machine.on_event(&cancelled());
        assert_eq!(machine.on_event(&fired()), Transition::Unexpected);
        assert_eq!(machine.on_event(&cancelled()), Transition::Applied);
        assert_eq!(machine.outcome(), Some(Outcome::Cancelled));
    }

    #[test]
    fn cancel_wins_when_first() {
        let mut machine = started();
        assert!(machine.pending().is_some());
        assert_eq!(machine.on_event(&cancelled()), Transition::Applied);
        assert_eq!(machine.outcome(), Some(Outcome::Cancelled));
        assert!(machine.pending().is_none());
    }

    #[test]
    fn other_events_are_unexpected() {
        let mut machine = started();
        assert_eq!(
            machine.on_event(&Event::ActivityCancelled { command: 1 }),
            Transition::Unexpected
        );
    }
}
