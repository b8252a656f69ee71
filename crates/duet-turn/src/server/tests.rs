//! The TURN server on a virtual clock, driven the way the driver drives it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::auth::{Credentials, ephemeral_password, ephemeral_username, long_term_key};
use crate::policy::PeerPolicy;

const SECRET: &[u8] = b"shared secret";
const REALM: &str = "duet";
const UNIX_START: u64 = 1_800_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal")
}

fn config() -> Config {
    Config {
        realm: REALM.into(),
        software: None,
        credentials: Credentials { shared_secret: Some(SECRET.to_vec()), ..Default::default() },
        nonce_secret: [9; 32],
        policy: PeerPolicy::default(),
        lifetimes: Lifetimes::default(),
        quotas: Quotas::default(),
    }
}

struct Harness {
    server: Server,
    now: Instant,
    next_relay_port: u16,
    released: Vec<SocketAddr>,
    adopted: Vec<SocketAddr>,
    tid: u8,
}

#[derive(Clone)]
struct Client {
    tuple: FiveTuple,
    username: String,
    password: String,
    nonce: Option<String>,
}

/// A parsed response, owned.
struct Reply(Vec<u8>);

impl Reply {
    fn msg(&self) -> Message<'_> {
        Message::parse(&self.0).expect("the server sends valid STUN")
    }
    fn code(&self) -> Option<u16> {
        self.msg().get(attr::ERROR_CODE).map(|v| u16::from(v[2]) * 100 + u16::from(v[3]))
    }
    fn is_success(&self) -> bool {
        self.msg().class() == Class::Success
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(config: Config) -> Self {
        Self::sharing(config, crate::Ledger::new())
    }

    /// A server counting its quotas in `ledger`, as the servers of several UDP threads do.
    fn sharing(config: Config, ledger: crate::Ledger) -> Self {
        let now = Instant::now();
        Self {
            server: Server::with_ledger(config, now, UNIX_START, ledger),
            now,
            next_relay_port: 50_000,
            released: vec![],
            adopted: vec![],
            tid: 0,
        }
    }

    fn client(&self, ip: &str, user: &str) -> Client {
        let username = ephemeral_username(UNIX_START + 3600, user);
        let password = ephemeral_password(SECRET, &username);
        Client {
            tuple: FiveTuple { client: addr(ip), server: addr("127.0.0.1:3478"), transport: Transport::Udp },
            username,
            password,
            nonce: None,
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
        self.drive();
    }

    /// Opens relay sockets the server asks for and records released ones.
    fn drive(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::BindRelay { request, family, reserve_next, .. } => {
                    self.next_relay_port += 2;
                    let ip = if family == Family::V4 { "127.0.0.1" } else { "::1" };
                    let relay = SocketAddr::new(ip.parse().expect("literal"), self.next_relay_port);
                    let next = SocketAddr::new(relay.ip(), relay.port() + 1);
                    let reserved = reserve_next.then_some((next, next));
                    let bound = BoundRelay { local: relay, advertised: relay, reserved };
                    self.server.relay_bound(self.now, request, Ok(bound));
                }
                Event::ReleaseRelay { relay } => self.released.push(relay),
                Event::AdoptRelay { relay } => self.adopted.push(relay),
            }
        }
    }

    fn replies(&mut self) -> Vec<Reply> {
        self.drive();
        std::iter::from_fn(|| self.server.poll_transmit()).map(|t| Reply(t.data)).collect()
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid = self.tid.wrapping_add(1);
        TransactionId([self.tid; 12])
    }

    /// Sends a request signed with the client's credentials (once it has a nonce).
    fn request(
        &mut self,
        c: &mut Client,
        method: Method,
        fill: impl Fn(&mut MessageBuilder<'_>),
    ) -> Option<Reply> {
        // Like a real client, retry once with the fresh nonce of a 438.
        let reply = self.request_once(c, method, &fill);
        if reply.as_ref().is_some_and(|r| r.code() == Some(438)) && c.nonce.is_some() {
            return self.request_once(c, method, &fill);
        }
        reply
    }

    fn request_once(
        &mut self,
        c: &mut Client,
        method: Method,
        fill: &dyn Fn(&mut MessageBuilder<'_>),
    ) -> Option<Reply> {
        let tid = self.next_tid();
        self.request_with_tid(c, method, tid, fill)
    }

    fn request_with_tid(
        &mut self,
        c: &mut Client,
        method: Method,
        tid: TransactionId,
        fill: &dyn Fn(&mut MessageBuilder<'_>),
    ) -> Option<Reply> {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, method, Class::Request, tid);
        fill(&mut b);
        if let Some(nonce) = &c.nonce {
            b.add(attr::USERNAME, c.username.as_bytes())
                .add(attr::REALM, REALM.as_bytes())
                .add(attr::NONCE, nonce.as_bytes());
            b.add_integrity(&long_term_key(&c.username, REALM, &c.password));
        }
        b.add_fingerprint();
        let forwarded = self.server.handle_client(self.now, c.tuple, &buf).expect("a valid message");
        assert!(forwarded.is_none(), "requests are not relayed");
        let reply = self.replies().pop();
        if let Some(r) = &reply
            && let Some(nonce) = r.msg().text(attr::NONCE)
        {
            c.nonce = Some(nonce.to_owned());
        }
        reply
    }

    /// Allocate with the 401 round trip; returns the relay address.
    fn allocate(&mut self, c: &mut Client) -> SocketAddr {
        let reply = self.try_allocate(c, |_| {});
        assert!(reply.is_success(), "allocate failed with {:?}", reply.code());
        reply.msg().xor_address(attr::XOR_RELAYED_ADDRESS).expect("a relayed address")
    }

    fn try_allocate(&mut self, c: &mut Client, extra: impl Fn(&mut MessageBuilder<'_>)) -> Reply {
        let fill = |b: &mut MessageBuilder<'_>| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            extra(b);
        };
        if c.nonce.is_none() {
            let first = self.request(c, Method::ALLOCATE, fill).expect("a 401");
            assert_eq!(first.code(), Some(401));
        }
        self.request(c, Method::ALLOCATE, fill).expect("an answer")
    }

    fn permit(&mut self, c: &mut Client, peer: &str) -> Option<u16> {
        let peer = addr(peer);
        let reply = self.request(c, Method::CREATE_PERMISSION, |b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer);
        });
        reply.expect("an answer").code()
    }

    fn bind(&mut self, c: &mut Client, channel: u16, peer: &str) -> Option<u16> {
        let peer = addr(peer);
        let reply = self.request(c, Method::CHANNEL_BIND, |b| {
            b.add(attr::CHANNEL_NUMBER, &[(channel >> 8) as u8, channel as u8, 0, 0])
                .add_xor_address(attr::XOR_PEER_ADDRESS, peer);
        });
        reply.expect("an answer").code()
    }

    /// A datagram from `peer` to `relay`; what the client would receive, if anything.
    fn peer_sends(&mut self, relay: SocketAddr, peer: &str, payload: &[u8]) -> Option<(FiveTuple, Vec<u8>)> {
        let mut buf = vec![0xAA; HEADROOM + payload.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
        let out = self.server.handle_peer(
            self.now,
            relay,
            addr(peer),
            &mut buf,
            HEADROOM..HEADROOM + payload.len(),
        )?;
        Some((out.to, buf[out.frame].to_vec()))
    }

    fn channel_data(&mut self, c: &Client, channel: u16, payload: &[u8]) -> Option<ToPeer> {
        let mut packet = vec![(channel >> 8) as u8, channel as u8, 0, payload.len() as u8];
        packet.extend_from_slice(payload);
        self.server.handle_client(self.now, c.tuple, &packet).expect("channel data is not STUN")
    }

    fn send_indication(&mut self, c: &Client, peer: &str, payload: &[u8]) -> Option<(ToPeer, Vec<u8>)> {
        let mut buf = Vec::new();
        let tid = self.next_tid();
        MessageBuilder::new(&mut buf, Method::SEND, Class::Indication, tid)
            .add_xor_address(attr::XOR_PEER_ADDRESS, addr(peer))
            .add(attr::DATA, payload);
        let out = self.server.handle_client(self.now, c.tuple, &buf).expect("valid")?;
        let bytes = buf[out.payload.clone()].to_vec();
        Some((out, bytes))
    }
}

