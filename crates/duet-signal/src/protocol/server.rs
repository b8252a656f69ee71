//! What the server sends, typed once for both ends: the hub serializes these, and a
//! client written in Rust (duet-peer's, `duet call`, echo) reads frames back into them.
//!
//! ```text
//!  hub ──ServerMessage──► to_json ──► Payload (Arc<str>, shared by every recipient)
//!  client ◄── ServerMessage::parse ◄── text frame (one serde pass into a flat record,
//!                                       then a check per `type`, as for ClientMessage)
//! ```
//!
//! Reading goes through a flat record rather than serde's tagged enums, which cannot
//! carry an SDP through as raw JSON.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{ProtocolError, required, truncated};

/// Everything the server sends. Field names are the ones MDN's client reads.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage<'a> {
    #[serde(rename = "id")]
    Id { id: u64 },
    #[serde(rename = "rejectusername")]
    RejectUsername { id: u64, name: Cow<'a, str> },
    #[serde(rename = "userlist")]
    UserList {
        users: Vec<Cow<'a, str>>,
        /// Who is ringing or talking now: calling them answers "busy".
        #[serde(rename = "inCall")]
        in_call: Vec<Cow<'a, str>>,
        /// Which of `users` are services of the server (`echo`), not people.
        services: Vec<Cow<'a, str>>,
        /// Which of `users` signed in with an account: the only names that are verified.
        verified: Vec<Cow<'a, str>>,
    },
    /// After a ringing-aware sign-in: the secret that lets this session be resumed.
    #[serde(rename = "session")]
    Session { name: Cow<'a, str>, token: Cow<'a, str> },
    /// `resume` worked: the client holds `name` again (and its call, if any).
    #[serde(rename = "resumed")]
    Resumed {
        name: Cow<'a, str>,
        token: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        partner: Option<Cow<'a, str>>,
    },
    /// Another connection resumed this session; this one is no longer heard.
    #[serde(rename = "replaced")]
    Replaced {},
    /// To the caller: `target` was told of the call and is being rung.
    #[serde(rename = "ringing")]
    Ringing {
        #[serde(rename = "callId")]
        call_id: u64,
        target: Cow<'a, str>,
        /// No device of theirs is online: their devices are being rung by push (another
        /// `ringing` without it follows once one is online).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        away: bool,
    },
    /// To the callee: `name` is calling.
    #[serde(rename = "incoming-call")]
    IncomingCall {
        #[serde(rename = "callId")]
        call_id: u64,
        name: Cow<'a, str>,
        /// A voice call: answer without the camera.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        voice: bool,
    },
    /// The call is on: the `caller` sends the offer, the `callee` waits for it.
    #[serde(rename = "call-accepted")]
    CallAccepted {
        #[serde(rename = "callId")]
        call_id: u64,
        name: Cow<'a, str>,
        role: Role,
    },
    /// The call with `name` is over, or never began, for `reason`.
    #[serde(rename = "call-ended")]
    CallEnded {
        #[serde(rename = "callId", skip_serializing_if = "Option::is_none")]
        call_id: Option<u64>,
        name: Cow<'a, str>,
        reason: EndReason,
    },
    #[serde(rename = "message")]
    Message {
        id: u64,
        name: Cow<'a, str>,
        text: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        date: Option<f64>,
    },
    #[serde(rename = "video-offer")]
    VideoOffer { name: Cow<'a, str>, target: Cow<'a, str>, sdp: Cow<'a, RawValue> },
    #[serde(rename = "video-answer")]
    VideoAnswer { name: Cow<'a, str>, target: Cow<'a, str>, sdp: Cow<'a, RawValue> },
    #[serde(rename = "new-ice-candidate")]
    NewIceCandidate { name: Cow<'a, str>, target: Cow<'a, str>, candidate: Cow<'a, RawValue> },
    #[serde(rename = "hang-up")]
    HangUp { name: Cow<'a, str>, target: Cow<'a, str> },
    #[serde(rename = "media-state")]
    MediaState { name: Cow<'a, str>, target: Cow<'a, str>, audio: bool, video: bool },
    /// This person's "do not disturb" now (to each of an account's devices when one
    /// changes it, and to a device that signs in while it is on): `for` the seconds left.
    #[serde(rename = "quiet")]
    Quiet {
        on: bool,
        #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
        seconds: Option<u32>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        guests: bool,
    },
    #[serde(rename = "error")]
    Error {
        code: ErrorCode,
        message: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<Cow<'a, str>>,
    },
    /// STUN and TURN servers for `new RTCPeerConnection({iceServers})`, renewed every
    /// `ttl/2` seconds (the shell sends these, not the hub).
    #[serde(rename = "ice-servers")]
    IceServers {
        #[serde(rename = "iceServers")]
        ice_servers: Vec<IceServer>,
        ttl: u64,
    },
}

/// One `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// Always a list when duet sends it; one URL alone is read too, as WebRTC allows.
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The `code` of an `{type:"error"}` reply; `docs/protocol.md` lists them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidField,
    MissingType,
    UnknownType,
    MissingField,
    InvalidName,
    /// Anything but `username` before signing in.
    NotSignedIn,
    /// The `target` is not signed in (any more).
    NoSuchUser,
    /// The `target` is the sender.
    CannotCallSelf,
    /// A call message (answer, candidate, hang-up...) for someone the sender is in no
    /// call with.
    NotInCall,
    /// A binary WebSocket frame: the protocol is text only.
    BinaryFrame,
    /// `call` or an offer from someone already in a call with someone else.
    AlreadyInCall,
    /// `accept` or `decline` for a call that is not ringing for the sender.
    NoSuchCall,
    /// An answer (or an offer from a ringing-aware caller) before the callee accepted.
    CallNotAccepted,
    /// `resume` was refused: the name is someone else's now, or the token is malformed.
    /// The client signs in with `username` instead.
    CannotResume,
    /// The connection sent more than its budget (see `HubConfig::limits`); the message was
    /// dropped.
    RateLimited,
    /// A field is longer than the protocol allows (a chat line over 4 KiB).
    TooLong,
}

impl ErrorCode {
    /// The code as it appears on the wire, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid-json",
            Self::InvalidField => "invalid-field",
            Self::MissingType => "missing-type",
            Self::UnknownType => "unknown-type",
            Self::MissingField => "missing-field",
            Self::InvalidName => "invalid-name",
            Self::NotSignedIn => "not-signed-in",
            Self::NoSuchUser => "no-such-user",
            Self::CannotCallSelf => "cannot-call-self",
            Self::NotInCall => "not-in-call",
            Self::BinaryFrame => "binary-frame",
            Self::AlreadyInCall => "already-in-call",
            Self::NoSuchCall => "no-such-call",
            Self::CallNotAccepted => "call-not-accepted",
            Self::CannotResume => "cannot-resume",
            Self::RateLimited => "rate-limited",
            Self::TooLong => "too-long",
        }
    }
}

