//! What happens in the hub, said once and typed, for the shell: sessions coming and
//! going, calls ringing, answered and ending (who, when, why), service calls. The frames
//! tell the clients the same thing in their own words; these are for what the shell
//! builds beside the calls (metrics, call history, push ringing), so none of it has to
//! parse conclusions out of frames.
//!
//! ```text
//!  sign-in ─► SessionStarted      resume ─► SessionResumed      end ─► SessionEnded{why}
//!
//!  call ─► CallRinging ─┬─ accept ─► CallAnswered ─► CallEnded{hung-up | disconnected}
//!     │                 └─ CallEnded{declined | cancelled | missed | disconnected}
//!     ├─ callee talks MDN only ─► CallAnswered (at once) ─► CallEnded
//!     ├─ callee busy ─► CallBusy (no call was made)
//!     └─ a service ─► ServiceCallStarted ─► ServiceCallEnded   (or ServiceBusy)
//!  both sides resume the same call after a restart ─► CallRestored ─► CallEnded
//! ```
//!
//! Every event carries the instant it happened on the caller's clock; they come out of
//! [`Hub::poll_event`] in the order they happened. A room moved to another node
//! ([`Hub::evict_room`]) ends its sessions here as `Moved` and its calls silently: they
//! go on, restored, on the node that serves the room now.

use std::time::Instant;

use super::calls::Call;
use super::{CallId, ConnId, Hub};
use crate::hub::names::Admission;
use crate::name::UserName;
use crate::protocol::EndReason;
use crate::room::RoomName;

/// One session, by the id that outlives its sockets, under the name it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The same through resumes (see [`Hub::session_of`]).
    pub session: u64,
    pub name: UserName,
    /// Signed in with an account (the name is that account's).
    pub verified: bool,
}

/// Which side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Callee,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client left (closed its socket, signed out), or the shell ended the session
    /// (its cookie was revoked).
    Left,
    /// Its socket dropped and it did not come back in time (or could not, having missed
    /// too much meanwhile).
    Lost,
    /// The same account signed in elsewhere and took the name.
    Replaced,
    /// Its room is served by another node now, where the client resumes.
    Moved,
}

impl SessionEnd {
    pub const ALL: [Self; 4] = [Self::Left, Self::Lost, Self::Replaced, Self::Moved];

    /// One word, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Lost => "lost",
            Self::Replaced => "replaced",
            Self::Moved => "moved",
        }
    }
}

/// Something that happened, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Happened {
    pub at: Instant,
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Signed in for the first time on this connection, admitted as `admission`.
    SessionStarted {
        room: RoomName,
        who: Party,
        admission: Admission,
    },
    /// A session taken back by a new socket (or, after a restart, by a token this
    /// server's key signed).
    SessionResumed {
        room: RoomName,
        who: Party,
    },
    SessionEnded {
        room: RoomName,
        who: Party,
        why: SessionEnd,
    },
    /// A call rings for its callee (on each of its devices; `callee` is the first).
    CallRinging {
        call: u64,
        room: RoomName,
        caller: Party,
        callee: Party,
        voice: bool,
    },
    /// The callee picked up (or, for a callee whose client cannot ring, the call began).
    CallAnswered {
        call: u64,
        room: RoomName,
        caller: Party,
        callee: Party,
    },
    /// Both sides resumed saying they were in a call with each other (after a restart or
    /// on another node): the call is known again, under a new id.
    CallRestored {
        call: u64,
        room: RoomName,
        caller: Party,
        callee: Party,
    },
    /// A call is over: `reason` says how, `by` which side ended it (none: the ring timed
    /// out), `began` when it was made, `answered` when it was answered, if it was.
    CallEnded {
        call: u64,
        room: RoomName,
        caller: Party,
        callee: Party,
        reason: EndReason,
        by: Option<Side>,
        began: Instant,
        answered: Option<Instant>,
        /// Made as a voice call.
        voice: bool,
    },
    /// `caller` called `callee`, who was in a call: nothing else happened.
    CallBusy {
        room: RoomName,
        caller: Party,
        callee: Party,
        voice: bool,
    },
    /// `caller` called `callee`, who is not taking calls (do not disturb, or calls from
    /// guests silenced): nothing rang.
    CallUnavailable {
        room: RoomName,
        caller: Party,
        callee: Party,
        voice: bool,
    },
    /// `who` changed their do not disturb (for an account: for all its devices).
    QuietChanged {
        who: Party,
        quiet: super::Quiet,
    },
    /// A call to a service: `instance` is the connection without a socket made for it,
    /// whose frames the shell hands to the service (see [`Hub::is_service`]).
    ServiceCallStarted {
        call: u64,
        room: RoomName,
        service: UserName,
        instance: ConnId,
        caller: Party,
    },
    ServiceCallEnded {
        call: u64,
        room: RoomName,
        service: UserName,
        caller: Party,
        reason: EndReason,
    },
    /// The caller's address has its share of service calls already.
    ServiceBusy {
        room: RoomName,
        service: UserName,
        caller: Party,
    },
}

