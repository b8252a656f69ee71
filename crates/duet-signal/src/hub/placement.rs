//! What a shell running several nodes needs to know about where rooms live: which rooms
//! this hub has anyone in, and how to let go of a room another node serves now.
//!
//! ```text
//!  rooms_in_use ──► the node keeps owning these (sockets, held sessions, services)
//!  evict_room(r) ──► every session in r forgotten without a word to anyone: its clients
//!                    reconnect to the room's new owner and resume there (the shell
//!                    hears SessionEnded{Moved} for each)
//! ```

use std::collections::HashSet;
use std::time::Instant;

use super::{ConnId, Hub, Timer};
use crate::room::RoomName;

impl Hub {
    /// The rooms with a connection or a held session in them.
    pub fn rooms_in_use(&self) -> HashSet<RoomName> {
        self.conns.values().map(|c| c.room.clone()).collect()
    }

    /// Forgets `room`: its sessions, calls and timers, silently (nobody is told a call
    /// ended: the room goes on on another node, where these clients resume). Returns
    /// the connections that had a socket (or a service), for the shell to close.
    pub fn evict_room(&mut self, now: Instant, room: &RoomName) -> Vec<ConnId> {
        let gone: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| &c.room == room).map(|(id, _)| *id).collect();
        let mut open = Vec::new();
        for id in &gone {
            let Some(conn) = self.conns.remove(id) else { continue };
            if let Some(call) = conn.call {
                self.calls.remove(&call);
            }
            if conn.detached.is_none() {
                open.push(*id);
            }
            if let (false, false, Some(name)) = (conn.service, conn.away, conn.name) {
                let who =
                    super::Party { session: conn.session, name, verified: conn.admission.is_verified() };
                self.emit(
                    now,
                    super::Event::SessionEnded { room: room.clone(), who, why: super::SessionEnd::Moved },
                );
            }
        }
        self.rooms.remove(room);
        let (conns, calls) = (&self.conns, &self.calls);
        self.timers.retain(|(_, timer)| match timer {
            Timer::UserList(r) => r != room,
            Timer::Ring(call) => calls.contains_key(call),
            Timer::Grace(conn) | Timer::Claim(conn) => conns.contains_key(conn),
        });
        self.outputs.retain(|out| conns.contains_key(&out.to));
        open
    }
}
