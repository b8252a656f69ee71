//! Do not disturb: a person who wants quiet is not rung. An account's setting is one for
//! all its devices (and outlives them: the shell keeps it in its store and gives it back
//! with [`Hub::set_quiet`]); a guest's is its tab's.
//!
//! ```text
//!  quiet{on, for?, guests} ──► Quiet{dnd: Off | Until(t) | On, guests}
//!        │                        ├─► quiet{on, for: seconds left, guests} to each device
//!        │                        └─► Event::QuietChanged (the shell keeps an account's)
//!  call ──► callee quiet (dnd on, or guests silenced and the caller is a guest)?
//!             └─yes─► call-ended{unavailable} to the caller; nothing rings (CallUnavailable)
//! ```

use std::time::{Duration, Instant};

use super::{ConnId, Hub};
use crate::name::UserName;
use crate::protocol::ServerMessage;

/// Until when calls do not ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DoNotDisturb {
    #[default]
    Off,
    Until(Instant),
    /// Until turned off.
    On,
}

/// One person's wish for quiet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quiet {
    pub dnd: DoNotDisturb,
    /// Calls from guests (callers without an account) never ring.
    pub guests: bool,
}

impl Quiet {
    /// Whether a call from a caller (`verified`: an account holder) rings nowhere at `now`.
    pub fn refuses(&self, now: Instant, verified: bool) -> bool {
        self.dnd_at(now) || (self.guests && !verified)
    }

    /// Whether do not disturb is on at `now`.
    pub fn dnd_at(&self, now: Instant) -> bool {
        match self.dnd {
            DoNotDisturb::Off => false,
            DoNotDisturb::Until(until) => now < until,
            DoNotDisturb::On => true,
        }
    }

    /// As it stands at `now`: a do not disturb that ran out is off.
    pub fn at(self, now: Instant) -> Self {
        let dnd = if self.dnd_at(now) { self.dnd } else { DoNotDisturb::Off };
        Self { dnd, ..self }
    }

    /// The message that tells a client this setting at `now`.
    fn message(&self, now: Instant) -> ServerMessage<'static> {
        let seconds = match self.dnd {
            DoNotDisturb::Until(until) if now < until => {
                let left = until.duration_since(now).as_secs_f64().ceil();
                Some(u32::try_from(left as u64).unwrap_or(u32::MAX))
            }
            _ => None,
        };
        ServerMessage::Quiet { on: self.dnd_at(now), seconds, guests: self.guests }
    }
}

impl Hub {
    /// An account's setting, kept by the shell (at startup, from its store): from now on
    /// calls to `account` follow it, unless a device of the account changed it here
    /// meanwhile (that one is newer). Says nothing to anyone.
    pub fn set_quiet(&mut self, account: UserName, quiet: Quiet) {
        self.quiet.entry(account).or_insert(quiet);
    }

    /// `quiet`: `conn` changes its person's setting.
    pub(super) fn change_quiet(
        &mut self,
        now: Instant,
        conn: ConnId,
        on: bool,
        seconds: Option<u32>,
        guests: bool,
    ) {
        let dnd = match (on, seconds) {
            (false, _) => DoNotDisturb::Off,
            (true, None) => DoNotDisturb::On,
            (true, Some(s)) => DoNotDisturb::Until(now + Duration::from_secs(s.into())),
        };
        let quiet = Quiet { dnd, guests };
        let state = self.conns.get_mut(&conn).expect("signed in");
        let name = state.name.clone().expect("signed in");
        let devices: Vec<ConnId> = if state.admission.is_verified() {
            self.quiet.insert(name.clone(), quiet);
            let same = |c: &&super::Conn| c.name.as_ref() == Some(&name) && c.admission.is_verified();
            self.conns.iter().filter(|(_, c)| same(c)).map(|(id, _)| *id).collect()
        } else {
            state.quiet = quiet;
            vec![conn]
        };
        let msg = quiet.message(now);
        for device in devices {
            self.send(device, &msg);
        }
        let who = self.party(conn);
        // Nothing to time: a setting that ran out reads as off (`Quiet::at`).
        self.emit(now, super::Event::QuietChanged { who, quiet });
    }

    /// What `conn`'s person wants: an account's setting, or the guest tab's own.
    pub(super) fn quiet_of(&self, conn: ConnId) -> Quiet {
        let state = &self.conns[&conn];
        match (&state.name, state.admission.is_verified()) {
            (Some(name), true) => self.quiet.get(name).copied().unwrap_or_default(),
            _ => state.quiet,
        }
    }

    /// A device of an account signs in: it hears the account's setting if it is not off.
    pub(super) fn tell_quiet(&mut self, now: Instant, conn: ConnId) {
        let quiet = self.quiet_of(conn).at(now);
        if quiet != Quiet::default() && self.conns[&conn].ringing {
            self.send(conn, &quiet.message(now));
        }
    }

    /// Whether a call from `caller` to the person `callee` (any of their sessions) rings
    /// nowhere.
    pub(super) fn refuses_call(&self, now: Instant, caller: ConnId, callee: ConnId) -> bool {
        let verified = self.conns[&caller].admission.is_verified();
        !self.is_service(callee) && self.quiet_of(callee).refuses(now, verified)
    }
}
