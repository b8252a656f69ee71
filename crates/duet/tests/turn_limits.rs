//! One address cannot exhaust the relay, and what a session was given ends with it:
//! against the real TURN server (and signaling), over real UDP and TCP sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::turn_probe::{Answer, TurnProbe};
use common::{TestServer, embedded_turn};
use duet::config::EmbeddedTurn;
use duet::serve::start_turn;
use duet::turn::Turn;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "a secret for these tests";

async fn turn_with(settings: EmbeddedTurn) -> (Turn, CancellationToken) {
    let shutdown = CancellationToken::new();
    let turn = start_turn(&settings, Duration::from_secs(600), None, None, shutdown.clone())
        .await
        .expect("TURN starts");
    (turn, shutdown)
}

#[tokio::test]
async fn one_address_gets_its_share_of_allocations_whatever_credentials_it_signs_in_with() {
    let settings = EmbeddedTurn {
        allocations_per_address: 3,
        ..embedded_turn("127.0.0.1:0".parse().expect("literal"), SECRET)
    };
    let (turn, shutdown) = turn_with(settings).await;
    let mut answers = Vec::new();
    let mut held = Vec::new();
    // Six sign-ins from one address, each with credentials of its own.
    for i in 0..6 {
        let mut probe = TurnProbe::new("127.0.0.1:0", turn.udp, SECRET, &format!("probe-{i}")).await;
        answers.push(probe.allocate().await);
        held.push(probe);
    }
    let refused = answers.iter().filter(|a| **a == Answer::Error(486)).count();
    assert_eq!(refused, 3, "{answers:?}");
    assert_eq!(turn.allocation_count(), 3);
    // Someone else, from another address, still gets a relay.
    let mut other = TurnProbe::new("127.0.0.2:0", turn.udp, SECRET, "probe-99").await;
    assert!(matches!(other.allocate().await, Answer::Success(Some(_))));
    shutdown.cancel();
    turn.closed().await;
}

#[tokio::test]
async fn a_session_that_signs_out_loses_its_relay_and_its_credentials() {
    let server = TestServer::start_with_turn(SECRET).await;
    let (mut ann, _) = server.ringing_user("", "ann").await;
    let ice = ann.expect_type("ice-servers").await;
    let (server_addr, username, password) = common::turn_probe::credentials_of(&ice);
    let (username, password) = (username.as_str(), password.as_str());
    let mut probe = TurnProbe::with_credentials("127.0.0.1:0", server_addr, username, password).await;
    assert!(matches!(probe.allocate().await, Answer::Success(Some(_))));
    assert_eq!(probe.refresh().await, Answer::Success(None), "refreshed while ann is signed in");
    // ann closes her tab: her session is over, and so is her relay.
    ann.ws.close(None).await.expect("close");
    let metrics = server.metrics.expect("metrics on");
    let mut allocations = String::new();
    for _ in 0..50 {
        allocations = common::http_get(metrics, "/metrics").await;
        if allocations.contains("duet_turn_allocations 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(allocations.contains("duet_turn_allocations 0"), "the allocation is gone at once");
    assert_eq!(probe.refresh().await, Answer::Error(401), "the credentials are dead");
    let mut again = TurnProbe::with_credentials("127.0.0.1:0", server_addr, username, password).await;
    assert_eq!(again.allocate().await, Answer::Error(401), "nobody can allocate with them any more");
    // Others are unaffected.
    let (mut bo, _) = server.ringing_user("", "bo").await;
    let ice = bo.expect_type("ice-servers").await;
    let turn = &ice["iceServers"][1];
    let (username, password) =
        (turn["username"].as_str().expect("user"), turn["credential"].as_str().expect("pass"));
    let mut probe = TurnProbe::with_credentials("127.0.0.1:0", server_addr, username, password).await;
    assert!(matches!(probe.allocate().await, Answer::Success(Some(_))));
    bo.send(json!({"type": "message", "text": "still fine"})).await;
}

#[tokio::test]
async fn a_turn_tcp_connection_that_never_allocates_is_closed_and_one_address_holds_few() {
    let settings = EmbeddedTurn {
        streams_per_address: 4,
        ..embedded_turn("127.0.0.1:0".parse().expect("literal"), SECRET)
    };
    let (turn, shutdown) = turn_with(settings).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(turn.tcp.expect("a TCP listener")).await.expect("connect"));
    }
    // The fifth from this address is closed at once; another address is served.
    let mut fifth = tokio::net::TcpStream::connect(turn.tcp.expect("a TCP listener")).await.expect("connect");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), fifth.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed at once: {read:?}");
    let other = tokio::net::TcpSocket::new_v4().expect("socket");
    other.bind("127.0.0.2:0".parse().expect("literal")).expect("bind");
    let mut other =
        other.connect(turn.tcp.expect("a TCP listener")).await.expect("another address is served");
    let read = tokio::time::timeout(Duration::from_millis(500), other.read(&mut byte)).await;
    assert!(read.is_err(), "still open: {read:?}");
    // Idle connections that never allocate are closed within the deadline (10 s).
    let started = std::time::Instant::now();
    for mut conn in idle {
        let read = tokio::time::timeout(Duration::from_secs(15), conn.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(12), "within the deadline: {:?}", started.elapsed());
    shutdown.cancel();
    turn.closed().await;
}

