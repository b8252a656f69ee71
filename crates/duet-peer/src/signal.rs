//! The client side of duet's signaling protocol (`docs/protocol.md`), sans-IO: frames
//! from the server in, frames to send and what to do next out, every one of them typed
//! by `duet-signal` ([`ServerMessage`] read, [`ClientMessage`] written). The caller owns
//! the WebSocket and the [`Session`](crate::Session).
//!
//! ```text
//!  Client::new ──► {username, ringing}
//!  userlist (with our name) ──► {call target} | waiting        rejectusername ──► new name
//!  incoming-call ──► {accept} (when waiting)                   call-accepted ──► offer: true
//!  video-offer ──► answer: Some(sdp)     video-answer ──► remote_answer     candidates ──► candidate
//!  ice-servers ──► ice_servers           call-ended / hang-up ──► ended (or an error if the call never came about)
//! ```

use std::borrow::Cow;

use duet_signal::{ClientMessage, EndReason, ErrorCode, IceServer, Role, ServerMessage, UserName};
use serde_json::value::RawValue;

/// Why the call could not be made, or the server turned us away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Declined, busy, missed, or nobody of that name.
    #[error("{0}")]
    NotMade(String),
    /// The server refused our name.
    #[error("{0}")]
    BadName(String),
    /// The server refused a message of ours: a bug on one side or the other.
    #[error("{0}")]
    Refused(String),
}

/// What one server message leads to.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Frames to send, in order.
    pub send: Vec<String>,
    /// A line for the person watching.
    pub say: Option<String>,
    /// The call is over.
    pub ended: bool,
    /// Make our offer now (we are the caller and the call was accepted).
    pub offer: bool,
    /// The other side's offer (`{type, sdp}` JSON) to answer.
    pub answer: Option<String>,
    /// The other side's answer to our offer.
    pub remote_answer: Option<String>,
    /// A candidate the other side trickled (`RTCIceCandidate.toJSON()`).
    pub candidate: Option<String>,
    /// The STUN and TURN servers the server offers (with credentials).
    pub ice_servers: Option<Vec<IceServer>>,
}

#[derive(Debug)]
enum State {
    SigningIn { name: String },
    Ready,
}

/// One person's signaling: sign in, then call `to` or wait to be called.
#[derive(Debug)]
pub struct Client {
    state: State,
    to: Option<String>,
    peer: String,
}

impl Client {
    /// A client that signs in as `name`; returns it with the first frame to send.
    pub fn new(name: &str, to: Option<String>) -> Result<(Self, String), SignalError> {
        let valid = UserName::new(name)
            .map_err(|e| SignalError::BadName(format!("that name cannot be used: {e}")))?;
        let hello = ClientMessage::Username { name: valid, ringing: true }.to_json();
        Ok((Self { state: State::SigningIn { name: name.to_owned() }, to, peer: String::new() }, hello))
    }

    /// Whom the call is with, once known (empty before).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Hangs up on the other side of the call.
    pub fn hang_up(&self) -> String {
        ClientMessage::HangUp { target: Some(Cow::Borrowed(&self.peer)), failed: false }.to_json()
    }

    /// Our offer (`{type, sdp}` JSON, as [`Session::create_offer`](crate::Session::create_offer)
    /// makes it) for the other side.
    pub fn offer(&self, description: String) -> String {
        ClientMessage::VideoOffer { target: Cow::Borrowed(&self.peer), sdp: raw(description) }.to_json()
    }

    /// Our answer to the other side's offer.
    pub fn answer(&self, description: String) -> String {
        ClientMessage::VideoAnswer { target: Cow::Borrowed(&self.peer), sdp: raw(description) }.to_json()
    }

    /// One of our candidates (`RTCIceCandidate.toJSON()`), trickled.
    pub fn candidate(&self, candidate: String) -> String {
        ClientMessage::NewIceCandidate { target: Cow::Borrowed(&self.peer), candidate: raw(candidate) }
            .to_json()
    }

