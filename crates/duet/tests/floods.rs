//! What one hostile client can do to everyone else over signaling and HTTP, against the
//! real server: floods are cut to a budget, a client that cannot keep up is closed (and
//! may resume) instead of going deaf, slow or idle connections end on time, and one
//! address holds only its share of connections.

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn ten_sockets_flooding_chat_leave_everyone_else_hearing_chat_and_calls() {
    let server = TestServer::start().await;
    let (mut victim, _) = server.ringing_user("", "victim").await;
    // bo is at another address: the flooders' address spends its own chat budget.
    let mut bo = Client::connect_from(&server.url("/ws"), "127.0.0.2").await.expect("connect");
    bo.send(json!({"type": "username", "name": "bo", "ringing": true})).await;
    bo.expect_type("session").await;
    let mut flooders = Vec::new();
    for i in 0..10 {
        let mut flooder = server.user(&format!("flood{i}")).await;
        flooder.flood((0..1000).map(|n| json!({"type": "message", "text": format!("spam {n}")}))).await;
        flooders.push(flooder);
    }
    bo.send(json!({"type": "message", "text": "still here?"})).await;
    bo.send(json!({"type": "call", "target": "victim"})).await;
    let mut spam = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut heard_chat, mut heard_call) = (false, false);
    while !(heard_chat && heard_call) {
        assert!(Instant::now() < deadline, "the victim went deaf");
        let msg = victim.recv_not_userlist().await;
        match msg["type"].as_str() {
            Some("message") if msg["text"] == "still here?" => heard_chat = true,
            Some("message") => spam += 1,
            Some("incoming-call") => heard_call = true,
            _ => {}
        }
    }
    let burst = duet_signal::Limits::default().chat_per_address.burst as usize;
    assert!(
        spam <= burst + 2,
        "ten sockets of one address reached the victim with one address's burst: {spam}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_resumes_its_session() {
    let server = TestServer::start().await;
    let (mut victim, token) = server.ringing_user("", "victim").await;
    let (mut mallory, _) = server.ringing_user("", "mallory").await;
    mallory.call_and_accept(&mut victim, "victim").await;
    // mallory sends big offers (ICE restarts, say) as fast as allowed; the victim's
    // page has frozen and reads nothing.
    let offer = json!({"type": "video-offer", "target": "victim", "sdp": {"type": "offer", "sdp": "a".repeat(60 * 1024)}});
    mallory.flood(std::iter::repeat_n(offer, 200)).await;
    // The server gives up on the victim's socket within its write timeout, instead of
    // holding it open and deaf.
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        use futures_util::StreamExt;
        loop {
            match victim.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the stuck client is closed");
    assert!(ended.is_none_or(|code| code == 1008), "closed as too slow: {ended:?}");
    assert!(started.elapsed() < Duration::from_secs(16), "on time: {:?}", started.elapsed());
    // Its page reconnects and takes its session back.
    let mut again = server.client().await;
    again.send(json!({"type": "resume", "name": "victim", "token": token})).await;
    let resumed = again.expect_type("resumed").await;
    assert_eq!(resumed["partner"], "mallory", "the call is still there");
}

#[tokio::test]
async fn a_dropped_session_survives_a_thousand_chat_lines_and_resumes_its_call() {
    let server = TestServer::start().await;
    let (ann, token) = server.ringing_user("", "ann").await;
    let (mut bo, _) = server.ringing_user("", "bo").await;
    let mut ann = ann;
    ann.call_and_accept(&mut bo, "bo").await;
    drop(ann); // the Wi-Fi blips: no close frame
    let mut spammers = Vec::new();
    for i in 0..4 {
        let mut spammer = server.user(&format!("spam{i}")).await;
        spammer.flood((0..250).map(|n| json!({"type": "message", "text": format!("x{n}")}))).await;
        spammers.push(spammer);
    }
    bo.send(json!({"type": "new-ice-candidate", "target": "ann", "candidate": {"candidate": ""}})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = server.client().await;
    again.send(json!({"type": "resume", "name": "ann", "token": token})).await;
    let resumed = again.expect_type("resumed").await;
    assert_eq!(resumed["partner"], "bo");
    again.expect_type("new-ice-candidate").await;
    // bo heard the chat, never that the call ended.
    while let Ok(msg) = tokio::time::timeout(Duration::from_millis(300), bo.recv()).await {
        assert!(msg["type"] != "call-ended" && msg["type"] != "hang-up", "{msg}");
    }
}

#[tokio::test]
async fn one_address_holds_its_share_of_websockets_and_the_next_gets_429() {
    let options = duet::RunOptions {
        signaling: duet::limits::SignalingLimits { sockets_per_address: 2, ..Default::default() },
        ..duet::RunOptions::plain()
    };
    let server = TestServer::start_with(options).await;
    let _one = server.client().await;
    let _two = server.client().await;
    let third = Client::connect_from(&server.url("/ws"), "127.0.0.1").await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    let mut elsewhere =
        Client::connect_from(&server.url("/ws"), "127.0.0.2").await.expect("another address gets in");
    elsewhere.expect_type("id").await;
}

/// Reads until the server closes; how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_web_clients_are_closed_on_time_and_others_are_served() {
    let options = duet::RunOptions {
        http: duet::limits::HttpLimits {
            header_timeout: Duration::from_secs(1),
            per_address: 8,
            ..Default::default()
        },
        ..duet::RunOptions::plain()
    };
    let server = TestServer::start_with(options).await;
    let limit = Duration::from_millis(2500);
    // Connects and says nothing.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    // Trickles a header a line at a time, forever (slowloris).
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    let trickle = tokio::spawn(async move {
        let _ = slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").await;
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(format!("X-{i}: y\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
        closed_within(&mut slow, Duration::from_secs(1)).await
    });
    // Asks once, then keeps the connection open doing nothing.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    assert!(closed_within(&mut silent, limit).await >= Duration::from_millis(900));
    assert!(closed_within(&mut idle, limit).await < limit);
    trickle.await.expect("joined");
    // A header past 16 KiB is refused outright.
    let mut big = TcpStream::connect(server.addr).await.expect("connect");
    let header = format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "b".repeat(20 * 1024));
    let _ = big.write_all(header.as_bytes()).await;
    let mut response = String::new();
    let _ = big.read_to_string(&mut response).await;
    assert!(response.is_empty() || response.starts_with("HTTP/1.1 431"), "{response}");
    assert!(common::http_get(server.addr, "/healthz").await.ends_with("ok"), "others are served meanwhile");
}

#[tokio::test]
async fn one_address_holds_its_share_of_web_connections() {
    let options = duet::RunOptions {
        http: duet::limits::HttpLimits { per_address: 8, ..Default::default() },
        ..duet::RunOptions::plain()
    };
    let server = TestServer::start_with(options).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let mut ninth = TcpStream::connect(server.addr).await.expect("the kernel accepts");
    assert!(
        closed_within(&mut ninth, Duration::from_secs(2)).await < Duration::from_secs(1),
        "closed at once"
    );
    let other = tokio::net::TcpSocket::new_v4().expect("socket");
    other.bind("127.0.0.2:0".parse().expect("literal")).expect("bind");
    let mut other = other.connect(server.addr).await.expect("connect");
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    other.read_to_string(&mut response).await.expect("read");
    assert!(response.ends_with("ok"), "another address is served: {response}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(common::http_get(server.addr, "/healthz").await.ends_with("ok"), "places are given back");
}
