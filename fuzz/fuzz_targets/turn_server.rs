//! Packets from a client (STUN or ChannelData) and from a peer, in any order, into a
//! server that already holds an allocation with a channel and a permission (made here
//! with real credentials, since a fuzzer cannot forge a MAC): nothing panics, and every
//! response the server sends is valid STUN.
#![no_main]

use std::time::{Duration, Instant};

use duet_turn::auth::{Credentials, long_term_key};
use duet_turn::policy::PeerPolicy;
use duet_turn::stun::Message;
use duet_turn::stun::{Class, MessageBuilder, Method, TransactionId, attr};
use duet_turn::{BoundRelay, Config, Event, FiveTuple, HEADROOM, Server, TAILROOM, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let config = Config {
        realm: "duet".into(),
        software: None,
        credentials: Credentials { shared_secret: Some(b"secret".to_vec()), ..Default::default() },
        nonce_secret: [1; 32],
        policy: PeerPolicy { dangerous_allow_loopback_peers: true, ..Default::default() },
        lifetimes: Default::default(),
        quotas: Default::default(),
    };
    let mut server = Server::new(config, now, 1_800_000_000);
    let client = FiveTuple {
        client: "127.0.0.1:40000".parse().expect("literal"),
        server: "127.0.0.1:3478".parse().expect("literal"),
        transport: if data.first().is_some_and(|b| b & 1 == 1) { Transport::Tcp } else { Transport::Udp },
    };
    let relay = "127.0.0.1:50000".parse().expect("literal");
    let peer = "127.0.0.1:9".parse().expect("literal");
    allocate(&mut server, now, client, relay, peer);
    // Chunks: the first byte says who sends it (client or peer) and how long it is.
    let mut rest = data.get(1..).unwrap_or_default();
    let mut t = now;
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head >> 1).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        rest = next;
        t += Duration::from_millis(u64::from(head));
        if head & 1 == 0 {
            let _ = server.handle_client(t, client, chunk);
        } else {
            let mut buf = vec![0u8; HEADROOM + chunk.len() + TAILROOM];
            buf[HEADROOM..HEADROOM + chunk.len()].copy_from_slice(chunk);
            let _ = server.handle_peer(t, relay, peer, &mut buf, HEADROOM..HEADROOM + chunk.len());
        }
        while let Some(event) = server.poll_event() {
            if let Event::BindRelay { request, .. } = event {
                server.relay_bound(
                    t,
                    request,
                    Ok(BoundRelay { local: relay, advertised: relay, reserved: None }),
                );
            }
        }
        while let Some(transmit) = server.poll_transmit() {
            assert!(Message::parse(&transmit.data).is_ok(), "the server sent invalid STUN");
        }
        server.handle_timeout(t);
    }
});

/// Allocate (after the 401 for a nonce), bind channel 0x4000 to `peer`, all authenticated.
fn allocate(
    server: &mut Server,
    now: Instant,
    client: FiveTuple,
    relay: std::net::SocketAddr,
    peer: std::net::SocketAddr,
) {
    let username = "4000000000:fuzz";
    let password = duet_turn::auth::ephemeral_password(b"secret", username);
    let key = long_term_key(username, "duet", &password);
    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Method::ALLOCATE, Class::Request, TransactionId([1; 12]))
        .add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    let _ = server.handle_client(now, client, &buf);
    let reply = server.poll_transmit().expect("a 401").data;
    let nonce = Message::parse(&reply).expect("STUN").text(attr::NONCE).expect("a nonce").to_owned();
    let signed = |method: Method, tid: u8, fill: &dyn Fn(&mut MessageBuilder<'_>)| {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, method, Class::Request, TransactionId([tid; 12]));
        fill(&mut b);
        b.add(attr::USERNAME, username.as_bytes())
            .add(attr::REALM, b"duet")
            .add(attr::NONCE, nonce.as_bytes())
            .add_integrity(&key);
        buf
    };
    let allocate = signed(Method::ALLOCATE, 2, &|b| {
        b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    let _ = server.handle_client(now, client, &allocate);
    while let Some(event) = server.poll_event() {
        if let Event::BindRelay { request, .. } = event {
            server.relay_bound(
                now,
                request,
                Ok(BoundRelay { local: relay, advertised: relay, reserved: None }),
            );
        }
    }
    let bind = signed(Method::CHANNEL_BIND, 3, &|b| {
        b.add(attr::CHANNEL_NUMBER, &[0x40, 0, 0, 0]).add_xor_address(attr::XOR_PEER_ADDRESS, peer);
    });
    let _ = server.handle_client(now, client, &bind);
    while server.poll_transmit().is_some() {}
    assert_eq!(server.allocation_count(), 1, "the fixture allocation exists");
}
