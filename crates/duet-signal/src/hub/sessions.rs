//! Sessions that outlive a socket: a dropped socket keeps its name and call for the
//! resume grace period, what arrives meanwhile is held, and `resume` with the session's
//! token takes it all back.
//!
//! ```text
//!  socket drops ──► Detached{held} ── resume(name, token) ──► take_over: held frames, fresh list
//!       │                 │ grace timer / too much held ──► end_session
//!       │                 └ chat: at most HELD_CHAT lines, the oldest dropped first
//!  server restart ──► resume(name, token) for a free name: the token must carry a MAC
//!                     under the resume key (kept across restarts), else refused
//! ```
//!
//! Tokens: the shell gives each connection a random nonce; at sign-in the session's
//! token becomes `hex(HMAC-SHA256(resume key, room, name, nonce))[..32] ++ nonce`, so
//! a process that restarted with the same key can tell a token it issued for that name
//! from a guess, without having stored anything. Without a key the token is the nonce,
//! and a name nobody holds cannot be resumed at all.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ConnId, Hub, Output, Payload, Rejected, Timer};
use crate::name::UserName;
use crate::protocol::{ErrorCode, ServerMessage};
use crate::room::RoomName;

/// Call messages and replies held for a detached session. A call setup is a few dozen;
/// past this (or [`HELD_BYTES`]) the session could not be resumed without losing some,
/// so it ends instead.
pub(super) const HELD_MAX: usize = 128;
/// Bytes of call messages and replies held for a detached session.
const HELD_BYTES: usize = 256 * 1024;
/// Chat lines held for a detached session; older ones are dropped for newer, and never
/// push out a call message.
const HELD_CHAT: usize = 32;
/// Bytes of chat held for a detached session.
const HELD_CHAT_BYTES: usize = 64 * 1024;
/// Hex digits of the MAC at the front of a signed token (128 bits).
const MAC_HEX: usize = 32;

/// What a held frame is, which decides what gives way when too much is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// For this session alone: call messages, replies. Never dropped.
    Direct,
    /// A chat line to the room: the oldest goes first.
    Chat,
}

#[derive(Debug)]
pub(super) struct Detached {
    /// When the socket dropped.
    pub(super) since: Instant,
    /// When the grace timer fires.
    pub(super) timer_at: Instant,
    /// What arrived meanwhile, in order, delivered on resume.
    held: VecDeque<(Held, Payload)>,
    direct: Tally,
    chat: Tally,
}

/// How much of one kind is held.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    frames: usize,
    bytes: usize,
}

impl Detached {
    /// Holds `payload`; false when it cannot be held without losing a call message.
    fn hold(&mut self, kind: Held, payload: Payload) -> bool {
        let len = payload.len();
        match kind {
            Held::Direct => {
                if self.direct.frames >= HELD_MAX || self.direct.bytes + len > HELD_BYTES {
                    return false;
                }
                self.direct.frames += 1;
                self.direct.bytes += len;
            }
            Held::Chat => {
                if len > HELD_CHAT_BYTES {
                    return true; // a line too long to hold is skipped, not fatal
                }
                while self.chat.frames >= HELD_CHAT || self.chat.bytes + len > HELD_CHAT_BYTES {
                    let oldest = self.held.iter().position(|(k, _)| *k == Held::Chat);
                    let (_, dropped) =
                        self.held.remove(oldest.expect("chat is counted")).expect("found above");
                    self.chat.frames -= 1;
                    self.chat.bytes -= dropped.len();
                }
                self.chat.frames += 1;
                self.chat.bytes += len;
            }
        }
        self.held.push_back((kind, payload));
        true
    }
}

