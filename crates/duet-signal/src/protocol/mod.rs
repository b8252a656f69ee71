//! The wire protocol: JSON text frames, one message per frame, `type` says which.
//!
//! Parsing is one pass of `serde_json` into a flat, borrowed `Incoming` record, then a
//! check per `type` that turns it into a [`ClientMessage`] or a precise
//! [`ProtocolError`]. SDP and ICE candidates are never parsed: they stay [`RawValue`]s
//! borrowed from the frame and are copied once, into the message that relays them.
//!
//! What this module does not do: decide who receives what (that is the hub), or read
//! anything the client says about who it is (`name` and `id` in a client's message are
//! ignored; the hub stamps the name the connection signed in with).
//!
//! ```text
//!  &str ──serde──► Incoming (all fields optional) ──per type──► ClientMessage / ProtocolError
//!  ServerMessage ──serde──► Payload (Arc<str>, shared by every recipient of a broadcast)
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::name::{NameError, UserName};

#[cfg(test)]
mod examples;
mod payload;
mod server;
pub use payload::{Candidate, Description};
pub use server::{EndReason, ErrorCode, IceServer, Role, ServerMessage};

/// A message a client may send, checked and ready for the hub; a client written in
/// Rust builds these and sends [`ClientMessage::to_json`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage<'a> {
    /// `{type:"username", name, ringing?}`: sign in, or change name. `ringing: true` says
    /// the client takes part in ringing (`incoming-call`, `accept`, ...) and may resume.
    Username {
        name: UserName,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        ringing: bool,
    },
    /// `{type:"resume", name, token, partner?}`: take back a session after the socket
    /// dropped (or the server restarted), instead of signing in afresh. `partner` is who
    /// the client is still in a call with, as far as it knows.
    Resume {
        name: UserName,
        token: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        partner: Option<Cow<'a, str>>,
    },
    /// `{type:"call", target, voice?}`: ring `target`; `voice`: a voice call (no camera
    /// at first; either side may turn one on).
    Call {
        target: Cow<'a, str>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        voice: bool,
    },
    /// `{type:"accept", callId}`: the callee picks up.
    Accept {
        #[serde(rename = "callId")]
        call_id: u64,
    },
    /// `{type:"decline", callId}`: the callee refuses.
    Decline {
        #[serde(rename = "callId")]
        call_id: u64,
    },
    /// `{type:"message", text, date?}`: a chat line for everyone signed in.
    Message {
        text: Cow<'a, str>,
        /// The client's clock (milliseconds since the epoch), passed on when it is a
        /// number so receivers can show when the line was written.
        #[serde(skip_serializing_if = "Option::is_none")]
        date: Option<f64>,
    },
    /// `{type:"video-offer", target, sdp}`.
    VideoOffer { target: Cow<'a, str>, sdp: Cow<'a, RawValue> },
    /// `{type:"video-answer", target, sdp}`.
    VideoAnswer { target: Cow<'a, str>, sdp: Cow<'a, RawValue> },
    /// `{type:"new-ice-candidate", target, candidate}`.
    NewIceCandidate { target: Cow<'a, str>, candidate: Cow<'a, RawValue> },
    /// `{type:"hang-up", target?, failed?}`: MDN's client sends `target: null` at times;
    /// the hub then sends the hang-up to the call partner. `failed`: the call was taken
    /// but media never connected (it ends as `failed`, not `hung-up`).
    HangUp {
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        failed: bool,
    },
    /// `{type:"media-state", target, audio, video}`: whether the sender's microphone and
    /// camera are on, so the other side can show it instead of silence or a still frame.
    MediaState { target: Cow<'a, str>, audio: bool, video: bool },
    /// `{type:"quiet", on, for?, guests?}`: do not disturb (`on`), for `for` seconds or
    /// until turned off; `guests`: calls from guests never ring, whatever `on` says.
    Quiet {
        on: bool,
        #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
        seconds: Option<u32>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        guests: bool,
    },
}

/// The longest "do not disturb" with an end, in seconds (a week).
pub const MAX_QUIET_SECONDS: u32 = 7 * 24 * 3600;

