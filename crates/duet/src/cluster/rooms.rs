//! Which rooms this node owns, as pure bookkeeping: a room is claimed when a client
//! joins it and nobody living owns it, kept while its hub has anyone in it (a socket, a
//! session held for a resume), and freed on the first beat that finds it empty.
//!
//! ```text
//!  claim won ──► owned ──beat: still in use──► keep (asserted in Redis)
//!                  │    └─beat: empty────────► release (freed in Redis if still ours)
//!                  └─ beat: a living node holds it ──► lost: its clients reconnect there
//! ```

use std::collections::HashSet;

use duet_signal::RoomName;

/// The rooms this node owns.
#[derive(Debug, Default)]
pub struct Owned {
    rooms: HashSet<RoomName>,
}

/// What one beat asserts.
#[derive(Debug, PartialEq, Eq)]
pub struct Beat {
    pub keep: Vec<RoomName>,
    pub release: Vec<RoomName>,
}

impl Owned {
    /// Whether clients joining `room` are served here without asking Redis.
    pub fn contains(&self, room: &RoomName) -> bool {
        self.rooms.contains(room)
    }

    /// Redis gave `room` to this node.
    pub fn claimed(&mut self, room: RoomName) {
        self.rooms.insert(room);
    }

    /// The beat for the rooms the hub has anyone in: those are kept (a room the hub uses
    /// is always owned: clients join only owned rooms), the owned ones nobody uses any
    /// more are freed.
    pub fn beat(&mut self, in_use: HashSet<RoomName>) -> Beat {
        let mut release: Vec<RoomName> = self.rooms.difference(&in_use).cloned().collect();
        release.sort();
        let mut keep: Vec<RoomName> = in_use.iter().cloned().collect();
        keep.sort();
        self.rooms = in_use;
        Beat { keep, release }
    }

    /// Another living node owns `room`: this node no longer serves it.
    pub fn lost(&mut self, room: &RoomName) {
        self.rooms.remove(room);
    }

    /// How many rooms are owned.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every owned room (draining frees them all).
    pub fn all(&self) -> Vec<RoomName> {
        self.rooms.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).expect("a room name")
    }

    #[test]
    fn a_room_is_kept_while_used_and_freed_on_the_first_beat_that_finds_it_empty() {
        let mut owned = Owned::default();
        owned.claimed(room("family"));
        owned.claimed(RoomName::lobby());
        let beat = owned.beat([room("family"), RoomName::lobby()].into());
        assert_eq!(beat.release, Vec::<RoomName>::new());
        assert_eq!(beat.keep.len(), 2);
        let beat = owned.beat([RoomName::lobby()].into());
        assert_eq!(beat.release, vec![room("family")]);
        assert!(!owned.contains(&room("family")), "a freed room is claimed again before use");
        assert!(owned.contains(&RoomName::lobby()));
        let beat = owned.beat(HashSet::new());
        assert_eq!(beat.release, vec![RoomName::lobby()]);
        assert_eq!(owned.beat(HashSet::new()), Beat { keep: vec![], release: vec![] }, "freed once");
    }

    #[test]
    fn a_lost_room_is_neither_kept_nor_freed_by_this_node() {
        let mut owned = Owned::default();
        owned.claimed(room("clinic"));
        owned.lost(&room("clinic"));
        assert!(!owned.contains(&room("clinic")));
        assert_eq!(owned.beat(HashSet::new()).release, Vec::<RoomName>::new(), "not ours to free");
    }
}
