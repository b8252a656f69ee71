//! Calls: the hub knows every call by its id and state, and enforces it.
//!
//! ```text
//!   call ──► busy? ──yes──► call-ended{busy} to the caller; the callee's call untouched
//!     │
//!     ▼   (callee speaks ringing)            (callee speaks only MDN's messages)
//!  Ringing ──accept──► Active ◄──────────────────────── at once: call-accepted
//!     │ decline / caller hangs up / ring timeout / either leaves
//!     ▼
//!  ended: call-ended{declined | cancelled | missed | disconnected} (or MDN's hang-up)
//!
//!  Active ──hang-up / either leaves──► ended: call-ended{hung-up | disconnected}
//! ```
//!
//! A client that speaks only MDN's messages starts a call with its `video-offer`: the
//! call begins ringing if the callee speaks ringing (the offer is passed on at once and
//! the callee's client holds it until its user accepts), and is active at once
//! otherwise. Such a client hears `hang-up` where a ringing-aware one hears `call-ended`.
//!
//! An account signed in on several devices rings on each: the first `accept` takes the
//! call and the others hear `call-ended{answered-elsewhere}` at once; a decline on one
//! ends the call; a ringing device that leaves lets the others ring on.
//!
//! Glare: when A and B call each other at the same moment, the hub handles whichever
//! `call` arrives first as the call; the other one, from the callee of a call that rings
//! for the very person it calls, accepts that call. Exactly one call results, and its
//! caller makes the offer.
//!
//! Offers, answers, candidates and media states go only to the sender's call partner,
//! and an answer only once the callee has accepted.

use std::borrow::Cow;
use std::time::Instant;

use super::Rejected;
use super::{CallId, ConnId, Hub, Timer};
use crate::name::UserName;
use crate::protocol::{EndReason, ErrorCode, Role, ServerMessage};

/// After a restart, what a resumed session said of its call: who with, until when the
/// hub waits for them to resume saying the same, and whether this side hung up meanwhile.
#[derive(Debug)]
pub(super) struct Claim {
    pub(super) partner: UserName,
    pub(super) until: Instant,
    pub(super) hung_up: bool,
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) caller: ConnId,
    /// The callee's session that answered, or, while the call rings, the first of the
    /// callee's devices that ring.
    pub(super) callee: ConnId,
    /// While the call rings: the callee's other devices, ringing too.
    pub(super) also: Vec<ConnId>,
    /// While the call rings: when it ends as missed.
    pub(super) ringing_until: Option<Instant>,
    /// Begun by a `video-offer` (an MDN-style caller): the caller's offer and candidates
    /// pass to the callee while it rings, for its client to hold until accepted.
    pub(super) offered: bool,
    /// When the call was made.
    pub(super) began: Instant,
    /// When the callee answered (at once, for a callee that cannot ring).
    pub(super) answered: Option<Instant>,
    /// A voice call (as the caller asked; the media may change mid-call).
    pub(super) voice: bool,
}

impl Call {
    pub(super) fn is_ringing(&self) -> bool {
        self.ringing_until.is_some()
    }

    pub(super) fn other(&self, conn: ConnId) -> ConnId {
        if conn == self.caller { self.callee } else { self.caller }
    }

    /// Whether the call rings on `conn` (one of the callee's devices).
    pub(super) fn rings_for(&self, conn: ConnId) -> bool {
        self.is_ringing() && (self.callee == conn || self.also.contains(&conn))
    }

    /// Every session in the call: the caller, the callee and its other ringing devices.
    pub(super) fn parties(&self) -> impl Iterator<Item = ConnId> + '_ {
        [self.caller, self.callee].into_iter().chain(self.also.iter().copied())
    }

    /// The callee's sessions the call rings or talks on.
    pub(super) fn callees(&self) -> impl Iterator<Item = ConnId> + '_ {
        std::iter::once(self.callee).chain(self.also.iter().copied())
    }

    pub(super) fn replace(&mut self, old: ConnId, new: ConnId) {
        for party in [&mut self.caller, &mut self.callee].into_iter().chain(self.also.iter_mut()) {
            if *party == old {
                *party = new;
            }
        }
    }
}

