//! Recent calls against the real server and its store: account holders find each call
//! in both directions with how it went and how long it lasted, can mark missed calls
//! seen and clear their history; a server told to keep none keeps none.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::accounts::{join, options, sign_in, state_dir};
use common::{Client, TestServer, http_request};
use duet::access::Access;
use duet::config::AccessConfig;
use duet_access::Mode;
use serde_json::{Value, json};

/// `method path` with `cookie`: the status and the JSON answer.
async fn api(server: &TestServer, method: &str, path: &str, cookie: &str) -> (u16, Value) {
    let (status, _, body) = http_request(server.addr, method, path, &[("Cookie", cookie)], "").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The account's Recent list once it holds `count` calls: (direction, peer, outcome, duration).
async fn recent(
    server: &TestServer,
    cookie: &str,
    count: usize,
) -> (Vec<(String, String, String, u64)>, Value) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = api(server, "GET", "/api/calls", cookie).await;
        assert_eq!(status, 200, "{answer}");
        let calls = answer["calls"].as_array().cloned().unwrap_or_default();
        if calls.len() >= count || Instant::now() > until {
            let read = calls
                .iter()
                .map(|c| {
                    let text = |field: &str| c[field].as_str().unwrap_or_default().to_owned();
                    (text("direction"), text("peer"), text("outcome"), c["duration"].as_u64().unwrap_or(99))
                })
                .collect();
            return (read, answer);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ann and bo signed in (members mode), each with a socket: (ann's cookie, bo's, sockets).
async fn ann_and_bo(server: &TestServer) -> (String, String, Client, Client) {
    let (_, _, ann) = sign_in(server, json!({"account": "ann", "password": "ann's password"})).await;
    let (_, _, bo) = sign_in(server, json!({"account": "bo", "password": "bo's password"})).await;
    let (ann, bo) = (ann.expect("ann's cookie"), bo.expect("bo's cookie"));
    let (ann_socket, _) = join(server, "/ws", &ann, "ann").await;
    let (bo_socket, _) = join(server, "/ws", &bo, "bo").await;
    (ann, bo, ann_socket, bo_socket)
}

fn server_dir(test: &str) -> std::path::PathBuf {
    state_dir(test, &[("ann", "ann's password", false), ("bo", "bo's password", false)])
}

#[tokio::test]
async fn account_holders_find_every_call_in_recent_with_how_it_went_and_how_long() {
    let server = TestServer::start_with(options(Mode::Members, &server_dir("recent"))).await;
    let (ann, bo, mut ann_socket, mut bo_socket) = ann_and_bo(&server).await;
    // bo declines; then answers and talks a second; then ann gives up before bo answers.
    ann_socket.send(json!({"type": "call", "target": "bo"})).await;
    let id = bo_socket.expect_type("incoming-call").await["callId"].clone();
    bo_socket.send(json!({"type": "decline", "callId": id})).await;
    ann_socket.expect_type("call-ended").await;
    ann_socket.call_and_accept(&mut bo_socket, "bo").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    ann_socket.send(json!({"type": "hang-up", "target": "bo"})).await;
    bo_socket.expect_type("call-ended").await;
    ann_socket.send(json!({"type": "call", "target": "bo"})).await;
    bo_socket.expect_type("incoming-call").await;
    ann_socket.send(json!({"type": "hang-up", "target": "bo"})).await;
    bo_socket.expect_type("call-ended").await;

    let row = |d: &str, p: &str, o: &str, s| (d.to_owned(), p.to_owned(), o.to_owned(), s);
    let (calls, answer) = recent(&server, &bo, 3).await;
    assert_eq!(
        calls,
        [row("in", "ann", "missed", 0), row("in", "ann", "answered", 1), row("in", "ann", "declined", 0)]
    );
    assert_eq!(answer["unseen"], 1, "one missed call bo has not seen");
    assert_eq!(answer["calls"][0]["peerVerified"], true);
    assert_eq!(answer["keptDays"], 90);
    let (calls, _) = recent(&server, &ann, 3).await;
    assert_eq!(
        calls,
        [row("out", "bo", "cancelled", 0), row("out", "bo", "answered", 1), row("out", "bo", "declined", 0)]
    );

    assert_eq!(api(&server, "POST", "/api/calls/seen", &bo).await.0, 200);
    assert_eq!(recent(&server, &bo, 3).await.1["unseen"], 0);
    let (status, answer) = api(&server, "DELETE", "/api/calls", &ann).await;
    assert_eq!((status, answer["cleared"].as_u64()), (200, Some(3)));
    assert!(recent(&server, &ann, 0).await.0.is_empty(), "ann's history is gone");
    assert_eq!(recent(&server, &bo, 3).await.0.len(), 3, "bo's is bo's own");
    assert_eq!(api(&server, "GET", "/api/calls", "duet_session=forged.token").await.0, 401);
}

#[tokio::test]
async fn a_server_told_to_keep_no_history_keeps_none() {
    let dir = server_dir("no-history");
    let config = AccessConfig { mode: Mode::Members, call_history: Duration::ZERO, ..AccessConfig::open() };
    let access = Access::new(config, Some(&dir)).expect("access starts");
    let server =
        TestServer::start_with(duet::RunOptions { access: Arc::new(access), ..duet::RunOptions::plain() })
            .await;
    let (ann, bo, mut ann_socket, mut bo_socket) = ann_and_bo(&server).await;
    ann_socket.call_and_accept(&mut bo_socket, "bo").await;
    ann_socket.send(json!({"type": "hang-up", "target": "bo"})).await;
    bo_socket.expect_type("call-ended").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for cookie in [&ann, &bo] {
        let (status, answer) = api(&server, "GET", "/api/calls", cookie).await;
        assert_eq!(
            (status, answer["calls"].as_array().map(Vec::len), answer["keptDays"].as_u64()),
            (200, Some(0), Some(0))
        );
    }
}

#[tokio::test]
async fn a_call_that_ends_just_before_the_server_stops_is_still_in_recent() {
    let dir = server_dir("shutdown");
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let (_, _, mut ann_socket, mut bo_socket) = ann_and_bo(&server).await;
    ann_socket.call_and_accept(&mut bo_socket, "bo").await;
    // (A call still going when the server stops is not over: both sides resume it after
    // the restart.) This one ends, and the server stops at once.
    ann_socket.send(json!({"type": "hang-up", "target": "bo"})).await;
    bo_socket.expect_type("call-ended").await;
    server.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(20), server.task).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the server stops cleanly: {stopped:?}");
    let store = duet::store::Store::open(&dir).expect("the store");
    for account in ["ann", "bo"] {
        let calls = store.backend().calls(account, None, 10).expect("read");
        assert_eq!(calls.len(), 1, "{account}'s call is kept: {calls:?}");
        assert_eq!(calls[0].call.outcome, duet::store::CallOutcome::Answered);
    }
}