const PEER: &str = "8.8.8.8:9000";

#[test]
fn binding_reports_the_clients_address() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let reply = h.request(&mut c, Method::BINDING, |_| {}).expect("an answer");
    assert!(reply.is_success());
    assert_eq!(reply.msg().xor_address(attr::XOR_MAPPED_ADDRESS), Some(addr("203.0.113.5:40000")));
}

#[test]
fn allocate_without_credentials_gets_401_with_realm_and_nonce_and_no_software() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let reply = h
        .request(&mut c, Method::ALLOCATE, |b| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })
        .expect("401");
    assert_eq!(reply.code(), Some(401));
    assert_eq!(reply.msg().text(attr::REALM), Some(REALM));
    assert!(reply.msg().text(attr::NONCE).is_some());
    assert!(!reply.msg().has(attr::SOFTWARE));
    assert!(!reply.msg().has_integrity());
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn a_wrong_password_never_allocates() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    c.password = "guess".into();
    for _ in 0..3 {
        assert_eq!(h.try_allocate(&mut c, |_| {}).code(), Some(401));
    }
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn an_expired_ephemeral_username_gets_401() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    c.username = ephemeral_username(UNIX_START - 1, "ann");
    c.password = ephemeral_password(SECRET, &c.username);
    assert_eq!(h.try_allocate(&mut c, |_| {}).code(), Some(401));
}

