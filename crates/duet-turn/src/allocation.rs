//! An allocation and what hangs off it: permissions and channel bindings (RFC 8656
//! sections 2.2, 9 and 12).
//!
//! ```text
//!  FiveTuple (client, server, transport) ──owns──► Allocation ── relay address
//!                                                    ├─ permissions: peer IP → expiry (300 s)
//!                                                    └─ channels: number ↔ peer address (600 s)
//! ```
//!
//! Everything here checks expiry against the `now` it is given; nothing is removed by a
//! timer except whole allocations (the server sweeps those).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::policy::canonical;
use crate::stun::TransactionId;

/// Channel numbers a client may bind. RFC 8656 section 12 narrowed the range to
/// 0x4000-0x4FFF, but RFC 5766 clients (coturn's own tools among them) still pick numbers
/// up to 0x7FFF, and ChannelData framing tells them apart from STUN all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelNumber(u16);

impl ChannelNumber {
    pub const MIN: u16 = 0x4000;
    /// RFC 5766 section 11's upper bound, which RFC 8656 keeps reserved.
    pub const MAX: u16 = 0x7FFF;

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for ChannelNumber {
    type Error = u16;

    fn try_from(n: u16) -> Result<Self, u16> {
        if (Self::MIN..=Self::MAX).contains(&n) { Ok(Self(n)) } else { Err(n) }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelBinding {
    pub peer: SocketAddr,
    pub expires: Instant,
}

/// Why a channel cannot be bound as asked (RFC 8656 section 11.2: both are 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindConflict {
    ChannelTaken,
    PeerHasOtherChannel,
}

#[derive(Debug)]
pub(crate) struct Allocation {
    /// The relay socket's local address: where peer packets arrive.
    pub relay: SocketAddr,
    /// The relay address told to the client (the public address behind 1:1 NAT).
    pub advertised: SocketAddr,
    pub username: Box<str>,
    pub expires: Instant,
    /// The Allocate that made this allocation: a retransmission of it gets the same
    /// success again instead of 437.
    pub allocate_tid: TransactionId,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<ChannelNumber, ChannelBinding>,
    channel_of_peer: HashMap<SocketAddr, ChannelNumber>,
}

impl Allocation {
    pub fn new(
        relay: SocketAddr,
        advertised: SocketAddr,
        username: Box<str>,
        expires: Instant,
        allocate_tid: TransactionId,
    ) -> Self {
        Self {
            relay,
            advertised,
            username,
            expires,
            allocate_tid,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_of_peer: HashMap::new(),
        }
    }

    /// Live permissions (expired ones count until swept, which happens on the next
    /// install).
    pub fn permission_count(&self) -> usize {
        self.permissions.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&canonical(ip)).is_some_and(|&expires| now < expires)
    }

    pub fn install_permission(&mut self, ip: IpAddr, expires: Instant, now: Instant) {
        self.permissions.retain(|_, e| now < *e);
        self.permissions.insert(canonical(ip), expires);
    }

    pub fn channel(&self, number: ChannelNumber, now: Instant) -> Option<SocketAddr> {
        self.channels.get(&number).filter(|b| now < b.expires).map(|b| b.peer)
    }

    pub fn channel_for_peer(&self, peer: SocketAddr, now: Instant) -> Option<ChannelNumber> {
        let number = *self.channel_of_peer.get(&peer)?;
        self.channel(number, now).map(|_| number)
    }

    /// Checks that `number` may be bound to `peer`: either both are free, or they are
    /// already bound to each other (a refresh).
    pub fn check_bind(
        &self,
        number: ChannelNumber,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<bool, BindConflict> {
        let existing = self.channels.get(&number).filter(|b| now < b.expires);
        match existing {
            Some(b) if b.peer != peer => Err(BindConflict::ChannelTaken),
            Some(_) => Ok(true),
            None => match self.channel_for_peer(peer, now) {
                Some(other) if other != number => Err(BindConflict::PeerHasOtherChannel),
                _ => Ok(false),
            },
        }
    }

    pub fn bind_channel(&mut self, number: ChannelNumber, peer: SocketAddr, expires: Instant, now: Instant) {
        // Drop expired bindings first, so a number or peer freed by expiry can be reused.
        let expired: Vec<ChannelNumber> =
            self.channels.iter().filter(|(_, b)| now >= b.expires).map(|(n, _)| *n).collect();
        for n in expired {
            if let Some(b) = self.channels.remove(&n) {
                self.channel_of_peer.remove(&b.peer);
            }
        }
        self.channels.insert(number, ChannelBinding { peer, expires });
        self.channel_of_peer.insert(peer, number);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn alloc(now: Instant) -> Allocation {
        let relay = "127.0.0.1:50000".parse().expect("literal");
        Allocation::new(relay, relay, "u".into(), now + Duration::from_secs(600), TransactionId([0; 12]))
    }

    #[test]
    fn channel_numbers_outside_0x4000_to_0x7fff_are_refused() {
        assert!(ChannelNumber::try_from(0x3FFF).is_err());
        assert!(ChannelNumber::try_from(0x4000).is_ok());
        assert!(ChannelNumber::try_from(0x7FFF).is_ok());
        assert!(ChannelNumber::try_from(0x8000).is_err());
    }

    #[test]
    fn permissions_expire_and_cover_every_port_of_an_address() {
        let now = Instant::now();
        let mut a = alloc(now);
        let ip: IpAddr = "8.8.8.8".parse().expect("literal");
        a.install_permission(ip, now + Duration::from_secs(300), now);
        assert!(a.has_permission(ip, now + Duration::from_secs(299)));
        assert!(!a.has_permission(ip, now + Duration::from_secs(300)));
        assert!(a.has_permission("::ffff:8.8.8.8".parse().expect("literal"), now));
    }

    #[test]
    fn a_channel_and_a_peer_are_bound_one_to_one() {
        let now = Instant::now();
        let mut a = alloc(now);
        let c1 = ChannelNumber::try_from(0x4001).expect("valid");
        let c2 = ChannelNumber::try_from(0x4002).expect("valid");
        let p1: SocketAddr = "8.8.8.8:1000".parse().expect("literal");
        let p2: SocketAddr = "8.8.8.8:1001".parse().expect("literal");
        assert_eq!(a.check_bind(c1, p1, now), Ok(false));
        a.bind_channel(c1, p1, now + Duration::from_secs(600), now);
        assert_eq!(a.check_bind(c1, p1, now), Ok(true), "binding the same pair again refreshes it");
        assert_eq!(a.check_bind(c1, p2, now), Err(BindConflict::ChannelTaken));
        assert_eq!(a.check_bind(c2, p1, now), Err(BindConflict::PeerHasOtherChannel));
        let later = now + Duration::from_secs(600);
        assert_eq!(a.channel(c1, later), None, "expired");
        assert_eq!(a.check_bind(c2, p1, later), Ok(false), "an expired binding frees both sides");
    }
}