/// Who is told that a call was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tell {
    /// The caller, to make its offer.
    Caller,
    /// Both, after glare: the callee asked to call too.
    Both,
    /// Nobody: a call restored after a restart, which both sides know is on (and which
    /// was answered before).
    Neither,
}

/// What a call's target turned out to be.
enum Service {
    /// Not a service (or the caller is in a call): the usual checks answer.
    NotOne,
    /// A new instance of the service, for this call.
    Instance(ConnId),
    /// The caller's address has its share of calls to this service already.
    Busy(UserName),
}

/// What a relayed call message is, for the checks in [`Hub::call_route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relay {
    Answer,
    Candidate,
    MediaState,
}

impl Hub {
    /// `call`: ring `target`.
    pub(super) fn call(
        &mut self,
        now: Instant,
        conn: ConnId,
        sender: &UserName,
        target: &str,
        voice: bool,
    ) -> Result<(), Rejected> {
        let to = match self.new_service_instance(conn, target) {
            Service::Instance(instance) => vec![instance],
            Service::Busy(service) => {
                self.service_busy(now, conn, service);
                self.tell_ended(conn, None, target, EndReason::Busy);
                return Ok(());
            }
            Service::NotOne => match self.away_account(conn, target) {
                Some(account) => return self.ring_away(now, conn, account, voice),
                None => self.person(conn, target)?,
            },
        };
        self.conns.get_mut(&conn).expect("signed in").ringing = true;
        if let Some(id) = self.conns[&conn].call {
            let call = &self.calls[&id];
            if call.rings_for(conn) && to.contains(&call.caller) {
                // Glare: this call answers the one ringing here.
                self.answer_on(id, conn);
                self.activate(now, id, Tell::Both);
                return Ok(());
            }
            return Err(self.reject(
                conn,
                ErrorCode::AlreadyInCall,
                "you are in a call already; hang up first",
                Some(target),
            ));
        }
        if self.not_now(now, conn, &to, target, voice) {
            return Ok(());
        }
        let id = self.start_call(now, conn, &to, false);
        self.calls.get_mut(&id).expect("just made").voice = voice;
        self.call_began(now, id, false);
        if self.calls[&id].is_ringing() {
            self.send(conn, &ServerMessage::Ringing { call_id: id.0, target: target.into(), away: false });
            let incoming = ServerMessage::IncomingCall { call_id: id.0, name: sender.as_str().into(), voice };
            let devices: Vec<ConnId> = self.calls[&id].callees().collect();
            for device in devices {
                self.send(device, &incoming);
            }
        } else {
            self.send(
                conn,
                &ServerMessage::CallAccepted { call_id: id.0, name: target.into(), role: Role::Caller },
            );
        }
        Ok(())
    }

    /// Whether the person `to` (their sessions) takes no call from `conn` now: they want
    /// quiet, or are busy. The caller has been told.
    pub(super) fn not_now(
        &mut self,
        now: Instant,
        conn: ConnId,
        to: &[ConnId],
        target: &str,
        voice: bool,
    ) -> bool {
        if self.refuses_call(now, conn, to[0]) {
            self.call_unavailable(now, conn, to[0], voice);
            self.tell_ended(conn, None, target, EndReason::Unavailable);
            // The callee's devices hear it too, without ringing: a call for Recent.
            let caller = self.name_of(conn);
            for &device in to {
                if self.conns[&device].ringing {
                    self.tell_ended(device, None, &caller, EndReason::Unavailable);
                }
            }
            return true;
        }
        if let Some(&busy) = to.iter().find(|d| self.conns[d].call.is_some()) {
            self.call_busy(now, conn, busy, voice);
            self.tell_ended(conn, None, target, EndReason::Busy);
            return true;
        }
        false
    }

    /// `accept`: the callee picks up a ringing call.
    pub(super) fn accept(&mut self, now: Instant, conn: ConnId, id: CallId) -> Result<(), Rejected> {
        self.ringing_for(conn, id)?;
        self.answer_on(id, conn);
        self.activate(now, id, Tell::Caller);
        Ok(())
    }

