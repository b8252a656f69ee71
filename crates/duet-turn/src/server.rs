//! The TURN server state machine: every allocation, its permissions and channels, and
//! the answers to every request. No sockets and no clock.
//!
//! # Run loop (what the driver in the `duet` binary does)
//!
//! 1. A packet from a client arrives on a listener (UDP datagram, or one framed message
//!    from a TCP/TLS stream): call [`Server::handle_client`]. If it returns a [`ToPeer`],
//!    send that range of the packet from the relay socket `relay` to `peer` right away
//!    (the hot path: nothing is copied or allocated).
//! 2. A datagram arrives on a relay socket: read it into a buffer at offset
//!    [`HEADROOM`], leaving [`TAILROOM`] spare bytes after it, and call
//!    [`Server::handle_peer`]. If it returns a [`ToClient`], send that range of the
//!    buffer to the client's five-tuple (the server has written the ChannelData or Data
//!    indication header in place).
//! 3. Drain [`Server::poll_event`]: bind a relay socket for every
//!    [`Event::BindRelay`] and report it with [`Server::relay_bound`]; close the socket of
//!    every [`Event::ReleaseRelay`].
//! 4. Drain [`Server::poll_transmit`]: responses to requests, each for one client.
//! 5. At [`Server::poll_timeout`], call [`Server::handle_timeout`] (expiry).
//!
//! Protocol rejections (401, 403, 437, 438, 486, 508...) are responses in step 4, not
//! errors: `Err` from `handle_client` means the bytes were not even a message.
//!
//! ```text
//!  client ──ChannelData/Send──► handle_client ──ToPeer──► relay socket ──► peer
//!  client ◄──ChannelData/Data── handle_peer ◄─────────── relay socket ◄── peer
//!  client ──Allocate/Refresh/CreatePermission/ChannelBind──► methods ──► poll_transmit
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::allocation::{Allocation, ChannelNumber};
use crate::auth::{Credentials, Nonces};
use crate::ledger::Ledger;
use crate::policy::{PeerPolicy, canonical, client_key};
use crate::stun::{
    self, Class, DecodeError, HEADER_LEN, Message, MessageBuilder, Method, TransactionId, attr,
};

mod methods;

/// Bytes the driver leaves free before a peer's payload, for the header written in
/// place: a Data indication over IPv6 needs 20 + 24 + 4.
pub const HEADROOM: usize = 48;
/// Bytes the driver leaves free after a peer's payload, for padding to four bytes.
pub const TAILROOM: usize = 3;

/// How a client reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// A client connection as RFC 8656 names it: an allocation belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
}

/// Address family of a relay (REQUESTED-ADDRESS-FAMILY, RFC 8656 section 18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// Identifies one Allocate waiting for its relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayRequest(u64);

/// Work for the driver besides sending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a relay socket to open or close"]
pub enum Event {
    /// Open a UDP relay socket of this family and report it with [`Server::relay_bound`].
    /// With `even_port` its port must be even; with `reserve_next` too, the next port must
    /// also be opened and held (EVEN-PORT with R=1, RFC 8656 section 14.6: RTP and RTCP).
    BindRelay { request: RelayRequest, family: Family, even_port: bool, reserve_next: bool },
    /// The allocation using this relay socket is gone (or its reservation expired): close it.
    ReleaseRelay { relay: SocketAddr },
    /// The socket held for a reservation (perhaps by another server sharing the
    /// [`crate::Ledger`]) now serves an allocation of this server: read it here.
    AdoptRelay { relay: SocketAddr },
}

/// Relay sockets the driver opened for a [`Event::BindRelay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundRelay {
    /// The socket's local address.
    pub local: SocketAddr,
    /// The address announced to the client.
    pub advertised: SocketAddr,
    /// The next port, held for a later Allocate with the RESERVATION-TOKEN (local,
    /// advertised), when `reserve_next` was asked.
    pub reserved: Option<(SocketAddr, SocketAddr)>,
}

/// How long a reserved port waits for its Allocate (RFC 8656 section 7.2: at least 30 s).
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// Revoked users remembered at once (each until its credentials expire).
const MAX_REVOKED: usize = 100_000;

/// A response for one client.
#[derive(Debug, Clone)]
#[must_use = "a response the client is waiting for"]
pub struct Transmit {
    pub to: FiveTuple,
    pub data: Vec<u8>,
}