/// Which side of a call a client is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Caller,
    Callee,
}

/// Why a call ended; `docs/protocol.md` says who hears which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The callee was already ringing or talking; their call was left alone.
    Busy,
    /// The callee said no.
    Declined,
    /// The caller gave up before an answer.
    Cancelled,
    /// Nobody answered before the ring timeout.
    Missed,
    /// One side hung up.
    HungUp,
    /// One side left duet (closed the page, or lost its connection for good).
    Disconnected,
    /// To the callee's other devices: one of them took the call.
    AnsweredElsewhere,
    /// The callee is not taking calls (do not disturb, or calls from guests silenced):
    /// nothing rang. No call was made.
    Unavailable,
    /// Taken, but the media never connected (a network that let nothing through).
    Failed,
}

impl EndReason {
    pub const ALL: [Self; 9] = [
        Self::Busy,
        Self::Declined,
        Self::Cancelled,
        Self::Missed,
        Self::HungUp,
        Self::Disconnected,
        Self::AnsweredElsewhere,
        Self::Unavailable,
        Self::Failed,
    ];

    /// The word on the wire (`hung-up`), for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
            Self::HungUp => "hung-up",
            Self::Disconnected => "disconnected",
            Self::AnsweredElsewhere => "answered-elsewhere",
            Self::Unavailable => "unavailable",
            Self::Failed => "failed",
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Urls::deserialize(deserializer)? {
        Urls::One(url) => vec![url],
        Urls::Many(urls) => urls,
    })
}

impl ServerMessage<'_> {
    /// The frame to send.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages hold only strings, numbers and valid raw JSON")
    }
}

/// Every field any server message may carry, for reading one back.
#[derive(Deserialize)]
struct Heard<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    id: Option<u64>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partner: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    users: Option<Vec<Cow<'a, str>>>,
    #[serde(rename = "inCall")]
    in_call: Option<Vec<Cow<'a, str>>>,
    services: Option<Vec<Cow<'a, str>>>,
    verified: Option<Vec<Cow<'a, str>>>,
    #[serde(rename = "callId")]
    call_id: Option<u64>,
    role: Option<Role>,
    reason: Option<EndReason>,
    code: Option<ErrorCode>,
    date: Option<f64>,
    #[serde(borrow)]
    sdp: Option<&'a RawValue>,
    #[serde(borrow)]
    candidate: Option<&'a RawValue>,
    audio: Option<bool>,
    video: Option<bool>,
    #[serde(rename = "iceServers")]
    ice_servers: Option<Vec<IceServer>>,
    ttl: Option<u64>,
    on: Option<bool>,
    #[serde(rename = "for")]
    seconds: Option<u32>,
    guests: Option<bool>,
    voice: Option<bool>,
    away: Option<bool>,
}

