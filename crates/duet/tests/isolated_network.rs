//! Where duet sends packets on a client's say (the TURN relay, the echo user's ICE
//! checks), it never reaches the server itself or a private address, even when it
//! listens on every interface. These tests need a non-loopback address of the server's
//! own, so each runs in a network namespace of its own (`unshare --net`) holding only
//! `lo`, with the documentation address 192.0.2.1 added to it: nothing can leave.
//!
//! Each test re-runs this test binary inside the namespace, for just itself.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::netns::inside_namespace;
use common::turn_probe::{Answer, TurnProbe};
use common::{TestServer, embedded_turn};
use duet::config::EmbeddedTurn;
use duet_turn::policy::PeerPolicy;
use serde_json::json;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// The server's own non-loopback address inside the namespace.
const OWN: &str = "192.0.2.1";
/// Puts [`OWN`] on the namespace's `lo`.
const ADD_OWN: &str = "ip addr add 192.0.2.1/32 dev lo";

/// Datagrams `socket` receives within `window`.
async fn received(socket: &UdpSocket, window: Duration) -> usize {
    let mut count = 0;
    let mut buf = [0u8; 2048];
    let until = Instant::now() + window;
    while let Ok(Ok(_)) = tokio::time::timeout_at(until.into(), socket.recv_from(&mut buf)).await {
        count += 1;
    }
    count
}

/// The embedded TURN server on every interface, whose relay the operator lets reach
/// `allowed` (a range): it, where its clients reach it, and what stops it.
async fn turn_on_every_interface(allowed: &str) -> (duet::turn::Turn, SocketAddr, CancellationToken) {
    let settings = EmbeddedTurn {
        peer_policy: PeerPolicy {
            dangerous_allowed: vec![allowed.parse().expect("valid")],
            ..Default::default()
        },
        ..embedded_turn("0.0.0.0:0".parse().expect("literal"), "secret for the netns test")
    };
    let shutdown = CancellationToken::new();
    let turn = duet::serve::start_turn(&settings, Duration::from_secs(600), None, None, shutdown.clone())
        .await
        .expect("TURN starts on 0.0.0.0");
    let server = (std::net::Ipv4Addr::LOCALHOST, turn.udp.port()).into();
    (turn, server, shutdown)
}

#[tokio::test]
async fn turn_on_every_interface_never_relays_to_the_servers_own_addresses() {
    if !inside_namespace("turn_on_every_interface_never_relays_to_the_servers_own_addresses", ADD_OWN) {
        return;
    }
    // The operator lets the relay reach one range that holds the server's own address.
    let (turn, server, shutdown) = turn_on_every_interface("192.0.2.0/24").await;
    let service = UdpSocket::bind(format!("{OWN}:0")).await.expect("a local UDP service");
    let service_addr = service.local_addr().expect("bound");
    let loopback_service = UdpSocket::bind("127.0.0.1:0").await.expect("a loopback service");
    let mut probe = TurnProbe::new("127.0.0.1:0", server, "secret for the netns test", "probe-1").await;
    let Answer::Success(Some(relay)) = probe.allocate().await else { panic!("no allocation") };
    assert_eq!(relay.ip().to_string(), OWN, "relays are announced on the interface address");
    assert_eq!(probe.permit(service_addr).await, Answer::Error(403), "the server's own address");
    let loopback = loopback_service.local_addr().expect("bound");
    assert_eq!(probe.permit(loopback).await, Answer::Error(403), "loopback: TURN is not on loopback");
    assert_eq!(probe.permit("0.0.0.0:53".parse().expect("literal")).await, Answer::Error(403));
    assert_eq!(
        probe.permit("192.0.2.77:9".parse().expect("literal")).await,
        Answer::Success(None),
        "the allowed range works for addresses that are not the server's"
    );
    for target in [service_addr, loopback] {
        probe.send_indication(target, b"hello from outside").await;
    }
    assert_eq!(received(&service, Duration::from_millis(500)).await, 0);
    assert_eq!(received(&loopback_service, Duration::from_millis(100)).await, 0);
    shutdown.cancel();
    turn.closed().await;
}