#[test]
fn a_stale_nonce_gets_438_and_the_fresh_one_works() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    h.now += Duration::from_secs(601);
    let reply = h.request_once(&mut c, Method::REFRESH, &|_| {}).expect("an answer");
    assert_eq!(reply.code(), Some(438));
    let reply = h.request_once(&mut c, Method::REFRESH, &|_| {}).expect("an answer");
    assert!(reply.is_success(), "{:?}", reply.code());
    assert!(h.released.is_empty(), "{relay} still allocated");
}

#[test]
fn a_nonce_from_another_address_is_refused() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    h.allocate(&mut c);
    let mut thief = h.client("203.0.113.6:40000", "ann");
    thief.nonce = c.nonce.clone();
    let fill = |b: &mut MessageBuilder<'_>| {
        b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    };
    assert_eq!(h.request_once(&mut thief, Method::ALLOCATE, &fill).expect("answer").code(), Some(438));
}

#[test]
fn relayed_data_flows_both_ways_through_send_and_data_indications() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    assert_eq!(h.permit(&mut c, PEER), None);
    let (out, bytes) = h.send_indication(&c, PEER, b"hello peer").expect("relayed");
    assert_eq!((out.relay, out.peer, bytes.as_slice()), (relay, addr(PEER), &b"hello peer"[..]));
    // A permission covers the address, whatever the port.
    let (to, frame) = h.peer_sends(relay, "8.8.8.8:1234", b"hi client").expect("relayed");
    assert_eq!(to, c.tuple);
    let data = Message::parse(&frame).expect("a Data indication");
    assert_eq!((data.method(), data.class()), (Method::DATA, Class::Indication));
    assert_eq!(data.xor_address(attr::XOR_PEER_ADDRESS), Some(addr("8.8.8.8:1234")));
    assert_eq!(data.get(attr::DATA), Some(&b"hi client"[..]));
}

#[test]
fn relayed_data_flows_both_ways_through_a_channel() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    assert_eq!(h.bind(&mut c, 0x4001, PEER), None);
    assert_eq!(h.bind(&mut c, 0x4001, PEER), None, "binding the same channel again refreshes it");
    let out = h.channel_data(&c, 0x4001, b"rtp").expect("relayed");
    assert_eq!((out.relay, out.peer, out.payload), (relay, addr(PEER), 4..7));
    let (_, frame) = h.peer_sends(relay, PEER, b"rtcp!").expect("relayed");
    assert_eq!(frame, [0x40, 0x01, 0, 5, b'r', b't', b'c', b'p', b'!']);
    assert!(h.channel_data(&c, 0x4002, b"x").is_none(), "an unbound channel relays nothing");
    let stats = h.server.stats();
    assert_eq!((stats.relayed_to_peers, stats.relayed_to_peers_bytes), (1, 3), "what was relayed, counted");
    assert_eq!((stats.relayed_to_clients, stats.relayed_to_clients_bytes), (1, 5));
    assert_eq!(stats.client_packets_dropped, 1);
}

#[test]
fn channel_data_over_tcp_is_padded_to_four_bytes() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    c.tuple.transport = Transport::Tcp;
    let relay = h.allocate(&mut c);
    h.bind(&mut c, 0x4001, PEER);
    let (_, frame) = h.peer_sends(relay, PEER, b"abcde").expect("relayed");
    assert_eq!(frame, [0x40, 0x01, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]);
}

#[test]
fn no_permission_no_data() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    assert!(h.peer_sends(relay, PEER, b"unsolicited").is_none());
    assert!(h.send_indication(&c, PEER, b"x").is_none());
    h.permit(&mut c, PEER);
    assert!(h.peer_sends(relay, "8.8.4.4:9000", b"other address").is_none());
    assert!(h.peer_sends(relay, PEER, b"permitted").is_some());
    assert_eq!(h.server.stats().peer_packets_dropped, 2);
}

