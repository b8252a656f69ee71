//! Bursts through duet's TURN over UDP, the way a video frame's packets arrive: a peer's
//! burst of same-size datagrams reaches the client as as many ChannelData datagrams, in
//! order and intact (duet packs them into segmented writes); a client's burst sent as
//! one segmented write (GSO: duet's socket receives it coalesced, GRO) reaches the peer
//! as the datagrams it was made of. The client is duet-peer's TURN client, which binds a
//! channel the way browsers do.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use duet::serve::start_turn;
use duet_peer::TurnClient;
use duet_turn::auth::{ephemeral_password, ephemeral_username};
use tokio_util::sync::CancellationToken;

mod common;

const SECRET: &str = "a secret for bursts";
const BURST: usize = 64;
const SIZE: usize = 1000;

struct Relay {
    _shutdown: tokio_util::sync::DropGuard,
    socket: UdpSocket,
    turn: TurnClient,
    peer: UdpSocket,
    relayed: SocketAddr,
}

fn socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    socket
}

impl Relay {
    /// Allocates, and sends through the relay until the client's channel to the peer is
    /// bound (its next datagram for the peer is ChannelData).
    async fn start() -> Self {
        let shutdown = CancellationToken::new();
        let settings = common::embedded_turn("127.0.0.1:0".parse().expect("literal"), SECRET);
        let turn = start_turn(&settings, Duration::from_secs(600), None, None, shutdown.clone())
            .await
            .expect("TURN starts");
        let username = ephemeral_username(now_unix() + 600, "burst");
        let password = ephemeral_password(SECRET.as_bytes(), &username);
        let mut relay = Self {
            _shutdown: shutdown.drop_guard(),
            socket: socket(),
            turn: TurnClient::new(Instant::now(), turn.udp, &username, &password, [5; 12]),
            peer: socket(),
            relayed: "0.0.0.0:0".parse().expect("literal"),
        };
        let peer = relay.peer.local_addr().expect("bound");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no channel: {:?}", relay.turn.state());
            relay.pump().await;
            if relay.turn.relayed().is_none() {
                continue;
            }
            relay.turn.send_to(Instant::now(), peer, b"hello");
            let datagram = relay.turn.poll_transmit().expect("a datagram");
            let bound = datagram[0] & 0xc0 == 0x40;
            relay.socket.send_to(&datagram, relay.turn.server()).expect("send");
            if bound {
                break;
            }
        }
        relay.relayed = relay.turn.relayed().expect("allocated");
        // What the peer got so far (greetings) is not part of the bursts.
        while relay.peer.recv(&mut [0; 64]).is_ok() {}
        relay
    }

    /// Sends what the client has queued and handles the server's answers for a moment.
    async fn pump(&mut self) {
        let now = Instant::now();
        self.turn.handle_timeout(now);
        while let Some(datagram) = self.turn.poll_transmit() {
            self.socket.send_to(&datagram, self.turn.server()).expect("send");
        }
        let mut buf = [0u8; 2048];
        let socket = self.socket.try_clone().expect("clone");
        let read = tokio::task::spawn_blocking(move || socket.recv(&mut buf).map(|n| buf[..n].to_vec()));
        if let Ok(datagram) = read.await.expect("reader") {
            self.turn.handle_datagram(Instant::now(), &datagram);
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

/// Datagram `i` of a burst: its number, then filler that differs per datagram.
fn datagram(i: usize) -> Vec<u8> {
    let mut data = vec![(i * 7) as u8; SIZE];
    data[..4].copy_from_slice(&(i as u32).to_be_bytes());
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_s_burst_reaches_the_client_as_channel_data_in_order_and_intact() {
    let mut relay = Relay::start().await;
    let peer = relay.peer.local_addr().expect("bound");
    for i in 0..BURST {
        relay.peer.send_to(&datagram(i), relay.relayed).expect("send");
    }
    let mut buf = [0u8; 65_536];
    for i in 0..BURST {
        let n =
            relay.socket.recv(&mut buf).unwrap_or_else(|e| panic!("datagram {i} of {BURST} is missing: {e}"));
        assert_eq!(n, 4 + SIZE, "one ChannelData frame per datagram, not a merged run");
        assert_eq!(buf[0] & 0xc0, 0x40, "ChannelData");
        let (from, data) = relay.turn.handle_datagram(Instant::now(), &buf[..n]).expect("peer data");
        assert_eq!(from, peer);
        assert!(data == datagram(i), "datagram {i} arrived out of order or changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_segmented_burst_reaches_the_peer_as_the_datagrams_it_was_made_of() {
    let mut relay = Relay::start().await;
    let peer = relay.peer.local_addr().expect("bound");
    let mut frames = Vec::new();
    for i in 0..BURST {
        relay.turn.send_to(Instant::now(), peer, &datagram(i));
        let frame = relay.turn.poll_transmit().expect("a frame");
        assert_eq!(frame.len(), 4 + SIZE, "ChannelData");
        frames.extend_from_slice(&frame);
    }
    // One write of 64 frames that the kernel cuts into 64 datagrams (UDP GSO).
    let state = quinn_udp::UdpSocketState::new((&relay.socket).into()).expect("UDP state");
    assert!(state.max_gso_segments() >= BURST, "this system has UDP GSO");
    relay.socket.set_nonblocking(false).expect("blocking");
    let transmit = quinn_udp::Transmit {
        destination: relay.turn.server(),
        ecn: None,
        contents: &frames,
        segment_size: Some(4 + SIZE),
        src_ip: None,
    };
    state.try_send((&relay.socket).into(), &transmit).expect("a segmented send");
    let mut buf = [0u8; 65_536];
    for i in 0..BURST {
        let (n, from) = relay
            .peer
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} of {BURST} is missing: {e}"));
        assert_eq!(from, relay.relayed);
        assert!(buf[..n] == datagram(i), "datagram {i} arrived out of order, changed or merged ({n} bytes)");
    }
}