    /// Handles one frame from the server (frames of types it has no use for change nothing).
    pub fn handle(&mut self, frame: &str) -> Result<Outcome, SignalError> {
        let mut out = Outcome::default();
        let Ok(msg) = ServerMessage::parse(frame) else { return Ok(out) };
        let from_peer = |name: &str| !self.peer.is_empty() && name == self.peer;
        match (msg, &mut self.state) {
            (ServerMessage::RejectUsername { name, .. }, State::SigningIn { name: wanted }) => {
                out.say = Some(format!("the name {wanted} is taken; signed in as {name}"));
                *wanted = name.into_owned();
            }
            (ServerMessage::UserList { users, .. }, State::SigningIn { name: wanted })
                if users.iter().any(|n| n == wanted.as_str()) =>
            {
                let me = std::mem::take(wanted);
                self.state = State::Ready;
                out.say = Some(self.signed_in(&me, &mut out.send));
            }
            (ServerMessage::Ringing { target, .. }, State::Ready) => {
                out.say = Some(format!("ringing {target}…"))
            }
            (ServerMessage::IncomingCall { call_id, name, .. }, State::Ready) => {
                if self.to.is_none() && self.peer.is_empty() {
                    out.say = Some(format!("{name} is calling; answering"));
                    self.peer = name.into_owned();
                    out.send.push(ClientMessage::Accept { call_id }.to_json());
                } else {
                    out.send.push(ClientMessage::Decline { call_id }.to_json());
                }
            }
            (ServerMessage::CallAccepted { name, role, .. }, State::Ready) => {
                out.offer = role == Role::Caller;
                out.say = Some(format!("{name} answered; connecting"));
                self.peer = name.into_owned();
            }
            (ServerMessage::VideoOffer { name, sdp, .. }, State::Ready) if from_peer(&name) => {
                out.answer = Some(sdp.get().to_owned());
            }
            (ServerMessage::VideoAnswer { name, sdp, .. }, State::Ready) if from_peer(&name) => {
                out.remote_answer = Some(sdp.get().to_owned());
            }
            (ServerMessage::NewIceCandidate { name, candidate, .. }, State::Ready) if from_peer(&name) => {
                out.candidate = Some(candidate.get().to_owned());
            }
            (ServerMessage::CallEnded { name, reason, .. }, State::Ready)
                if self.peer.is_empty() || from_peer(&name) =>
            {
                return self.ended(&name, reason, out);
            }
            (ServerMessage::HangUp { name, .. }, State::Ready)
                if self.peer.is_empty() || from_peer(&name) =>
            {
                return self.ended(&name, EndReason::HungUp, out);
            }
            (ServerMessage::IceServers { ice_servers, .. }, _) => out.ice_servers = Some(ice_servers),
            (ServerMessage::Error { code, message, target }, _) => {
                return Err(refused(code, &message, target.as_deref()));
            }
            _ => {}
        }
        Ok(out)
    }

    /// Signed in as `me`: calls, or waits. Returns what to say.
    fn signed_in(&self, me: &str, send: &mut Vec<String>) -> String {
        match &self.to {
            Some(to) => {
                send.push(ClientMessage::Call { target: Cow::Borrowed(to), voice: false }.to_json());
                format!("signed in as {me}; calling {to}")
            }
            None => format!("signed in as {me}; waiting for a call"),
        }
    }

    /// The call with `name` ended for `reason`: over, or never made.
    fn ended(&self, name: &str, reason: EndReason, mut out: Outcome) -> Result<Outcome, SignalError> {
        let words = match reason {
            EndReason::Busy => format!("{name} is in another call"),
            EndReason::Declined => format!("{name} declined the call"),
            EndReason::Missed => format!("{name} did not answer"),
            EndReason::Cancelled => format!("{name} cancelled the call"),
            EndReason::Disconnected => format!("{name} left"),
            EndReason::HungUp => format!("{name} hung up"),
            EndReason::AnsweredElsewhere => format!("the call from {name} was answered on another device"),
            EndReason::Unavailable => format!("{name} isn't taking calls right now"),
            EndReason::Failed => format!("the call with {name} could not connect"),
        };
        if matches!(
            reason,
            EndReason::Busy | EndReason::Declined | EndReason::Missed | EndReason::Unavailable
        ) {
            return Err(SignalError::NotMade(words));
        }
        out.say = Some(words);
        out.ended = true;
        Ok(out)
    }
}

/// The server refused a message of ours.
fn refused(code: ErrorCode, message: &str, target: Option<&str>) -> SignalError {
    match code {
        ErrorCode::NoSuchUser => {
            SignalError::NotMade(format!("nobody called {} is online", target.unwrap_or("")))
        }
        ErrorCode::InvalidName => SignalError::BadName(format!("the server refused the name: {message}")),
        _ => SignalError::Refused(format!("the server refused a message ({}): {message}", code.as_str())),
    }
}