/// Send `packet[payload]` from the relay socket `relay` to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a packet to relay"]
pub struct ToPeer {
    pub relay: SocketAddr,
    pub peer: SocketAddr,
    pub payload: Range<usize>,
}

/// Send `buf[frame]` to the client of `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a packet to relay"]
pub struct ToClient {
    pub to: FiveTuple,
    pub frame: Range<usize>,
}

/// Lifetimes (RFC 8656 sections 2.2, 9, 12).
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub default_allocation: Duration,
    pub max_allocation: Duration,
    pub permission: Duration,
    pub channel: Duration,
    pub nonce: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            default_allocation: Duration::from_secs(600),
            max_allocation: Duration::from_secs(3600),
            permission: Duration::from_secs(300),
            channel: Duration::from_secs(600),
            nonce: Duration::from_secs(600),
        }
    }
}

/// Limits that keep one user, or one address, from exhausting the server.
#[derive(Debug, Clone)]
pub struct Quotas {
    /// 486 Allocation Quota Reached past this many allocations of one user (for ephemeral
    /// credentials the part after the expiry, so fresh credentials do not reset it).
    pub allocations_per_user: usize,
    /// 486 past this many allocations from one client address (an IPv6 /64 counts as
    /// one), whatever credentials it holds.
    pub allocations_per_address: usize,
    /// 508 Insufficient Capacity past this.
    pub allocations_total: usize,
    pub permissions_per_allocation: usize,
    pub channels_per_allocation: usize,
    /// Unauthenticated answers (401, 438, 400 before authentication) per source address
    /// per second; beyond it requests are dropped unanswered (reflection defence).
    pub unauthenticated_per_second: u32,
    /// The same, for an address that has authenticated in the last ten minutes (many
    /// users behind one NAT).
    pub unauthenticated_per_second_verified: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            allocations_per_user: 10,
            allocations_per_address: 32,
            allocations_total: 10_000,
            permissions_per_allocation: 64,
            channels_per_allocation: 64,
            unauthenticated_per_second: 10,
            unauthenticated_per_second_verified: 5_000,
        }
    }
}

/// Everything the server is told once.
#[derive(Debug, Clone)]
pub struct Config {
    /// Short: it is in every 401 (amplification), RFC 8489 section 14.9.
    pub realm: String,
    /// SOFTWARE attribute; `None` (the default) tells attackers nothing.
    pub software: Option<String>,
    pub credentials: Credentials,
    /// Random bytes for the nonce MAC, from the driver.
    pub nonce_secret: [u8; 32],
    pub policy: PeerPolicy,
    pub lifetimes: Lifetimes,
    pub quotas: Quotas,
}

/// Counters for metrics; the server never logs.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub allocations_created: u64,
    /// Packets (and their payload bytes) relayed from clients to peers.
    pub relayed_to_peers: u64,
    pub relayed_to_peers_bytes: u64,
    /// Packets (and their payload bytes) relayed from peers to clients.
    pub relayed_to_clients: u64,
    pub relayed_to_clients_bytes: u64,
    pub peer_packets_dropped: u64,
    pub client_packets_dropped: u64,
    pub unauthenticated_dropped: u64,
    pub peer_denied: u64,
}

impl Stats {
    /// Adds `other`'s counts (of another server of the same process) to these.
    pub fn add(&mut self, other: &Stats) {
        self.allocations_created += other.allocations_created;
        self.relayed_to_peers += other.relayed_to_peers;
        self.relayed_to_peers_bytes += other.relayed_to_peers_bytes;
        self.relayed_to_clients += other.relayed_to_clients;
        self.relayed_to_clients_bytes += other.relayed_to_clients_bytes;
        self.peer_packets_dropped += other.peer_packets_dropped;
        self.client_packets_dropped += other.client_packets_dropped;
        self.unauthenticated_dropped += other.unauthenticated_dropped;
        self.peer_denied += other.peer_denied;
    }
}

#[derive(Debug)]
struct Pending {
    five_tuple: FiveTuple,
    transaction_id: TransactionId,
    username: Box<str>,
    key: crate::auth::Key,
    lifetime: Duration,
    fingerprint: bool,
}

