//! npm's `web-push-testing`, a push-service emulator that checks VAPID and decrypts what
//! it is sent, on 127.0.0.1 (e2e/bin/push-service.mjs; e2e/node_modules from the test
//! command's `npm ci`). It stops when the test drops it.

use std::net::SocketAddr;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::http_request;

pub struct PushService {
    pub addr: SocketAddr,
    _child: Child,
}

/// A browser's subscription at the emulator.
pub struct Subscribed {
    /// `PushSubscription.toJSON()`, as a page posts it.
    pub json: Value,
    pub client_hash: String,
}

impl PushService {
    pub async fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/bin/push-service.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs e2e/bin/push-service.mjs (the test command installs e2e's packages)");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line =
                lines.next_line().await.expect("read").expect("the push service says where it listens");
            if let Some(url) = line.strip_prefix("listening on http://") {
                break url.parse().expect("an address");
            }
        };
        Self { addr, _child: child }
    }

    /// The origin duet must be told it may send to.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let headers = [("Content-Type", "application/json")];
        let (status, _, body) = http_request(self.addr, "POST", path, &headers, &body.to_string()).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Subscribes a "browser" with `application_server_key` (duet's VAPID public key).
    pub async fn subscribe(&self, application_server_key: &str) -> Subscribed {
        let body = json!({"userVisibleOnly": "true", "applicationServerKey": application_server_key});
        let (status, answer) = self.post("/subscribe", body).await;
        assert_eq!(status, 200, "{answer}");
        let data = &answer["data"];
        Subscribed {
            json: json!({"endpoint": data["endpoint"], "keys": data["keys"]}),
            client_hash: data["clientHash"].as_str().expect("a client hash").to_owned(),
        }
    }

    /// What the "browser" received, decrypted.
    pub async fn received(&self, client_hash: &str) -> Vec<Value> {
        let (status, answer) = self.post("/get-notifications", json!({"clientHash": client_hash})).await;
        assert_eq!(status, 200, "{answer}");
        let messages =
            answer["data"]["messages"].as_array().or(answer["data"].as_array()).cloned().unwrap_or_default();
        messages
            .iter()
            .map(|m| m.as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(m.clone()))
            .collect()
    }

    /// From now on the service answers 410 for this subscription.
    pub async fn expire(&self, client_hash: &str) {
        let (status, answer) = self.post(&format!("/expire-subscription/{client_hash}"), json!({})).await;
        assert_eq!(status, 200, "{answer}");
    }
}