impl Hub {
    /// The socket dropped without a goodbye. A ringing-aware session is kept, name and
    /// call included, for [`super::HubConfig::resume_grace`], so the client can `resume`
    /// it; anything else ends as with [`Hub::disconnect`].
    pub fn connection_lost(&mut self, now: Instant, conn: ConnId) {
        let Some(state) = self.conns.get_mut(&conn) else { return };
        if state.detached.is_some() {
            return;
        }
        if state.name.is_none() || !state.ringing {
            self.end_session(now, conn, super::SessionEnd::Lost);
            return;
        }
        let timer_at = now + self.config.resume_grace;
        state.detached = Some(Box::new(Detached {
            since: now,
            timer_at,
            held: VecDeque::new(),
            direct: Tally::default(),
            chat: Tally::default(),
        }));
        self.timers.insert((timer_at, Timer::Grace(conn)));
    }

    /// `resume`: take back the session that holds `name` in this room (its token must
    /// match), or, when nobody holds the name (the server restarted, say), take the name
    /// if the token is one this server's key signed for it.
    pub(super) fn resume(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: UserName,
        token: &str,
        partner: Option<&str>,
    ) -> Result<(), Rejected> {
        let state = &self.conns[&conn];
        if state.name.is_some() {
            return Err(self.reject(
                conn,
                ErrorCode::CannotResume,
                "this connection is signed in already",
                None,
            ));
        }
        let room = state.room.clone();
        let alike = self.rooms.get(&room).and_then(|r| r.names.alike(&name));
        let exact = alike.filter(|(held, _)| **held == name).map_or(&[][..], |(_, sessions)| sessions);
        let own = exact.iter().copied().find(|s| same_secret(&self.conns[s].token, token));
        // Another device of the same account: this one comes back beside it.
        let beside = !exact.is_empty()
            && self.conns[&conn].admission.is_verified()
            && exact.iter().all(|s| self.conns[s].admission.is_verified());
        match (own, alike.is_some() && !beside) {
            (Some(old), _) if self.may_hold(conn, &name) => {
                self.take_over(old, conn);
                self.emit(now, super::Event::SessionResumed { room, who: self.party(conn) });
                Ok(())
            }
            (Some(_), _) | (None, true) => {
                Err(self.reject(conn, ErrorCode::CannotResume, "that name is someone else's now", None))
            }
            _ if self.config.services.contains(&name) => {
                Err(self.reject(conn, ErrorCode::CannotResume, "that name belongs to this server", None))
            }
            _ if !self.may_hold(conn, &name) => Err(self.reject(
                conn,
                ErrorCode::CannotResume,
                "that name belongs to an account; sign in with it",
                None,
            )),
            _ if !self.signed_by_us(&room, &name, token) => Err(self.reject(
                conn,
                ErrorCode::CannotResume,
                "this server cannot confirm that name was yours",
                None,
            )),
            _ => {
                self.displace(now, conn, &room, &name);
                let state = self.conns.get_mut(&conn).expect("checked by handle_text");
                state.name = Some(name.clone());
                state.ringing = true;
                state.token = token.into();
                self.rooms.entry(room.clone()).or_default().names.insert(name.clone(), conn);
                self.send(
                    conn,
                    &ServerMessage::Resumed {
                        name: name.as_str().into(),
                        token: token.into(),
                        partner: None,
                    },
                );
                self.emit(now, super::Event::SessionResumed { room: room.clone(), who: self.party(conn) });
                self.tell_quiet(now, conn);
                if let Some(partner) = partner.and_then(|p| UserName::new(p).ok()) {
                    self.claim(now, conn, partner);
                }
                self.presence_changed(now, &room);
                Ok(())
            }
        }
    }