/// The TURN server; see the module documentation for the run loop.
#[derive(Debug)]
pub struct Server {
    config: Config,
    nonces: Nonces,
    /// An instant and the Unix time at it: ephemeral usernames and nonces carry Unix
    /// seconds, while the server is only ever given `Instant`s.
    epoch: (Instant, u64),
    allocations: HashMap<FiveTuple, Allocation>,
    by_relay: HashMap<SocketAddr, FiveTuple>,
    /// Allocations (and pending Allocates) per user ([`crate::auth::user_of`]), per client
    /// address ([`client_key`]) and in all; perhaps shared with other servers.
    ledger: Ledger,
    /// Users whose session ended ([`Server::revoke_user`]), and until when that is
    /// remembered (as Unix seconds: past it, their credentials have expired anyway).
    revoked: HashMap<Box<str>, u64>,
    pending: HashMap<RelayRequest, Pending>,
    pending_by_tuple: HashMap<FiveTuple, RelayRequest>,
    next_request: u64,
    next_sweep: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_indication: u64,
    stats: Stats,
}

impl Server {
    /// `unix_now` is the wall-clock time (seconds since 1970) at `now`.
    pub fn new(config: Config, now: Instant, unix_now: u64) -> Self {
        Self::with_ledger(config, now, unix_now, Ledger::new())
    }

    /// A server whose allocation quotas are counted in `ledger`, which other servers (on
    /// other threads, with the same configuration) may share: the quotas then hold for
    /// all of them together.
    pub fn with_ledger(config: Config, now: Instant, unix_now: u64, ledger: Ledger) -> Self {
        let nonces = Nonces::new(config.nonce_secret, config.lifetimes.nonce.as_secs());
        Self {
            config,
            nonces,
            epoch: (now, unix_now),
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            ledger,
            revoked: HashMap::new(),
            pending: HashMap::new(),
            pending_by_tuple: HashMap::new(),
            next_request: 0,
            next_sweep: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_indication: 0,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// Whether the client of `five_tuple` holds an allocation (a TCP or TLS connection
    /// that holds none after a few seconds is closed by the driver).
    pub fn has_allocation(&self, five_tuple: &FiveTuple) -> bool {
        self.allocations.contains_key(five_tuple) || self.pending_by_tuple.contains_key(five_tuple)
    }

    /// `user`'s session is over (signed out, or gone): its allocations are removed now
    /// and none of its credentials is accepted again until `until_unix`, when the last
    /// of them has expired anyway.
    pub fn revoke_user(&mut self, now: Instant, user: &str, until_unix: u64) {
        if self.revoked.len() >= MAX_REVOKED {
            let unix = self.unix(now);
            self.revoked.retain(|_, until| *until > unix);
            if self.revoked.len() >= MAX_REVOKED {
                return; // their credentials expire on their own; nothing else is at stake
            }
        }
        self.revoked.insert(user.into(), until_unix);
        let theirs: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| crate::auth::user_of(&a.username) == user)
            .map(|(tuple, _)| *tuple)
            .collect();
        for tuple in theirs {
            self.remove_allocation(&tuple);
        }
    }

    /// The server's own addresses changed (an interface came or went): they are never
    /// peers from now on.
    pub fn set_own_addresses(&mut self, own: Vec<IpAddr>) {
        self.config.policy.own_addresses = own;
    }

    /// Whether `username`'s user has been revoked.
    fn is_revoked(&self, username: &str) -> bool {
        self.revoked.contains_key(crate::auth::user_of(username))
    }

    fn unix(&self, now: Instant) -> u64 {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0).as_secs()
    }

    /// A packet from a client: STUN or ChannelData.
    pub fn handle_client(
        &mut self,
        now: Instant,
        from: FiveTuple,
        packet: &[u8],
    ) -> Result<Option<ToPeer>, DecodeError> {
        if packet.first().is_some_and(|b| b & 0xC0 == 0x40) {
            return Ok(self.channel_data_from_client(now, from, packet));
        }
        let msg = Message::parse(packet)?;
        match (msg.class(), msg.method()) {
            (Class::Request, Method::BINDING) => {
                self.binding(from, &msg);
                Ok(None)
            }
            (Class::Request, method) => {
                self.request(now, from, &msg, method);
                Ok(None)
            }
            (Class::Indication, Method::SEND) => Ok(self.send_indication(now, from, &msg, packet)),
            _ => {
                // Binding indications (keepalives), responses: nothing to do.
                Ok(None)
            }
        }
    }

