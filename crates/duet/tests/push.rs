//! Push subscriptions and pushes against a real push service: npm's `web-push-testing`
//! (it checks the VAPID signature against the key the "browser" subscribed with and
//! decrypts every push) on loopback, and the real server with its store. An account
//! holder registers the emulator's subscription through the API; a test ring reaches it
//! and decrypts to what duet sent; an expired subscription (410) is forgotten; an endpoint
//! duet may not send to is refused when registered; a guest has no devices.

mod common;

use common::accounts::{options, sign_in, state_dir};
use common::push_service::PushService;
use common::{TestServer, http_request};
use duet_access::Mode;
use serde_json::{Value, json};

/// `method path` with `cookie` and a JSON `body`: the status and the JSON answer.
async fn api(server: &TestServer, method: &str, path: &str, cookie: &str, body: Value) -> (u16, Value) {
    let headers = [("Cookie", cookie), ("Content-Type", "application/json")];
    let text = if body.is_null() { String::new() } else { body.to_string() };
    let (status, _, answer) = http_request(server.addr, method, path, &headers, &text).await;
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// duet in members mode with bo's account, allowed to push to `service`.
async fn server(test: &str, service: &PushService) -> (TestServer, String) {
    let dir = state_dir(test, &[("bo", "bo's password", false)]);
    let config = duet::push::PushConfig {
        rules: duet_push::EndpointRules { dangerous_allowed: vec![service.origin()] },
        ..Default::default()
    };
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
    let metrics_addr = metrics.local_addr().expect("bound");
    let run = duet::RunOptions {
        push: Some((config, Default::default())),
        metrics: Some(metrics),
        ..options(Mode::Members, &dir)
    };
    let mut server = TestServer::start_with(run).await;
    server.metrics = Some(metrics_addr);
    let (_, _, cookie) = sign_in(&server, json!({"account": "bo", "password": "bo's password"})).await;
    (server, cookie.expect("bo's cookie"))
}

#[tokio::test]
async fn a_device_registered_through_the_api_gets_a_ring_the_push_service_accepts_and_decrypts() {
    let service = PushService::start().await;
    let (server, bo) = server("push-ring", &service).await;
    let (status, push) = api(&server, "GET", "/api/push", &bo, Value::Null).await;
    assert_eq!(status, 200, "{push}");
    assert_eq!(push["devices"], json!([]));
    let key = push["publicKey"].as_str().expect("the VAPID public key");
    let phone = service.subscribe(key).await;
    let body = json!({"subscription": phone.json, "device": "Bo's phone"});
    let (status, kept) = api(&server, "POST", "/api/push/subscriptions", &bo, body).await;
    assert_eq!(status, 201, "{kept}");
    assert_eq!(kept["devices"][0]["device"], "Bo's phone");
    let (status, listed) = api(&server, "GET", "/api/push/subscriptions", &bo, Value::Null).await;
    assert_eq!((status, &listed["devices"]), (200, &kept["devices"]), "this account's devices");

    let (status, rung) = api(&server, "POST", "/api/push/test", &bo, Value::Null).await;
    assert_eq!((status, rung), (200, json!({"delivered": 1, "gone": 0, "failed": 0})));
    let received = service.received(&phone.client_hash).await;
    assert_eq!(received, [json!({"type": "test", "account": "bo"})], "the service decrypted what duet sent");

    // The subscription expires at the push service: the next push finds it gone, and
    // duet forgets it.
    service.expire(&phone.client_hash).await;
    let (_, rung) = api(&server, "POST", "/api/push/test", &bo, Value::Null).await;
    assert_eq!(rung, json!({"delivered": 0, "gone": 1, "failed": 0}));
    let (_, push) = api(&server, "GET", "/api/push", &bo, Value::Null).await;
    assert_eq!(push["devices"], json!([]), "a 410 loses the subscription");
    let page = common::http_get(server.metrics.expect("metrics"), "/metrics").await;
    for line in ["duet_push_total{outcome=\"delivered\"} 1", "duet_push_total{outcome=\"gone\"} 1"] {
        assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
    }
}

#[tokio::test]
async fn endpoints_duet_may_not_send_to_are_refused_and_a_device_can_be_removed() {
    let service = PushService::start().await;
    let (server, bo) = server("push-refused", &service).await;
    let (_, push) = api(&server, "GET", "/api/push", &bo, Value::Null).await;
    let phone = service.subscribe(push["publicKey"].as_str().expect("a key")).await;
    let long = format!("https://push.example/{}", "x".repeat(2000));
    for (endpoint, why) in [("http://127.0.0.1:9/notify/x", "https"), (long.as_str(), "longer")] {
        let mut subscription = phone.json.clone();
        subscription["endpoint"] = json!(endpoint);
        let (status, refused) =
            api(&server, "POST", "/api/push/subscriptions", &bo, json!({"subscription": subscription})).await;
        assert_eq!((status, refused["error"].as_str()), (400, Some("bad-subscription")), "{refused}");
        assert!(refused["message"].as_str().is_some_and(|m| m.contains(why)), "{refused}");
    }
    let body = json!({"subscription": phone.json});
    assert_eq!(api(&server, "POST", "/api/push/subscriptions", &bo, body).await.0, 201);
    let endpoint = phone.json["endpoint"].clone();
    let (status, _) =
        api(&server, "DELETE", "/api/push/subscriptions", &bo, json!({"endpoint": endpoint})).await;
    assert_eq!(status, 204);
    let (status, _) =
        api(&server, "DELETE", "/api/push/subscriptions", &bo, json!({"endpoint": endpoint})).await;
    assert_eq!(status, 404, "already gone");
    let (status, refused) = api(&server, "GET", "/api/push", "", Value::Null).await;
    assert_eq!(status, 401, "{refused}");
}
