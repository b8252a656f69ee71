//! Shared harness: the real server on an ephemeral port, and a WebSocket client that
//! reads JSON messages with a timeout.
#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::time::Duration;

use duet::{RunOptions, run};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub mod accounts;
pub mod coturn;
pub mod netns;
pub mod push_service;
pub mod redis;
pub mod turn_probe;

pub const WAIT: Duration = Duration::from_secs(5);

/// The address a started `duet serve` prints first on its stdout ("… listening on
/// http://host:port"), read from `child`'s piped stdout.
pub fn printed_address(child: &mut std::process::Child) -> SocketAddr {
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("duet prints its address");
    line.trim().rsplit("http://").next().expect("an address").parse().expect("host:port")
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the test asked for it.
    pub metrics: Option<SocketAddr>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(RunOptions::plain()).await
    }

    pub async fn start_with(options: RunOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(listener, options, shutdown.clone()));
        Self { addr, metrics: None, shutdown, task }
    }

    /// With duet's embedded TURN on an ephemeral port, and this shared secret.
    pub async fn start_with_turn(secret: &str) -> Self {
        Self::start_with_turn_and(secret, RunOptions::plain()).await
    }

    /// The same, with `options` for the rest.
    pub async fn start_with_turn_and(secret: &str, options: RunOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let listen = "127.0.0.1:0".parse().expect("literal");
        let mode = duet::config::TurnMode::Embedded(Box::new(embedded_turn(listen, secret)));
        let settings = duet::config::IceSettings { host: None, ttl: Duration::from_secs(120) };
        let (turn, ice) =
            duet::serve::start_ice(&mode, &settings, None, shutdown.clone()).await.expect("TURN starts");
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
        let metrics_addr = metrics.local_addr().expect("bound");
        let options = RunOptions { ice, turn, metrics: Some(metrics), ..options };
        let task = tokio::spawn(run(listener, options, shutdown.clone()));
        Self { addr, metrics: Some(metrics_addr), shutdown, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url("/ws"), None).await
    }

    /// A client that has signed in as `name` in `room` (the lobby if empty), speaking
    /// ringing; returns it with its resume token.
    pub async fn ringing_user(&self, room: &str, name: &str) -> (Client, String) {
        let mut client = Client::connect(&self.url(&format!("/ws?room={room}")), None).await;
        client.expect_type("id").await;
        client.send(serde_json::json!({"type": "username", "name": name, "ringing": true})).await;
        let session = client.expect_type("session").await;
        client.wait_for_userlist(|users| users.iter().any(|u| u == name)).await;
        let token = session["token"].as_str().expect("a token").to_owned();
        (client, token)
    }

    /// A client that has signed in as `name` and seen itself in the user list.
    pub async fn user(&self, name: &str) -> Client {
        let mut client = self.client().await;
        client.expect_type("id").await;
        client.send(serde_json::json!({"type": "username", "name": name})).await;
        client.wait_for_userlist(|users| users.iter().any(|u| u == name)).await;
        client
    }
}

/// A plain HTTP/1.1 GET; the whole response, head and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

