//! Calling an account none of whose devices is online: when the shell says the account
//! can be rung by push ([`Hub::set_reachable`]), the call rings a stand-in for its
//! devices (a session without a socket, in no user list) for the ring time, and the shell
//! pushes to the devices (it hears `CallRinging` as for any call). A device that comes
//! online meanwhile rings too and can take the call; otherwise it ends as missed.
//!
//! ```text
//!  call bo (no device online, bo reachable) ──► quiet? unavailable │ rung away? busy
//!     └─► stand-in ─► Call{callee: stand-in} ─► ringing{away: true} to the caller
//!  bo's device signs in ─► rings too (incoming-call); the caller hears ringing{away: false}
//!  accept ─► the stand-in goes; the call goes on with that device
//!  ring time over / cancelled / declined (POST /api/calls/decline) ─► ended, stand-in gone
//! ```

use std::time::Instant;

use super::{ConnId, Hub, Rejected};
use crate::name::UserName;
use crate::protocol::{EndReason, ErrorCode, ServerMessage};

impl Hub {
    /// The accounts whose devices can be rung by push while none is online (those with a
    /// push subscription); replaces the previous set.
    pub fn set_reachable(&mut self, accounts: impl IntoIterator<Item = UserName>) {
        self.reachable = accounts.into_iter().collect();
    }

    /// `target` as an account to ring away: reachable, and with no session in `conn`'s
    /// room.
    pub(super) fn away_account(&self, conn: ConnId, target: &str) -> Option<UserName> {
        let state = &self.conns[&conn];
        let name = self.reachable.iter().find(|name| name.as_str() == target)?;
        let online = self.rooms.get(&state.room).is_some_and(|r| !r.names.get(target).is_empty());
        (!online && state.name.as_ref() != Some(name)).then(|| name.clone())
    }

    /// Rings `account`'s devices away (by push, through the shell).
    pub(super) fn ring_away(
        &mut self,
        now: Instant,
        conn: ConnId,
        account: UserName,
        voice: bool,
    ) -> Result<(), Rejected> {
        if self.conns[&conn].call.is_some() {
            let message = "you are in a call already; hang up first";
            return Err(self.reject(conn, ErrorCode::AlreadyInCall, message, Some(account.as_str())));
        }
        self.conns.get_mut(&conn).expect("signed in").ringing = true;
        let stand_in = self.stand_in(conn, account.clone());
        // Rung away already: busy. Otherwise quiet is checked as for any person (the
        // stand-in is the account's, so the account's setting answers).
        let rung =
            self.calls.values().any(|call| call.callee != stand_in && self.stands_for(call.callee, &account));
        if rung {
            self.call_busy(now, conn, stand_in, voice);
            self.tell_ended(conn, None, account.as_str(), EndReason::Busy);
        }
        if rung || self.not_now(now, conn, &[stand_in], account.as_str(), voice) {
            self.conns.remove(&stand_in);
            return Ok(());
        }
        let id = self.start_call(now, conn, &[stand_in], false);
        self.calls.get_mut(&id).expect("just made").voice = voice;
        self.call_began(now, id, false);
        let ringing = ServerMessage::Ringing { call_id: id.0, target: account.as_str().into(), away: true };
        self.send(conn, &ringing);
        Ok(())
    }

    /// Whether `conn` is the stand-in of `account`'s devices.
    fn stands_for(&self, conn: ConnId, account: &UserName) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.away && c.name.as_ref() == Some(account))
    }

    /// A new stand-in for `account`'s devices, in `caller`'s room.
    fn stand_in(&mut self, caller: ConnId, account: UserName) -> ConnId {
        let admission = super::Admission::Named { name: account.clone(), verified: true };
        let id = self.socketless(caller, account, admission);
        self.conns.get_mut(&id).expect("just made").away = true;
        id
    }
}