/// Every field any client message may carry. Unknown fields are ignored, so a client
/// that adds its own (MDN's sends `id` and `date` everywhere) keeps working.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sdp: Option<&'a RawValue>,
    #[serde(borrow)]
    candidate: Option<&'a RawValue>,
    #[serde(borrow)]
    date: Option<&'a RawValue>,
    audio: Option<bool>,
    video: Option<bool>,
    ringing: Option<bool>,
    #[serde(rename = "callId")]
    call_id: Option<u64>,
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partner: Option<Cow<'a, str>>,
    on: Option<bool>,
    #[serde(rename = "for")]
    seconds: Option<u32>,
    guests: Option<bool>,
    voice: Option<bool>,
    failed: Option<bool>,
}

/// Why a text frame is not a message duet understands. Each becomes an `error` reply to
/// the sender; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not JSON at all.
    #[error("the message is not valid JSON: {0}")]
    InvalidJson(String),
    /// The frame is JSON, but not an object (`[]`, `12`, `"hi"`).
    #[error("the message must be a JSON object")]
    NotAnObject,
    /// The frame is JSON, but a field has the wrong type (a number where a name goes...).
    #[error("the message has a field of the wrong type: {0}")]
    InvalidField(String),
    /// The JSON has no `type` string.
    #[error("the message has no \"type\"")]
    MissingType,
    /// `type` is not one duet knows.
    #[error("unknown message type \"{0}\"")]
    UnknownType(String),
    /// A field this `type` needs is absent or null.
    #[error("a \"{kind}\" message needs a \"{field}\" field")]
    MissingField { kind: &'static str, field: &'static str },
    /// The requested user name is not acceptable.
    #[error("that name cannot be used: {0}")]
    InvalidName(#[from] NameError),
    /// A resume token that no server ever issued (wrong length or characters).
    #[error("the resume token is malformed")]
    InvalidToken,
    /// A chat line longer than [`MAX_CHAT_BYTES`].
    #[error("a chat message may be at most {MAX_CHAT_BYTES} bytes long")]
    ChatTooLong,
}

/// The longest chat line, in bytes of UTF-8: every member of a room receives each line,
/// so its size is what one member can make the server send everyone.
pub const MAX_CHAT_BYTES: usize = 4096;

/// Chat `date`s outside 2000-01-01..2100-01-01 (milliseconds since the epoch) are
/// dropped rather than passed on: a browser cannot even format some numbers as dates.
const CHAT_DATES: std::ops::RangeInclusive<f64> = 946_684_800_000.0..=4_102_444_800_000.0;

impl ProtocolError {
    /// The machine-readable code sent in the `error` reply.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::InvalidField(_) | Self::NotAnObject => ErrorCode::InvalidField,
            Self::MissingType => ErrorCode::MissingType,
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::MissingField { .. } => ErrorCode::MissingField,
            Self::InvalidName(_) => ErrorCode::InvalidName,
            Self::InvalidToken => ErrorCode::CannotResume,
            Self::ChatTooLong => ErrorCode::TooLong,
        }
    }
}

impl ClientMessage<'_> {
    /// The frame to send.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages hold only strings, numbers and valid raw JSON")
    }
}