/// Settings of an embedded TURN server for tests: the given address (a chosen one, so a
/// taken port is an error), ephemeral TLS port, loopback peers allowed, `secret`, two
/// UDP threads.
pub fn embedded_turn(listen: SocketAddr, secret: &str) -> duet::config::EmbeddedTurn {
    duet::config::EmbeddedTurn {
        listen,
        listen_chosen: true,
        tls_port: 0,
        stream_listeners: true,
        relay_ports: duet::turn::PortRange(40_000..=45_000),
        external_ip: None,
        realm: "duet".into(),
        secret: secret.as_bytes().to_vec(),
        static_users: Default::default(),
        peer_policy: duet_turn::policy::PeerPolicy {
            dangerous_allow_loopback_peers: true,
            ..Default::default()
        },
        allocations_per_address: 32,
        allocations_total: 1000,
        streams_per_address: 16,
        streams_total: 1000,
        // Two shards, so every TURN test also proves clients on different UDP threads.
        threads: 2,
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Option<String>,
}

impl Client {
    pub async fn connect(url: &str, protocol: Option<&str>) -> Self {
        let mut request = url.into_client_request().expect("a valid URL");
        if let Some(protocol) = protocol {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocol).expect("ascii"));
        }
        let (ws, response) =
            tokio_tungstenite::connect_async(request).await.expect("the server accepts WebSockets");
        let protocol =
            response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().expect("ascii").to_owned());
        Self { ws, protocol }
    }

    /// A client whose TCP connection comes from `source` (another loopback address, say,
    /// to stand for another person).
    pub async fn connect_from(
        url: &str,
        source: &str,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let request = url.into_client_request().expect("a valid URL");
        let host = request.uri().authority().expect("host:port").as_str().to_owned();
        let target: SocketAddr = host.parse().expect("a numeric host:port");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(format!("{source}:0").parse().expect("an IPv4 source")).expect("bind the source");
        let stream = socket.connect(target).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        Ok(Self { ws, protocol: None })
    }

    pub async fn send(&mut self, msg: Value) {
        self.send_text(&msg.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends every one of `messages` as fast as the socket takes them (fed, then flushed
    /// once), as a flooding client does.
    pub async fn flood(&mut self, messages: impl IntoIterator<Item = Value>) {
        for msg in messages {
            self.ws.feed(Message::text(msg.to_string())).await.expect("send");
        }
        self.ws.flush().await.expect("flush");
    }

    /// `self` (signed in, ringing-aware) calls `callee`, who accepts: the call is on.
    pub async fn call_and_accept(&mut self, callee: &mut Client, callee_name: &str) {
        self.send(serde_json::json!({"type": "call", "target": callee_name})).await;
        let id = callee.expect_type("incoming-call").await["callId"].clone();
        callee.send(serde_json::json!({"type": "accept", "callId": id})).await;
        self.expect_type("call-accepted").await;
    }

    /// The next JSON message, skipping pings.
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within the timeout")
                .expect("the connection is open")
                .expect("a valid frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("the server sends JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Skips messages until one of `kind` arrives.
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["type"] == kind {
                return msg;
            }
        }
    }

    /// The next message that is not a user list.
    pub async fn recv_not_userlist(&mut self) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["type"] != "userlist" {
                return msg;
            }
        }
    }

    pub async fn wait_for_userlist(&mut self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        loop {
            let msg = self.expect_type("userlist").await;
            let users: Vec<String> = serde_json::from_value(msg["users"].clone()).expect("a list of names");
            if done(&users) {
                return users;
            }
        }
    }

    /// Waits for the server to close the connection; returns its close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next()).await.expect("closed within the timeout");
            match frame {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Asserts that nothing but user lists arrives for a short while.
    pub async fn assert_quiet(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(frame) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Some(Ok(Message::Text(text))) = frame {
                let msg: Value = serde_json::from_str(&text).expect("JSON");
                assert_eq!(msg["type"], "userlist", "unexpected message {msg}");
            }
        }
    }
}

/// An HTTP/1.1 request with extra headers (a `Host` among them replaces the server's
/// address) and a body: the status, the headers (names lower-cased) and the body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let own_host = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host"));
    let host = if own_host { String::new() } else { format!("Host: {addr}\r\n") };
    let mut request = format!("{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// POSTs the JSON `body` to `path` from the loopback address `source` (another person,
/// to the server's per-address limits); the status, or 0 when the connection failed.
pub async fn post_from(source: &str, server: SocketAddr, path: &str, body: &Value) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse().expect("an address")).expect("bind the source");
    let Ok(mut stream) = socket.connect(server).await else { return 0 };
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

impl Client {
    /// A WebSocket with these request headers (Cookie, Origin...), or the HTTP status it
    /// was refused with.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Self, u16> {
        let mut request = url.into_client_request().expect("a valid URL");
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().expect("a header name");
            request.headers_mut().insert(name, HeaderValue::from_str(value).expect("ascii"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Self { ws, protocol: None }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("the upgrade failed without an HTTP answer: {e}"),
        }
    }
}
