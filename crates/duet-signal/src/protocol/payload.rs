//! What the protocol carries without reading it: a session description (`sdp`) and an
//! ICE candidate (`candidate`), as browsers make them (`RTCSessionDescriptionInit`,
//! `RTCIceCandidateInit`). The hub relays both verbatim; a peer written in Rust reads
//! and writes them through these types.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ProtocolError;

/// An offer or an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// One trickled ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The `a=candidate:` line without its `a=`.
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
}

/// Reads a payload relayed as raw JSON.
fn read<T: for<'de> Deserialize<'de>>(raw: &RawValue) -> Result<T, ProtocolError> {
    serde_json::from_str(raw.get()).map_err(|e| ProtocolError::InvalidField(e.to_string()))
}

/// Writes a payload to relay.
fn raw<T: Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("strings and numbers serialize")
}

impl Description {
    pub fn read(raw: &RawValue) -> Result<Self, ProtocolError> {
        read(raw)
    }

    pub fn to_raw(&self) -> Box<RawValue> {
        raw(self)
    }
}

impl Candidate {
    /// A candidate on the first media section (the only one a duet peer bundles on).
    pub fn on_first_section(line: String) -> Self {
        Self { candidate: line, sdp_mid: Some("0".into()), sdp_m_line_index: Some(0) }
    }

    pub fn read(raw: &RawValue) -> Result<Self, ProtocolError> {
        read(raw)
    }

    pub fn to_raw(&self) -> Box<RawValue> {
        raw(self)
    }
}
