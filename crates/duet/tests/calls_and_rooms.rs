//! Ringing, rooms and resuming sessions through the real server and real WebSockets.

mod common;

use common::{Client, TestServer, http_get};
use serde_json::json;

#[tokio::test]
async fn a_room_link_serves_the_client_and_its_people_see_only_each_other() {
    let server = TestServer::start().await;
    let page = http_get(server.addr, "/r/team-42").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("id=\"userlistbox\""));
    let bad = http_get(server.addr, "/r/no%20spaces").await;
    assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("not a room link"), "{bad}");

    let mut lobby = server.user("ann").await;
    let (mut team_ann, _) = server.ringing_user("team-42", "ann").await;
    let (mut team_bo, _) = server.ringing_user("team-42", "bo").await;
    assert_eq!(team_ann.wait_for_userlist(|u| u.len() == 2).await, ["ann", "bo"]);
    team_bo.send(json!({"type": "message", "text": "in the room"})).await;
    assert_eq!(team_ann.expect_type("message").await["text"], "in the room");
    lobby.assert_quiet().await;
    team_bo.send(json!({"type": "call", "target": "cy"})).await;
    assert_eq!(team_bo.expect_type("error").await["code"], "no-such-user");
}

#[tokio::test]
async fn a_ringing_call_is_accepted_and_then_carries_the_offer() {
    let server = TestServer::start().await;
    let (mut ann, _) = server.ringing_user("", "ann").await;
    let (mut bo, _) = server.ringing_user("", "bo").await;
    ann.send(json!({"type": "call", "target": "bo"})).await;
    let ringing = ann.expect_type("ringing").await;
    let incoming = bo.expect_type("incoming-call").await;
    assert_eq!(incoming["name"], "ann");
    assert_eq!(incoming["callId"], ringing["callId"]);
    bo.send(json!({"type": "accept", "callId": incoming["callId"]})).await;
    let accepted = ann.expect_type("call-accepted").await;
    assert_eq!(accepted["role"], "caller");
    ann.send(json!({"type": "video-offer", "target": "bo", "sdp": {"type": "offer", "sdp": "v=0"}})).await;
    assert_eq!(bo.expect_type("video-offer").await["name"], "ann");
}

#[tokio::test]
async fn a_dropped_socket_is_resumed_with_its_token_and_its_call_goes_on() {
    let server = TestServer::start().await;
    let (mut ann, token) = server.ringing_user("", "ann").await;
    let (mut bo, _) = server.ringing_user("", "bo").await;
    ann.call_and_accept(&mut bo, "bo").await;

    // The network drops: the TCP connection ends without a WebSocket close frame.
    drop(ann);
    bo.send(json!({"type": "media-state", "target": "ann", "audio": false, "video": true})).await;

    let mut again = server.client().await;
    again.expect_type("id").await;
    again.send(json!({"type": "resume", "name": "ann", "token": token})).await;
    let resumed = again.recv_not_userlist().await;
    assert_eq!(resumed, json!({"type": "resumed", "name": "ann", "token": token, "partner": "bo"}));
    assert_eq!(again.recv_not_userlist().await["type"], "media-state", "what bo sent meanwhile arrives");
    again.send(json!({"type": "hang-up"})).await;
    let ended = bo.expect_type("call-ended").await;
    assert_eq!(ended["reason"], "hung-up");
    assert_eq!(ended["name"], "ann");
}