impl<'a> ServerMessage<'a> {
    /// Reads a frame the server sent (a client's side of the protocol). Fields a type
    /// does not use are ignored; a missing one is a [`ProtocolError::MissingField`].
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        let heard: Heard<'a> = serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ProtocolError::InvalidField(e.to_string()),
            _ => ProtocolError::InvalidJson(e.to_string()),
        })?;
        let kind = heard.kind.as_deref().ok_or(ProtocolError::MissingType)?;
        let raw = |value: Option<&'a RawValue>, kind, field| required(kind, field, value).map(Cow::Borrowed);
        Ok(match kind {
            "id" => Self::Id { id: required("id", "id", heard.id)? },
            "rejectusername" => Self::RejectUsername {
                id: heard.id.unwrap_or_default(),
                name: required("rejectusername", "name", heard.name)?,
            },
            "userlist" => Self::UserList {
                users: required("userlist", "users", heard.users)?,
                in_call: heard.in_call.unwrap_or_default(),
                services: heard.services.unwrap_or_default(),
                verified: heard.verified.unwrap_or_default(),
            },
            "session" => Self::Session {
                name: required("session", "name", heard.name)?,
                token: required("session", "token", heard.token)?,
            },
            "resumed" => Self::Resumed {
                name: required("resumed", "name", heard.name)?,
                token: required("resumed", "token", heard.token)?,
                partner: heard.partner,
            },
            "replaced" => Self::Replaced {},
            "ringing" => Self::Ringing {
                call_id: required("ringing", "callId", heard.call_id)?,
                target: required("ringing", "target", heard.target)?,
                away: heard.away == Some(true),
            },
            "incoming-call" => Self::IncomingCall {
                call_id: required("incoming-call", "callId", heard.call_id)?,
                name: required("incoming-call", "name", heard.name)?,
                voice: heard.voice == Some(true),
            },
            "call-accepted" => Self::CallAccepted {
                call_id: required("call-accepted", "callId", heard.call_id)?,
                name: required("call-accepted", "name", heard.name)?,
                role: required("call-accepted", "role", heard.role)?,
            },
            "call-ended" => Self::CallEnded {
                call_id: heard.call_id,
                name: required("call-ended", "name", heard.name)?,
                reason: required("call-ended", "reason", heard.reason)?,
            },
            "message" => Self::Message {
                id: heard.id.unwrap_or_default(),
                name: required("message", "name", heard.name)?,
                text: required("message", "text", heard.text)?,
                date: heard.date,
            },
            "video-offer" => Self::VideoOffer {
                name: required("video-offer", "name", heard.name)?,
                target: heard.target.unwrap_or_default(),
                sdp: raw(heard.sdp, "video-offer", "sdp")?,
            },
            "video-answer" => Self::VideoAnswer {
                name: required("video-answer", "name", heard.name)?,
                target: heard.target.unwrap_or_default(),
                sdp: raw(heard.sdp, "video-answer", "sdp")?,
            },
            "new-ice-candidate" => Self::NewIceCandidate {
                name: required("new-ice-candidate", "name", heard.name)?,
                target: heard.target.unwrap_or_default(),
                candidate: raw(heard.candidate, "new-ice-candidate", "candidate")?,
            },
            "hang-up" => Self::HangUp {
                name: required("hang-up", "name", heard.name)?,
                target: heard.target.unwrap_or_default(),
            },
            "media-state" => Self::MediaState {
                name: required("media-state", "name", heard.name)?,
                target: heard.target.unwrap_or_default(),
                audio: required("media-state", "audio", heard.audio)?,
                video: required("media-state", "video", heard.video)?,
            },
            "quiet" => Self::Quiet {
                on: required("quiet", "on", heard.on)?,
                seconds: heard.seconds,
                guests: heard.guests == Some(true),
            },
            "error" => Self::Error {
                code: required("error", "code", heard.code)?,
                message: heard.message.unwrap_or_default(),
                target: heard.target,
            },
            "ice-servers" => Self::IceServers {
                ice_servers: required("ice-servers", "iceServers", heard.ice_servers)?,
                ttl: required("ice-servers", "ttl", heard.ttl)?,
            },
            other => return Err(ProtocolError::UnknownType(truncated(other))),
        })
    }
}
