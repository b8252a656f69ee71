//! Who a connection may be, and the names of one room: no two online names in a room
//! look alike, and a guest never takes a name that looks like an account's.
//!
//! ```text
//!  connect_as(Admission) ──► Guest: picks a name; a taken or reserved look-alike gets a suffix
//!                        └─► Named{name, verified}: always that name (an account, or an
//!                            invite that fixed it); whoever held a look-alike is replaced,
//!                            except the account's own other devices (up to a cap)
//!  Names: by name (sorted, for the user list; each with its sessions, oldest first)
//!         + by skeleton (who holds a look-alike)
//! ```
//!
//! The shell decides the admission (a signed session cookie, an invite); the hub keeps
//! the promise it implies, so a client cannot talk its way into another name.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::{ConnId, Hub, Output, Rejected};
use crate::name::{Skeleton, UserName};
use crate::protocol::{ErrorCode, ServerMessage};
use crate::room::RoomName;

/// What the shell admitted a connection as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Admission {
    /// Anyone allowed in (open mode, the instance password, an invite without a name):
    /// picks a name that nobody online and no account has a look-alike of.
    #[default]
    Guest,
    /// Always signs in as `name`, whatever it asks for: an account (`verified`, marked
    /// so in the user list) or an invite that fixed the name.
    Named { name: UserName, verified: bool },
}

impl Admission {
    /// The name this admission fixes, if any.
    pub fn fixed_name(&self) -> Option<&UserName> {
        match self {
            Self::Guest => None,
            Self::Named { name, .. } => Some(name),
        }
    }

    /// An account holder, shown as verified.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Named { verified: true, .. })
    }
}

/// The signed-in names of one room, each with the sessions that hold it: one for a
/// guest or a named invite, one per device for an account (oldest first).
#[derive(Debug, Default)]
pub(super) struct Names {
    by_name: BTreeMap<UserName, Vec<ConnId>>,
    by_look: HashMap<Skeleton, UserName>,
}

impl Names {
    /// The sessions holding exactly `name` (none when nobody does).
    pub(super) fn get(&self, name: &str) -> &[ConnId] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The name that looks like `name` (or is it), with its sessions.
    pub(super) fn alike(&self, name: &UserName) -> Option<(&UserName, &[ConnId])> {
        let held = self.by_look.get(&name.skeleton())?;
        self.by_name.get_key_value(held).map(|(name, conns)| (name, conns.as_slice()))
    }

    /// Adds `conn` to the holders of `name`. A look-alike held by someone else must have
    /// been freed first.
    pub(super) fn insert(&mut self, name: UserName, conn: ConnId) {
        let previous = self.by_look.insert(name.skeleton(), name.clone());
        debug_assert!(previous.is_none_or(|p| p == name), "a look-alike was freed first");
        let conns = self.by_name.entry(name).or_default();
        if !conns.contains(&conn) {
            conns.push(conn);
        }
    }

    /// A session moved to a new socket: `new` holds `name` where `old` did.
    pub(super) fn swap(&mut self, name: &UserName, old: ConnId, new: ConnId) {
        if let Some(slot) = self.by_name.get_mut(name).and_then(|c| c.iter_mut().find(|c| **c == old)) {
            *slot = new;
        }
    }

    /// `conn` no longer holds `name`; the name is free once nobody does.
    pub(super) fn remove(&mut self, name: &UserName, conn: ConnId) {
        let Some(conns) = self.by_name.get_mut(name) else { return };
        conns.retain(|&c| c != conn);
        if conns.is_empty() {
            self.by_name.remove(name);
            self.by_look.remove(&name.skeleton());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// How many names (people), not sessions.
    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &UserName> {
        self.by_name.keys()
    }

    /// Every session of every name.
    pub(super) fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.by_name.values().flatten().copied()
    }

    /// Each name with its sessions, in name order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&UserName, &[ConnId])> {
        self.by_name.iter().map(|(name, conns)| (name, conns.as_slice()))
    }
}

/// Account names, by look: a guest's name may not look like any of them.
#[derive(Debug, Default, Clone)]
pub(super) struct Reserved(HashMap<Skeleton, UserName>);

impl Reserved {
    pub(super) fn new(names: impl IntoIterator<Item = UserName>) -> Self {
        Self(names.into_iter().map(|n| (n.skeleton(), n)).collect())
    }

    /// The account `name` looks like, if any.
    pub(super) fn owner_of(&self, name: &UserName) -> Option<&UserName> {
        self.0.get(&name.skeleton())
    }
}

