//! The client side of duet's signaling protocol (`docs/protocol.md`), sans-IO: JSON
//! messages from the server in, messages to send and what to do next out. The caller
//! owns the WebSocket and the [`Session`](crate::Session).
//!
//! ```text
//!  Client::new ──► {username, ringing}
//!  userlist (with our name) ──► {call target} | waiting        rejectusername ──► new name
//!  incoming-call ──► {accept} (when waiting)                   call-accepted ──► offer: true
//!  video-offer ──► answer: Some(sdp)     video-answer ──► remote_answer     candidates ──► candidate
//!  call-ended / hang-up ──► ended (or an error if the call never came about)
//! ```

use serde_json::{Value, json};

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
    /// Messages to send, in order.
    pub send: Vec<Value>,
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
    /// A client that signs in as `name`; returns it with the first message to send.
    pub fn new(name: &str, to: Option<String>) -> (Self, Value) {
        let hello = json!({"type": "username", "name": name, "ringing": true});
        (Self { state: State::SigningIn { name: name.to_owned() }, to, peer: String::new() }, hello)
    }

    /// Whom the call is with, once known (empty before).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// A message addressed to the other side of the call.
    pub fn to_peer(&self, mut msg: Value) -> Value {
        msg["target"] = Value::String(self.peer.clone());
        msg
    }

    /// Handles one message from the server.
    pub fn handle(&mut self, msg: &Value) -> Result<Outcome, SignalError> {
        let mut out = Outcome::default();
        let name = msg["name"].as_str().unwrap_or_default();
        let from_peer = !self.peer.is_empty() && name == self.peer;
        match (msg["type"].as_str().unwrap_or_default(), &mut self.state) {
            ("rejectusername", State::SigningIn { name: wanted }) => {
                out.say = Some(format!("the name {wanted} is taken; signed in as {name}"));
                *wanted = name.to_owned();
            }
            ("userlist", State::SigningIn { name: wanted }) => {
                let listed = msg["users"].as_array().is_some_and(|u| u.iter().any(|n| n == wanted.as_str()));
                if listed {
                    let me = std::mem::take(wanted);
                    self.state = State::Ready;
                    match &self.to {
                        Some(to) => {
                            out.say = Some(format!("signed in as {me}; calling {to}"));
                            out.send.push(json!({"type": "call", "target": to}));
                        }
                        None => out.say = Some(format!("signed in as {me}; waiting for a call")),
                    }
                }
            }
            ("ringing", State::Ready) => {
                out.say = Some(format!("ringing {}…", msg["target"].as_str().unwrap_or("")))
            }
            ("incoming-call", State::Ready) => {
                if self.to.is_none() && self.peer.is_empty() {
                    self.peer = name.to_owned();
                    out.say = Some(format!("{name} is calling; answering"));
                    out.send.push(json!({"type": "accept", "callId": msg["callId"]}));
                } else {
                    out.send.push(json!({"type": "decline", "callId": msg["callId"]}));
                }
            }
            ("call-accepted", State::Ready) => {
                self.peer = name.to_owned();
                out.offer = msg["role"] == "caller";
                out.say = Some(format!("{name} answered; connecting"));
            }
            ("video-offer", State::Ready) if from_peer => out.answer = Some(msg["sdp"].to_string()),
            ("video-answer", State::Ready) if from_peer => out.remote_answer = Some(msg["sdp"].to_string()),
            ("new-ice-candidate", State::Ready) if from_peer => {
                out.candidate = Some(msg["candidate"].to_string())
            }
            ("call-ended" | "hang-up", State::Ready) if self.peer.is_empty() || from_peer => {
                let reason = msg["reason"].as_str().unwrap_or("hung-up");
                let words = match reason {
                    "busy" => format!("{name} is in another call"),
                    "declined" => format!("{name} declined the call"),
                    "missed" => format!("{name} did not answer"),
                    "cancelled" => format!("{name} cancelled the call"),
                    "disconnected" => format!("{name} left"),
                    _ => format!("{name} hung up"),
                };
                if matches!(reason, "busy" | "declined" | "missed") {
                    return Err(SignalError::NotMade(words));
                }
                out.say = Some(words);
                out.ended = true;
            }
            ("error", _) => {
                let code = msg["code"].as_str().unwrap_or_default();
                let message = msg["message"].as_str().unwrap_or_default();
                return Err(match code {
                    "no-such-user" => SignalError::NotMade(format!(
                        "nobody called {} is online",
                        msg["target"].as_str().unwrap_or("")
                    )),
                    "invalid-name" => SignalError::BadName(format!("the server refused the name: {message}")),
                    _ => SignalError::Refused(format!("the server refused a message ({code}): {message}")),
                });
            }
            _ => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_in(name: &str, to: Option<&str>) -> (Client, Outcome) {
        let (mut client, hello) = Client::new(name, to.map(str::to_owned));
        assert_eq!(hello, json!({"type": "username", "name": name, "ringing": true}));
        let out = client.handle(&json!({"type": "userlist", "users": [name, "bo"]})).expect("fine");
        (client, out)
    }

    #[test]
    fn a_caller_signs_in_calls_and_offers_once_accepted() {
        let (mut ann, out) = signed_in("ann", Some("bo"));
        assert_eq!(out.send, vec![json!({"type": "call", "target": "bo"})]);
        let out = ann
            .handle(&json!({"type": "call-accepted", "callId": 1, "name": "bo", "role": "caller"}))
            .expect("ok");
        assert!(out.offer);
        assert_eq!(ann.to_peer(json!({"type": "hang-up"})), json!({"type": "hang-up", "target": "bo"}));
        let out = ann
            .handle(&json!({"type": "video-answer", "name": "bo", "sdp": {"type": "answer"}}))
            .expect("ok");
        assert_eq!(out.remote_answer.as_deref(), Some(r#"{"type":"answer"}"#));
        let stranger =
            ann.handle(&json!({"type": "new-ice-candidate", "name": "eve", "candidate": {}})).expect("ok");
        assert_eq!(stranger.candidate, None, "only the peer's candidates count");
        assert!(
            ann.handle(&json!({"type": "call-ended", "name": "bo", "reason": "hung-up"})).expect("ok").ended
        );
    }

    #[test]
    fn a_waiting_client_answers_the_first_caller_and_turns_away_others() {
        let (mut desk, out) = signed_in("desk", None);
        assert!(out.send.is_empty());
        let out = desk.handle(&json!({"type": "incoming-call", "callId": 5, "name": "ann"})).expect("ok");
        assert_eq!(out.send, vec![json!({"type": "accept", "callId": 5})]);
        let out = desk.handle(&json!({"type": "incoming-call", "callId": 6, "name": "cy"})).expect("ok");
        assert_eq!(out.send, vec![json!({"type": "decline", "callId": 6})]);
        let out = desk
            .handle(&json!({"type": "video-offer", "name": "ann", "sdp": {"type": "offer"}}))
            .expect("ok");
        assert_eq!(out.answer.as_deref(), Some(r#"{"type":"offer"}"#));
    }

    #[test]
    fn a_taken_name_is_followed_and_a_refused_call_is_an_error_in_words() {
        let (mut ann, _) = Client::new("ann", Some("bo".into()));
        let out = ann.handle(&json!({"type": "rejectusername", "name": "ann2"})).expect("ok");
        assert_eq!(out.say.as_deref(), Some("the name ann is taken; signed in as ann2"));
        let out = ann.handle(&json!({"type": "userlist", "users": ["ann", "ann2", "bo"]})).expect("ok");
        assert_eq!(out.say.as_deref(), Some("signed in as ann2; calling bo"));
        let err =
            ann.handle(&json!({"type": "call-ended", "name": "bo", "reason": "declined"})).expect_err("no");
        assert_eq!(err, SignalError::NotMade("bo declined the call".into()));
        let err =
            ann.handle(&json!({"type": "error", "code": "no-such-user", "target": "bo"})).expect_err("no");
        assert_eq!(err.to_string(), "nobody called bo is online");
    }
}
