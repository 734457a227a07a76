//! The stored form of events: a format version number beside a body.
//!
//! Format 1 is the JSON that serde derives for [`Event`] (internally tagged by
//! `type`, payloads as `{"encoding": ..., "data": <base64>}`): readable with
//! nothing but a SQL shell, but every payload costs a third more than its
//! bytes, and a large one is copied through base64 on every read and write.
//!
//! Format 2 (written since) stores payload bytes raw, once, beside the same
//! JSON, where each payload's `data` is its index among them:
//!
//! ```text
//! u32 LE json length | json | u32 LE payload count | u64 LE length per payload | payload bytes...
//! ```
//!
//! Stored events are never rewritten, so every format ever written stays
//! decodable (`tests/fixtures/events_v1.jsonl` and `events_v2.bin` pin them).

use thiserror::Error;

use crate::event::Event;
use crate::payload;

/// The format new events are written in.
pub const CURRENT_FORMAT: u16 = 2;

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
    /// The body's framing (lengths of its parts) does not add up: the store
    /// is damaged. Restore it from a backup.
    #[error("event body is truncated or malformed: {0}")]
    Frame(&'static str),
}

/// Encodes an event in [`CURRENT_FORMAT`].
pub fn encode(event: &Event) -> Result<Vec<u8>, CodecError> {
    encode_format(CURRENT_FORMAT, event)
}

/// Encodes an event in `format` (1 or 2): for tests that pin old formats.
pub fn encode_format(format: u16, event: &Event) -> Result<Vec<u8>, CodecError> {
    match format {
        1 => Ok(serde_json::to_vec(event)?),
        2 => {
            let (json, payloads) = payload::split_payloads(|| serde_json::to_vec(event));
            let json = json?;
            let payload_bytes: usize = payloads.iter().map(Vec::len).sum();
            let mut body = Vec::with_capacity(8 + json.len() + 8 * payloads.len() + payload_bytes);
            body.extend_from_slice(&frame_len(json.len())?.to_le_bytes());
            body.extend_from_slice(&json);
            body.extend_from_slice(&frame_len(payloads.len())?.to_le_bytes());
            for payload in &payloads {
                body.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            }
            for payload in payloads {
                body.extend_from_slice(&payload);
            }
            Ok(body)
        }
        other => Err(CodecError::UnknownFormat(other)),
    }
}

/// Decodes a stored body written in `format`.
pub fn decode(format: u16, body: &[u8]) -> Result<Event, CodecError> {
    match format {
        1 => Ok(serde_json::from_slice(body)?),
        2 => {
            let mut rest = body;
            let json_len = take_u32(&mut rest)? as usize;
            let json = take(&mut rest, json_len)?;
            let count = take_u32(&mut rest)? as usize;
            let lengths = (0..count)
                .map(|_| {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(take(&mut rest, 8)?);
                    usize::try_from(u64::from_le_bytes(bytes))
                        .map_err(|_| CodecError::Frame("payload too large"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let payloads = lengths
                .into_iter()
                .map(|length| take(&mut rest, length).map(<[u8]>::to_vec))
                .collect::<Result<Vec<_>, _>>()?;
            if !rest.is_empty() {
                return Err(CodecError::Frame("bytes after the last payload"));
            }
            Ok(payload::join_payloads(payloads, || {
                serde_json::from_slice(json)
            })?)
        }
        other => Err(CodecError::UnknownFormat(other)),
    }
}

fn frame_len(len: usize) -> Result<u32, CodecError> {
    u32::try_from(len).map_err(|_| CodecError::Frame("part longer than 4 GiB"))
}

fn take<'a>(rest: &mut &'a [u8], len: usize) -> Result<&'a [u8], CodecError> {
    if rest.len() < len {
        return Err(CodecError::Frame("shorter than its lengths say"));
    }
    let (taken, left) = rest.split_at(len);
    *rest = left;
    Ok(taken)
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, CodecError> {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(take(rest, 4)?);
    Ok(u32::from_le_bytes(bytes))
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
        assert!(matches!(
            decode(3, &body),
            Err(CodecError::UnknownFormat(3))
        ));
    }

    #[test]
    fn format_2_stores_payload_bytes_once_and_raw() {
        let big = Payload::etf(vec![7u8; 100_000]);
        let event = Event::WorkflowCompleted {
            result: big.clone(),
        };
        let body = encode_format(2, &event).unwrap();
        assert!(
            body.len() < 100_100,
            "{} bytes for a 100,000-byte payload",
            body.len()
        );
        assert!(encode_format(1, &event).unwrap().len() > 133_000);
        assert_eq!(decode(2, &body).unwrap(), event);
    }

    #[test]
    fn damaged_format_2_frames_are_errors() {
        let body = encode_format(
            2,
            &Event::WorkflowCompleted {
                result: Payload::etf(vec![1, 2, 3]),
            },
        )
        .unwrap();
        assert!(matches!(
            decode(2, &body[..body.len() - 1]),
            Err(CodecError::Frame(_))
        ));
        let mut longer = body.clone();
        longer.push(0);
        assert!(matches!(decode(2, &longer), Err(CodecError::Frame(_))));
        assert!(decode(2, &[]).is_err());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(matches!(
            decode(1, b"{\"type\":\"nope\"}"),
            Err(CodecError::Malformed(_))
        ));
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
                execution_timeout_ms: None,
                run_timeout_ms: None,
                search_attributes: Default::default(),
                parent: None,
            },
            Event::TimerStarted {
                command: 2,
                timer_id: TimerId::for_command(RunId::from_u128(1), 2),
                fire_at: Timestamp::from_millis(5),
            },
        ];
        for event in events {
            assert_eq!(
                decode(CURRENT_FORMAT, &encode(&event).unwrap()).unwrap(),
                event
            );
        }
    }
}
