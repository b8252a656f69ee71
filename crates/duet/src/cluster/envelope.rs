//! Messages between nodes are signed: anyone who can publish on the cluster's Redis
//! without the nodes' keys can neither join a room as someone nor replay what a node
//! said. Pure code, time passed in.
//!
//! ```text
//!  seal:  "duet1 <counter> <sent ms> <mac>\n<message>"   mac = HMAC-SHA256(key, counter, sent, message)
//!  open:  not that shape, or a wrong mac ──► Unsigned
//!         sent more than MAX_AGE from now ──► Stale     (a replay of an old message)
//!         counter seen from that node ─────► Replayed  (Replays: a window per node)
//! ```
//!
//! The key is derived from the session key every node already shares (the cluster
//! refuses a node whose keys differ), so nothing new is configured. Counters start at
//! one when a node starts; node ids are random per start, so (node, counter) names one
//! message for ever. Only the publishing task numbers messages, as it sends them, so they
//! reach Redis in counter order; a message published again by `delivery` (nobody heard
//! it) is numbered again, as it would otherwise fall out of the window behind newer ones.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::NodeId;

/// How far a message's sending time may be from the receiver's clock: nodes' clocks
/// must agree within this (NTP does far better).
pub const MAX_AGE_MS: u64 = 30_000;
/// Counters remembered up to the highest one seen from a node (the bits of a `u128`);
/// older ones are refused. Messages between two nodes arrive in order but for retries
/// (`delivery`), which lag by at most a few seconds' worth.
const WINDOW: u64 = 128;

/// The key messages between nodes are signed with.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

/// Why a message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not signed with the cluster's key (or not signed at all).
    Unsigned,
    /// Sent too long ago, or in the future.
    Stale,
    /// Taken before.
    Replayed,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
        }
    }
}

impl ClusterKey {
    /// The key derived from the nodes' shared session key.
    pub fn derive(session_key: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(session_key).expect("HMAC takes keys of any length");
        mac.update(b"duet cluster messages v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, counter: u64, sent_ms: u64, message: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(&counter.to_be_bytes());
        mac.update(&sent_ms.to_be_bytes());
        mac.update(message.as_bytes());
        mac
    }

    /// `message`, signed as this node's `counter`th, sent at `sent_ms`.
    pub fn seal(&self, counter: u64, sent_ms: u64, message: &str) -> String {
        let tag = self.mac(counter, sent_ms, message).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("duet1 {counter} {sent_ms} {hex}\n{message}")
    }

    /// The message in `raw` and its counter, if it was sealed with this key and sent
    /// within [`MAX_AGE_MS`] of `now_ms`.
    pub fn open<'a>(&self, raw: &'a str, now_ms: u64) -> Result<(u64, &'a str), Refused> {
        let (head, message) = raw.split_once('\n').ok_or(Refused::Unsigned)?;
        let mut fields = head.split(' ');
        let (Some("duet1"), Some(counter), Some(sent), Some(tag), None) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(Refused::Unsigned);
        };
        let counter: u64 = counter.parse().map_err(|_| Refused::Unsigned)?;
        let sent_ms: u64 = sent.parse().map_err(|_| Refused::Unsigned)?;
        let tag = from_hex(tag).ok_or(Refused::Unsigned)?;
        self.mac(counter, sent_ms, message).verify_slice(&tag).map_err(|_| Refused::Unsigned)?;
        if sent_ms.abs_diff(now_ms) > MAX_AGE_MS {
            return Err(Refused::Stale);
        }
        Ok((counter, message))
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Which counters each node's messages were taken with, as a sliding window.
#[derive(Debug, Default)]
pub struct Replays {
    nodes: HashMap<NodeId, Window>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    highest: u64,
    /// Bit i: counter `highest - i` was taken.
    seen: u128,
}

impl Replays {
    /// Takes counter `counter` from `node` unless it was taken before (or is too old to
    /// tell).
    pub fn take(&mut self, node: &NodeId, counter: u64) -> Result<(), Refused> {
        let window = self.nodes.entry(node.clone()).or_default();
        if counter == 0 || counter.saturating_add(WINDOW) <= window.highest {
            return Err(Refused::Replayed);
        }
        if counter > window.highest {
            let shift = counter - window.highest;
            window.seen = if shift >= WINDOW { 0 } else { window.seen << shift };
            window.seen |= 1;
            window.highest = counter;
            return Ok(());
        }
        let bit = 1u128 << (window.highest - counter);
        if window.seen & bit != 0 {
            return Err(Refused::Replayed);
        }
        window.seen |= bit;
        Ok(())
    }

    /// Forgets a node (dead, or said goodbye).
    pub fn forget(&mut self, node: &str) {
        self.nodes.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ClusterKey {
        ClusterKey::derive(&[7; 32])
    }

    #[test]
    fn a_sealed_message_opens_with_the_same_key_only() {
        let raw = key().seal(3, 1_000, "text\nabc\n1\nhello\nworld");
        assert_eq!(key().open(&raw, 2_000), Ok((3, "text\nabc\n1\nhello\nworld")));
        assert_eq!(ClusterKey::derive(&[8; 32]).open(&raw, 2_000), Err(Refused::Unsigned));
        assert_eq!(key().open("text\nabc\n1\nhello", 2_000), Err(Refused::Unsigned), "unsigned");
        let forged = raw.replace("hello", "hullo");
        assert_eq!(key().open(&forged, 2_000), Err(Refused::Unsigned));
        let recounted = raw.replacen("duet1 3 ", "duet1 4 ", 1);
        assert_eq!(key().open(&recounted, 2_000), Err(Refused::Unsigned));
    }

    #[test]
    fn an_old_message_is_stale_whatever_its_signature() {
        let raw = key().seal(1, 1_000, "beat\nabc");
        assert_eq!(key().open(&raw, 1_000 + MAX_AGE_MS), Ok((1, "beat\nabc")));
        assert_eq!(key().open(&raw, 1_001 + MAX_AGE_MS), Err(Refused::Stale));
        let future = key().seal(1, 100_000, "beat\nabc");
        assert_eq!(key().open(&future, 1_000), Err(Refused::Stale));
    }

    #[test]
    fn each_counter_is_taken_once_in_any_order() {
        let mut replays = Replays::default();
        let a: NodeId = "a".into();
        assert_eq!(replays.take(&a, 2), Ok(()));
        assert_eq!(replays.take(&a, 1), Ok(()), "a retry that arrives late");
        assert_eq!(replays.take(&a, 2), Err(Refused::Replayed));
        assert_eq!(replays.take(&a, 1), Err(Refused::Replayed));
        assert_eq!(replays.take(&"b".into(), 1), Ok(()), "another node counts on its own");
        assert_eq!(replays.take(&a, 1_000), Ok(()));
        assert_eq!(replays.take(&a, 3), Err(Refused::Replayed), "too old to tell: refused");
        assert_eq!(replays.take(&a, 999), Ok(()));
        assert_eq!(replays.take(&a, 873), Ok(()), "the window's oldest");
        assert_eq!(replays.take(&a, 872), Err(Refused::Replayed));
        assert_eq!(replays.take(&a, 0), Err(Refused::Replayed));
        replays.forget("a");
        assert_eq!(replays.take(&a, 1), Ok(()));
    }
}
