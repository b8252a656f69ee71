//! A client written for MDN's sample (samples-server, s/webrtc-from-chat) works unchanged:
//! it connects at `/` asking for the `json` subprotocol and speaks MDN's messages.

mod common;

use common::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn mdn_sequence_over_the_json_subprotocol_at_the_root() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server.url("/"), Some("json")).await;
    assert_eq!(ann.protocol.as_deref(), Some("json"), "the subprotocol is echoed");
    let id = ann.expect_type("id").await["id"].as_u64().expect("a numeric id");
    ann.send(json!({"name": "ann", "date": 1_700_000_000_000u64, "id": id, "type": "username"})).await;
    assert_eq!(ann.wait_for_userlist(|u| u == ["ann"]).await, ["ann"]);

    let mut bo = Client::connect(&server.url("/"), Some("json")).await;
    let bo_id = bo.expect_type("id").await["id"].as_u64().expect("id");
    assert_ne!(id, bo_id);
    bo.send(json!({"name": "bo", "date": 1, "id": bo_id, "type": "username"})).await;
    bo.wait_for_userlist(|u| u == ["ann", "bo"]).await;
    ann.wait_for_userlist(|u| u == ["ann", "bo"]).await;

    // Chat: broadcast with the sender's name.
    let date = 1_764_460_800_000u64; // MDN's client sends Date.now()
    ann.send(json!({"text": "hello", "type": "message", "id": id, "date": date})).await;
    let line = bo.recv_not_userlist().await;
    assert_eq!(
        line,
        json!({"type": "message", "id": id, "name": "ann", "text": "hello", "date": date as f64})
    );
    assert_eq!(ann.recv_not_userlist().await["text"], "hello");

    // The call: offer, answer, candidates both ways, hang-up with a null target.
    let sdp = json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    ann.send(json!({"name": "ann", "target": "bo", "type": "video-offer", "sdp": sdp})).await;
    let offer = bo.recv_not_userlist().await;
    assert_eq!(offer["type"], "video-offer");
    assert_eq!(offer["name"], "ann");
    assert_eq!(offer["sdp"], sdp);
    bo.send(json!({"name": "bo", "target": "ann", "type": "video-answer", "sdp": {"type": "answer", "sdp": "v=0\r\n"}}))
        .await;
    assert_eq!(ann.recv_not_userlist().await["type"], "video-answer");
    let candidate = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    ann.send(json!({"type": "new-ice-candidate", "target": "bo", "candidate": candidate})).await;
    let got = bo.recv_not_userlist().await;
    assert_eq!((got["type"].as_str(), &got["candidate"]), (Some("new-ice-candidate"), &candidate));
    bo.send(json!({"type": "new-ice-candidate", "target": "ann", "candidate": candidate})).await;
    assert_eq!(ann.recv_not_userlist().await["name"], "bo");

    bo.send(json!({"name": "bo", "target": null, "type": "hang-up"})).await;
    assert_eq!(ann.recv_not_userlist().await, json!({"type": "hang-up", "name": "bo", "target": "ann"}));
}

#[tokio::test]
async fn a_taken_name_is_answered_with_rejectusername() {
    let server = TestServer::start().await;
    let _first = server.user("ann").await;
    let mut second = Client::connect(&server.url("/"), Some("json")).await;
    let id = second.expect_type("id").await["id"].clone();
    second.send(json!({"type": "username", "name": "ann", "id": id})).await;
    assert_eq!(second.recv().await, json!({"type": "rejectusername", "id": id, "name": "ann2"}));
    second.wait_for_userlist(|u| u == ["ann", "ann2"]).await;
}

#[tokio::test]
async fn the_web_client_is_served_at_the_root_without_an_upgrade() {
    let server = TestServer::start().await;
    let response = common::http_get(server.addr, "/").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("id=\"userlistbox\""));
    assert!(response.to_ascii_lowercase().contains("content-security-policy:"));
}