impl Hub {
    /// `username`: sign in, or rename. A guest asking for a name that is taken, looks
    /// like a taken one, a service's or an account's, gets the first free `name2`,
    /// `name3`... and is told so; a connection with a fixed name always gets it.
    pub(super) fn sign_in(
        &mut self,
        now: Instant,
        conn: ConnId,
        requested: UserName,
        ringing: bool,
    ) -> Result<(), Rejected> {
        let state = self.conns.get_mut(&conn).expect("checked by handle_text");
        state.ringing |= ringing;
        let fixed = state.admission.fixed_name().cloned();
        let signed_in = state.name.is_some();
        let requested = match fixed.clone() {
            Some(fixed) if signed_in && fixed != requested => {
                let message = "your name comes with your account or invite and cannot be changed";
                return Err(self.reject(conn, ErrorCode::InvalidName, message, None));
            }
            Some(fixed) => fixed,
            None => requested,
        };
        if state.name.as_ref() == Some(&requested) {
            let room = state.room.clone();
            self.presence_changed(now, &room); // a repeated sign-in still gets a fresh list
            return Ok(());
        }
        if signed_in && state.call.is_some() {
            return Err(self.reject(
                conn,
                ErrorCode::AlreadyInCall,
                "you cannot change your name during a call",
                None,
            ));
        }
        let room_name = state.room.clone();
        let verified = state.admission.is_verified();
        let granted = match fixed {
            Some(name) => self.free_fixed_name(now, conn, &room_name, name, verified)?,
            None => self.free_guest_name(conn, &room_name, requested),
        };
        let token = self.mint_token(&room_name, &granted, &self.conns[&conn].token);
        let state = self.conns.get_mut(&conn).expect("checked by handle_text");
        let old = state.name.replace(granted.clone());
        state.token = token.clone();
        let ringing = state.ringing;
        let first = old.is_none();
        let room = self.rooms.entry(room_name.clone()).or_default();
        if let Some(old) = old {
            room.names.remove(&old, conn);
        }
        room.names.insert(granted.clone(), conn);
        if ringing {
            self.send(
                conn,
                &ServerMessage::Session { name: granted.as_str().into(), token: Cow::Borrowed(&token) },
            );
        }
        if first {
            self.tell_quiet(now, conn);
            let (who, admission) = (self.party(conn), self.conns[&conn].admission.clone());
            self.emit(now, super::Event::SessionStarted { room: room_name.clone(), who, admission });
            self.ring_here_too(conn);
        }
        self.presence_changed(now, &room_name);
        Ok(())
    }

    /// A guest's `requested` name, or the first suffixed one nobody has a look-alike of
    /// (told to the client in `rejectusername`).
    fn free_guest_name(&mut self, conn: ConnId, room_name: &RoomName, requested: UserName) -> UserName {
        let room = self.rooms.entry(room_name.clone()).or_default();
        let services = &self.config.services;
        let reserved = &self.reserved;
        let taken = |name: &UserName| {
            room.names.alike(name).is_some_and(|(_, holders)| holders != [conn])
                || services.iter().any(|s| s.looks_like(name))
                || reserved.owner_of(name).is_some()
        };
        if !taken(&requested) {
            return requested;
        }
        // The loop ends: look-alikes of a suffixed name are suffixed alike, and only
        // finitely many names are taken or reserved.
        let free =
            (2u32..).map(|n| requested.with_suffix(n)).find(|c| !taken(c)).expect("some suffix is free");
        self.send(conn, &ServerMessage::RejectUsername { id: conn.get(), name: free.as_str().into() });
        free
    }

    /// Makes room for a fixed name: whoever holds it or a look-alike is replaced, except
    /// the same account's other devices (up to [`super::HubConfig::devices_per_account`];
    /// past it, the oldest goes). A named invite may not carry an account's name (nor a
    /// service's).
    fn free_fixed_name(
        &mut self,
        now: Instant,
        conn: ConnId,
        room_name: &RoomName,
        name: UserName,
        verified: bool,
    ) -> Result<UserName, Rejected> {
        let belongs_elsewhere = self.config.services.iter().any(|s| s.looks_like(&name))
            || (!verified && self.reserved.owner_of(&name).is_some());
        if belongs_elsewhere {
            let message = "that name belongs to an account or to this server";
            return Err(self.reject(conn, ErrorCode::InvalidName, message, None));
        }
        self.displace(now, conn, room_name, &name);
        Ok(name)
    }

    /// Ends the sessions that `conn` taking its fixed `name` displaces.
    pub(super) fn displace(&mut self, now: Instant, conn: ConnId, room_name: &RoomName, name: &UserName) {
        let Some((held, holders)) = self.rooms.get(room_name).and_then(|r| r.names.alike(name)) else {
            return;
        };
        let others: Vec<ConnId> = holders.iter().copied().filter(|&h| h != conn).collect();
        let devices = held == name
            && self.conns[&conn].admission.is_verified()
            && others.iter().all(|h| self.conns[h].admission.is_verified());
        let keep = if devices { self.config.devices_per_account.max(1) - 1 } else { 0 };
        let oldest = others.len().saturating_sub(keep);
        for holder in others.into_iter().take(oldest) {
            if self.conns.get(&holder).is_some_and(|c| c.detached.is_none()) {
                let payload = ServerMessage::Replaced {}.to_json().into();
                self.outputs.push_back(Output { to: holder, payload });
            }
            self.end_session(now, holder, super::SessionEnd::Replaced);
        }
    }

    /// Whether `conn` may take `name` by resuming it: a fixed name only, a guest no
    /// account's look-alike.
    pub(super) fn may_hold(&self, conn: ConnId, name: &UserName) -> bool {
        match &self.conns[&conn].admission {
            Admission::Named { name: fixed, .. } => fixed == name,
            Admission::Guest => self.reserved.owner_of(name).is_none(),
        }
    }
}
