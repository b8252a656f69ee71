//! The hub: presence (who is signed in to which room, under which name), routing (a
//! message for a user goes to that user's connection only), calls (who rings or talks to
//! whom, see [`calls`](self::calls)) and sessions (a dropped socket can be resumed).
//!
//! It never trusts what a client says about itself: every relayed message carries the
//! name the *sending connection* holds, whatever `name` the client wrote, and call
//! messages reach only the sender's call partner.
//!
//! ```text
//!          handle_text(conn, frame)
//!                    │
//!        parse ──────┴──► error reply to conn (connection carries on)
//!                    │
//!   username/resume ──► rooms[room].names ──► presence changed ──► userlist to the room
//!   call/accept/decline/hang-up ──► calls (ringing ─► active ─► ended)
//!   offer/answer/candidate ──► only to the partner of the sender's call
//!   connection lost ──► session detached: held for `resume_grace`, then ended
//! ```
//!
//! User lists are coalesced: at most one per room per [`HubConfig::userlist_interval`],
//! each serialized once and shared by every recipient, so a burst of a thousand sign-ins
//! costs a few lists, not a thousand times a thousand.
//!
//! Every deadline (a coalesced user list, a ring timeout, a resume grace period) is one
//! entry in an ordered set of timers, removed as soon as the state it guards changes.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limit::{Bucket, Rate};
use crate::name::UserName;
use crate::protocol::{ClientMessage, EndReason, ErrorCode, ServerMessage, valid_token};
use crate::room::RoomName;

mod away;
mod calls;
use calls::Claim;
mod events;
mod names;
mod placement;
mod presence;
mod quiet;
mod route;
mod sessions;

pub use events::{Event, Happened, Party, SessionEnd, Side};
pub use names::Admission;
use names::{Names, Reserved};
pub use quiet::{DoNotDisturb, Quiet};
use sessions::{Detached, Held};

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

/// Identifies one call (the `callId` on the wire); never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct CallId(u64);

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
    /// Shortest time between two user-list broadcasts in a room. A presence change after
    /// a quiet spell is broadcast at once; changes within this window after a broadcast
    /// are gathered into one more broadcast at its end.
    pub userlist_interval: Duration,
    /// How long a call rings before it ends as missed.
    pub ring_timeout: Duration,
    /// How long a ringing-aware session whose socket dropped keeps its name and call,
    /// waiting for the client to `resume` it.
    pub resume_grace: Duration,
    /// Users that are services of the server (`echo`): listed in every room, never busy,
    /// and each call to one gets an instance of its own, a connection without a socket
    /// whose messages the shell hands to the service (see [`Hub::is_service`]).
    pub services: Vec<UserName>,
    /// How fast one connection may send; see [`Limits`].
    pub limits: Limits,
    /// The key that signs resume tokens (kept by the shell across restarts). With it, a
    /// `resume` after a restart proves the name with a token the old process issued;
    /// without it, tokens are plain random secrets and only a live session can be resumed.
    pub resume_key: Option<[u8; 32]>,
    /// Calls to a service (echo) at once from one client address; the next is "busy".
    pub service_calls_per_address: usize,
    /// Sessions one account may have at once in a room (phone, laptop, a second tab):
    /// all of them ring; signing in on one more ends the oldest.
    pub devices_per_account: usize,
}

/// Per-connection rate limits. A frame over its budget is refused with a
/// `rate-limited` error and has no other effect, so one member cannot make the server
/// send everyone else many times what they sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Every frame, whatever it is (call setup is a few dozen frames, an ICE restart as
    /// many again).
    pub frames: Rate,
    /// Chat lines and renames, which every member of the room receives.
    pub chat: Rate,
    /// Chat lines and renames of all the connections of one client address together, so
    /// that opening many sockets does not multiply the budget.
    pub chat_per_address: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frames: Rate::per_second(200, 50),
            chat: Rate::per_second(8, 1),
            chat_per_address: Rate::per_second(16, 2),
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            userlist_interval: Duration::from_millis(50),
            ring_timeout: Duration::from_secs(30),
            resume_grace: Duration::from_secs(20),
            services: Vec::new(),
            limits: Limits::default(),
            resume_key: None,
            service_calls_per_address: 2,
            devices_per_account: 5,
        }
    }
}

