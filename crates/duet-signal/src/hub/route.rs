//! What each message within its budgets does: sign-in and resume (`names`,
//! `sessions`), chat to the room, calls (`calls`), and what passes between the two
//! sides of a call, stamped with the sender's name and sent to its partner only.

use std::borrow::Cow;
use std::time::Instant;

use super::calls::Relay;
use super::{CallId, ConnId, Hub, Rejected};
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};

impl Hub {
    /// Does what a message within its budgets asks.
    pub(super) fn route(
        &mut self,
        now: Instant,
        conn: ConnId,
        msg: ClientMessage<'_>,
    ) -> Result<(), Rejected> {
        let msg = match msg {
            ClientMessage::Username { name, ringing } => return self.sign_in(now, conn, name, ringing),
            ClientMessage::Resume { name, token, partner } => {
                return self.resume(now, conn, name, &token, partner.as_deref());
            }
            other => other,
        };
        let Some(sender) = self.conns[&conn].name.clone() else {
            return Err(self.reject(
                conn,
                ErrorCode::NotSignedIn,
                "sign in with a \"username\" message first",
                None,
            ));
        };
        match msg {
            ClientMessage::Username { .. } | ClientMessage::Resume { .. } => unreachable!("handled above"),
            ClientMessage::Message { text, date } => {
                let id = conn.get();
                let msg = ServerMessage::Message {
                    id,
                    name: sender.as_str().into(),
                    text: Cow::Borrowed(&text),
                    date,
                };
                let room = self.conns[&conn].room.clone();
                self.broadcast_chat(&room, msg.to_json().into());
                Ok(())
            }
            ClientMessage::Call { target, voice } => self.call(now, conn, &sender, &target, voice),
            ClientMessage::Quiet { on, seconds, guests } => {
                self.change_quiet(now, conn, on, seconds, guests);
                Ok(())
            }
            ClientMessage::Accept { call_id } => self.accept(now, conn, CallId(call_id)),
            ClientMessage::Decline { call_id } => self.decline(now, conn, CallId(call_id)),
            ClientMessage::HangUp { target, failed } => self.hang_up(now, conn, target.as_deref(), failed),
            ClientMessage::VideoOffer { target, sdp } => {
                let to = self.offer_route(now, conn, &sender, &target)?;
                let Some(to) = to else { return Ok(()) }; // busy: answered already
                self.send(
                    to,
                    &ServerMessage::VideoOffer {
                        name: sender.as_str().into(),
                        target: Cow::Borrowed(&target),
                        sdp,
                    },
                );
                Ok(())
            }
            ClientMessage::VideoAnswer { target, sdp } => {
                let to = self.call_route(conn, &target, Relay::Answer)?;
                self.send(
                    to,
                    &ServerMessage::VideoAnswer {
                        name: sender.as_str().into(),
                        target: Cow::Borrowed(&target),
                        sdp,
                    },
                );
                Ok(())
            }
            ClientMessage::NewIceCandidate { target, candidate } => {
                let to = self.call_route(conn, &target, Relay::Candidate)?;
                let msg = ServerMessage::NewIceCandidate {
                    name: sender.as_str().into(),
                    target: Cow::Borrowed(&target),
                    candidate,
                };
                self.send(to, &msg);
                Ok(())
            }
            ClientMessage::MediaState { target, audio, video } => {
                let to = self.call_route(conn, &target, Relay::MediaState)?;
                let msg = ServerMessage::MediaState {
                    name: sender.as_str().into(),
                    target: Cow::Borrowed(&target),
                    audio,
                    video,
                };
                self.send(to, &msg);
                Ok(())
            }
        }
    }
}