#[tokio::test]
async fn one_address_signing_in_over_and_over_stops_getting_turn_credentials() {
    let options = duet::RunOptions {
        signaling: duet::limits::SignalingLimits {
            credentials: duet_signal::limit::Rate::every(3, Duration::from_secs(600)),
            ..Default::default()
        },
        ..duet::RunOptions::plain()
    };
    let server = TestServer::start_with_turn_and(SECRET, options).await;
    let mut got = 0;
    for i in 0..6 {
        let mut client = server.client().await;
        client.send(json!({"type": "username", "name": format!("again{i}"), "ringing": true})).await;
        client.send(json!({"type": "message", "text": "marker"})).await;
        loop {
            let msg = client.recv().await;
            if msg["type"] == "ice-servers" {
                got += 1;
            }
            if msg["type"] == "message" {
                break; // the credentials, if any, came before the chat echo
            }
        }
    }
    assert_eq!(got, 3, "the address's budget of credentials");
    // Another address still gets them.
    let mut other = common::Client::connect_from(&server.url("/ws"), "127.0.0.2").await.expect("connect");
    other.send(json!({"type": "username", "name": "elsewhere", "ringing": true})).await;
    other.expect_type("ice-servers").await;
}

/// The real binary with an open-file limit of `files`, relaying with the default quotas.
struct LowFiles {
    child: std::process::Child,
    web: SocketAddr,
    turn: SocketAddr,
}