#[test]
fn permissions_expire_after_300_seconds_and_channels_after_600() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    h.bind(&mut c, 0x4001, PEER);
    h.advance(Duration::from_secs(299));
    assert!(h.peer_sends(relay, PEER, b"x").is_some());
    h.advance(Duration::from_secs(1));
    assert!(h.peer_sends(relay, PEER, b"x").is_none(), "the permission expired");
    assert!(h.channel_data(&c, 0x4001, b"x").is_some(), "the channel lives on");
    h.advance(Duration::from_secs(300));
    assert!(h.channel_data(&c, 0x4001, b"x").is_none(), "the channel expired");
}

#[test]
fn an_allocation_expires_at_its_lifetime_and_its_relay_is_released() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    assert_eq!(h.server.poll_timeout(), Some(h.now + Duration::from_secs(600)));
    h.advance(Duration::from_secs(599));
    assert!(h.released.is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.released, [relay]);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.poll_timeout(), None);
}

#[test]
fn refresh_extends_and_refresh_with_lifetime_zero_deletes() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    h.advance(Duration::from_secs(500));
    let reply = h
        .request(&mut c, Method::REFRESH, |b| {
            b.add_u32(attr::LIFETIME, 1200);
        })
        .expect("answer");
    assert_eq!(reply.msg().u32(attr::LIFETIME), Some(1200));
    h.advance(Duration::from_secs(1100));
    assert!(h.released.is_empty(), "refreshed past its first lifetime");
    let reply = h
        .request(&mut c, Method::REFRESH, |b| {
            b.add_u32(attr::LIFETIME, 0);
        })
        .expect("answer");
    assert!(reply.is_success());
    assert_eq!(h.released, [relay]);
    assert_eq!(h.request(&mut c, Method::REFRESH, |_| {}).expect("answer").code(), Some(437));
}

#[test]
fn lifetimes_are_clamped_to_the_maximum() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let reply = h.try_allocate(&mut c, |b| {
        b.add_u32(attr::LIFETIME, 86_400);
    });
    assert_eq!(reply.msg().u32(attr::LIFETIME), Some(3600));
}

#[test]
fn an_allocation_belongs_to_its_five_tuple() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    h.allocate(&mut c);
    let mut other_port = c.clone();
    other_port.tuple.client = addr("203.0.113.5:40001");
    assert_eq!(h.permit(&mut other_port, PEER), Some(437));
    assert_eq!(h.try_allocate(&mut c, |_| {}).code(), Some(437), "a second Allocate on the same tuple");
}

#[test]
fn a_retransmitted_allocate_gets_the_same_success() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let tid = h.next_tid();
    let fill = |b: &mut MessageBuilder<'_>| {
        b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    };
    assert_eq!(h.request(&mut c, Method::ALLOCATE, fill).expect("401").code(), Some(401));
    let first = h.request_with_tid(&mut c, Method::ALLOCATE, tid, &fill).expect("answer");
    let again = h.request_with_tid(&mut c, Method::ALLOCATE, tid, &fill).expect("answer");
    assert!(first.is_success() && again.is_success());
    let relay = |r: &Reply| r.msg().xor_address(attr::XOR_RELAYED_ADDRESS);
    assert_eq!(relay(&first), relay(&again));
    assert_eq!(h.server.allocation_count(), 1);
}

#[test]
fn another_users_credentials_cannot_touch_an_allocation() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    h.allocate(&mut c);
    let mut mallory = h.client("203.0.113.5:40000", "mallory");
    mallory.nonce = c.nonce.clone();
    assert_eq!(h.permit(&mut mallory, PEER), Some(441));
}