/// Why a frame was refused. The client has already been sent the `error` reply; this is
/// for the caller's logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub ErrorCode);

/// One session: a connection, and what it signed in as.
#[derive(Debug)]
struct Conn {
    room: RoomName,
    /// `None` until the client sends `username` (or `resume`); such a connection can do
    /// nothing else and receives no user lists.
    name: Option<UserName>,
    /// Speaks the ringing messages (`incoming-call`, `call-ended`...) rather than only
    /// MDN's, and may resume.
    ringing: bool,
    /// The secret a `resume` must show to take this session over.
    token: Box<str>,
    /// The call this session rings or talks in (each device of a callee rings in it).
    /// Always mutual with the call's parties.
    call: Option<CallId>,
    /// Set while the session has no socket (boxed: rare, and every connection would
    /// carry its size).
    detached: Option<Box<Detached>>,
    /// After a server restart: the call this session says it was in, waiting for its
    /// partner to resume.
    claim: Option<Box<Claim>>,
    /// An instance of a service user, made for one call and gone with it.
    service: bool,
    /// The client's address (of its latest socket), for limits per address.
    address: IpAddr,
    /// Who the shell let in: a guest picks a name, an account or a named invite has one.
    admission: Admission,
    /// Names the session for what outlives a socket (TURN credentials): the id of the
    /// connection that first signed in, kept through resumes.
    session: u64,
    /// Every frame this connection sends counts here ([`Limits::frames`]).
    frames: Bucket,
    /// Chat lines and renames ([`Limits::chat`]).
    chat: Bucket,
    /// A guest's do not disturb (an account's is in [`Hub::quiet`], one for all devices).
    quiet: quiet::Quiet,
    /// Stands for an account none of whose devices is online, while a call rings it by
    /// push (see `hub/away.rs`): in no room's names, no socket, gone with its call.
    away: bool,
}

impl Conn {
    /// A session of `conn` in `room`, not signed in, in no call, with fresh budgets.
    fn new(room: RoomName, token: Box<str>, address: IpAddr, admission: Admission, conn: ConnId) -> Self {
        Self {
            room,
            name: None,
            ringing: false,
            token,
            call: None,
            detached: None,
            claim: None,
            service: false,
            address,
            admission,
            session: conn.0,
            frames: Bucket::default(),
            chat: Bucket::default(),
            quiet: quiet::Quiet::default(),
            away: false,
        }
    }
}

impl Hub {
    /// A session without a socket, for one call that `caller` makes (in its room, from
    /// its address): a service's instance, or the stand-in of an account's devices. Its
    /// token is empty and it is in no room's names, so nothing can resume it.
    fn socketless(&mut self, caller: ConnId, name: UserName, admission: Admission) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let state = &self.conns[&caller];
        let mut conn = Conn::new(state.room.clone(), "".into(), state.address, admission, id);
        conn.name = Some(name);
        conn.ringing = true;
        self.conns.insert(id, conn);
        id
    }
}

#[derive(Debug, Default)]
struct Room {
    /// Signed-in users, sorted so the user list reads alphabetically; no two look alike.
    names: Names,
    /// A user list is scheduled (its timer is in `Hub::timers`).
    userlist_dirty: bool,
    userlist_last: Option<Instant>,
}

/// What a timer is for. Each is removed when the state it guards changes, so one that
/// fires is always due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    UserList(RoomName),
    Ring(CallId),
    Grace(ConnId),
    Claim(ConnId),
}

