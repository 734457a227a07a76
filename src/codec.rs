//! The stored form of events: a format version number beside a body.
//!
//! Format 1 is the JSON that serde derives for [`Event`] (internally tagged by
//! `type`, payloads as `{"encoding": ..., "data": <base64>}`): compact enough,
//! and readable with nothing but a SQL shell. A future format gets a new number
//! and a decoder here; stored events are never rewritten, so every format ever
//! written stays decodable (`tests/fixtures/events_v1.jsonl` pins format 1).

use thiserror::Error;

use crate::event::Event;

/// The format new events are written in.
pub const CURRENT_FORMAT: u16 = 1;

/// An event could not be encoded or decoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The stored format number is unknown: the data was written by a newer
    /// Aion. Upgrade Aion before reading this store.
    #[error("event format {0} is not known to this version of Aion")]
    UnknownFormat(u16),
    /// The body does not parse as an event of its format: the store is
    /// damaged. Restore it from a backup.
    #[error("event body does not decode: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encodes an event in [`CURRENT_FORMAT`].
pub fn encode(event: &Event) -> Result<Vec<u8>, CodecError> {
    Ok(serde_json::to_vec(event)?)
}

/// Decodes a stored body written in `format`.
pub fn decode(format: u16, body: &[u8]) -> Result<Event, CodecError> {
    match format {
        1 => Ok(serde_json::from_slice(body)?),
        other => Err(CodecError::UnknownFormat(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RunId, TimerId};
    use crate::payload::Payload;
    use crate::time::Timestamp;

    #[test]
    fn unknown_formats_are_refused_not_guessed() {
        let body = encode(&Event::ActivityCancelled { command: 1 }).unwrap();
        assert!(matches!(decode(2, &body), Err(CodecError::UnknownFormat(2))));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(matches!(decode(1, b"{\"type\":\"nope\"}"), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn round_trips() {
        let events = [
            Event::WorkflowStarted {
                run_id: RunId::from_u128(1),
                parent_run_id: None,
                workflow_type: "Shop.Order".into(),
                input: Payload::etf(vec![131, 97, 1]),
                package_version: None,
            },
            Event::TimerStarted {
                command: 2,
                timer_id: TimerId::for_command(RunId::from_u128(1), 2),
                fire_at: Timestamp::from_millis(5),
            },
        ];
        for event in events {
            assert_eq!(decode(CURRENT_FORMAT, &encode(&event).unwrap()).unwrap(), event);
        }
    }
}