#[test]
fn loopback_unspecified_and_mapped_loopback_peers_get_403() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    h.allocate(&mut c);
    for peer in ["127.0.0.1:9", "0.0.0.0:9", "10.0.0.1:9", "192.168.1.1:9", "169.254.169.254:80"] {
        assert_eq!(h.permit(&mut c, peer), Some(403), "{peer}");
        assert_eq!(h.bind(&mut c, 0x4001, peer), Some(403), "{peer}");
    }
    let mut v6 = h.client("[2001:db8::5]:40000", "ann");
    let reply = h.try_allocate(&mut v6, |b| {
        b.add(attr::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    assert!(reply.is_success());
    for peer in
        ["[::ffff:127.0.0.1]:9", "[::1]:9", "[::]:9", "[::127.0.0.1]:9", "[fe80::1]:9", "[64:ff9b::7f00:1]:9"]
    {
        assert_eq!(h.permit(&mut v6, peer), Some(403), "{peer}");
    }
    assert_eq!(h.permit(&mut v6, "8.8.8.8:9"), Some(443), "an IPv4 peer on an IPv6 relay");
    assert!(h.server.stats().peer_denied >= 14);
}

#[test]
fn the_dangerous_loopback_option_lets_loopback_peers_through() {
    let mut cfg = config();
    cfg.policy.dangerous_allow_loopback_peers = true;
    let mut h = Harness::with(cfg);
    let mut c = h.client("127.0.0.1:40000", "ann");
    h.allocate(&mut c);
    assert_eq!(h.permit(&mut c, "127.0.0.1:9"), None);
    assert_eq!(h.permit(&mut c, "10.0.0.1:9"), Some(403), "private addresses stay denied");
}

#[test]
fn a_permission_request_is_all_or_nothing() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    let reply = h
        .request(&mut c, Method::CREATE_PERMISSION, |b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, addr(PEER))
                .add_xor_address(attr::XOR_PEER_ADDRESS, addr("127.0.0.1:1"));
        })
        .expect("answer");
    assert_eq!(reply.code(), Some(403));
    assert!(h.peer_sends(relay, PEER, b"x").is_none(), "the allowed peer was not installed either");
}

#[test]
fn quotas_answer_486_and_508() {
    let mut cfg = config();
    cfg.quotas = Quotas {
        allocations_per_user: 2,
        allocations_per_address: 10,
        allocations_total: 3,
        permissions_per_allocation: 2,
        channels_per_allocation: 1,
        unauthenticated_per_second: 100,
        unauthenticated_per_second_verified: 100,
    };
    let mut h = Harness::with(cfg);
    let mut a1 = h.client("203.0.113.5:1", "ann");
    let mut a2 = h.client("203.0.113.5:2", "ann");
    let mut a3 = h.client("203.0.113.5:3", "ann");
    h.allocate(&mut a1);
    h.allocate(&mut a2);
    assert_eq!(h.try_allocate(&mut a3, |_| {}).code(), Some(486));
    let mut b1 = h.client("203.0.113.6:1", "bo");
    let mut b2 = h.client("203.0.113.6:2", "bo");
    h.allocate(&mut b1);
    assert_eq!(h.try_allocate(&mut b2, |_| {}).code(), Some(508));

    assert_eq!(h.permit(&mut a1, "8.8.8.1:1"), None);
    assert_eq!(h.permit(&mut a1, "8.8.8.2:1"), None);
    assert_eq!(h.permit(&mut a1, "8.8.8.2:2"), None, "refreshing an address needs no quota");
    assert_eq!(h.permit(&mut a1, "8.8.8.3:1"), Some(508));
    assert_eq!(h.bind(&mut a1, 0x4000, "8.8.8.1:1"), None);
    assert_eq!(h.bind(&mut a1, 0x4001, "8.8.8.2:1"), Some(508));
}

#[test]
fn unauthenticated_answers_are_rate_limited_per_source() {
    let mut h = Harness::new();
    let mut answered = 0;
    for port in 0..20 {
        let mut c = h.client(&format!("203.0.113.5:{}", 1000 + port), "ann");
        let fill = |b: &mut MessageBuilder<'_>| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        };
        answered += usize::from(h.request(&mut c, Method::ALLOCATE, fill).is_some());
    }
    assert_eq!(answered, 10);
    let mut other = h.client("203.0.113.9:1000", "bo");
    assert!(h.request(&mut other, Method::BINDING, |_| {}).is_some(), "Binding is not limited");
    h.advance(Duration::from_secs(1));
    let mut again = h.client("203.0.113.5:999", "ann");
    let fill = |b: &mut MessageBuilder<'_>| {
        b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    };
    assert!(h.request(&mut again, Method::ALLOCATE, fill).is_some());
}

