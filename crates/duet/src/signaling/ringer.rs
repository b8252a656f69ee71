//! Ringing account holders' devices by push: a call that rings an account holder becomes
//! a push to every device the account subscribed ("Ann is calling", good for the ring
//! time), and what becomes of it a second push with the same topic, which replaces the
//! first wherever it still waits: answered or declined closes the notification, missed or
//! cancelled turns it into "Missed call from Ann".
//!
//! ```text
//!  CallRinging{callee: account} ──► push {type: call, call, from, verified, voice, room}
//!  CallAnswered ──► push {type: call-ended, reason: answered}   (topic call-<id>)
//!  CallEnded, never answered ──► push {type: call-ended, reason: missed | cancelled | declined…}
//! ```
//!
//! Heard under the hub's lock: it only builds the payload and hands it to the pusher,
//! which reads the devices and sends on tasks of its own.

use std::sync::Arc;
use std::time::Duration;

use duet_push::{Push, Urgency};
use duet_signal::{Event, Happened, Party};
use serde_json::{Value, json};

use crate::push::Pusher;
use crate::signaling::events::Listener;

/// How long a push saying how a call ended may wait for a device (a phone that was off).
const ENDED_TTL: Duration = Duration::from_secs(24 * 3600);

/// The listener.
#[derive(Debug)]
pub struct Ringer {
    pub pusher: Arc<Pusher>,
    pub ring_timeout: Duration,
}

impl Listener for Ringer {
    fn heard(&self, happened: &Happened) {
        let (callee, call, payload, ttl, urgency) = match &happened.event {
            Event::CallRinging { call, room, caller, callee, voice } => {
                let payload = json!({
                    "type": "call", "call": call, "from": caller.name.as_str(), "verified": caller.verified,
                    "voice": voice, "room": room.as_str(),
                });
                (callee, *call, payload, self.ring_timeout, Urgency::High)
            }
            Event::CallAnswered { call, caller, callee, .. } => {
                (callee, *call, ended(*call, caller, "answered"), ENDED_TTL, Urgency::Normal)
            }
            Event::CallEnded { call, caller, callee, reason, answered: None, .. } => {
                (callee, *call, ended(*call, caller, reason.as_str()), ENDED_TTL, Urgency::Normal)
            }
            _ => return,
        };
        if !callee.verified {
            return;
        }
        let push = Push::new(payload.to_string().into_bytes(), ttl, urgency, Some(format!("call-{call}")));
        self.pusher.ring(callee.name.as_str().to_owned(), push, happened.at + ttl);
    }
}

fn ended(call: u64, caller: &Party, reason: &str) -> Value {
    json!({ "type": "call-ended", "call": call, "from": caller.name.as_str(), "reason": reason })
}
