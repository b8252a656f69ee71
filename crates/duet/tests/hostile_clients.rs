//! Clients that lie, err or misbehave get a clear answer and disturb nobody else.

mod common;

use common::TestServer;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn a_spoofed_name_is_replaced_by_the_senders_real_one() {
    let server = TestServer::start().await;
    let mut mallory = server.user("mallory").await;
    let mut bo = server.user("bo").await;
    let _ann = server.user("ann").await;
    mallory.send(json!({"type": "video-offer", "name": "ann", "target": "bo", "sdp": {"type": "offer", "sdp": ""}})).await;
    mallory.send(json!({"type": "message", "name": "ann", "text": "it's me, ann"})).await;
    let offer = bo.recv_not_userlist().await;
    assert_eq!(offer["name"], "mallory");
    let chat = bo.recv_not_userlist().await;
    assert_eq!((chat["name"].as_str(), chat["text"].as_str()), (Some("mallory"), Some("it's me, ann")));
}

#[tokio::test]
async fn a_message_for_an_absent_user_gets_an_error() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    ann.send(json!({"type": "video-offer", "target": "nobody", "sdp": {"type": "offer", "sdp": ""}})).await;
    let reply = ann.recv_not_userlist().await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "no-such-user");
    assert_eq!(reply["target"], "nobody");
}

#[tokio::test]
async fn invalid_messages_get_errors_and_the_connection_carries_on() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bo = server.user("bo").await;
    for (text, code) in [
        ("{oops", "invalid-json"),
        ("[1,2,3]", "invalid-field"),
        (r#"{"type":"nonsense"}"#, "unknown-type"),
        (r#"{"type":"video-offer","target":"bo"}"#, "missing-field"),
        (r#"{"type":"username","name":"line\nbreak"}"#, "invalid-name"),
    ] {
        ann.send_text(text).await;
        let reply = ann.recv_not_userlist().await;
        assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some(code)), "{text}");
    }
    ann.ws.send(Message::binary(vec![1, 2, 3])).await.expect("send");
    assert_eq!(ann.recv_not_userlist().await["code"], "binary-frame");
    bo.assert_quiet().await;
    // Still signed in as ann, still able to call.
    ann.send(json!({"type": "video-offer", "target": "bo", "sdp": {"type": "offer", "sdp": ""}})).await;
    assert_eq!(bo.recv_not_userlist().await["name"], "ann");
}

#[tokio::test]
async fn messages_before_signing_in_are_refused() {
    let server = TestServer::start().await;
    let _bo = server.user("bo").await;
    let mut anon = server.client().await;
    anon.expect_type("id").await;
    anon.send(json!({"type": "video-offer", "target": "bo", "sdp": {}})).await;
    assert_eq!(anon.recv().await["code"], "not-signed-in");
}

#[tokio::test]
async fn an_oversized_frame_is_closed_with_1009_and_others_are_unaffected() {
    let server = TestServer::start().await;
    let mut big = server.user("big").await;
    let mut ann = server.user("ann").await;
    let mut bo = server.user("bo").await;
    let huge = json!({"type": "message", "text": "x".repeat(70 * 1024)}).to_string();
    big.send_text(&huge).await;
    let frame = big.closed().await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    // Everyone else carries on, and sees big leave.
    bo.wait_for_userlist(|u| u == ["ann", "bo"]).await;
    ann.send(json!({"type": "message", "text": "still here"})).await;
    assert_eq!(bo.recv_not_userlist().await["text"], "still here");
}

#[tokio::test]
async fn a_message_just_under_the_limit_is_accepted() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bo = server.user("bo").await;
    let sdp = "y".repeat(60 * 1024); // an offer with very many candidates
    ann.send(json!({"type": "video-offer", "target": "bo", "sdp": {"type": "offer", "sdp": sdp}})).await;
    assert_eq!(bo.recv_not_userlist().await["sdp"]["sdp"].as_str().map(str::len), Some(60 * 1024));
}

#[tokio::test]
async fn closing_during_a_call_hangs_up_on_the_partner() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bo = server.user("bo").await;
    ann.send(json!({"type": "video-offer", "target": "bo", "sdp": {"type": "offer", "sdp": ""}})).await;
    bo.recv_not_userlist().await;
    bo.send(json!({"type": "video-answer", "target": "ann", "sdp": {"type": "answer", "sdp": ""}})).await;
    ann.recv_not_userlist().await;
    drop(ann);
    assert_eq!(bo.recv_not_userlist().await, json!({"type": "hang-up", "name": "ann", "target": "bo"}));
    bo.wait_for_userlist(|u| u == ["bo"]).await;
}