#[test]
fn request_errors_have_their_rfc_codes() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    h.try_allocate(&mut c, |_| {});
    let mut tcp = h.client("203.0.113.5:40001", "ann");
    tcp.nonce = c.nonce.clone();
    let reply = h.request(&mut tcp, Method::ALLOCATE, |b| {
        b.add(attr::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
    });
    assert_eq!(reply.expect("answer").code(), Some(442));
    let reply = h.request(&mut tcp, Method::ALLOCATE, |_| {});
    assert_eq!(reply.expect("answer").code(), Some(400), "no REQUESTED-TRANSPORT");
    let reply = h.request(&mut tcp, Method::ALLOCATE, |b| {
        b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).add(0x7777, b"?");
    });
    let reply = reply.expect("answer");
    assert_eq!(reply.code(), Some(420));
    assert_eq!(reply.msg().get(attr::UNKNOWN_ATTRIBUTES), Some(&[0x77, 0x77][..]));
    assert_eq!(h.bind(&mut c, 0x3FFF, PEER), Some(400), "channel number out of range");
    h.bind(&mut c, 0x4000, PEER);
    assert_eq!(h.bind(&mut c, 0x4000, "8.8.8.8:9001"), Some(400), "channel already bound elsewhere");
    assert_eq!(h.bind(&mut c, 0x4001, PEER), Some(400), "peer already on another channel");
}

#[test]
fn answers_after_authentication_are_signed_with_the_users_key() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let reply = h.try_allocate(&mut c, |_| {});
    let key = long_term_key(&c.username, REALM, &c.password);
    assert!(reply.msg().verify_integrity(&key));
    assert!(reply.msg().has(attr::FINGERPRINT));
}

#[test]
fn garbage_never_panics() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let relay = h.allocate(&mut c);
    h.bind(&mut c, 0x4001, PEER);
    let mut seed = 0x1234_5678_9abc_def0u64;
    for i in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 120) as usize;
        let mut packet: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8).collect();
        match i % 3 {
            0 if len >= 20 => {
                packet[0] &= 0x3F;
                packet[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
                let body = (len - 20) as u16 & !3;
                packet.truncate(20 + usize::from(body));
                packet[2..4].copy_from_slice(&body.to_be_bytes());
            }
            1 if len >= 4 => packet[0] = 0x40,
            _ => {}
        }
        let _ = h.server.handle_client(h.now, c.tuple, &packet);
        let _ = h.peer_sends(relay, PEER, &packet);
        h.replies();
    }
}

#[test]
fn an_allocation_outlives_the_expiry_of_the_username_that_made_it() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    c.username = ephemeral_username(UNIX_START + 60, "ann");
    c.password = ephemeral_password(SECRET, &c.username);
    h.allocate(&mut c);
    h.advance(Duration::from_secs(120));
    assert_eq!(h.permit(&mut c, PEER), None, "expired username, live allocation");
    let reply = h.request(&mut c, Method::REFRESH, |_| {}).expect("answer");
    assert!(reply.is_success());
    let mut fresh_tuple = c.clone();
    fresh_tuple.tuple.client = addr("203.0.113.5:40001");
    assert_eq!(h.try_allocate(&mut fresh_tuple, |_| {}).code(), Some(401), "but no new allocation");
}

#[test]
fn even_port_with_r_reserves_the_next_port_for_a_second_allocation() {
    let mut h = Harness::new();
    let mut rtp = h.client("203.0.113.5:40000", "ann");
    let reply = h.try_allocate(&mut rtp, |b| {
        b.add(attr::EVEN_PORT, &[0x80, 0, 0, 0]);
    });
    assert!(reply.is_success());
    let relay = reply.msg().xor_address(attr::XOR_RELAYED_ADDRESS).expect("relay");
    assert_eq!(relay.port() % 2, 0);
    let token = reply.msg().get(attr::RESERVATION_TOKEN).expect("a reservation token").to_vec();
    let mut rtcp = h.client("203.0.113.5:40001", "ann");
    rtcp.nonce = rtp.nonce.clone();
    let reply = h
        .request(&mut rtcp, Method::ALLOCATE, |b| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).add(attr::RESERVATION_TOKEN, &token);
        })
        .expect("answer");
    assert!(reply.is_success(), "{:?}", reply.code());
    let second = reply.msg().xor_address(attr::XOR_RELAYED_ADDRESS).expect("relay");
    assert_eq!(second.port(), relay.port() + 1);
    // A token works once; an unknown token gets 508.
    let mut third = h.client("203.0.113.5:40002", "ann");
    third.nonce = rtp.nonce.clone();
    let reply = h
        .request(&mut third, Method::ALLOCATE, |b| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).add(attr::RESERVATION_TOKEN, &token);
        })
        .expect("answer");
    assert_eq!(reply.code(), Some(508));
}