impl<'a> ClientMessage<'a> {
    /// Parses one text frame.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        if !text.trim_start().starts_with('{') {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => ProtocolError::NotAnObject,
                Err(e) => ProtocolError::InvalidJson(e.to_string()),
            });
        }
        let incoming: Incoming<'a> = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                ProtocolError::InvalidField(e.to_string())
            } else {
                ProtocolError::InvalidJson(e.to_string())
            }
        })?;
        let kind = incoming.kind.as_deref().ok_or(ProtocolError::MissingType)?;
        match kind {
            "username" => {
                let name = required("username", "name", incoming.name)?;
                Ok(Self::Username { name: UserName::new(&name)?, ringing: incoming.ringing == Some(true) })
            }
            "resume" => {
                let name = required("resume", "name", incoming.name)?;
                let token = required("resume", "token", incoming.token)?;
                if !valid_token(&token) {
                    return Err(ProtocolError::InvalidToken);
                }
                Ok(Self::Resume { name: UserName::new(&name)?, token, partner: incoming.partner })
            }
            "call" => Ok(Self::Call {
                target: required("call", "target", incoming.target)?,
                voice: incoming.voice == Some(true),
            }),
            "accept" => Ok(Self::Accept { call_id: required("accept", "callId", incoming.call_id)? }),
            "decline" => Ok(Self::Decline { call_id: required("decline", "callId", incoming.call_id)? }),
            "message" => {
                let text = required("message", "text", incoming.text)?;
                if text.len() > MAX_CHAT_BYTES {
                    return Err(ProtocolError::ChatTooLong);
                }
                let date = incoming.date.and_then(|raw| serde_json::from_str::<f64>(raw.get()).ok());
                Ok(Self::Message { text, date: date.filter(|d| CHAT_DATES.contains(d)) })
            }
            "video-offer" => Ok(Self::VideoOffer {
                target: required("video-offer", "target", incoming.target)?,
                sdp: Cow::Borrowed(required("video-offer", "sdp", incoming.sdp)?),
            }),
            "video-answer" => Ok(Self::VideoAnswer {
                target: required("video-answer", "target", incoming.target)?,
                sdp: Cow::Borrowed(required("video-answer", "sdp", incoming.sdp)?),
            }),
            "new-ice-candidate" => Ok(Self::NewIceCandidate {
                target: required("new-ice-candidate", "target", incoming.target)?,
                candidate: Cow::Borrowed(required("new-ice-candidate", "candidate", incoming.candidate)?),
            }),
            "hang-up" => Ok(Self::HangUp { target: incoming.target, failed: incoming.failed == Some(true) }),
            "media-state" => Ok(Self::MediaState {
                target: required("media-state", "target", incoming.target)?,
                audio: required("media-state", "audio", incoming.audio)?,
                video: required("media-state", "video", incoming.video)?,
            }),
            "quiet" => {
                let seconds = incoming.seconds;
                if seconds.is_some_and(|s| !(1..=MAX_QUIET_SECONDS).contains(&s)) {
                    let why = format!("\"for\" is 1 to {MAX_QUIET_SECONDS} seconds");
                    return Err(ProtocolError::InvalidField(why));
                }
                let on = required("quiet", "on", incoming.on)?;
                Ok(Self::Quiet { on, seconds, guests: incoming.guests == Some(true) })
            }
            other => Err(ProtocolError::UnknownType(truncated(other))),
        }
    }
}

