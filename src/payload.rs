//! Payloads: the opaque values workflows pass around (inputs, results, errors,
//! marker values), stored as bytes with the name of their encoding beside them
//! so that the encoding can evolve without rewriting history.

use std::cell::RefCell;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a payload's bytes encode a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// Erlang's external term format (`:erlang.term_to_binary/1`): any BEAM
    /// term without pids, references, ports or funs round-trips exactly.
    Etf,
}

impl Encoding {
    /// The name stored beside the bytes.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Etf => "etf",
        }
    }

    /// Parses a stored encoding name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "etf" => Some(Encoding::Etf),
            _ => None,
        }
    }
}

/// An encoded value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// How `data` is encoded.
    pub encoding: Encoding,
    /// The encoded bytes (base64 in the JSON event format).
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub data: Vec<u8>,
}

impl Payload {
    /// A payload in Erlang's external term format.
    pub fn etf(data: impl Into<Vec<u8>>) -> Self {
        Self {
            encoding: Encoding::Etf,
            data: data.into(),
        }
    }

    /// The atom `name` (at most 255 bytes of UTF-8) in Erlang's external
    /// term format: for the few values the engine makes itself, such as
    /// `nil` beside a child that timed out.
    pub fn etf_atom(name: &str) -> Self {
        const VERSION: u8 = 131;
        const SMALL_ATOM_UTF8_EXT: u8 = 119;
        let name = &name.as_bytes()[..name.len().min(255)];
        let mut data = Vec::with_capacity(3 + name.len());
        data.extend_from_slice(&[VERSION, SMALL_ATOM_UTF8_EXT, name.len() as u8]);
        data.extend_from_slice(name);
        Self::etf(data)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Payload({}, {} bytes)",
            self.encoding.as_str(),
            self.data.len()
        )
    }
}

thread_local! {
    /// While set, payload bytes serialize as an index into this list instead
    /// of base64 text (see [`split_payloads`]).
    static SPLIT: RefCell<Option<Vec<Vec<u8>>>> = const { RefCell::new(None) };
    /// While set, a payload serialized as an index takes its bytes from here
    /// (see [`join_payloads`]).
    static JOIN: RefCell<Option<Vec<Option<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Runs `serialize` with payload bytes set aside: each payload's `data` is
/// written as its index in the returned list, so that a format can store the
/// bytes raw, beside the text, instead of as base64 inside it.
pub(crate) fn split_payloads<R>(serialize: impl FnOnce() -> R) -> (R, Vec<Vec<u8>>) {
    let previous = SPLIT.with(|split| split.replace(Some(Vec::new())));
    let result = serialize();
    let blobs = SPLIT
        .with(|split| split.replace(previous))
        .unwrap_or_default();
    (result, blobs)
}

/// Runs `deserialize` with `blobs` standing for the payloads that
/// [`split_payloads`] set aside.
pub(crate) fn join_payloads<R>(blobs: Vec<Vec<u8>>, deserialize: impl FnOnce() -> R) -> R {
    let previous = JOIN.with(|join| join.replace(Some(blobs.into_iter().map(Some).collect())));
    let result = deserialize();
    JOIN.with(|join| join.replace(previous));
    result
}

fn to_base64<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    let index = SPLIT.with(|split| {
        split.borrow_mut().as_mut().map(|blobs| {
            blobs.push(data.to_vec());
            blobs.len() - 1
        })
    });
    match index {
        Some(index) => serializer.serialize_u64(index as u64),
        None => serializer.serialize_str(&BASE64.encode(data)),
    }
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Data;

    impl serde::de::Visitor<'_> for Data {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("base64 text, or the index of a payload stored beside the event")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            BASE64.decode(text).map_err(E::custom)
        }

        fn visit_u64<E: serde::de::Error>(self, index: u64) -> Result<Vec<u8>, E> {
            JOIN.with(|join| {
                join.borrow_mut()
                    .as_mut()
                    .and_then(|blobs| blobs.get_mut(usize::try_from(index).ok()?)?.take())
                    .ok_or_else(|| E::custom(format!("no stored payload {index}")))
            })
        }
    }

    deserializer.deserialize_any(Data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_stable() {
        let payload = Payload::etf(vec![131, 100, 0, 2, 111, 107]);
        let json = serde_json::to_string(&payload).unwrap();
        assert_eq!(json, r#"{"encoding":"etf","data":"g2QAAm9r"}"#);
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), payload);
    }

    #[test]
    fn encoding_names_round_trip() {
        assert_eq!(Encoding::parse(Encoding::Etf.as_str()), Some(Encoding::Etf));
        assert_eq!(Encoding::parse("yaml"), None);
    }
}
