//! The hub: presence (who is signed in, under which name), routing (a message for a user
//! goes to that user's connection only) and calls (who is talking to whom).
//!
//! It never trusts what a client says about itself: every relayed message carries the
//! name the *sending connection* holds, whatever `name` the client wrote.
//!
//! ```text
//!          handle_text(conn, frame)
//!                    │
//!        parse ──────┴──► error reply to conn (connection carries on)
//!                    │
//!   username ──► names ──► presence changed ──► userlist to everyone (coalesced)
//!   offer/answer/candidate/hang-up ──► names[target] ──► Output to that conn only
//!   disconnect ──► hang-up to the call partner, presence changed
//! ```
//!
//! User lists are coalesced: at most one per [`HubConfig::userlist_interval`], each
//! serialized once and shared by every recipient, so a burst of a thousand sign-ins costs
//! a few lists, not a thousand times a thousand.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::name::UserName;
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};

/// Identifies one WebSocket connection for the life of the hub. It is also the `id` the
/// client is told in the first message; ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The number sent to the client as its `id`.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A serialized JSON text frame. Broadcasts share one allocation among all recipients.
pub type Payload = Arc<str>;

/// One frame for one connection.
#[derive(Debug, Clone)]
#[must_use = "an output is a message someone is waiting for; send it"]
pub struct Output {
    /// The connection to write to. It may have closed meanwhile: drop the frame then.
    pub to: ConnId,
    /// The text frame.
    pub payload: Payload,
}

/// Tunables of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Shortest time between two user-list broadcasts. A presence change after a quiet
    /// spell is broadcast at once; changes within this window after a broadcast are
    /// gathered into one more broadcast at its end.
    pub userlist_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self { userlist_interval: Duration::from_millis(50) }
    }
}

/// Why a frame was refused. The client has already been sent the `error` reply; this is
/// for the caller's logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub ErrorCode);

#[derive(Debug, Default)]
struct Conn {
    /// `None` until the client sends `username`; such a connection can do nothing else
    /// and receives no user lists.
    name: Option<UserName>,
    /// The other side of this connection's call: set by an offer or answer between two
    /// users who are in no other call, cleared by hang-up or disconnect. Always mutual.
    partner: Option<ConnId>,
}

#[derive(Debug, Default)]
struct UserListSchedule {
    /// Presence changed since the last broadcast.
    dirty: bool,
    last_sent: Option<Instant>,
}

