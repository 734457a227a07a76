//! Markers: values recorded once and replayed (`now`, side effects, and
//! other single-event commands: a sent signal, a decided `with_timeout`).
//! They are complete from their first event; any later event is unexpected.

use crate::event::Event;

use super::{Outcome, Transition};

/// A command complete from its first event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MarkerMachine {
    pub(crate) outcome: Outcome,
}

impl MarkerMachine {
    pub(crate) fn on_event(&mut self, _event: &Event) -> Transition {
        Transition::Unexpected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    #[test]
    fn nothing_follows_a_marker() {
        let mut marker = MarkerMachine {
            outcome: Outcome::Recorded(Payload::etf(vec![1])),
        };
        assert_eq!(
            marker.on_event(&Event::ActivityCancelled { command: 0 }),
            Transition::Unexpected
        );
    }
}
