//! Who is in a room, told to the room: user lists coalesced to one per
//! [`super::HubConfig::userlist_interval`] (serialized once, shared by every recipient),
//! and chat lines to every member.
//!
//! ```text
//!  presence changed ──► quiet spell? ──yes──► user list now
//!                                   └─no───► one list at the end of the interval (timer)
//! ```

use std::borrow::Cow;
use std::time::Instant;

use super::sessions::Held;
use super::{Conn, ConnId, Hub, Output, Payload, Timer};
use crate::protocol::ServerMessage;
use crate::room::RoomName;

impl Hub {
    pub(super) fn presence_changed(&mut self, now: Instant, room_name: &RoomName) {
        let interval = self.config.userlist_interval;
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        if room.userlist_dirty {
            return; // a list is on its way and will be current when it goes
        }
        match room.userlist_last {
            Some(last) if now < last + interval => {
                room.userlist_dirty = true;
                self.timers.insert((last + interval, Timer::UserList(room_name.clone())));
            }
            _ => self.broadcast_userlist(now, room_name),
        }
    }

    pub(super) fn userlist_payload(&self, room_name: &RoomName) -> Payload {
        let names = self.rooms.get(room_name).map(|r| &r.names);
        let mut users: Vec<Cow<'_, str>> =
            names.into_iter().flat_map(|n| n.keys().map(|n| n.as_str().into())).collect();
        users.extend(self.config.services.iter().map(|s| s.as_str().into()));
        users.sort_unstable();
        // The names one of whose sessions `holds`, in list order.
        let whose = |holds: fn(&Conn) -> bool| -> Vec<Cow<'_, str>> {
            names
                .into_iter()
                .flat_map(|n| n.iter())
                .filter(|(_, conns)| conns.iter().any(|conn| self.conns.get(conn).is_some_and(holds)))
                .map(|(name, _)| name.as_str().into())
                .collect()
        };
        let in_call = whose(|c| c.call.is_some());
        let verified = whose(|c| c.admission.is_verified());
        let services = self.config.services.iter().map(|s| s.as_str().into()).collect();
        ServerMessage::UserList { users, in_call, services, verified }.to_json().into()
    }

    pub(super) fn broadcast_userlist(&mut self, now: Instant, room_name: &RoomName) {
        let payload = self.userlist_payload(room_name);
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        room.userlist_dirty = false;
        room.userlist_last = Some(now);
        // A detached session is sent a fresh list when it resumes instead.
        let attached: Vec<ConnId> = room
            .names
            .conns()
            .filter(|conn| self.conns.get(conn).is_some_and(|c| c.detached.is_none()))
            .collect();
        self.outputs.extend(attached.into_iter().map(|to| Output { to, payload: payload.clone() }));
    }

    /// A chat line to every signed-in session in `room`.
    pub(super) fn broadcast_chat(&mut self, room: &RoomName, payload: Payload) {
        let members: Vec<ConnId> =
            self.rooms.get(room).map(|r| r.names.conns().collect()).unwrap_or_default();
        for to in members {
            self.deliver(to, payload.clone(), Held::Chat);
        }
    }
}
