//! A sans-IO TURN client (RFC 8656) for one UDP allocation, so a native peer can be
//! reached through a relay the way a browser can: duet's TURN with the credentials
//! signaling hands out.
//!
//! ```text
//!  new() ──► Allocate ──401 (realm, nonce)──► Allocate + MESSAGE-INTEGRITY ──► relayed address
//!  send_to(peer, data) ──► CreatePermission (once per peer IP, renewed) + ChannelBind (once
//!                          per peer) ──► Send indications until the channel is bound,
//!                          ChannelData (4 bytes of header instead of 36 or more) after
//!  server datagram ──► handle_datagram ──► ChannelData | Data indication ──► (peer, data)
//!  timers: Refresh at half the lifetime, permissions every 4 minutes, channels every 5,
//!          retransmits
//! ```
//!
//! Only what the peer needs: UDP, one allocation, a channel per peer (while the server
//! has numbers to give; Send indications otherwise).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use duet_turn::auth::{Key, long_term_key};
use duet_turn::stun::{Class, Message, MessageBuilder, Method, TransactionId, attr};

/// Requests unanswered for this long are sent again, up to [`ATTEMPTS`] times.
const RETRANSMIT: Duration = Duration::from_millis(500);
const ATTEMPTS: u32 = 6;
/// Permissions last 5 minutes on the server; renewed a minute early.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Channel bindings last 10 minutes on the server; bound again halfway.
const CHANNEL_REFRESH: Duration = Duration::from_secs(300);
/// Channel numbers a client may bind (RFC 8656 section 12).
const CHANNELS: std::ops::RangeInclusive<u16> = 0x4000..=0x4fff;
/// REQUESTED-TRANSPORT: UDP.
const UDP: u32 = 17 << 24;

/// Where an allocation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnState {
    Allocating,
    /// The relay address peers can send to.
    Allocated(SocketAddr),
    /// The server refused (wrong credentials, quota...) or never answered.
    Failed(String),
}

#[derive(Debug, Clone)]
enum Pending {
    Allocate,
    Refresh,
    Permission(IpAddr),
    Channel(SocketAddr, u16),
}

/// A channel to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// Asked for; data goes as Send indications meanwhile.
    Binding(u16),
    /// Bound: data goes as ChannelData; bound again at the instant.
    Bound(u16, Instant),
    /// The server said no (no numbers left, say): Send indications to this peer.
    Refused,
}

#[derive(Debug)]
struct InFlight {
    what: Pending,
    bytes: Vec<u8>,
    sent: Instant,
    attempts: u32,
}

/// One TURN allocation over UDP.
#[derive(Debug)]
pub struct TurnClient {
    server: SocketAddr,
    username: String,
    password: String,
    auth: Option<(String, String, Key)>, // realm, nonce, key
    state: TurnState,
    /// Our address as the server saw it (XOR-MAPPED-ADDRESS of the Allocate answer).
    mapped: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<SocketAddr, Channel>,
    peer_of_channel: HashMap<u16, SocketAddr>,
    in_flight: HashMap<TransactionId, InFlight>,
    out: VecDeque<Vec<u8>>,
    ids: (u64, [u8; 12]),
}