/// Calls echo on a server listening on every interface with `policy`, offering and
/// trickling candidates that point at two local UDP services; how many datagrams each
/// service received.
async fn echo_checks_sent_to_local_services(policy: PeerPolicy) -> (usize, usize) {
    let listen: std::net::IpAddr = "0.0.0.0".parse().expect("literal");
    let echo = duet::signaling::echo::EchoConfig::for_listen(listen, &policy);
    let options = duet::RunOptions { echo: Some(echo), ..duet::RunOptions::plain() };
    let server = TestServer::start_with(options).await;
    let loopback_service = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let own_service = UdpSocket::bind(format!("{OWN}:0")).await.expect("bind");
    let (mut ann, _) = server.ringing_user("", "ann").await;
    ann.send(json!({"type": "call", "target": "echo"})).await;
    ann.expect_type("call-accepted").await;
    // The offer names the loopback service as a host candidate; the trickle names the
    // server's own address and a cloud metadata endpoint.
    let mut session =
        duet_peer::Session::new(Instant::now(), &[loopback_service.local_addr().expect("bound")])
            .expect("a session");
    let offer: serde_json::Value =
        serde_json::from_str(&session.create_offer().expect("an offer")).expect("JSON");
    ann.send(json!({"type": "video-offer", "target": "echo", "sdp": offer})).await;
    ann.expect_type("video-answer").await;
    let own = own_service.local_addr().expect("bound");
    for line in [
        format!("candidate:9 1 udp 2122260223 {} {} typ host", own.ip(), own.port()),
        "candidate:8 1 udp 2122260223 169.254.169.254 80 typ host".to_owned(),
    ] {
        ann.send(json!({"type": "new-ice-candidate", "target": "echo",
                        "candidate": {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}}))
            .await;
    }
    let window = Duration::from_secs(3);
    let (loopback, own) = tokio::join!(received(&loopback_service, window), received(&own_service, window));
    server.shutdown.cancel();
    (loopback, own)
}

#[tokio::test]
async fn echo_sends_no_ice_check_to_denied_candidates() {
    if !inside_namespace("echo_sends_no_ice_check_to_denied_candidates", ADD_OWN) {
        return;
    }
    assert_eq!(echo_checks_sent_to_local_services(PeerPolicy::default()).await, (0, 0));
    // The same call, with the operator's dangerous loopback option: now the checks go
    // out, so the silence above is the policy's doing, not a broken test.
    let dangerous = PeerPolicy { dangerous_allow_loopback_peers: true, ..Default::default() };
    let (loopback, own) = echo_checks_sent_to_local_services(dangerous).await;
    assert!(loopback > 0, "the echo checks an allowed candidate");
    assert_eq!(own, 0, "never the server's own address");
}

#[tokio::test]
async fn an_address_added_after_start_is_never_a_peer_within_seconds() {
    if !inside_namespace("an_address_added_after_start_is_never_a_peer_within_seconds", ADD_OWN) {
        return;
    }
    let (turn, server, shutdown) = turn_on_every_interface("198.51.100.0/24").await;
    let later: SocketAddr = "198.51.100.7:9".parse().expect("literal");
    let mut probe = TurnProbe::new("127.0.0.1:0", server, "secret for the netns test", "probe-1").await;
    assert!(matches!(probe.allocate().await, Answer::Success(Some(_))));
    assert_eq!(probe.permit(later).await, Answer::Success(None), "not the server's, yet");
    // A floating IP lands on this machine.
    let added = std::process::Command::new("ip")
        .args(["addr", "add", "198.51.100.7/32", "dev", "lo"])
        .status()
        .expect("ip runs");
    assert!(added.success());
    let deadline = Instant::now() + duet::interfaces::REREAD_EVERY * 3;
    let mut fresh = TurnProbe::new("127.0.0.1:0", server, "secret for the netns test", "probe-2").await;
    assert!(matches!(fresh.allocate().await, Answer::Success(Some(_))));
    loop {
        match fresh.permit(later).await {
            Answer::Error(403) => break,
            other => assert!(
                Instant::now() < deadline,
                "still a peer after {:?}: {other:?}",
                duet::interfaces::REREAD_EVERY * 3
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    turn.closed().await;
}