    /// The callee's device `device` takes ringing call `id`: its other devices stop
    /// ringing at once (`call-ended{answered-elsewhere}`) and are free again.
    fn answer_on(&mut self, id: CallId, device: ConnId) {
        let call = self.calls.get_mut(&id).expect("ringing calls exist");
        let mut others = std::mem::take(&mut call.also);
        if call.callee != device {
            others.retain(|&d| d != device);
            others.push(std::mem::replace(&mut call.callee, device));
        }
        let caller = call.caller;
        let caller = self.name_of(caller);
        for other in others {
            if self.conns.get(&other).is_some_and(|c| c.away) {
                self.conns.remove(&other); // it stood for the devices, one of which answered
                continue;
            }
            if let Some(state) = self.conns.get_mut(&other) {
                state.call = None;
            }
            self.tell_ended(other, Some(id), &caller, EndReason::AnsweredElsewhere);
        }
    }

    /// The account holder `account` declines ringing call `id` from outside any page (the
    /// Decline of a push notification): as a decline on one of its devices. False when
    /// no call of that id rings for that account.
    pub fn decline_for_account(&mut self, now: Instant, account: &UserName, id: u64) -> bool {
        let id = CallId(id);
        let rings = self.calls.get(&id).is_some_and(|call| {
            call.is_ringing()
                && self
                    .conns
                    .get(&call.callee)
                    .is_some_and(|c| c.name.as_ref() == Some(account) && c.admission.is_verified())
        });
        if rings {
            // Every device and the caller hear `declined`.
            self.end_call(now, id, EndReason::Declined, None);
        }
        rings
    }

    /// A device of an account signs in while a call rings for the account (on its other
    /// devices; or it was opened from the ringing notification): it rings here too.
    pub(super) fn ring_here_too(&mut self, conn: ConnId) {
        let state = &self.conns[&conn];
        if !state.ringing || !state.admission.is_verified() || state.call.is_some() {
            return;
        }
        let ringing = self.calls.iter().find(|(_, call)| {
            call.is_ringing()
                && !call.offered
                && self.conns.get(&call.callee).is_some_and(|c| c.name == state.name && c.room == state.room)
        });
        let Some((&id, call)) = ringing else { return };
        let (caller, voice) = (call.caller, call.voice);
        let first_online = self.conns.get(&call.callee).is_some_and(|c| c.away) && call.also.is_empty();
        self.calls.get_mut(&id).expect("found").also.push(conn);
        self.conns.get_mut(&conn).expect("signed in").call = Some(id);
        let name = self.name_of(caller);
        self.send(conn, &ServerMessage::IncomingCall { call_id: id.0, name: name.into(), voice });
        if first_online {
            // The caller's "calling their devices" becomes "ringing".
            let target = self.name_of(conn);
            self.send(caller, &ServerMessage::Ringing { call_id: id.0, target: target.into(), away: false });
        }
    }

    /// One of the callee's devices goes away while call `id` rings on others: the call
    /// rings on there. False (nothing done) when the call does not ring on another one.
    pub(super) fn leave_ringing(&mut self, id: CallId, conn: ConnId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        if !call.rings_for(conn) || call.also.is_empty() {
            return false;
        }
        if call.callee == conn {
            call.callee = call.also.remove(0);
        } else {
            call.also.retain(|&d| d != conn);
        }
        if let Some(state) = self.conns.get_mut(&conn) {
            state.call = None;
        }
        true
    }

    /// `decline`: the callee refuses a ringing call.
    pub(super) fn decline(&mut self, now: Instant, conn: ConnId, id: CallId) -> Result<(), Rejected> {
        self.ringing_for(conn, id)?;
        self.end_call(now, id, EndReason::Declined, Some(conn));
        Ok(())
    }