impl TurnClient {
    /// Starts allocating at `server` with these credentials; `seed` (random bytes from
    /// the shell) makes the transaction ids unguessable.
    pub fn new(now: Instant, server: SocketAddr, username: &str, password: &str, seed: [u8; 12]) -> Self {
        let mut client = Self {
            server,
            username: username.to_owned(),
            password: password.to_owned(),
            auth: None,
            state: TurnState::Allocating,
            mapped: None,
            refresh_at: None,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            peer_of_channel: HashMap::new(),
            in_flight: HashMap::new(),
            out: VecDeque::new(),
            ids: (0, seed),
        };
        client.request(now, Pending::Allocate);
        client
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn state(&self) -> &TurnState {
        &self.state
    }

    /// The relayed address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            TurnState::Allocated(addr) => Some(addr),
            _ => None,
        }
    }

    /// Our address as the TURN server sees it (behind a NAT: the NAT's), once allocated:
    /// a server-reflexive candidate.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// Sends `data` to `peer` through the relay (asking for a permission and a channel
    /// first, once).
    pub fn send_to(&mut self, now: Instant, peer: SocketAddr, data: &[u8]) {
        if self.relayed().is_none() {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(entry) = self.permissions.entry(peer.ip()) {
            entry.insert(now + PERMISSION_REFRESH);
            self.request(now, Pending::Permission(peer.ip()));
        }
        match self.channels.get(&peer) {
            Some(Channel::Bound(number, _)) if data.len() <= usize::from(u16::MAX) => {
                let mut frame = Vec::with_capacity(4 + data.len());
                frame.extend_from_slice(&number.to_be_bytes());
                frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
                frame.extend_from_slice(data);
                self.out.push_back(frame);
                return;
            }
            Some(_) => {}
            None => {
                let number = CHANNELS.start().checked_add(self.peer_of_channel.len() as u16);
                match number.filter(|n| CHANNELS.contains(n)) {
                    Some(number) => {
                        self.channels.insert(peer, Channel::Binding(number));
                        self.peer_of_channel.insert(number, peer);
                        self.request(now, Pending::Channel(peer, number));
                    }
                    None => {
                        self.channels.insert(peer, Channel::Refused);
                    }
                }
            }
        }
        let mut buf = Vec::with_capacity(data.len() + 40);
        MessageBuilder::new(&mut buf, Method::SEND, Class::Indication, self.next_id())
            .add_xor_address(attr::XOR_PEER_ADDRESS, peer)
            .add(attr::DATA, data);
        self.out.push_back(buf);
    }

    /// A datagram from the TURN server. Returns what a peer sent through the relay.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
        if let [first, second, len_high, len_low, rest @ ..] = data
            && first & 0xc0 == 0x40
        {
            // ChannelData: on a channel this client bound.
            let peer = *self.peer_of_channel.get(&u16::from_be_bytes([*first, *second]))?;
            let len = usize::from(u16::from_be_bytes([*len_high, *len_low]));
            return Some((peer, rest.get(..len)?.to_vec()));
        }
        let msg = Message::parse(data).ok()?;
        if msg.method() == Method::DATA && msg.class() == Class::Indication {
            let peer = msg.xor_address(attr::XOR_PEER_ADDRESS)?;
            return Some((peer, msg.get(attr::DATA)?.to_vec()));
        }
        let flight = self.in_flight.remove(&msg.transaction_id())?;
        match msg.class() {
            Class::Success => self.succeeded(now, &flight.what, &msg),
            Class::Error => self.failed(now, flight, &msg),
            _ => {}
        }
        None
    }

    /// Datagrams to send to the server, until `None`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When [`TurnClient::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self.in_flight.values().map(|f| f.sent + RETRANSMIT);
        let permissions = self.permissions.values().copied();
        let channels = self.channels.values().filter_map(|c| match c {
            Channel::Bound(_, at) => Some(*at),
            _ => None,
        });
        retransmit.chain(permissions).chain(channels).chain(self.refresh_at).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut gave_up = None;
        for (id, flight) in &mut self.in_flight {
            if now >= flight.sent + RETRANSMIT {
                if flight.attempts >= ATTEMPTS {
                    gave_up = Some(*id);
                    continue;
                }
                flight.attempts += 1;
                flight.sent = now;
                resend.push(flight.bytes.clone());
            }
        }
        self.out.extend(resend);
        if let Some(id) = gave_up
            && let Some(flight) = self.in_flight.remove(&id)
            && matches!(flight.what, Pending::Allocate)
        {
            self.state = TurnState::Failed(format!("the TURN server at {} does not answer", self.server));
        }
        if self.refresh_at.is_some_and(|at| now >= at) {
            self.refresh_at = None;
            self.request(now, Pending::Refresh);
        }
        let due: Vec<IpAddr> =
            self.permissions.iter().filter(|(_, at)| now >= **at).map(|(ip, _)| *ip).collect();
        for ip in due {
            self.permissions.insert(ip, now + PERMISSION_REFRESH);
            self.request(now, Pending::Permission(ip));
        }
        let due: Vec<(SocketAddr, u16)> = self
            .channels
            .iter()
            .filter_map(|(peer, c)| match c {
                Channel::Bound(number, at) if now >= *at => Some((*peer, *number)),
                _ => None,
            })
            .collect();
        for (peer, number) in due {
            // Still bound until the server says otherwise: it keeps a binding 10 minutes.
            self.channels.insert(peer, Channel::Bound(number, now + CHANNEL_REFRESH));
            self.request(now, Pending::Channel(peer, number));
        }
    }

    fn succeeded(&mut self, now: Instant, what: &Pending, msg: &Message<'_>) {
        let lifetime = Duration::from_secs(u64::from(msg.u32(attr::LIFETIME).unwrap_or(600)));
        match what {
            Pending::Allocate => match msg.xor_address(attr::XOR_RELAYED_ADDRESS) {
                Some(relayed) => {
                    self.state = TurnState::Allocated(relayed);
                    self.mapped = msg.xor_address(attr::XOR_MAPPED_ADDRESS);
                    self.refresh_at = Some(now + lifetime / 2);
                }
                None => self.state = TurnState::Failed("the TURN server gave no relayed address".into()),
            },
            Pending::Refresh => self.refresh_at = Some(now + lifetime / 2),
            Pending::Permission(_) => {}
            Pending::Channel(peer, number) => {
                self.channels.insert(*peer, Channel::Bound(*number, now + CHANNEL_REFRESH));
            }
        }
    }

    fn failed(&mut self, now: Instant, flight: InFlight, msg: &Message<'_>) {
        let code = msg
            .get(attr::ERROR_CODE)
            .filter(|v| v.len() >= 4)
            .map(|v| u16::from(v[2] & 7) * 100 + u16::from(v[3]));
        let realm = msg.text(attr::REALM);
        let nonce = msg.text(attr::NONCE);
        let retry = match (code, realm, nonce) {
            // The first answer (401: who are you?), or a nonce that went stale (438).
            (Some(401), Some(realm), Some(nonce)) if self.auth.is_none() => {
                let key = long_term_key(&self.username, realm, &self.password);
                self.auth = Some((realm.to_owned(), nonce.to_owned(), key));
                true
            }
            (Some(438), _, Some(nonce)) if self.auth.is_some() => {
                if let Some(auth) = self.auth.as_mut() {
                    auth.1 = nonce.to_owned();
                }
                true
            }
            _ => false,
        };
        if retry && flight.attempts < ATTEMPTS {
            self.request(now, flight.what);
        } else if let Pending::Channel(peer, _) = flight.what {
            // The number stays taken: the server may still hold an earlier binding of it.
            self.channels.insert(peer, Channel::Refused);
        } else if matches!(flight.what, Pending::Allocate | Pending::Refresh) {
            let reason = match code {
                Some(401) => "the TURN credentials were refused".to_owned(),
                Some(code) => format!("the TURN server refused the allocation ({code})"),
                None => "the TURN server refused the allocation".to_owned(),
            };
            self.state = TurnState::Failed(reason);
        }
    }

    fn request(&mut self, now: Instant, what: Pending) {
        let id = self.next_id();
        let mut buf = Vec::new();
        let method = match what {
            Pending::Allocate => Method::ALLOCATE,
            Pending::Refresh => Method::REFRESH,
            Pending::Permission(_) => Method::CREATE_PERMISSION,
            Pending::Channel(..) => Method::CHANNEL_BIND,
        };
        let mut message = MessageBuilder::new(&mut buf, method, Class::Request, id);
        match &what {
            Pending::Allocate => {
                message.add_u32(attr::REQUESTED_TRANSPORT, UDP);
            }
            Pending::Refresh => {}
            Pending::Permission(ip) => {
                message.add_xor_address(attr::XOR_PEER_ADDRESS, SocketAddr::new(*ip, 0));
            }
            Pending::Channel(peer, number) => {
                let [high, low] = number.to_be_bytes();
                message
                    .add(attr::CHANNEL_NUMBER, &[high, low, 0, 0])
                    .add_xor_address(attr::XOR_PEER_ADDRESS, *peer);
            }
        }
        if let Some((realm, nonce, key)) = &self.auth {
            message
                .add(attr::USERNAME, self.username.as_bytes())
                .add(attr::REALM, realm.as_bytes())
                .add(attr::NONCE, nonce.as_bytes())
                .add_integrity(key);
        }
        message.add_fingerprint();
        self.out.push_back(buf.clone());
        self.in_flight.insert(id, InFlight { what, bytes: buf, sent: now, attempts: 1 });
    }

    fn next_id(&mut self) -> TransactionId {
        self.ids.0 += 1;
        let mut id = self.ids.1;
        for (byte, counter) in id.iter_mut().zip(self.ids.0.to_be_bytes()) {
            *byte ^= counter;
        }
        TransactionId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_turn::auth::{Credentials, ephemeral_password, ephemeral_username};
    use duet_turn::policy::PeerPolicy;
    use duet_turn::server::{
        BoundRelay, Config, Event, FiveTuple, HEADROOM, Lifetimes, Quotas, Server, TAILROOM, Transport,
    };

    const SECRET: &[u8] = b"turn test secret";
    const UNIX: u64 = 1_800_000_000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("literal")
    }

    /// duet's own sans-IO TURN server, with loopback peers allowed.
    fn server(now: Instant) -> Server {
        let config = Config {
            realm: "duet".into(),
            software: None,
            credentials: Credentials { shared_secret: Some(SECRET.to_vec()), ..Default::default() },
            nonce_secret: [3; 32],
            policy: PeerPolicy { dangerous_allow_loopback_peers: true, ..PeerPolicy::default() },
            lifetimes: Lifetimes::default(),
            quotas: Quotas::default(),
        };
        Server::new(config, now, UNIX)
    }

    /// Passes the client's datagrams to the server and the answers back, binding relay
    /// sockets as the server asks; returns what the server relayed to peers.
    fn exchange(client: &mut TurnClient, server: &mut Server, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let tuple =
            FiveTuple { client: addr("127.0.0.1:40000"), server: client.server(), transport: Transport::Udp };
        let mut to_peers = Vec::new();
        for _ in 0..8 {
            let mut quiet = true;
            while let Some(datagram) = client.poll_transmit() {
                quiet = false;
                if let Ok(Some(to_peer)) = server.handle_client(now, tuple, &datagram) {
                    to_peers.push((to_peer.peer, datagram[to_peer.payload].to_vec()));
                }
            }
            while let Some(event) = server.poll_event() {
                if let Event::BindRelay { request, .. } = event {
                    let relay = addr("127.0.0.1:50002");
                    server.relay_bound(
                        now,
                        request,
                        Ok(BoundRelay { local: relay, advertised: relay, reserved: None }),
                    );
                }
            }
            while let Some(reply) = server.poll_transmit() {
                quiet = false;
                assert!(client.handle_datagram(now, &reply.data).is_none(), "responses carry no peer data");
            }
            if quiet {
                break;
            }
        }
        to_peers
    }

    #[test]
    fn a_client_allocates_from_duet_s_turn_server_and_relays_both_ways() {
        let now = Instant::now();
        let mut server = server(now);
        let username = ephemeral_username(UNIX + 3600, "peer");
        let password = ephemeral_password(SECRET, &username);
        let mut client = TurnClient::new(now, addr("127.0.0.1:3478"), &username, &password, [7; 12]);
        exchange(&mut client, &mut server, now);
        assert_eq!(client.relayed(), Some(addr("127.0.0.1:50002")), "401, then an authenticated Allocate");
        assert_eq!(client.mapped(), Some(addr("127.0.0.1:40000")), "and our address as the server saw it");

        let peer = addr("127.0.0.1:6000");
        client.send_to(now, peer, b"hello peer");
        let relayed = exchange(&mut client, &mut server, now);
        assert_eq!(relayed, vec![(peer, b"hello peer".to_vec())], "a permission first, then the data");

        let mut buf = vec![0u8; HEADROOM + 9 + TAILROOM];
        buf[HEADROOM..HEADROOM + 9].copy_from_slice(b"hi client");
        let frame = server
            .handle_peer(now, addr("127.0.0.1:50002"), peer, &mut buf, HEADROOM..HEADROOM + 9)
            .expect("the peer has a permission");
        assert_eq!(client.handle_datagram(now, &buf[frame.frame]), Some((peer, b"hi client".to_vec())));
    }

    #[test]
    fn data_goes_as_channel_data_once_the_channel_is_bound_and_the_binding_is_renewed() {
        let mut now = Instant::now();
        let mut server = server(now);
        let username = ephemeral_username(UNIX + 3600, "peer");
        let password = ephemeral_password(SECRET, &username);
        let mut client = TurnClient::new(now, addr("127.0.0.1:3478"), &username, &password, [9; 12]);
        exchange(&mut client, &mut server, now);
        let peer = addr("127.0.0.1:6000");
        client.send_to(now, peer, b"first");
        assert_eq!(exchange(&mut client, &mut server, now), vec![(peer, b"first".to_vec())]);

        client.send_to(now, peer, b"second");
        let frame = client.poll_transmit().expect("a datagram");
        assert_eq!(&frame[..4], &[0x40, 0x00, 0, 6], "ChannelData on the first channel number");
        client.out.push_front(frame);
        assert_eq!(exchange(&mut client, &mut server, now), vec![(peer, b"second".to_vec())]);

        let mut buf = vec![0u8; HEADROOM + 5 + TAILROOM];
        buf[HEADROOM..HEADROOM + 5].copy_from_slice(b"reply");
        let out = server.handle_peer(now, addr("127.0.0.1:50002"), peer, &mut buf, HEADROOM..HEADROOM + 5);
        let frame = &buf[out.expect("the peer may send").frame];
        assert_eq!(frame.len(), 4 + 5, "the server answers on the channel too");
        assert_eq!(client.handle_datagram(now, frame), Some((peer, b"reply".to_vec())));
        assert_eq!(client.handle_datagram(now, &[0x40, 0x07, 0, 1, 0]), None, "a channel we never bound");
        assert_eq!(client.handle_datagram(now, &[0x40, 0x00, 0, 9, 0]), None, "shorter than it says");

        // Eleven minutes on (the server forgets a binding after ten), the channel still
        // carries data: the client bound it again on time, and refreshed everything else.
        for _ in 0..11 {
            now += Duration::from_secs(60);
            client.handle_timeout(now);
            server.handle_timeout(now);
            exchange(&mut client, &mut server, now);
        }
        client.send_to(now, peer, b"later");
        assert_eq!(exchange(&mut client, &mut server, now), vec![(peer, b"later".to_vec())]);
        let out = server.handle_peer(now, addr("127.0.0.1:50002"), peer, &mut buf, HEADROOM..HEADROOM + 5);
        assert_eq!(out.expect("still permitted").frame.len(), 4 + 5, "and still on the channel");
    }

    #[test]
    fn wrong_credentials_end_in_a_clear_failure() {
        let now = Instant::now();
        let mut server = server(now);
        let username = ephemeral_username(UNIX + 3600, "peer");
        let mut client = TurnClient::new(now, addr("127.0.0.1:3478"), &username, "not the password", [1; 12]);
        exchange(&mut client, &mut server, now);
        assert_eq!(client.state(), &TurnState::Failed("the TURN credentials were refused".into()));
    }

    #[test]
    fn a_silent_server_is_given_up_on() {
        let mut now = Instant::now();
        let mut client = TurnClient::new(now, addr("127.0.0.1:3478"), "u", "p", [2; 12]);
        let mut sent = 0;
        while let Some(at) = client.poll_timeout() {
            sent += std::iter::from_fn(|| client.poll_transmit()).count();
            now = at;
            client.handle_timeout(now);
            if matches!(client.state(), TurnState::Failed(_)) {
                break;
            }
        }
        assert_eq!(sent, ATTEMPTS as usize, "retransmitted, then gave up");
        assert!(matches!(client.state(), TurnState::Failed(why) if why.contains("does not answer")));
    }
}