    fn channel_data_from_client(&mut self, now: Instant, from: FiveTuple, packet: &[u8]) -> Option<ToPeer> {
        let forwarded = (|| {
            let header: [u8; 4] = packet.get(..4)?.try_into().ok()?;
            let number = ChannelNumber::try_from(u16::from_be_bytes([header[0], header[1]])).ok()?;
            let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
            if packet.len() - 4 < len {
                return None;
            }
            let allocation = self.allocations.get(&from)?;
            let peer = allocation.channel(number, now)?;
            Some(ToPeer { relay: allocation.relay, peer, payload: 4..4 + len })
        })();
        self.counted_for_peer(forwarded)
    }

    fn send_indication(
        &mut self,
        now: Instant,
        from: FiveTuple,
        msg: &Message<'_>,
        packet: &[u8],
    ) -> Option<ToPeer> {
        let forwarded = (|| {
            let allocation = self.allocations.get(&from)?;
            let peer = msg.xor_address(attr::XOR_PEER_ADDRESS)?;
            let data = msg.get(attr::DATA)?;
            if !allocation.has_permission(peer.ip(), now) {
                return None;
            }
            let start = data.as_ptr() as usize - packet.as_ptr() as usize;
            Some(ToPeer { relay: allocation.relay, peer, payload: start..start + data.len() })
        })();
        self.counted_for_peer(forwarded)
    }

    /// Counts a client's packet as relayed (with its payload's bytes) or dropped.
    fn counted_for_peer(&mut self, forwarded: Option<ToPeer>) -> Option<ToPeer> {
        if let Some(to) = &forwarded {
            self.stats.relayed_to_peers += 1;
            self.stats.relayed_to_peers_bytes += to.payload.len() as u64;
        }
        counted(&mut self.stats.client_packets_dropped, forwarded)
    }