/// A description or candidate as made by [`Session`](crate::Session) (JSON), to relay.
fn raw(json: String) -> Cow<'static, RawValue> {
    Cow::Owned(RawValue::from_string(json).expect("the session makes JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(value: serde_json::Value) -> String {
        value.to_string()
    }

    /// A frame we send, read back for comparing.
    fn sent(frame: &str) -> serde_json::Value {
        serde_json::from_str(frame).expect("JSON")
    }

    fn all_sent(frames: &[String]) -> Vec<serde_json::Value> {
        frames.iter().map(|f| sent(f)).collect()
    }

    fn signed_in(name: &str, to: Option<&str>) -> (Client, Outcome) {
        let (mut client, hello) = Client::new(name, to.map(str::to_owned)).expect("a valid name");
        assert_eq!(sent(&hello), json!({"type": "username", "name": name, "ringing": true}));
        let out = client.handle(&frame(json!({"type": "userlist", "users": [name, "bo"]}))).expect("fine");
        (client, out)
    }

    #[test]
    fn a_caller_signs_in_calls_and_offers_once_accepted() {
        let (mut ann, out) = signed_in("ann", Some("bo"));
        assert_eq!(all_sent(&out.send), vec![json!({"type": "call", "target": "bo"})]);
        let out = ann
            .handle(&frame(json!({"type": "call-accepted", "callId": 1, "name": "bo", "role": "caller"})))
            .expect("ok");
        assert!(out.offer);
        assert_eq!(sent(&ann.hang_up()), json!({"type": "hang-up", "target": "bo"}));
        let out = ann
            .handle(&frame(
                json!({"type": "video-answer", "name": "bo", "target": "ann", "sdp": {"type": "answer"}}),
            ))
            .expect("ok");
        assert_eq!(out.remote_answer.as_deref(), Some(r#"{"type":"answer"}"#));
        let stranger = ann
            .handle(&frame(
                json!({"type": "new-ice-candidate", "name": "eve", "target": "ann", "candidate": {}}),
            ))
            .expect("ok");
        assert_eq!(stranger.candidate, None, "only the peer's candidates count");
        let over =
            ann.handle(&frame(json!({"type": "call-ended", "name": "bo", "reason": "hung-up"}))).expect("ok");
        assert!(over.ended);
    }

    #[test]
    fn a_waiting_client_answers_the_first_caller_and_turns_away_others() {
        let (mut desk, out) = signed_in("desk", None);
        assert!(out.send.is_empty());
        let out =
            desk.handle(&frame(json!({"type": "incoming-call", "callId": 5, "name": "ann"}))).expect("ok");
        assert_eq!(all_sent(&out.send), vec![json!({"type": "accept", "callId": 5})]);
        let out =
            desk.handle(&frame(json!({"type": "incoming-call", "callId": 6, "name": "cy"}))).expect("ok");
        assert_eq!(all_sent(&out.send), vec![json!({"type": "decline", "callId": 6})]);
        let out = desk
            .handle(&frame(
                json!({"type": "video-offer", "name": "ann", "target": "desk", "sdp": {"type": "offer"}}),
            ))
            .expect("ok");
        assert_eq!(out.answer.as_deref(), Some(r#"{"type":"offer"}"#));
        let answer = desk.answer(r#"{"type":"answer","sdp":"v=0"}"#.into());
        assert_eq!(
            sent(&answer),
            json!({"type": "video-answer", "target": "ann", "sdp": {"type": "answer", "sdp": "v=0"}})
        );
    }

    #[test]
    fn a_taken_name_is_followed_and_a_refused_call_is_an_error_in_words() {
        let (mut ann, _) = Client::new("ann", Some("bo".into())).expect("a valid name");
        let out = ann.handle(&frame(json!({"type": "rejectusername", "id": 1, "name": "ann2"}))).expect("ok");
        assert_eq!(out.say.as_deref(), Some("the name ann is taken; signed in as ann2"));
        let out =
            ann.handle(&frame(json!({"type": "userlist", "users": ["ann", "ann2", "bo"]}))).expect("ok");
        assert_eq!(out.say.as_deref(), Some("signed in as ann2; calling bo"));
        let err = ann
            .handle(&frame(json!({"type": "call-ended", "name": "bo", "reason": "declined"})))
            .expect_err("no");
        assert_eq!(err, SignalError::NotMade("bo declined the call".into()));
        let err = ann
            .handle(&frame(json!({"type": "error", "code": "no-such-user", "message": "", "target": "bo"})))
            .expect_err("no");
        assert_eq!(err.to_string(), "nobody called bo is online");
        assert!(matches!(Client::new("a\nb", None), Err(SignalError::BadName(_))));
    }
}
