//! Which nodes are alive, as this node hears them: pure bookkeeping on a clock the caller
//! passes in, so the rules are tested on a virtual one.
//!
//! ```text
//!  beat (or any message) from N ──► seen[N] = now
//!  every beat of our own ──► expired(now): nodes silent for DEAD_AFTER are dead: their
//!                            links end (clients reconnect), their clients' sessions are held
//!  bye from N ──► dead at once (it drained)
//! ```
//!
//! A node does not hear beats while its own line to Redis is down, so every other node
//! looks dead to it then: what it relays ends (those clients reconnect and find a room's
//! owner again once Redis is back) and the rooms it owns keep serving its own clients.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::wire::NodeId;

/// How often a node says it is alive.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// A node not heard for this long is dead: five beats, so a busy Redis or a slow beat
/// is not taken for a crash.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

/// The nodes heard from, and when last.
#[derive(Debug, Default)]
pub struct Peers {
    seen: HashMap<NodeId, Instant>,
}

impl Peers {
    /// `node` said something at `now`; true if it was not known (or known dead).
    pub fn heard(&mut self, node: &NodeId, now: Instant) -> bool {
        match self.seen.get_mut(node) {
            Some(at) => {
                *at = (*at).max(now);
                false
            }
            None => {
                self.seen.insert(node.clone(), now);
                true
            }
        }
    }

    /// `node` matters to this one (a client is relayed to it): it is watched from `now`
    /// if it was not already, so one that dies before it was ever heard is found dead.
    /// Does not count as hearing it.
    pub fn expect(&mut self, node: &NodeId, now: Instant) {
        self.seen.entry(node.clone()).or_insert(now);
    }

    /// `node` said goodbye: forgotten at once. True if it was known.
    pub fn left(&mut self, node: &NodeId) -> bool {
        self.seen.remove(node).is_some()
    }

    /// Whether `node` was heard within [`DEAD_AFTER`] of `now`.
    pub fn is_alive(&self, node: &NodeId, now: Instant) -> bool {
        self.seen.get(node).is_some_and(|at| now.saturating_duration_since(*at) < DEAD_AFTER)
    }

    /// How many nodes were heard within [`DEAD_AFTER`] of `now`.
    pub fn alive(&self, now: Instant) -> usize {
        self.seen.values().filter(|at| now.saturating_duration_since(**at) < DEAD_AFTER).count()
    }

    /// The nodes silent for [`DEAD_AFTER`] at `now`, forgotten (each is reported once).
    pub fn expired(&mut self, now: Instant) -> Vec<NodeId> {
        let dead: Vec<NodeId> = self
            .seen
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= DEAD_AFTER)
            .map(|(node, _)| node.clone())
            .collect();
        for node in &dead {
            self.seen.remove(node);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_keeps_beating_stays_alive_and_a_silent_one_dies_once() {
        let start = Instant::now();
        let (a, b): (NodeId, NodeId) = ("a".into(), "b".into());
        let mut peers = Peers::default();
        peers.heard(&a, start);
        peers.heard(&b, start);
        for second in 1..=10 {
            let now = start + Duration::from_secs(second);
            peers.heard(&a, now);
            let dead = peers.expired(now);
            if second == 5 {
                assert_eq!(dead, vec![b.clone()], "b silent for five seconds is dead");
            } else {
                assert!(dead.is_empty(), "at {second} s nothing new died: {dead:?}");
            }
            assert!(peers.is_alive(&a, now));
        }
        assert!(!peers.is_alive(&b, start + Duration::from_secs(10)));
    }

    #[test]
    fn relaying_to_a_node_never_heard_watches_it_without_keeping_a_dead_one_alive() {
        let start = Instant::now();
        let a: NodeId = "a".into();
        let mut peers = Peers::default();
        peers.expect(&a, start);
        assert!(peers.is_alive(&a, start));
        peers.expect(&a, start + Duration::from_secs(4));
        assert_eq!(peers.expired(start + DEAD_AFTER), vec![a], "silent since it was first expected");
    }

    #[test]
    fn a_beat_that_arrives_late_does_not_move_the_clock_back() {
        let start = Instant::now();
        let a: NodeId = "a".into();
        let mut peers = Peers::default();
        peers.heard(&a, start + Duration::from_secs(4));
        peers.heard(&a, start);
        assert!(peers.is_alive(&a, start + Duration::from_secs(8)));
    }

    #[test]
    fn a_node_that_says_goodbye_is_dead_at_once_and_comes_back_when_heard_again() {
        let now = Instant::now();
        let a: NodeId = "a".into();
        let mut peers = Peers::default();
        peers.heard(&a, now);
        assert!(peers.left(&a));
        assert!(!peers.is_alive(&a, now));
        assert!(peers.expired(now + DEAD_AFTER).is_empty(), "reported once, by the goodbye");
        peers.heard(&a, now);
        assert!(peers.is_alive(&a, now));
    }
}