/// Tokens are what the hub's shell issues: 16 to 64 URL-safe characters.
pub fn valid_token(token: &str) -> bool {
    (16..=64).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn required<T>(kind: &'static str, field: &'static str, value: Option<T>) -> Result<T, ProtocolError> {
    value.ok_or(ProtocolError::MissingField { kind, field })
}

/// An unknown `type` is echoed back in the error; a hostile client must not be able to
/// make that echo large.
fn truncated(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_reason_reads_in_logs_and_metrics_as_on_the_wire() {
        for reason in EndReason::ALL {
            assert_eq!(serde_json::to_value(reason).expect("serializes"), reason.as_str());
        }
    }

    fn parse_err(text: &str) -> ProtocolError {
        ClientMessage::parse(text).expect_err("must be rejected")
    }

    #[test]
    fn mdn_username_message_parses_and_ignores_id_and_date() {
        let msg = ClientMessage::parse(r#"{"type":"username","name":"ann","id":17,"date":1700000000000}"#)
            .expect("valid");
        assert!(matches!(msg, ClientMessage::Username { name, ringing: false } if name.as_str() == "ann"));
    }

    #[test]
    fn mdn_hang_up_with_null_target_parses() {
        let msg = ClientMessage::parse(r#"{"name":"ann","target":null,"type":"hang-up"}"#).expect("valid");
        assert!(matches!(msg, ClientMessage::HangUp { target: None, failed: false }));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let msg = ClientMessage::parse(r#"{"type":"message","text":"a\"b\u00e9"}"#).expect("valid");
        assert!(matches!(msg, ClientMessage::Message { text, date: None } if text == "a\"bé"));
    }

    #[test]
    fn sdp_is_kept_verbatim() {
        let msg = ClientMessage::parse(
            r#"{"type":"video-offer","target":"bo","sdp":{"type":"offer","sdp":"v=0\r\n"}}"#,
        )
        .expect("valid");
        let ClientMessage::VideoOffer { sdp, .. } = msg else { panic!("offer expected") };
        assert_eq!(sdp.get(), r#"{"type":"offer","sdp":"v=0\r\n"}"#);
    }

    #[test]
    fn bad_input_gets_a_precise_error() {
        assert!(matches!(parse_err("{not json"), ProtocolError::InvalidJson(_)));
        assert!(matches!(parse_err(""), ProtocolError::InvalidJson(_)));
        assert!(matches!(parse_err(r#"{"type":5}"#), ProtocolError::InvalidField(_)));
        assert!(matches!(parse_err(r#"{"type":"username","name":["x"]}"#), ProtocolError::InvalidField(_)));
        assert_eq!(parse_err(r#"{"name":"ann"}"#), ProtocolError::MissingType);
        assert_eq!(parse_err("[]"), ProtocolError::NotAnObject);
        assert_eq!(parse_err(" 12 "), ProtocolError::NotAnObject);
        assert_eq!(parse_err(r#"{"type":"dance"}"#), ProtocolError::UnknownType("dance".into()));
        assert_eq!(
            parse_err(r#"{"type":"video-offer","target":"bo"}"#),
            ProtocolError::MissingField { kind: "video-offer", field: "sdp" }
        );
        assert_eq!(
            parse_err(r#"{"type":"new-ice-candidate","target":"bo","candidate":null}"#),
            ProtocolError::MissingField { kind: "new-ice-candidate", field: "candidate" }
        );
        assert_eq!(
            parse_err(r#"{"type":"username","name":"a\nb"}"#),
            ProtocolError::InvalidName(NameError::ControlCharacter)
        );
    }

    #[test]
    fn a_huge_unknown_type_is_not_echoed_whole() {
        let text = format!(r#"{{"type":"{}"}}"#, "x".repeat(10_000));
        let ProtocolError::UnknownType(echo) = parse_err(&text) else { panic!("unknown type expected") };
        assert!(echo.len() < 100);
    }

    #[test]
    fn relayed_messages_serialize_with_raw_sdp() {
        let sdp = RawValue::from_string(r#"{"type":"offer","sdp":"v=0"}"#.into()).expect("valid");
        let json =
            ServerMessage::VideoOffer { name: "ann".into(), target: "bo".into(), sdp: Cow::Owned(sdp) }
                .to_json();
        assert_eq!(
            json,
            r#"{"type":"video-offer","name":"ann","target":"bo","sdp":{"type":"offer","sdp":"v=0"}}"#
        );
        let ServerMessage::VideoOffer { sdp, .. } = ServerMessage::parse(&json).expect("reads back") else {
            panic!("an offer")
        };
        assert_eq!(sdp.get(), r#"{"type":"offer","sdp":"v=0"}"#, "a client reads the SDP verbatim");
    }

    #[test]
    fn a_client_message_built_in_rust_is_what_the_hub_parses() {
        let sdp = RawValue::from_string(r#"{"type":"answer","sdp":"v=0\r\n"}"#.into()).expect("valid");
        let sent = ClientMessage::VideoAnswer { target: "bo \"b\"".into(), sdp: Cow::Owned(sdp) }.to_json();
        let ClientMessage::VideoAnswer { target, sdp } = ClientMessage::parse(&sent).expect("parses") else {
            panic!("an answer")
        };
        assert_eq!((&*target, sdp.get()), ("bo \"b\"", r#"{"type":"answer","sdp":"v=0\r\n"}"#));
        let hello = ClientMessage::Username { name: UserName::new("ann").expect("valid"), ringing: false };
        assert_eq!(hello.to_json(), r#"{"type":"username","name":"ann"}"#, "MDN's own sign-in");
    }

    #[test]
    fn a_server_frame_read_by_a_client_is_checked_like_a_client_frame() {
        let err = |text| ServerMessage::parse(text).expect_err("refused");
        assert_eq!(
            err(r#"{"type":"incoming-call","name":"ann"}"#),
            ProtocolError::MissingField { kind: "incoming-call", field: "callId" }
        );
        assert!(matches!(
            err(r#"{"type":"call-ended","name":"ann","reason":"bored"}"#),
            ProtocolError::InvalidField(_)
        ));
        assert_eq!(err(r#"{"type":"dance"}"#), ProtocolError::UnknownType("dance".into()));
        assert!(matches!(err("{"), ProtocolError::InvalidJson(_)));
    }
}