impl LowFiles {
    fn start(files: u32) -> Self {
        let turn_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("bound")
            .port();
        let script = format!(
            "ulimit -n {files} && exec \"$0\" serve --listen 127.0.0.1:0 --turn-listen 127.0.0.1:{turn_port} \
             --turn-secret '{SECRET}' --turn-relay-ports 46000-48999 --no-metrics --no-echo"
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_duet")])
            .env("DUET_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start duet");
        let web = common::printed_address(&mut child);
        Self { child, web, turn: ([127, 0, 0, 1], turn_port).into() }
    }
}

impl Drop for LowFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_full_relay_never_leaves_the_web_page_or_signaling_without_file_descriptors() {
    // 256 open files: duet keeps 40 % of what it may use (192) for relays: 76 allocations.
    let duet = LowFiles::start(256);
    let mut codes = std::collections::BTreeMap::new();
    let mut held = Vec::new();
    // 160 people from 20 addresses take every relay there is.
    for i in 0..160 {
        let source = format!("127.0.{}.{}:0", 10 + i / 8, 1 + i % 8);
        let mut probe = TurnProbe::new(&source, duet.turn, SECRET, &format!("probe-{i}")).await;
        let answer = probe.allocate().await;
        *codes
            .entry(
                format!("{answer:?}").split('(').next().unwrap_or_default().to_owned()
                    + &match &answer {
                        Answer::Error(code) => format!(" {code}"),
                        _ => String::new(),
                    },
            )
            .or_insert(0) += 1;
        held.push(probe);
    }
    let succeeded = codes.get("Success").copied().unwrap_or(0);
    assert!((60..=76).contains(&succeeded), "the relay is full at its share: {codes:?}");
    assert!(codes.get("Error 508").copied().unwrap_or(0) > 0, "{codes:?}");
    // The web page and signaling are served all the same.
    assert!(common::http_get(duet.web, "/healthz").await.ends_with("ok"));
    let mut people = Vec::new();
    for i in 0..20 {
        let source = format!("127.0.{}.1", 100 + i);
        let mut client = common::Client::connect_from(&format!("ws://{}/ws", duet.web), &source)
            .await
            .expect("a WebSocket");
        client.send(json!({"type": "username", "name": format!("p{i}")})).await;
        client.wait_for_userlist(|users| users.iter().any(|u| *u == format!("p{i}"))).await;
        people.push(client);
    }
    assert!(common::http_get(duet.web, "/").await.contains("<title"), "the page still loads");
}

#[tokio::test]
async fn clients_spread_over_the_udp_threads_relay_both_ways_and_share_one_quota() {
    let settings = EmbeddedTurn {
        threads: 2,
        allocations_per_address: 32,
        ..embedded_turn("127.0.0.1:0".parse().expect("literal"), SECRET)
    };
    let (turn, shutdown) = turn_with(settings).await;
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("a peer");
    let peer_addr = peer.local_addr().expect("bound");
    let mut probes = Vec::new();
    let mut relays = Vec::new();
    let mut refused = 0;
    // Forty sockets of one address, each with credentials of its own: the kernel gives
    // each to one of the two threads; the address's quota of 32 holds over both.
    for i in 0..40 {
        let mut probe = TurnProbe::new("127.0.0.1:0", turn.udp, SECRET, &format!("probe-{i}")).await;
        match probe.allocate().await {
            Answer::Success(Some(relay)) => {
                assert_eq!(probe.permit(peer_addr).await, Answer::Success(None));
                relays.push(relay);
                probes.push(probe);
            }
            Answer::Error(486) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((probes.len(), refused), (32, 8), "the quota counts allocations of both threads");
    let per_thread = turn.allocations_per_thread();
    assert!(
        per_thread.len() == 2 && per_thread.iter().all(|n| *n > 0),
        "both threads hold allocations: {per_thread:?}"
    );

    // Every client reaches the peer through its relay, and hears back through it.
    for (i, probe) in probes.iter_mut().enumerate() {
        probe.send_indication(peer_addr, format!("hello {i}").as_bytes()).await;
    }
    let mut buf = [0u8; 1500];
    let mut heard = std::collections::HashSet::new();
    while heard.len() < relays.len() {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
            .await
            .expect("every relay delivers")
            .expect("recv");
        assert!(relays.contains(&from), "data comes from a relayed address");
        heard.insert(from);
        peer.send_to(&buf[..n], from).await.expect("answer through the relay");
    }
    for (i, probe) in probes.iter().enumerate() {
        let n = tokio::time::timeout(Duration::from_secs(5), probe.socket.recv(&mut buf))
            .await
            .expect("the answer comes back through the right thread")
            .expect("recv");
        let msg = duet_turn::stun::Message::parse(&buf[..n]).expect("a Data indication");
        assert_eq!(msg.get(duet_turn::stun::attr::DATA), Some(format!("hello {i}").as_bytes()));
    }
    shutdown.cancel();
    turn.closed().await;
}