#[tokio::test]
async fn after_a_server_restart_both_sides_resume_their_names_and_their_call() {
    let first = TestServer::start_with(keeping_resume_key()).await;
    let (ann, ann_token) = first.ringing_user("", "ann").await;
    let (bo, bo_token) = first.ringing_user("", "bo").await;
    first.shutdown.cancel();
    drop((ann, bo));
    first.task.await.expect("joined").expect("clean shutdown");

    let second = TestServer::start_with(keeping_resume_key()).await;
    let mut ann = second.client().await;
    let mut bo = second.client().await;
    ann.send(json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"})).await;
    bo.send(json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"})).await;
    assert_eq!(ann.expect_type("resumed").await["name"], "ann");
    assert_eq!(bo.expect_type("resumed").await["name"], "bo");
    // The new server knows they are talking: a third caller hears "busy".
    let (mut cy, _) = second.ringing_user("", "cy").await;
    cy.send(json!({"type": "call", "target": "ann"})).await;
    assert_eq!(cy.expect_type("call-ended").await["reason"], "busy");
}

/// A server with the resume key a real one keeps in its state directory.
fn keeping_resume_key() -> duet::RunOptions {
    let hub = duet_signal::HubConfig { resume_key: Some([3; 32]), ..Default::default() };
    duet::RunOptions { hub, ..duet::RunOptions::plain() }
}

#[tokio::test]
async fn after_a_restart_a_stranger_cannot_take_someones_name_and_call_and_the_real_person_can() {
    let first = TestServer::start_with(keeping_resume_key()).await;
    let (ann, ann_token) = first.ringing_user("", "ann").await;
    let (bo, bo_token) = first.ringing_user("", "bo").await;
    let (mallory, mallory_token) = first.ringing_user("", "mallory").await;
    first.shutdown.cancel();
    drop((ann, bo, mallory));
    first.task.await.expect("joined").expect("clean shutdown");

    let second = TestServer::start_with(keeping_resume_key()).await;
    let mut bo = second.client().await;
    bo.send(json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"})).await;
    assert_eq!(bo.expect_type("resumed").await["name"], "bo");
    // mallory gets to the new server first, naming ann and her partner: with a made-up
    // token, with her own (real) token, and with ann's token for another name.
    let mut thief = second.client().await;
    thief.expect_type("id").await;
    for (name, token) in [("ann", "0123456789abcdef0123"), ("ann", &mallory_token), ("echo", &ann_token)] {
        thief.send(json!({"type": "resume", "name": name, "token": token, "partner": "bo"})).await;
        let reply = thief.recv_not_userlist().await;
        assert_eq!(reply["code"], "cannot-resume", "{name} with {token}");
    }
    // The real ann comes back and has her name and call.
    let mut ann = second.client().await;
    ann.send(json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"})).await;
    assert_eq!(ann.expect_type("resumed").await["name"], "ann");
    let (mut cy, _) = second.ringing_user("", "cy").await;
    cy.send(json!({"type": "call", "target": "bo"})).await;
    assert_eq!(cy.expect_type("call-ended").await["reason"], "busy", "ann and bo are talking again");
}

#[tokio::test]
async fn a_wrong_resume_token_gets_a_clear_refusal_and_the_client_can_sign_in_instead() {
    let server = TestServer::start().await;
    let (_ann, _) = server.ringing_user("", "ann").await;
    let mut eve = Client::connect(&server.url("/ws"), None).await;
    eve.expect_type("id").await;
    eve.send(json!({"type": "resume", "name": "ann", "token": "0123456789abcdef0123"})).await;
    assert_eq!(eve.recv_not_userlist().await["code"], "cannot-resume");
    eve.send(json!({"type": "username", "name": "ann"})).await;
    assert_eq!(eve.expect_type("rejectusername").await["name"], "ann2");
}

#[tokio::test]
async fn echo_is_listed_as_a_service_answers_at_once_and_hangs_up_on_a_caller_that_never_offers() {
    let echo = duet::signaling::echo::EchoConfig {
        setup_timeout: std::time::Duration::from_millis(500),
        ..duet::signaling::echo::EchoConfig::for_listen(
            "127.0.0.1".parse().expect("literal"),
            &Default::default(),
        )
    };
    let server =
        TestServer::start_with(duet::RunOptions { echo: Some(echo), ..duet::RunOptions::plain() }).await;
    let (mut ann, _) = server.ringing_user("", "ann").await;
    ann.send(json!({"type": "username", "name": "ann", "ringing": true})).await;
    let list = ann.expect_type("userlist").await;
    assert_eq!(list["users"], json!(["ann", "echo"]));
    assert_eq!(list["services"], json!(["echo"]));

    ann.send(json!({"type": "call", "target": "echo"})).await;
    assert_eq!(ann.expect_type("call-accepted").await["name"], "echo", "echo picks up by itself");
    // ann never offers: the echo gives up instead of holding its sockets forever.
    let ended = ann.expect_type("call-ended").await;
    assert_eq!(ended["name"], "echo");
    assert_eq!(ended["reason"], "hung-up");
}

#[tokio::test]
async fn a_burst_of_two_thousand_candidates_to_an_echo_call_harms_nothing() {
    let policy = duet_turn::policy::PeerPolicy { dangerous_allow_loopback_peers: true, ..Default::default() };
    let echo = duet::signaling::echo::EchoConfig::for_listen("127.0.0.1".parse().expect("literal"), &policy);
    let server =
        TestServer::start_with(duet::RunOptions { echo: Some(echo), ..duet::RunOptions::plain() }).await;
    let (mut ann, _) = server.ringing_user("", "ann").await;
    ann.send(json!({"type": "call", "target": "echo"})).await;
    ann.expect_type("call-accepted").await;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut session =
        duet_peer::Session::new(std::time::Instant::now(), &[socket.local_addr().expect("bound")])
            .expect("a session");
    let offer: serde_json::Value =
        serde_json::from_str(&session.create_offer().expect("an offer")).expect("JSON");
    ann.send(json!({"type": "video-offer", "target": "echo", "sdp": offer})).await;
    ann.expect_type("video-answer").await;
    for i in 0..2000u32 {
        let line = format!("candidate:{i} 1 udp 2122260223 127.0.0.1 {} typ host", 20_000 + i % 40_000);
        let msg = json!({"type": "new-ice-candidate", "target": "echo", "candidate": {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}});
        futures_util::SinkExt::feed(
            &mut ann.ws,
            tokio_tungstenite::tungstenite::Message::text(msg.to_string()),
        )
        .await
        .expect("send");
    }
    futures_util::SinkExt::flush(&mut ann.ws).await.expect("flush");
    // ann is told to slow down, and her call goes on.
    let mut limited = 0;
    while let Ok(msg) = tokio::time::timeout(std::time::Duration::from_millis(500), ann.recv()).await {
        assert_ne!(msg["type"], "call-ended", "the echo call was not ended by the burst");
        limited += usize::from(msg["code"] == "rate-limited");
    }
    assert!(limited > 1000, "most of the burst was refused: {limited}");
    // The server is fine: someone else signs in and calls echo too.
    let (mut bo, _) = server.ringing_user("", "bo").await;
    bo.send(json!({"type": "call", "target": "echo"})).await;
    assert_eq!(bo.expect_type("call-accepted").await["name"], "echo");
    ann.send(json!({"type": "hang-up", "target": "echo"})).await;
}
