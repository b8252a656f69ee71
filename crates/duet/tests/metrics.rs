//! An operator's view: `/metrics` in Prometheus's format, with signaling and TURN figures.

mod common;

use common::TestServer;

async fn scrape(addr: std::net::SocketAddr) -> String {
    let response = common::http_get(addr, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_users_connections_calls_refusals_and_turn_allocations() {
    let server = TestServer::start_with_turn("a secret for the metrics test").await;
    let metrics = server.metrics.expect("metrics are on");
    let (mut ann, _) = server.ringing_user("", "ann").await;
    let (mut bo, _) = server.ringing_user("", "bo").await;
    let _lurker = server.client().await;
    ann.send_text("not json").await;
    ann.expect_type("error").await;
    ann.send(serde_json::json!({"type": "call", "target": "bo"})).await;
    bo.expect_type("incoming-call").await;
    let text = scrape(metrics).await;
    assert_eq!(value(&text, "duet_signaling_users"), Some(2.0), "{text}");
    assert_eq!(value(&text, "duet_signaling_connections"), Some(3.0), "{text}");
    assert_eq!(value(&text, "duet_signaling_calls"), Some(1.0), "{text}");
    assert_eq!(value(&text, "duet_signaling_rejected_messages_total"), Some(1.0), "{text}");
    assert_eq!(value(&text, "duet_turn_allocations"), Some(0.0), "{text}");
    assert!(text.contains("# TYPE duet_turn_peer_denied_total counter"), "{text}");
}

#[tokio::test]
async fn metrics_count_calls_by_how_they_ended_and_sessions_by_how_they_came_and_went() {
    let server = TestServer::start_with_turn("a secret for the events test").await;
    let metrics = server.metrics.expect("metrics are on");
    let (mut ann, _) = server.ringing_user("", "ann").await;
    let (mut bo, _) = server.ringing_user("", "bo").await;
    let (mut cy, _) = server.ringing_user("", "cy").await;
    // A call bo declines, one bo answers that cy finds busy, and ann hangs up.
    ann.send(serde_json::json!({"type": "call", "target": "bo"})).await;
    let id = bo.expect_type("incoming-call").await["callId"].clone();
    bo.send(serde_json::json!({"type": "decline", "callId": id})).await;
    ann.expect_type("call-ended").await;
    ann.call_and_accept(&mut bo, "bo").await;
    cy.send(serde_json::json!({"type": "call", "target": "bo"})).await;
    assert_eq!(cy.expect_type("call-ended").await["reason"], "busy");
    ann.send(serde_json::json!({"type": "hang-up", "target": "bo"})).await;
    bo.expect_type("call-ended").await;
    // cy leaves.
    cy.ws.close(None).await.expect("close");
    bo.wait_for_userlist(|users| !users.contains(&"cy".to_owned())).await;
    let text = scrape(metrics).await;
    let figures = [
        ("duet_signaling_sessions_total{event=\"started\"}", 3.0),
        ("duet_signaling_sessions_ended_total{why=\"left\"}", 1.0),
        ("duet_signaling_calls_total{event=\"rung\"}", 2.0),
        ("duet_signaling_calls_total{event=\"answered\"}", 1.0),
        ("duet_signaling_calls_ended_total{reason=\"declined\"}", 1.0),
        ("duet_signaling_calls_ended_total{reason=\"busy\"}", 1.0),
        ("duet_signaling_calls_ended_total{reason=\"hung-up\"}", 1.0),
        ("duet_signaling_calls_ended_total{reason=\"missed\"}", 0.0),
    ];
    for (name, expected) in figures {
        assert_eq!(value(&text, name), Some(expected), "{name}: {text}");
    }
}