#[test]
fn a_reserved_port_is_claimed_through_another_server_sharing_the_ledger() {
    let ledger = crate::Ledger::new();
    let mut one = Harness::sharing(config(), ledger.clone());
    let mut two = Harness::sharing(config(), ledger);
    let mut rtp = one.client("203.0.113.5:40000", "ann");
    let reply = one.try_allocate(&mut rtp, |b| {
        b.add(attr::EVEN_PORT, &[0x80, 0, 0, 0]);
    });
    let relay = reply.msg().xor_address(attr::XOR_RELAYED_ADDRESS).expect("relay");
    let token = reply.msg().get(attr::RESERVATION_TOKEN).expect("a reservation token").to_vec();
    // The second socket's packets reach the other server (another UDP thread).
    let mut rtcp = two.client("203.0.113.5:40001", "ann");
    let reply = two.try_allocate(&mut rtcp, |b| {
        b.add(attr::RESERVATION_TOKEN, &token);
    });
    assert!(reply.is_success(), "{:?}", reply.code());
    let second = reply.msg().xor_address(attr::XOR_RELAYED_ADDRESS).expect("relay");
    assert_eq!(second.port(), relay.port() + 1);
    assert_eq!(two.adopted, [second], "the claiming server is told to read the held socket");
    one.advance(Duration::from_secs(31));
    assert!(one.released.is_empty(), "a claimed reservation is not released at its expiry");
}

#[test]
fn an_unclaimed_reservation_is_released_after_30_seconds() {
    let mut h = Harness::new();
    let mut c = h.client("203.0.113.5:40000", "ann");
    let reply = h.try_allocate(&mut c, |b| {
        b.add(attr::EVEN_PORT, &[0x80, 0, 0, 0]);
    });
    let relay = reply.msg().xor_address(attr::XOR_RELAYED_ADDRESS).expect("relay");
    h.advance(Duration::from_secs(30));
    assert_eq!(h.released, [SocketAddr::new(relay.ip(), relay.port() + 1)]);
}

#[test]
fn an_address_that_authenticated_may_start_many_allocations_at_once() {
    let mut h = Harness::new();
    let mut first = h.client("203.0.113.5:1000", "ann");
    h.allocate(&mut first);
    // Twenty more users behind the same NAT address, each needing a 401 first.
    for port in 0..20 {
        let mut c = h.client(&format!("203.0.113.5:{}", 2000 + port), &format!("user{port}"));
        assert!(h.try_allocate(&mut c, |_| {}).is_success());
    }
}

#[test]
fn one_address_gets_its_share_of_allocations_whatever_credentials_it_holds() {
    let mut cfg = config();
    cfg.quotas.allocations_per_address = 3;
    let mut h = Harness::with(cfg);
    // Five sign-ins from one address, each with credentials of its own.
    let mut clients: Vec<Client> =
        (0..5).map(|i| h.client(&format!("203.0.113.5:{}", 1000 + i), &format!("duet-{i}"))).collect();
    let codes: Vec<Option<u16>> = clients.iter_mut().map(|c| h.try_allocate(c, |_| {}).code()).collect();
    assert_eq!(codes, [None, None, None, Some(486), Some(486)]);
    let mut elsewhere = h.client("203.0.113.6:1000", "duet-9");
    h.allocate(&mut elsewhere);
    // An IPv6 client's whole /64 is one address.
    let mut v6: Vec<Client> =
        (0..4).map(|i| h.client(&format!("[2001:db8:1:2::{i}]:1000"), &format!("duet-v{i}"))).collect();
    let codes: Vec<Option<u16>> = v6.iter_mut().map(|c| h.try_allocate(c, |_| {}).code()).collect();
    assert_eq!(codes, [None, None, None, Some(486)]);
    // A deleted allocation gives its place back.
    let reply = h.request(&mut clients[0], Method::REFRESH, |b| {
        b.add_u32(attr::LIFETIME, 0);
    });
    assert!(reply.expect("answer").is_success());
    assert_eq!(h.try_allocate(&mut clients[3], |_| {}).code(), None);
}

/// `user`'s credentials with another expiry, as a renewal hands out.
fn renewed(c: &Client, user: &str, expiry: u64) -> Client {
    let username = ephemeral_username(expiry, user);
    let password = ephemeral_password(SECRET, &username);
    Client { username, password, ..c.clone() }
}