impl Hub {
    /// The next thing that happened, in order, until `None`. Drain it after every call
    /// into the hub, as [`Hub::poll_output`].
    pub fn poll_event(&mut self) -> Option<Happened> {
        self.events.pop_front()
    }

    pub(super) fn emit(&mut self, at: Instant, event: Event) {
        self.events.push_back(Happened { at, event });
    }

    /// `conn`'s session and name; `conn` is signed in (a call's party, say).
    pub(super) fn party(&self, conn: ConnId) -> Party {
        let state = &self.conns[&conn];
        let name = state.name.clone().expect("a party is signed in");
        Party { session: state.session, name, verified: state.admission.is_verified() }
    }

    /// The event for call `id` that just began: ringing, answered at once, restored, or
    /// a service's.
    pub(super) fn call_began(&mut self, at: Instant, id: CallId, restored: bool) {
        let call = &self.calls[&id];
        let (caller, callee, ringing) = (self.party(call.caller), self.party(call.callee), call.is_ringing());
        let room = self.conns[&call.caller].room.clone();
        let event = if self.is_service(call.callee) {
            Event::ServiceCallStarted {
                call: id.0,
                room,
                service: callee.name,
                instance: call.callee,
                caller,
            }
        } else if restored {
            Event::CallRestored { call: id.0, room, caller, callee }
        } else if ringing {
            Event::CallRinging { call: id.0, room, caller, callee, voice: call.voice }
        } else {
            Event::CallAnswered { call: id.0, room, caller, callee }
        };
        self.emit(at, event);
    }

    /// The event for call `id` (still in `calls`), just answered; services say nothing.
    pub(super) fn call_answered(&mut self, at: Instant, id: CallId) {
        let call = &self.calls[&id];
        if self.is_service(call.callee) {
            return;
        }
        let (caller, callee) = (self.party(call.caller), self.party(call.callee));
        let room = self.conns[&call.caller].room.clone();
        self.emit(at, Event::CallAnswered { call: id.0, room, caller, callee });
    }

    /// `caller` found `callee` busy.
    pub(super) fn call_busy(&mut self, at: Instant, caller: ConnId, callee: ConnId, voice: bool) {
        let room = self.conns[&caller].room.clone();
        let (caller, callee) = (self.party(caller), self.party(callee));
        self.emit(at, Event::CallBusy { room, caller, callee, voice });
    }

    /// `caller` found `callee` not taking calls.
    pub(super) fn call_unavailable(&mut self, at: Instant, caller: ConnId, callee: ConnId, voice: bool) {
        let room = self.conns[&caller].room.clone();
        let (caller, callee) = (self.party(caller), self.party(callee));
        self.emit(at, Event::CallUnavailable { room, caller, callee, voice });
    }

    /// `caller`'s address has its share of calls to `service` already.
    pub(super) fn service_busy(&mut self, at: Instant, caller: ConnId, service: UserName) {
        let room = self.conns[&caller].room.clone();
        let caller = self.party(caller);
        self.emit(at, Event::ServiceBusy { room, service, caller });
    }

    /// The event for call `id`, just ended and out of `calls`; its parties are still
    /// known.
    pub(super) fn call_ended(
        &mut self,
        at: Instant,
        id: CallId,
        call: &Call,
        reason: EndReason,
        by: Option<ConnId>,
    ) {
        let (caller, callee) = (self.party(call.caller), self.party(call.callee));
        let room = self.conns[&call.caller].room.clone();
        let event = if self.is_service(call.callee) {
            Event::ServiceCallEnded { call: id.0, room, service: callee.name, caller, reason }
        } else {
            let by = by.map(|by| if by == call.caller { Side::Caller } else { Side::Callee });
            let (began, answered, voice) = (call.began, call.answered, call.voice);
            Event::CallEnded { call: id.0, room, caller, callee, reason, by, began, answered, voice }
        };
        self.emit(at, event);
    }
}