    /// A datagram from `peer` arrived on the relay socket `relay`; its bytes are
    /// `buf[payload]`, with [`HEADROOM`] bytes free before and [`TAILROOM`] after.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Option<ToClient> {
        let bytes = payload.len() as u64;
        let framed = self.frame_for_client(now, relay, peer, buf, payload);
        if framed.is_some() {
            self.stats.relayed_to_clients += 1;
            self.stats.relayed_to_clients_bytes += bytes;
        }
        counted(&mut self.stats.peer_packets_dropped, framed)
    }

    fn frame_for_client(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Option<ToClient> {
        if payload.start < HEADROOM
            || buf.len() < payload.end + TAILROOM
            || payload.len() > usize::from(u16::MAX) - 64
        {
            return None;
        }
        let to = *self.by_relay.get(&relay)?;
        let allocation = self.allocations.get(&to)?;
        if now >= allocation.expires || !allocation.has_permission(peer.ip(), now) {
            return None;
        }
        let len = payload.len();
        if let Some(channel) = allocation.channel_for_peer(peer, now) {
            let start = payload.start - 4;
            buf[start..start + 2].copy_from_slice(&channel.get().to_be_bytes());
            buf[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
            // Over TCP and TLS, ChannelData is padded to four bytes (RFC 8656 section 12.5).
            let end = if to.transport == Transport::Udp { payload.end } else { pad(payload.end, start) };
            buf[payload.end..end].fill(0);
            return Some(ToClient { to, frame: start..end });
        }
        // No channel: a Data indication with XOR-PEER-ADDRESS and DATA before the payload,
        // written in place (RFC 8656 section 11.4).
        self.next_indication = self.next_indication.wrapping_add(1);
        let mut tid = [0u8; 12];
        tid[4..].copy_from_slice(&self.next_indication.to_be_bytes());
        let tid = TransactionId(tid);
        let (peer_value, peer_len) = stun::xor_address_value(peer, &tid);
        let start = payload.start - (HEADER_LEN + 4 + peer_len + 4);
        let end = pad(payload.end, start);
        let mut at = start;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&stun::encode_type(Method::DATA, Class::Indication).to_be_bytes());
        put(&((end - start - HEADER_LEN) as u16).to_be_bytes());
        put(&stun::MAGIC_COOKIE.to_be_bytes());
        put(&tid.0);
        put(&attr::XOR_PEER_ADDRESS.to_be_bytes());
        put(&(peer_len as u16).to_be_bytes());
        put(&peer_value[..peer_len]);
        put(&attr::DATA.to_be_bytes());
        put(&(len as u16).to_be_bytes());
        buf[payload.end..end].fill(0);
        Some(ToClient { to, frame: start..end })
    }

    /// The relay socket for `request` is open (or could not be opened).
    pub fn relay_bound(&mut self, now: Instant, request: RelayRequest, result: Result<BoundRelay, ()>) {
        let Some(pending) = self.pending.remove(&request) else {
            // Dropped meanwhile (its user was revoked): give the socket back.
            if let Ok(bound) = result {
                self.events.push_back(Event::ReleaseRelay { relay: bound.local });
                if let Some((reserved, _)) = bound.reserved {
                    self.events.push_back(Event::ReleaseRelay { relay: reserved });
                }
            }
            return;
        };
        self.pending_by_tuple.remove(&pending.five_tuple);
        methods::finish_allocate(self, now, pending, result);
    }

    /// A TCP or TLS connection closed: its allocation goes with it (RFC 8656 section 3.1).
    pub fn handle_stream_closed(&mut self, five_tuple: FiveTuple) {
        self.remove_allocation(&five_tuple);
    }

    /// Next instant [`Server::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Removes expired allocations.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_none_or(|due| now < due) {
            return;
        }
        let expired: Vec<FiveTuple> =
            self.allocations.iter().filter(|(_, a)| now >= a.expires).map(|(t, _)| *t).collect();
        for tuple in expired {
            self.remove_allocation(&tuple);
        }
        for relay in self.ledger.expire_reservations(now) {
            self.events.push_back(Event::ReleaseRelay { relay });
        }
        let allocations = self.allocations.values().map(|a| a.expires);
        self.next_sweep = allocations.chain(self.ledger.next_reservation_expiry()).min();
        self.ledger.forget_unauthenticated_before(now);
        let unix = self.unix(now);
        self.revoked.retain(|_, until| *until > unix);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn remove_allocation(&mut self, tuple: &FiveTuple) {
        let Some(allocation) = self.allocations.remove(tuple) else { return };
        self.by_relay.remove(&allocation.relay);
        self.uncount(tuple, &allocation.username);
        self.events.push_back(Event::ReleaseRelay { relay: allocation.relay });
    }

    /// Counts an unauthenticated answer to `ip` (for every server sharing the ledger);
    /// false if `ip` is over its budget for this second.
    fn allow_unauthenticated(&self, ip: IpAddr, now: Instant) -> bool {
        self.ledger.allow_unauthenticated(ip, now, self.unauthenticated_rates())
    }

    /// `ip` just authenticated: a larger budget for a while, on every sharing server.
    fn authenticated(&self, ip: IpAddr, now: Instant) {
        self.ledger.authenticated(ip, now, self.unauthenticated_rates());
    }

    fn unauthenticated_rates(&self) -> (u32, u32) {
        let quotas = &self.config.quotas;
        (quotas.unauthenticated_per_second, quotas.unauthenticated_per_second_verified)
    }

    /// Gives back to the ledger what an allocation (or a pending Allocate) counted.
    fn uncount(&mut self, tuple: &FiveTuple, username: &str) {
        self.ledger.give_back(crate::auth::user_of(username), client_key(tuple.client.ip()));
    }

    fn schedule_sweep(&mut self, at: Instant) {
        self.next_sweep = Some(self.next_sweep.map_or(at, |due| due.min(at)));
    }

    fn binding(&mut self, from: FiveTuple, msg: &Message<'_>) {
        let mut data = Vec::with_capacity(48);
        let mut b = MessageBuilder::new(&mut data, Method::BINDING, Class::Success, msg.transaction_id());
        b.add_xor_address(attr::XOR_MAPPED_ADDRESS, from.client);
        if let Some(software) = &self.config.software {
            b.add(attr::SOFTWARE, software.as_bytes());
        }
        if msg.has(attr::FINGERPRINT) {
            b.add_fingerprint();
        }
        self.transmits.push_back(Transmit { to: from, data });
    }

    fn peer_allowed(&mut self, ip: IpAddr) -> bool {
        let allowed = self.config.policy.allows(canonical(ip));
        if !allowed {
            self.stats.peer_denied += 1;
        }
        allowed
    }
}

/// Passes `relayed` through, counting it in `dropped` when there is nothing to relay.
fn counted<T>(dropped: &mut u64, relayed: Option<T>) -> Option<T> {
    if relayed.is_none() {
        *dropped += 1;
    }
    relayed
}

/// `end` rounded up so that `end - start` is a multiple of four.
fn pad(end: usize, start: usize) -> usize {
    start + ((end - start + 3) & !3)
}

#[cfg(test)]
mod tests;