    /// `hang-up`: ends the sender's call, ringing or not. A `target`, if given, must be
    /// the partner.
    pub(super) fn hang_up(
        &mut self,
        now: Instant,
        conn: ConnId,
        target: Option<&str>,
        failed: bool,
    ) -> Result<(), Rejected> {
        let state = self.conns.get_mut(&conn).expect("checked by handle_text");
        if let Some(claim) = state.claim.as_deref_mut()
            && target.is_none_or(|target| claim.partner.as_str() == target)
        {
            // Hanging up on a partner who has not resumed yet: they hear it when they do.
            claim.hung_up = true;
            return Ok(());
        }
        let to = target.map(|t| self.resolve_target(conn, t)).transpose()?;
        let call = self.conns[&conn].call.filter(|id| to.is_none_or(|to| self.calls[id].other(conn) == to));
        let Some(id) = call else {
            let message = "you are in no call with them";
            return Err(self.reject(conn, ErrorCode::NotInCall, message, target));
        };
        let call = &self.calls[&id];
        let reason = match (call.is_ringing(), call.caller == conn) {
            (true, true) => EndReason::Cancelled,
            (true, false) => EndReason::Declined,
            (false, _) if failed => EndReason::Failed,
            (false, _) => EndReason::HungUp,
        };
        self.end_call(now, id, reason, Some(conn));
        Ok(())
    }

    /// Where a `video-offer` goes: the partner of the sender's call, or, from someone in
    /// no call, the target of a new call. `None` when the target is busy (the sender has
    /// been told).
    pub(super) fn offer_route(
        &mut self,
        now: Instant,
        conn: ConnId,
        sender: &UserName,
        target: &str,
    ) -> Result<Option<ConnId>, Rejected> {
        let to = match self.new_service_instance(conn, target) {
            Service::Instance(instance) => vec![instance],
            Service::Busy(service) => {
                self.service_busy(now, conn, service);
                self.tell_ended(conn, None, target, EndReason::Busy);
                return Ok(None);
            }
            Service::NotOne if self.conns[&conn].call.is_some() => vec![self.resolve_target(conn, target)?],
            Service::NotOne => self.person(conn, target)?,
        };
        if let Some(id) = self.conns[&conn].call {
            let to = to[0];
            let call = &self.calls[&id];
            if call.other(conn) != to {
                let message = "you are in a call already; hang up first";
                return Err(self.reject(conn, ErrorCode::AlreadyInCall, message, Some(target)));
            }
            if call.is_ringing() && !(call.offered && call.caller == conn) {
                let message = "the call has not been accepted yet";
                return Err(self.reject(conn, ErrorCode::CallNotAccepted, message, Some(target)));
            }
            return Ok(Some(to));
        }
        if self.not_now(now, conn, &to, target, false) {
            return Ok(None);
        }
        let id = self.start_call(now, conn, &to, true);
        self.call_began(now, id, false);
        let callee = self.calls[&id].callee;
        if self.calls[&id].is_ringing() {
            let incoming =
                ServerMessage::IncomingCall { call_id: id.0, name: sender.as_str().into(), voice: false };
            self.send(callee, &incoming);
        }
        Ok(Some(callee))
    }

    /// Where an answer, candidate or media state goes: the sender's call partner.
    pub(super) fn call_route(&mut self, conn: ConnId, target: &str, kind: Relay) -> Result<ConnId, Rejected> {
        let to = self.resolve_target(conn, target)?;
        let call = self.conns[&conn].call.map(|id| &self.calls[&id]).filter(|call| call.other(conn) == to);
        let Some(call) = call else {
            return Err(self.reject(
                conn,
                ErrorCode::NotInCall,
                "you are in no call with them",
                Some(target),
            ));
        };
        let allowed = !call.is_ringing()
            || match kind {
                Relay::MediaState => true,
                Relay::Candidate => call.offered && call.caller == conn,
                Relay::Answer => false,
            };
        if !allowed {
            let message = "the call has not been accepted yet";
            return Err(self.reject(conn, ErrorCode::CallNotAccepted, message, Some(target)));
        }
        Ok(to)
    }