/// Presence, routing, calls and sessions; see the crate documentation for the run loop.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    next_conn: u64,
    next_call: u64,
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<RoomName, Room>,
    calls: HashMap<CallId, calls::Call>,
    timers: BTreeSet<(Instant, Timer)>,
    outputs: VecDeque<Output>,
    /// What happened since the shell last asked ([`Hub::poll_event`]).
    events: VecDeque<Happened>,
    /// Account names: no guest takes one or a look-alike.
    reserved: Reserved,
    /// Chat budgets per client address.
    chat_by_address: crate::limit::PerAddress,
    /// Accounts' do not disturb, by account name.
    quiet: HashMap<UserName, quiet::Quiet>,
    /// Accounts whose devices can be rung by push while none is online.
    reachable: std::collections::HashSet<UserName>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Self {
            config,
            next_conn: 1,
            next_call: 1,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            calls: HashMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            reserved: Reserved::default(),
            chat_by_address: crate::limit::PerAddress::default(),
            quiet: HashMap::new(),
            reachable: std::collections::HashSet::new(),
        }
    }

    /// A new connection to `room` from `address`. `nonce` is a fresh secret from the
    /// shell's random source (16 to 32 URL-safe characters): a client that signs in as
    /// ringing-aware is given a token made from it, to `resume` its session after a
    /// dropped socket. Queues the `id` message.
    pub fn connect(&mut self, room: RoomName, nonce: &str, address: IpAddr) -> ConnId {
        self.connect_as(room, nonce, address, Admission::Guest)
    }

    /// [`Hub::connect`] for a connection the shell admitted as `admission` (an account,
    /// an invite that fixes the name).
    pub fn connect_as(
        &mut self,
        room: RoomName,
        nonce: &str,
        address: IpAddr,
        admission: Admission,
    ) -> ConnId {
        debug_assert!(valid_token(nonce) && nonce.len() <= 32, "the shell issues well-formed nonces");
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(conn, Conn::new(room, nonce.into(), address, admission, conn));
        self.send(conn, &ServerMessage::Id { id: conn.get() });
        conn
    }

    /// The names of accounts: from now on no guest signs in under one of them or a name
    /// that looks like one (guests already online keep theirs until the account holder
    /// signs in, which replaces them).
    pub fn reserve_names(&mut self, names: impl IntoIterator<Item = UserName>) {
        self.reserved = Reserved::new(names);
    }

    /// The client left on purpose (it closed the socket). Its call ends (the partner is
    /// told), its name is freed and its room gets a new user list. Harmless twice.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        self.end_session(now, conn, SessionEnd::Left);
    }

    /// A binary frame arrived: the protocol is text only.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId) -> Result<(), Rejected> {
        if !self.within_budget(now, conn, |limits| limits.frames, |c| &mut c.frames) {
            return self.rate_limited(conn);
        }
        Err(self.reject(conn, ErrorCode::BinaryFrame, "duet speaks JSON in text frames only", None))
    }

    /// A text frame arrived on `conn`.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) -> Result<(), Rejected> {
        self.handle(now, conn, || ClientMessage::parse(text))
    }

    /// A message from a participant that is not a socket (a service instance, see
    /// [`Hub::is_service`]), already typed: the same budgets, checks and routing as a
    /// text frame, without JSON in between.
    pub fn handle_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        msg: ClientMessage<'_>,
    ) -> Result<(), Rejected> {
        self.handle(now, conn, || Ok(msg))
    }

    fn handle<'a>(
        &mut self,
        now: Instant,
        conn: ConnId,
        msg: impl FnOnce() -> Result<ClientMessage<'a>, crate::ProtocolError>,
    ) -> Result<(), Rejected> {
        if self.conns.get(&conn).is_none_or(|c| c.detached.is_some()) {
            return Ok(()); // closed or taken over meanwhile; nobody to answer
        }
        if !self.within_budget(now, conn, |limits| limits.frames, |c| &mut c.frames) {
            return self.rate_limited(conn);
        }
        let msg = match msg() {
            Ok(msg) => msg,
            Err(e) => return Err(self.reject(conn, e.code(), &e.to_string(), None)),
        };
        let chatty = match &msg {
            ClientMessage::Message { .. } | ClientMessage::Quiet { .. } => true,
            ClientMessage::Username { .. } => self.conns[&conn].name.is_some(), // a rename
            _ => false,
        };
        if chatty
            && !(self.within_budget(now, conn, |limits| limits.chat, |c| &mut c.chat)
                && self.chat_by_address.take(
                    self.conns[&conn].address,
                    self.config.limits.chat_per_address,
                    now,
                ))
        {
            return self.rate_limited(conn);
        }
        self.route(now, conn, msg)
    }

    /// When [`Hub::handle_timeout`] next has work to do, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Time has reached (or passed) what [`Hub::poll_timeout`] said.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.timers.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, timer)) = self.timers.pop_first() else { break };
            match timer {
                Timer::UserList(room) => {
                    if self.rooms.get(&room).is_some_and(|r| r.userlist_dirty) {
                        self.broadcast_userlist(now, &room);
                    }
                }
                Timer::Ring(id) => {
                    if self.calls.get(&id).is_some_and(calls::Call::is_ringing) {
                        self.end_call(now, id, EndReason::Missed, None);
                    }
                }
                Timer::Grace(conn) => {
                    if self.conns.get(&conn).is_some_and(|c| c.detached.is_some()) {
                        self.end_session(now, conn, SessionEnd::Lost);
                    }
                }
                Timer::Claim(conn) => self.claim_expired(conn),
            }
        }
    }

    /// The next frame to send, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Signed-in names in `room`, sorted (what its next user list will say).
    pub fn users_in(&self, room: &RoomName) -> Vec<&str> {
        self.rooms.get(room).map(|r| r.names.keys().map(UserName::as_str).collect()).unwrap_or_default()
    }

    /// Signed-in users in every room, detached sessions included.
    pub fn user_count(&self) -> usize {
        self.rooms.values().map(|r| r.names.len()).sum()
    }

    /// Calls ringing or under way.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Whether `conn` has signed in (or resumed a session).
    pub fn is_signed_in(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.name.is_some() && c.detached.is_none())
    }

    /// Open connections, signed in or not (detached sessions and services have none).
    pub fn connection_count(&self) -> usize {
        self.conns.values().filter(|c| c.detached.is_none() && !c.service && !c.away).count()
    }

    /// The session `conn` belongs to (the same across resumes), for what the shell keeps
    /// per session (TURN credentials are issued to `duet-<session>`).
    pub fn session_of(&self, conn: ConnId) -> Option<u64> {
        self.conns.get(&conn).map(|c| c.session)
    }

    /// Whether `conn` is an instance of a service user: the shell hands its messages to
    /// the service and feeds the service's replies to [`Hub::handle_text`] as from `conn`.
    pub fn is_service(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.service)
    }

    /// The service user `conn` is an instance of.
    pub fn service_name(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).filter(|c| c.service).and_then(|c| c.name.as_ref()).map(UserName::as_str)
    }

    /// Ends a session for good: its call, its claim, its name.
    fn end_session(&mut self, now: Instant, conn: ConnId, why: SessionEnd) {
        let Some(state) = self.conns.get(&conn) else { return };
        let room_name = state.room.clone();
        // Out of the room first, so the user list the ended call triggers leaves it out.
        let room = state.name.as_ref().and_then(|name| {
            let room = self.rooms.get_mut(&room_name)?;
            room.names.remove(name, conn);
            Some(room)
        });
        let emptied = room.is_some_and(|r| r.names.is_empty());
        if let Some(id) = state.call
            && !self.leave_ringing(id, conn)
        {
            self.end_call(now, id, EndReason::Disconnected, Some(conn));
        }
        // A service instance is gone with its call already.
        if self.conns.get(&conn).is_some_and(|c| !c.service && c.name.is_some()) {
            let who = self.party(conn);
            self.emit(now, Event::SessionEnded { room: room_name.clone(), who, why });
        }
        let Some(gone) = self.conns.remove(&conn) else { return };
        if let Some(detached) = &gone.detached {
            self.timers.remove(&(detached.timer_at, Timer::Grace(conn)));
        }
        if let Some(claim) = gone.claim.as_deref() {
            self.timers.remove(&(claim.until, Timer::Claim(conn)));
        }
        if gone.name.is_none() {
            return;
        }
        if emptied && let Some(room) = self.rooms.remove(&room_name) {
            if room.userlist_dirty {
                let due =
                    room.userlist_last.expect("dirty only after a broadcast") + self.config.userlist_interval;
                self.timers.remove(&(due, Timer::UserList(room_name)));
            }
        } else {
            self.presence_changed(now, &room_name);
        }
    }

    /// The session `target` names for `conn`: its partner when `conn` is in a call with
    /// them, else the oldest session holding that name (see [`Hub::person`]).
    fn resolve_target(&mut self, conn: ConnId, target: &str) -> Result<ConnId, Rejected> {
        let state = &self.conns[&conn];
        let partner = state.call.map(|id| self.calls[&id].other(conn));
        if let Some(partner) = partner.filter(|&p| self.name_is(p, target)) {
            return Ok(partner);
        }
        Ok(self.person(conn, target)?[0])
    }

    /// Every session of the person `target` in `conn`'s room (one, or one per device of
    /// an account), oldest first; never empty.
    fn person(&mut self, conn: ConnId, target: &str) -> Result<Vec<ConnId>, Rejected> {
        let state = &self.conns[&conn];
        let sessions = self.rooms.get(&state.room).map_or(&[][..], |r| r.names.get(target));
        if sessions.contains(&conn) {
            return Err(self.reject(conn, ErrorCode::CannotCallSelf, "the target is yourself", Some(target)));
        }
        if !sessions.is_empty() {
            return Ok(sessions.to_vec());
        }
        // After a restart (or a node's death), the partner this session waits for has not
        // resumed yet: what it sends them is dropped without an error, since a page takes
        // `no-such-user` for the end of its call.
        if state.claim.as_deref().is_some_and(|claim| claim.partner.as_str() == target) {
            return Err(Rejected(ErrorCode::NotInCall));
        }
        Err(self.reject(conn, ErrorCode::NoSuchUser, "no user of that name is signed in", Some(target)))
    }

    fn name_is(&self, conn: ConnId, name: &str) -> bool {
        self.conns.get(&conn).and_then(|c| c.name.as_ref()).is_some_and(|n| n.as_str() == name)
    }

    fn name_of(&self, conn: ConnId) -> String {
        self.conns.get(&conn).and_then(|c| c.name.as_ref()).map(|n| n.as_str().to_owned()).unwrap_or_default()
    }

    fn send(&mut self, to: ConnId, msg: &ServerMessage<'_>) {
        self.deliver(to, msg.to_json().into(), Held::Direct);
    }

    /// Counts one frame of `conn` against a budget; false when it is spent.
    fn within_budget(
        &mut self,
        now: Instant,
        conn: ConnId,
        rate: impl FnOnce(&Limits) -> Rate,
        bucket: impl FnOnce(&mut Conn) -> &mut Bucket,
    ) -> bool {
        let rate = rate(&self.config.limits);
        self.conns.get_mut(&conn).is_none_or(|state| bucket(state).take(rate, now))
    }

    fn rate_limited(&mut self, conn: ConnId) -> Result<(), Rejected> {
        let message = "too many messages: this one was dropped; slow down";
        Err(self.reject(conn, ErrorCode::RateLimited, message, None))
    }

    fn reject(&mut self, conn: ConnId, code: ErrorCode, message: &str, target: Option<&str>) -> Rejected {
        self.send(
            conn,
            &ServerMessage::Error { code, message: message.into(), target: target.map(Cow::Borrowed) },
        );
        Rejected(code)
    }
}

#[cfg(test)]
mod tests;