    /// Moves the session `old` onto the connection `new`: name, call, claim and whatever
    /// was held for it. If `old` still has a socket, that one is told it was replaced
    /// and is no longer heard.
    fn take_over(&mut self, old: ConnId, new: ConnId) {
        let mut session = self.conns.remove(&old).expect("found by name");
        // A detached session's held frames go out below; a live socket hears it was replaced.
        let held = match session.detached.take() {
            Some(detached) => {
                self.timers.remove(&(detached.timer_at, Timer::Grace(old)));
                detached.held
            }
            None => {
                let payload = ServerMessage::Replaced {}.to_json().into();
                self.outputs.push_back(Output { to: old, payload });
                VecDeque::new()
            }
        };
        if let Some(claim) = session.claim.as_deref() {
            self.timers.remove(&(claim.until, Timer::Claim(old)));
            self.timers.insert((claim.until, Timer::Claim(new)));
        }
        let name = session.name.clone().expect("a named session");
        if let Some(id) = session.call {
            self.calls.get_mut(&id).expect("calls are mutual").replace(old, new);
        }
        let fresh = self.conns.get_mut(&new).expect("checked by handle_text");
        // Limits, the address and who the socket was admitted as are the new socket's
        // (a resumed session is never more than its new cookie allows); the rest is the
        // session's.
        session.address = fresh.address;
        session.admission = std::mem::take(&mut fresh.admission);
        session.frames = fresh.frames;
        session.chat = fresh.chat;
        let (room, token, call) = (session.room.clone(), session.token.clone(), session.call);
        *fresh = session;
        self.rooms.get_mut(&room).expect("the name is in it").names.swap(&name, old, new);
        let partner = call.map(|id| self.name_of(self.calls[&id].other(new)));
        self.send(
            new,
            &ServerMessage::Resumed {
                name: name.as_str().into(),
                token: Cow::Borrowed(&token),
                partner: partner.as_deref().map(Cow::Borrowed),
            },
        );
        for (kind, payload) in held {
            self.deliver(new, payload, kind);
        }
        let list = self.userlist_payload(&room);
        self.deliver(new, list, Held::Direct);
    }

    /// Queues `payload` for `to`'s socket, or holds it while the session is detached.
    pub(super) fn deliver(&mut self, to: ConnId, payload: Payload, kind: Held) {
        let Some(state) = self.conns.get_mut(&to) else { return };
        let Some(detached) = state.detached.as_mut() else {
            self.outputs.push_back(Output { to, payload });
            return;
        };
        if !detached.hold(kind, payload) && detached.timer_at != detached.since {
            // Resuming would lose call messages now: end the session at once (its timer
            // is moved into the past, so the shell's next timeout ends it).
            let was = std::mem::replace(&mut detached.timer_at, detached.since);
            self.timers.remove(&(was, Timer::Grace(to)));
            self.timers.insert((detached.since, Timer::Grace(to)));
        }
    }

    /// The token for a session named `name` in `room` whose connection was given `token`
    /// (its nonce, or an earlier token whose nonce it reuses after a rename).
    pub(super) fn mint_token(&self, room: &RoomName, name: &UserName, token: &str) -> Box<str> {
        let Some(key) = &self.config.resume_key else { return token.into() };
        let nonce = nonce_of(token);
        let mut minted = hex(&mac(key, room, name, nonce));
        minted.push_str(nonce);
        minted.into()
    }

    /// Whether `token` was minted by [`Hub::mint_token`] under this hub's key for `name`.
    fn signed_by_us(&self, room: &RoomName, name: &UserName, token: &str) -> bool {
        let Some(key) = &self.config.resume_key else { return false };
        if token.len() <= MAC_HEX || !token.is_char_boundary(MAC_HEX) {
            return false;
        }
        let (shown, nonce) = token.split_at(MAC_HEX);
        same_secret(&hex(&mac(key, room, name, nonce)), shown)
    }
}

/// The nonce inside a token: all of it before signing, the part after the MAC after.
fn nonce_of(token: &str) -> &str {
    if token.len() > MAC_HEX && token.is_char_boundary(MAC_HEX) && token.len() - MAC_HEX >= 16 {
        &token[MAC_HEX..]
    } else {
        token
    }
}

/// The first 128 bits of HMAC-SHA256 over what a token vouches for. Fields are separated
/// by a byte that no room, name or nonce contains.
fn mac(key: &[u8; 32], room: &RoomName, name: &UserName, nonce: &str) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in
        [b"duet resume v1".as_slice(), room.as_str().as_bytes(), name.as_str().as_bytes(), nonce.as_bytes()]
    {
        mac.update(part);
        mac.update(&[0]);
    }
    let mut out = [0; 16];
    out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that depends on their length only, so a client cannot
/// learn a token byte by byte from how fast `resume` fails.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
