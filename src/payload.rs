//! Payloads: the opaque values workflows pass around (inputs, results, errors,
//! marker values), stored as bytes with the name of their encoding beside them
//! so that the encoding can evolve without rewriting history.

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
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({}, {} bytes)", self.encoding.as_str(), self.data.len())
    }
}

fn to_base64<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&BASE64.encode(data))
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    BASE64.decode(text).map_err(serde::de::Error::custom)
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