    /// A new call between two people in no call: ringing on every device of the callee
    /// that speaks ringing (on the first only for a caller that offered first: its offer
    /// goes to one), active at once with the callee's first session if none does.
    pub(super) fn start_call(
        &mut self,
        now: Instant,
        caller: ConnId,
        callees: &[ConnId],
        offered: bool,
    ) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        let mut ringing: Vec<ConnId> = callees.iter().copied().filter(|d| self.conns[d].ringing).collect();
        if offered {
            ringing.truncate(1);
        }
        let ringing_until = (!ringing.is_empty()).then(|| now + self.config.ring_timeout);
        if let Some(until) = ringing_until {
            self.timers.insert((until, Timer::Ring(id)));
        }
        let (callee, also) = match ringing.split_first() {
            Some((first, rest)) => (*first, rest.to_vec()),
            None => (callees[0], Vec::new()),
        };
        let answered = ringing_until.is_none().then_some(now);
        let call = Call { caller, callee, also, ringing_until, offered, began: now, answered, voice: false };
        let parties: Vec<ConnId> = call.parties().collect();
        self.calls.insert(id, call);
        for party in parties {
            self.conns.get_mut(&party).expect("all signed in").call = Some(id);
        }
        let room = self.conns[&caller].room.clone();
        self.presence_changed(now, &room);
        id
    }

    /// Ringing ends in a conversation, and `tell` says who hears `call-accepted`.
    fn activate(&mut self, now: Instant, id: CallId, tell: Tell) {
        self.stop_ringing(id);
        if tell != Tell::Neither {
            self.calls.get_mut(&id).expect("activated calls exist").answered = Some(now);
            self.call_answered(now, id);
        }
        let call = &self.calls[&id];
        let (caller, callee, offered) = (call.caller, call.callee, call.offered);
        let (caller_name, callee_name) = (self.name_of(caller), self.name_of(callee));
        // A caller that offered first (MDN's client) is waiting for the answer, not this.
        if tell != Tell::Neither && self.conns[&caller].ringing && !offered {
            let msg = ServerMessage::CallAccepted {
                call_id: id.0,
                name: Cow::Borrowed(&callee_name),
                role: Role::Caller,
            };
            self.send(caller, &msg);
        }
        if tell == Tell::Both {
            let msg = ServerMessage::CallAccepted {
                call_id: id.0,
                name: Cow::Borrowed(&caller_name),
                role: Role::Callee,
            };
            self.send(callee, &msg);
        }
    }

    /// Cancels the ring timeout of call `id`, if it rings.
    fn stop_ringing(&mut self, id: CallId) {
        if let Some(until) = self.calls.get_mut(&id).and_then(|call| call.ringing_until.take()) {
            self.timers.remove(&(until, Timer::Ring(id)));
        }
    }

    /// Ends call `id`. `by` is the side that ended it (it needs no telling); without one
    /// (a ring timeout) both sides are told.
    pub(super) fn end_call(&mut self, now: Instant, id: CallId, reason: EndReason, by: Option<ConnId>) {
        self.stop_ringing(id);
        let Some(call) = self.calls.remove(&id) else { return };
        self.call_ended(now, id, &call, reason, by);
        let (caller_name, callee_name) = (self.name_of(call.caller), self.name_of(call.callee));
        for party in call.parties() {
            if let Some(state) = self.conns.get_mut(&party) {
                state.call = None;
            }
        }
        for device in call.callees().filter(|&d| by != Some(d)) {
            self.tell_ended(device, Some(id), &caller_name, reason);
        }
        if by != Some(call.caller) {
            self.tell_ended(call.caller, Some(id), &callee_name, reason);
        }
        if let Some(room) = self.conns.get(&call.caller).map(|c| c.room.clone()) {
            self.presence_changed(now, &room);
        }
        // A service instance, or the stand-in of an account away, exists for its one call.
        for party in [call.caller, call.callee] {
            if self.conns.get(&party).is_some_and(|c| c.service || c.away) {
                self.conns.remove(&party);
            }
        }
    }

    /// A fresh instance of service `target` for `conn` to call, if `target` is a service
    /// and `conn` is in no call (else the usual checks answer); busy when `conn`'s
    /// address has as many service calls as [`super::HubConfig::service_calls_per_address`].
    fn new_service_instance(&mut self, conn: ConnId, target: &str) -> Service {
        let Some(service) = self.config.services.iter().find(|s| s.as_str() == target).cloned() else {
            return Service::NotOne;
        };
        let state = &self.conns[&conn];
        if state.call.is_some() {
            return Service::NotOne;
        }
        let address = state.address;
        let from_there = self
            .calls
            .values()
            .filter(|call| self.is_service(call.callee))
            .filter(|call| self.conns.get(&call.caller).is_some_and(|c| c.address == address))
            .count();
        if from_there >= self.config.service_calls_per_address {
            return Service::Busy(service);
        }
        let instance = self.socketless(conn, service, super::Admission::Guest);
        self.conns.get_mut(&instance).expect("just made").service = true;
        Service::Instance(instance)
    }

    /// Tells `to` that its call with `peer` is over: `call-ended` if it speaks ringing,
    /// MDN's `hang-up` otherwise.
    pub(super) fn tell_ended(&mut self, to: ConnId, id: Option<CallId>, peer: &str, reason: EndReason) {
        let Some(state) = self.conns.get(&to).filter(|c| !c.away) else { return };
        if state.ringing {
            self.send(
                to,
                &ServerMessage::CallEnded { call_id: id.map(|id| id.0), name: peer.into(), reason },
            );
        } else {
            let own = self.name_of(to);
            self.send(to, &ServerMessage::HangUp { name: peer.into(), target: Cow::Borrowed(&own) });
        }
    }

    /// After a restart, `conn` resumed saying it was in a call with `partner`. If the
    /// partner already said the same of `conn`, the hub knows the call again (or, if the
    /// partner hung up meanwhile, tells `conn` so); otherwise `conn` waits for that, for
    /// the resume grace period.
    pub(super) fn claim(&mut self, now: Instant, conn: ConnId, partner: UserName) {
        let room = &self.conns[&conn].room;
        let own = self.conns[&conn].name.clone().expect("claims come from a resumed session");
        let sessions = self.rooms.get(room).map_or(&[][..], |r| r.names.get(partner.as_str()));
        let claimed = sessions.iter().copied().filter(|&other| other != conn).find_map(|other| {
            let state = &self.conns[&other];
            let theirs = state.claim.as_deref().filter(|claim| claim.partner == own)?;
            (theirs.hung_up || state.call.is_none()).then_some((other, theirs.until, theirs.hung_up))
        });
        if let Some((other, until, hung_up)) = claimed {
            self.conns.get_mut(&other).expect("found").claim = None;
            self.timers.remove(&(until, Timer::Claim(other)));
            if hung_up {
                self.tell_ended(conn, None, partner.as_str(), EndReason::HungUp);
            } else {
                let id = self.start_call(now, other, &[conn], false);
                self.calls.get_mut(&id).expect("just made").answered = Some(now);
                self.call_began(now, id, true);
                self.activate(now, id, Tell::Neither); // both know the call is on
            }
            return;
        }
        let until = now + self.config.resume_grace;
        let claim = Claim { partner, until, hung_up: false };
        self.conns.get_mut(&conn).expect("signed in").claim = Some(Box::new(claim));
        self.timers.insert((until, Timer::Claim(conn)));
    }

    /// Nobody confirmed `conn`'s claim: its call is over as far as the hub knows (and
    /// `conn` is told, unless it hung up itself).
    pub(super) fn claim_expired(&mut self, conn: ConnId) {
        let Some(claim) = self.conns.get_mut(&conn).and_then(|c| c.claim.take()) else {
            return;
        };
        if !claim.hung_up {
            self.tell_ended(conn, None, claim.partner.as_str(), EndReason::Disconnected);
        }
    }

    /// Checks that call `id` rings for `conn` as its callee.
    fn ringing_for(&mut self, conn: ConnId, id: CallId) -> Result<(), Rejected> {
        match self.calls.get(&id) {
            Some(call) if call.rings_for(conn) => Ok(()),
            _ => Err(self.reject(conn, ErrorCode::NoSuchCall, "no call of that id is ringing for you", None)),
        }
    }
}