#[test]
fn renewed_credentials_of_one_session_share_its_quota() {
    let mut cfg = config();
    cfg.quotas.allocations_per_user = 2;
    let mut h = Harness::with(cfg);
    let mut first = h.client("203.0.113.5:1000", "duet-7");
    h.allocate(&mut first);
    let base = h.client("203.0.113.7:1000", "duet-7");
    let mut second = renewed(&base, "duet-7", UNIX_START + 4000);
    h.allocate(&mut second);
    let mut third = renewed(&h.client("203.0.113.8:1000", "duet-7"), "duet-7", UNIX_START + 5000);
    assert_eq!(
        h.try_allocate(&mut third, |_| {}).code(),
        Some(486),
        "fresh credentials are not a fresh quota"
    );
}

#[test]
fn servers_sharing_a_ledger_hold_one_quota_between_them() {
    let mut cfg = config();
    cfg.quotas.allocations_per_user = 2;
    cfg.quotas.allocations_total = 3;
    let ledger = crate::Ledger::new();
    let mut one = Harness::sharing(cfg.clone(), ledger.clone());
    let mut two = Harness::sharing(cfg, ledger.clone());
    let mut first = one.client("203.0.113.5:1000", "duet-7");
    one.allocate(&mut first);
    let mut second = two.client("203.0.113.5:1001", "duet-7");
    two.allocate(&mut second);
    let mut third = two.client("203.0.113.5:1002", "duet-7");
    assert_eq!(two.try_allocate(&mut third, |_| {}).code(), Some(486), "the user's quota spans both servers");
    let mut bo = one.client("203.0.113.6:1000", "duet-8");
    one.allocate(&mut bo);
    let mut cy = two.client("203.0.113.9:1000", "duet-9");
    assert_eq!(two.try_allocate(&mut cy, |_| {}).code(), Some(508), "so does the total");
    // An allocation that ends on one server makes room on the other.
    one.request(&mut first, Method::REFRESH, |b| {
        b.add_u32(attr::LIFETIME, 0);
    });
    one.drive();
    assert_eq!(ledger.total(), 2);
    assert!(two.try_allocate(&mut third, |_| {}).is_success());
}

#[test]
fn a_revoked_session_loses_its_allocations_and_its_credentials_stop_working() {
    let mut h = Harness::new();
    let mut ann = h.client("203.0.113.5:1000", "duet-1");
    let relay = h.allocate(&mut ann);
    let mut bo = h.client("203.0.113.6:1000", "duet-2");
    h.allocate(&mut bo);
    h.server.revoke_user(h.now, "duet-1", UNIX_START + 3600);
    h.drive();
    assert!(h.released.contains(&relay), "the relay port is free at once");
    assert_eq!(h.server.allocation_count(), 1);
    assert_eq!(h.request(&mut ann, Method::REFRESH, |_| {}).expect("answer").code(), Some(401));
    let mut again = renewed(&h.client("203.0.113.5:1001", "duet-1"), "duet-1", UNIX_START + 1800);
    assert_eq!(h.try_allocate(&mut again, |_| {}).code(), Some(401), "no credentials of it are accepted");
    assert!(h.request(&mut bo, Method::REFRESH, |_| {}).expect("answer").is_success(), "others go on");
    // Once its credentials have all expired, the revocation is forgotten.
    h.advance(Duration::from_secs(3601));
    assert!(h.server.revoked.is_empty());
}

#[test]
fn one_source_gets_its_unauthenticated_answers_once_however_many_servers_share_the_ledger() {
    let ledger = crate::Ledger::new();
    let mut servers = [Harness::sharing(config(), ledger.clone()), Harness::sharing(config(), ledger)];
    let mut answered = 0;
    // A spoofer's requests from one address and many ports reach both UDP threads.
    for port in 0..30 {
        let h = &mut servers[port % 2];
        let mut c = h.client(&format!("203.0.113.5:{}", 1000 + port), "ann");
        let reply = h.request_once(&mut c, Method::ALLOCATE, &|b| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        answered += usize::from(reply.is_some());
    }
    assert_eq!(answered, 10, "10 answers a second for the source, not 10 per thread");
}

#[test]
fn answers_420_are_rate_limited_like_401() {
    let mut h = Harness::new();
    let mut answered = 0;
    for port in 0..30 {
        let mut c = h.client(&format!("203.0.113.5:{}", 1000 + port), "ann");
        let reply = h.request_once(&mut c, Method::ALLOCATE, &|b| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).add(0x7777, b"?");
        });
        answered += usize::from(reply.is_some());
    }
    assert_eq!(answered, 10, "an unauthenticated source gets 10 answers a second, 420 included");
}