/// Presence, routing and calls; see the crate documentation for the run loop.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    next_id: u64,
    conns: HashMap<ConnId, Conn>,
    /// Signed-in users, sorted so the user list reads alphabetically.
    names: BTreeMap<UserName, ConnId>,
    outputs: VecDeque<Output>,
    userlist: UserListSchedule,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Self {
            config,
            next_id: 1,
            conns: HashMap::new(),
            names: BTreeMap::new(),
            outputs: VecDeque::new(),
            userlist: UserListSchedule::default(),
        }
    }

    /// A new connection. Queues the `id` message for it.
    pub fn connect(&mut self) -> ConnId {
        let conn = ConnId(self.next_id);
        self.next_id += 1;
        self.conns.insert(conn, Conn::default());
        self.send(conn, &ServerMessage::Id { id: conn.get() });
        conn
    }

    /// A connection ended, for whatever reason. Its call partner is sent `hang-up`, its
    /// name is freed and everyone gets a new user list. Calling it twice is harmless.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        let Some(gone) = self.conns.remove(&conn) else { return };
        let Some(name) = gone.name else { return };
        self.names.remove(&name);
        if let Some(partner) = gone.partner {
            self.end_call_with(partner, &name);
        }
        self.presence_changed(now);
    }

    /// A binary frame arrived: the protocol is text only.
    pub fn handle_binary(&mut self, conn: ConnId) -> Rejected {
        self.reject(conn, ErrorCode::BinaryFrame, "duet speaks JSON in text frames only", None)
    }

    /// A text frame arrived on `conn`.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) -> Result<(), Rejected> {
        if !self.conns.contains_key(&conn) {
            return Ok(()); // closed meanwhile; nobody to answer
        }
        let msg = match ClientMessage::parse(text) {
            Ok(msg) => msg,
            Err(e) => return Err(self.reject(conn, e.code(), &e.to_string(), None)),
        };
        if let ClientMessage::Username { name } = msg {
            self.sign_in(now, conn, name);
            return Ok(());
        }
        let Some(sender) = self.conns[&conn].name.clone() else {
            return Err(self.reject(
                conn,
                ErrorCode::NotSignedIn,
                "sign in with a \"username\" message first",
                None,
            ));
        };
        match msg {
            ClientMessage::Username { .. } => unreachable!("handled above"),
            ClientMessage::Message { text, date } => {
                let id = conn.get();
                let msg = ServerMessage::Message { id, name: sender.as_str(), text: &text, date };
                self.broadcast(&msg);
                Ok(())
            }
            ClientMessage::VideoOffer { target, sdp } => {
                self.relay_description(conn, &sender, &target, sdp, true)
            }
            ClientMessage::VideoAnswer { target, sdp } => {
                self.relay_description(conn, &sender, &target, sdp, false)
            }
            ClientMessage::NewIceCandidate { target, candidate } => {
                let to = self.resolve_target(conn, &target)?;
                let msg =
                    ServerMessage::NewIceCandidate { name: sender.as_str(), target: &target, candidate };
                self.send(to, &msg);
                Ok(())
            }
            ClientMessage::HangUp { target } => self.hang_up(conn, &sender, target.as_deref()),
            ClientMessage::MediaState { target, audio, video } => {
                let to = self.resolve_target(conn, &target)?;
                let msg = ServerMessage::MediaState { name: sender.as_str(), target: &target, audio, video };
                self.send(to, &msg);
                Ok(())
            }
        }
    }

    /// When [`Hub::handle_timeout`] next has work to do, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let last = self.userlist.last_sent?;
        self.userlist.dirty.then(|| last + self.config.userlist_interval)
    }

    /// Time has reached (or passed) what [`Hub::poll_timeout`] said.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|due| now >= due) {
            self.broadcast_userlist(now);
        }
    }

    /// The next frame to send, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Signed-in names, sorted (what the next user list will say).
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(UserName::as_str)
    }

    /// Whether `conn` has signed in.
    pub fn is_signed_in(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.name.is_some())
    }

    /// Open connections, signed in or not.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn sign_in(&mut self, now: Instant, conn: ConnId, requested: UserName) {
        let current = self.conns.get(&conn).and_then(|c| c.name.as_ref());
        if current == Some(&requested) {
            self.presence_changed(now); // a repeated sign-in still gets a fresh list
            return;
        }
        let granted = if self.names.contains_key(&requested) {
            // The loop ends: of names.len() + 1 suffixes at least one is free.
            let free = (2u32..)
                .map(|n| requested.with_suffix(n))
                .find(|candidate| !self.names.contains_key(candidate))
                .expect("some suffix is free");
            self.send(conn, &ServerMessage::RejectUsername { id: conn.get(), name: free.as_str() });
            free
        } else {
            requested
        };
        let state = self.conns.get_mut(&conn).expect("checked by handle_text");
        if let Some(old) = state.name.replace(granted.clone()) {
            self.names.remove(&old);
        }
        self.names.insert(granted, conn);
        self.presence_changed(now);
    }

    fn relay_description(
        &mut self,
        conn: ConnId,
        sender: &UserName,
        target: &str,
        sdp: &RawValue,
        offer: bool,
    ) -> Result<(), Rejected> {
        let to = self.resolve_target(conn, target)?;
        let name = sender.as_str();
        let msg = if offer {
            ServerMessage::VideoOffer { name, target, sdp }
        } else {
            ServerMessage::VideoAnswer { name, target, sdp }
        };
        self.send(to, &msg);
        self.pair_if_free(conn, to);
        Ok(())
    }

    fn hang_up(&mut self, conn: ConnId, sender: &UserName, target: Option<&str>) -> Result<(), Rejected> {
        let partner = self.conns[&conn].partner;
        let to = match target {
            Some(target) => self.resolve_target(conn, target)?,
            None => partner.ok_or_else(|| {
                self.reject(
                    conn,
                    ErrorCode::NotInCall,
                    "hang-up without a target, and you are in no call",
                    None,
                )
            })?,
        };
        if partner == Some(to) {
            self.unpair(conn, to);
        }
        let target_name = self.name_of(to);
        self.send(to, &ServerMessage::HangUp { name: sender.as_str(), target: &target_name });
        Ok(())
    }

    /// Tells `partner` that `gone` (who left without hanging up) has ended their call.
    fn end_call_with(&mut self, partner: ConnId, gone: &UserName) {
        let Some(state) = self.conns.get_mut(&partner) else { return };
        state.partner = None;
        let target = self.name_of(partner);
        self.send(partner, &ServerMessage::HangUp { name: gone.as_str(), target: &target });
    }

    fn pair_if_free(&mut self, a: ConnId, b: ConnId) {
        if self.conns[&a].partner.is_none() && self.conns[&b].partner.is_none() {
            self.conns.get_mut(&a).expect("sender is connected").partner = Some(b);
            self.conns.get_mut(&b).expect("target was resolved").partner = Some(a);
        }
    }

    fn unpair(&mut self, a: ConnId, b: ConnId) {
        for conn in [a, b] {
            if let Some(state) = self.conns.get_mut(&conn) {
                state.partner = None;
            }
        }
    }

    fn resolve_target(&mut self, conn: ConnId, target: &str) -> Result<ConnId, Rejected> {
        match self.names.get(target) {
            Some(&to) if to == conn => {
                Err(self.reject(conn, ErrorCode::CannotCallSelf, "the target is yourself", Some(target)))
            }
            Some(&to) => Ok(to),
            None => Err(self.reject(
                conn,
                ErrorCode::NoSuchUser,
                "no user of that name is signed in",
                Some(target),
            )),
        }
    }

    fn name_of(&self, conn: ConnId) -> String {
        self.conns.get(&conn).and_then(|c| c.name.as_ref()).map(|n| n.as_str().to_owned()).unwrap_or_default()
    }

    fn presence_changed(&mut self, now: Instant) {
        let quiet = self.userlist.last_sent.is_none_or(|last| now >= last + self.config.userlist_interval);
        if quiet {
            self.broadcast_userlist(now);
        } else {
            self.userlist.dirty = true;
        }
    }

    fn broadcast_userlist(&mut self, now: Instant) {
        let users = self.users().collect();
        let payload: Payload = ServerMessage::UserList { users }.to_json().into();
        self.broadcast_payload(payload);
        self.userlist = UserListSchedule { dirty: false, last_sent: Some(now) };
    }

    fn broadcast(&mut self, msg: &ServerMessage<'_>) {
        self.broadcast_payload(msg.to_json().into());
    }

    /// To every signed-in connection.
    fn broadcast_payload(&mut self, payload: Payload) {
        let outputs = self.names.values().map(|&to| Output { to, payload: payload.clone() });
        self.outputs.extend(outputs);
    }

    fn send(&mut self, to: ConnId, msg: &ServerMessage<'_>) {
        self.outputs.push_back(Output { to, payload: msg.to_json().into() });
    }

    fn reject(&mut self, conn: ConnId, code: ErrorCode, message: &str, target: Option<&str>) -> Rejected {
        self.send(conn, &ServerMessage::Error { code, message, target });
        Rejected(code)
    }
}

#[cfg(test)]
mod tests;
