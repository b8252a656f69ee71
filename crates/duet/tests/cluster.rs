//! Several duet nodes on one Redis, against the real binary and Debian's `redis-server`:
//! people on different nodes see and call each other, and a node killed with SIGKILL, a
//! Redis killed and restarted or paused leave calls that resume and names held once.
//! (The browser test `e2e/tests/cluster.test.mjs` does the same through haproxy.)

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::redis::Redis;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for anything a test expects (a node's death is noticed in 5 s).
const PATIENCE: Duration = Duration::from_secs(20);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duet-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// One `duet serve` node on the cluster's Redis, sharing the cluster's state directory.
struct Node {
    child: Child,
    web: SocketAddr,
}

impl Node {
    fn start(redis: &Redis, state: &Path, log: &str) -> Self {
        Self::start_with(redis, state, log, &["--no-metrics"])
    }

    /// The same, with `extra` options (`--metrics-listen`, say).
    fn start_with(redis: &Redis, state: &Path, log: &str, extra: &[&str]) -> Self {
        let log = std::fs::File::create(state.join(log)).expect("a log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-echo"])
            .args(extra)
            .args(["--redis", &redis.url(), "--state-dir"])
            .arg(state)
            .args(["--ring-timeout", "60s"])
            .env("DUET_LOG", "info,duet=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start duet");
        let web = common::printed_address(&mut child);
        Self { child, web }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.web)
    }

    /// SIGKILL: no goodbye to anyone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A person's page: a name, the token to resume it, and the socket of the moment.
struct Person {
    name: String,
    token: String,
    socket: Socket,
    /// The last user list seen.
    users: Vec<String>,
    /// Where the page reconnects when its socket closes (as the load balancer would
    /// send it), and who it says it is in a call with when it does.
    urls: Vec<String>,
    partner: Option<String>,
}

async fn connect(url: &str) -> Option<Socket> {
    tokio_tungstenite::connect_async(url).await.ok().map(|(socket, _)| socket)
}

/// The next JSON message, or `None` when the socket closed (or nothing came in time).
async fn next(socket: &mut Socket, until: Instant) -> Option<Value> {
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            _ => return None,
        }
    }
}

impl Person {
    /// Signs in as `name` at `url`, ringing-aware, and waits to be listed.
    async fn sign_in(url: &str, name: &str) -> Self {
        let mut socket = connect(url).await.expect("the node accepts WebSockets");
        socket
            .send(Message::text(json!({"type": "username", "name": name, "ringing": true}).to_string()))
            .await
            .expect("send");
        let until = Instant::now() + PATIENCE;
        let mut token = None;
        while let Some(msg) = next(&mut socket, until).await {
            if msg["type"] == "session" {
                token = msg["token"].as_str().map(str::to_owned);
            }
            if let Some(token) = &token
                && msg["type"] == "userlist"
                && listed(&msg).contains(&name.to_owned())
            {
                let (name, token, users) = (name.to_owned(), token.clone(), listed(&msg));
                return Self { name, token, socket, users, urls: vec![url.to_owned()], partner: None };
            }
        }
        panic!("{name} could not sign in at {url}");
    }

    async fn send(&mut self, msg: Value) {
        self.socket.send(Message::text(msg.to_string())).await.expect("send");
    }

    /// Skips messages until one of `kind`; `None` if the socket closed first.
    /// A socket the server closes is reconnected and resumed, as the page does.
    async fn expect(&mut self, kind: &str) -> Option<Value> {
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until {
            let Some(msg) = next(&mut self.socket, until).await else {
                if Instant::now() < until {
                    let (urls, partner) = (self.urls.clone(), self.partner.clone());
                    self.resume(&urls, partner.as_deref()).await;
                }
                continue;
            };
            if msg["type"] == "userlist" {
                self.users = listed(&msg);
            }
            if msg["type"] == kind {
                return Some(msg);
            }
        }
        None
    }

    /// Waits for a user list `done` is happy with (the last one seen, or a new one).
    async fn userlist(&mut self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        if done(&self.users) {
            return self.users.clone();
        }
        while self.expect("userlist").await.is_some() {
            if done(&self.users) {
                return self.users.clone();
            }
        }
        panic!("{}: no user list as expected; the last was {:?}", self.name, self.users);
    }

    /// Reads what arrived meanwhile; if the server closed the socket, reconnects and
    /// resumes, as a page that was open all along would have done.
    async fn catch_up(&mut self) {
        let until = Instant::now() + Duration::from_millis(300);
        while next(&mut self.socket, until).await.is_some() {}
        if Instant::now() < until {
            let (urls, partner) = (self.urls.clone(), self.partner.clone());
            self.resume(&urls, partner.as_deref()).await;
        }
    }

    /// Waits for the server to close the socket (a node telling it to reconnect).
    async fn closed(&mut self) {
        let until = Instant::now() + PATIENCE;
        while next(&mut self.socket, until).await.is_some() {}
        assert!(Instant::now() < until, "{}'s socket was not closed", self.name);
    }

    /// Reconnects as a page does (to `urls` in turn, half a second apart) until its
    /// session is resumed; returns the `resumed` message.
    async fn resume(&mut self, urls: &[String], partner: Option<&str>) -> Value {
        let deadline = Instant::now() + PATIENCE;
        for url in urls.iter().cycle() {
            assert!(Instant::now() < deadline, "{} could not resume", self.name);
            let Some(mut socket) = connect(url).await else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let resume =
                json!({"type": "resume", "name": self.name, "token": self.token, "partner": partner});
            socket.send(Message::text(resume.to_string())).await.expect("send");
            let until = Instant::now() + Duration::from_secs(5);
            while let Some(msg) = next(&mut socket, until).await {
                if msg["type"] == "resumed" {
                    self.socket = socket;
                    return msg;
                }
                assert_ne!(msg["type"], "error", "{}: {msg}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        unreachable!("cycle never ends")
    }
}

fn listed(msg: &Value) -> Vec<String> {
    serde_json::from_value(msg["users"].clone()).unwrap_or_default()
}

/// `caller` rings `callee`, who accepts.
async fn call(caller: &mut Person, callee: &mut Person) {
    caller.send(json!({"type": "call", "target": callee.name})).await;
    let ring = callee.expect("incoming-call").await.expect("the call rings");
    assert_eq!(ring["name"], caller.name.as_str());
    callee.send(json!({"type": "accept", "callId": ring["callId"]})).await;
    caller.expect("call-accepted").await.expect("accepted");
    caller.partner = Some(callee.name.clone());
    callee.partner = Some(caller.name.clone());
}

fn no_name_twice(users: &[String]) {
    let mut sorted = users.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), users.len(), "a name is listed twice: {users:?}");
}

/// Redis, two nodes sharing a state directory, ann signed in on the first (which then
/// serves the lobby) and bo on the second (relayed to it).
struct TwoNodes {
    redis: Redis,
    one: Node,
    two: Node,
    ann: Person,
    bo: Person,
}

impl TwoNodes {
    async fn start(name: &str) -> Self {
        let redis = Redis::start();
        let state = scratch(name);
        let (one, two) = (Node::start(&redis, &state, "one.log"), Node::start(&redis, &state, "two.log"));
        let ann = Person::sign_in(&one.url(), "ann").await;
        let bo = Person::sign_in(&two.url(), "bo").await;
        Self { redis, one, two, ann, bo }
    }
}

#[tokio::test]
async fn people_on_two_nodes_see_and_call_each_other_as_on_one() {
    let TwoNodes { redis: _redis, one: _one, two, mut ann, mut bo } = TwoNodes::start("two-nodes").await;
    let both = |u: &[String]| u.contains(&"ann".to_owned()) && u.contains(&"bo".to_owned());
    ann.userlist(both).await;
    bo.userlist(both).await;

    call(&mut ann, &mut bo).await;
    ann.send(json!({"type": "video-offer", "target": "bo", "sdp": {"type": "offer", "sdp": "v=0\r\n"}}))
        .await;
    let offer = bo.expect("video-offer").await.expect("the offer crosses nodes");
    assert_eq!(offer["name"], "ann");
    // A third person on the second node finds bo busy.
    let mut cy = Person::sign_in(&two.url(), "cy").await;
    cy.send(json!({"type": "call", "target": "bo"})).await;
    assert_eq!(cy.expect("call-ended").await.expect("an answer")["reason"], "busy");
    // Chat reaches the room across nodes; hang-up reaches the partner.
    ann.send(json!({"type": "message", "text": "hello from node one"})).await;
    let line = cy.expect("message").await.expect("chat arrives");
    assert_eq!((line["name"].as_str(), line["text"].as_str()), (Some("ann"), Some("hello from node one")));
    ann.send(json!({"type": "hang-up", "target": "bo"})).await;
    assert_eq!(bo.expect("call-ended").await.expect("hang-up arrives")["reason"], "hung-up");
    cy.send(json!({"type": "call", "target": "bo"})).await;
    assert!(bo.expect("incoming-call").await.is_some(), "bo is free again");
}

#[tokio::test]
async fn a_node_killed_mid_call_leaves_a_call_that_both_resume_on_the_other_node() {
    // ann's node serves the room; bo's is relayed to it.
    let TwoNodes { redis: _redis, mut one, two, mut ann, mut bo } = TwoNodes::start("kill-node").await;
    call(&mut ann, &mut bo).await;

    one.kill();
    // bo's node notices and tells bo's page to reconnect; ann's page lost its socket.
    bo.closed().await;
    let urls = [two.url()];
    (ann.urls, bo.urls) = (urls.to_vec(), urls.to_vec());
    tokio::join!(ann.resume(&urls, Some("bo")), bo.resume(&urls, Some("ann")));
    // The call is known again on the surviving node: a third person finds bo busy, and
    // hang-up reaches the other side.
    let mut cy = Person::sign_in(&two.url(), "cy").await;
    cy.send(json!({"type": "call", "target": "bo"})).await;
    assert_eq!(cy.expect("call-ended").await.expect("an answer")["reason"], "busy");
    bo.send(json!({"type": "hang-up", "target": "ann"})).await;
    assert_eq!(ann.expect("call-ended").await.expect("hang-up arrives")["reason"], "hung-up");
    no_name_twice(&ann.userlist(|u| u.len() == 3).await);
}

#[tokio::test]
async fn a_ringing_call_whose_node_dies_ends_for_both_sides() {
    let TwoNodes { redis: _redis, mut one, two, mut ann, mut bo } = TwoNodes::start("ringing").await;
    ann.send(json!({"type": "call", "target": "bo"})).await;
    bo.expect("incoming-call").await.expect("it rings");

    one.kill();
    bo.closed().await;
    let urls = [two.url()];
    // Both come back without a call: the pages end the ring in words (the browser test
    // reads them); the new node rings nobody.
    let (to_ann, to_bo) = tokio::join!(ann.resume(&urls, None), bo.resume(&urls, None));
    assert!(to_ann.get("partner").is_none() && to_bo.get("partner").is_none(), "{to_ann} {to_bo}");
    (ann.urls, bo.urls) = (urls.to_vec(), urls.to_vec());
    ann.send(json!({"type": "call", "target": "bo"})).await;
    assert!(bo.expect("incoming-call").await.is_some(), "they can call again");
}

/// After Redis was away (`trouble`), a new call between the nodes works and nobody's
/// name is held twice.
async fn nodes_recover_from(trouble: impl AsyncFnOnce(&mut Redis, &Node), name: &str) {
    let TwoNodes { mut redis, one, two, mut ann, mut bo } = TwoNodes::start(name).await;
    call(&mut ann, &mut bo).await;

    trouble(&mut redis, &one).await;

    // Whatever the nodes told the pages meanwhile (they reconnect and resume when
    // told), their call goes on: hang-up reaches the other side...
    tokio::join!(ann.catch_up(), bo.catch_up());
    bo.send(json!({"type": "hang-up", "target": "ann"})).await;
    assert_eq!(ann.expect("call-ended").await.expect("hang-up arrives")["reason"], "hung-up");
    // ...a newcomer on either node sees one list with each name once, and calls across.
    let mut cy = Person::sign_in(&two.url(), "cy").await;
    let users = cy.userlist(|u| ["ann", "bo", "cy"].iter().all(|n| u.contains(&n.to_string()))).await;
    no_name_twice(&users);
    let mut dan = Person::sign_in(&one.url(), "dan").await;
    no_name_twice(
        &dan.userlist(|u| ["ann", "bo", "cy", "dan"].iter().all(|n| u.contains(&n.to_string()))).await,
    );
    call(&mut dan, &mut cy).await;
}

#[tokio::test]
async fn redis_killed_and_restarted_empty_nodes_recover_without_a_restart() {
    nodes_recover_from(async |redis: &mut Redis, _: &Node| redis.kill_and_restart(), "redis-restart").await;
}

#[tokio::test]
async fn redis_paused_longer_than_any_timeout_nodes_recover_when_it_continues() {
    nodes_recover_from(
        async |redis: &mut Redis, one: &Node| {
            redis.signal("-STOP");
            let paused = Instant::now();
            // Meanwhile the room's node serves the people who reach it: two newcomers
            // there sign in and call each other without Redis.
            let mut eve = Person::sign_in(&one.url(), "eve").await;
            let mut fay = Person::sign_in(&one.url(), "fay").await;
            call(&mut eve, &mut fay).await;
            eve.send(json!({"type": "hang-up", "target": "fay"})).await;
            assert_eq!(fay.expect("call-ended").await.expect("hang-up arrives")["reason"], "hung-up");
            assert!(paused.elapsed() < Duration::from_secs(8), "that took {:?}", paused.elapsed());
            tokio::time::sleep(Duration::from_secs(8).saturating_sub(paused.elapsed())).await;
            redis.signal("-CONT");
        },
        "redis-pause",
    )
    .await;
}

#[tokio::test]
async fn a_node_drained_with_sigterm_sends_its_people_to_the_other_node_at_once() {
    let TwoNodes { redis: _redis, mut one, two, mut ann, mut bo } = TwoNodes::start("drain").await;
    call(&mut ann, &mut bo).await;
    (ann.urls, bo.urls) = (vec![two.url()], vec![two.url()]);

    let asked = Instant::now();
    let status = Command::new("kill").args(["-TERM", &one.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    // bo's node hears the goodbye: bo is sent on before the node could have been found
    // dead (five silent seconds).
    bo.closed().await;
    let moved = asked.elapsed();
    assert!(moved < Duration::from_secs(4), "bo was moved after {moved:?}");
    tokio::join!(ann.catch_up(), bo.catch_up());
    bo.send(json!({"type": "hang-up", "target": "ann"})).await;
    assert_eq!(ann.expect("call-ended").await.expect("hang-up arrives")["reason"], "hung-up");
    let exited =
        tokio::task::spawn_blocking(move || one.child.wait()).await.expect("joined").expect("waited");
    assert!(exited.success(), "a drained node exits cleanly: {exited:?}");
}

/// `duet serve` with `args` that must refuse to start: its exit status and what it said.
fn refused(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-metrics", "--no-echo"])
        .args(args)
        .env("DUET_LOG", "warn")
        .output()
        .expect("run duet");
    assert!(!output.status.success(), "duet started with {args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_wrong_redis_setting_stops_the_node_with_words_and_no_password() {
    let state = scratch("wrong-settings");
    let state = state.to_str().expect("a UTF-8 path");
    let said = refused(&["--redis", "http://:hunter2@127.0.0.1/", "--state-dir", state]);
    assert!(said.contains("is not a Redis URL") && !said.contains("hunter2"), "{said}");
    // Nobody listens on this port: said at once, not after a long wait.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("bound").port();
    let started = Instant::now();
    let said = refused(&["--redis", &format!("redis://:hunter2@127.0.0.1:{port}/"), "--state-dir", state]);
    assert!(
        said.contains("cannot reach Redis at redis://:***@127.0.0.1") && !said.contains("hunter2"),
        "{said}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn a_node_with_other_keys_than_the_cluster_is_refused() {
    let redis = Redis::start();
    let first = scratch("keys-first");
    let _one = Node::start(&redis, &first, "one.log");
    let other = scratch("keys-other");
    let said = refused(&["--redis", &redis.url(), "--state-dir", other.to_str().expect("a UTF-8 path")]);
    assert!(said.contains("give every node the same resume.key"), "{said}");
}

/// What `redis-cli` answers to `args` on `redis`.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs (Debian's redis-tools, with redis-server)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn messages_forged_on_redis_are_dropped_and_counted() {
    let redis = Redis::start();
    let state = scratch("forged");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("bound");
    let node = Node::start_with(&redis, &state, "one.log", &["--metrics-listen", &metrics.to_string()]);
    let mut ann = Person::sign_in(&node.url(), "ann").await;
    let alive = redis_cli(&redis, &["--scan", "--pattern", "duet:alive:*"]);
    let id = alive.trim().strip_prefix("duet:alive:").expect("the node's alive key").to_owned();
    // What anyone who can publish on this Redis could send: a client joining the lobby
    // as a verified account through a node that does not exist, its name, a beat.
    let fake = "feedfacefeedface";
    let channel = format!("duet:node:{id}");
    let forged = [
        (channel.as_str(), format!("open\n{fake}\n1\nlobby\n127.0.0.1\naccount mallory\n")),
        (channel.as_str(), format!("text\n{fake}\n1\n{{\"type\":\"username\",\"name\":\"mallory\"}}")),
        ("duet:nodes", format!("beat\n{fake}")),
        (channel.as_str(), format!("duet1 1 {} {}\nbeat\n{fake}", duet::clock::now_ms(), "00".repeat(32))),
    ];
    for (channel, message) in &forged {
        assert_eq!(redis_cli(&redis, &["publish", channel, message]).trim(), "1", "the node hears it");
    }
    let until = Instant::now() + Duration::from_secs(2);
    while let Some(msg) = next(&mut ann.socket, until).await {
        assert!(!listed(&msg).contains(&"mallory".to_owned()), "a forged client joined: {msg}");
    }
    let page = common::http_get(metrics, "/metrics").await;
    let refused = page
        .lines()
        .find(|l| l.starts_with("duet_cluster_refused_messages_total{reason=\"unsigned\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert_eq!(refused, Some(4.0), "each forged message counted: {page}");
}

/// The count of `metric` (with its labels) on the metrics page at `at`.
async fn metric(at: SocketAddr, metric: &str) -> Option<f64> {
    let page = common::http_get(at, "/metrics").await;
    page.lines()
        .find(|l| l.starts_with(metric))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

#[tokio::test]
async fn ten_calls_across_nodes_sending_at_once_lose_no_candidate() {
    let redis = Redis::start();
    let state = scratch("burst");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("bound");
    let fast = ["--limit-messages", "1000000,1000000/s"];
    let one = Node::start_with(&redis, &state, "one.log", &[&fast[..], &["--no-metrics"]].concat());
    let listen = metrics.to_string();
    let two =
        Node::start_with(&redis, &state, "two.log", &[&fast[..], &["--metrics-listen", &listen]].concat());
    const EACH: usize = 2_000;
    let mut calls = Vec::new();
    for i in 0..10 {
        let mut caller = Person::sign_in(&one.url(), &format!("caller{i}")).await;
        let mut callee = Person::sign_in(&two.url(), &format!("callee{i}")).await;
        call(&mut caller, &mut callee).await;
        calls.push(tokio::spawn(async move {
            let target = callee.name.clone();
            let line = |n| format!("candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host", 1024 + n);
            let send = async {
                for n in 0..EACH {
                    if n % 20 == 0 {
                        // 2,000 a second from each caller: 20,000 a second between the nodes.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    let candidate = json!({"candidate": line(n), "sdpMid": "0", "sdpMLineIndex": 0});
                    caller
                        .send(json!({"type": "new-ice-candidate", "target": target, "candidate": candidate}))
                        .await;
                }
            };
            let heard = async {
                let mut heard = 0;
                while heard < EACH && callee.expect("new-ice-candidate").await.is_some() {
                    heard += 1;
                }
                heard
            };
            tokio::join!(send, heard).1
        }));
    }
    for call in calls {
        assert_eq!(call.await.expect("the call's task"), EACH, "every candidate crosses to the other node");
    }
    for reason in ["replayed", "stale", "unsigned"] {
        let refused =
            metric(metrics, &format!("duet_cluster_refused_messages_total{{reason=\"{reason}\"}}")).await;
        assert_eq!(refused.unwrap_or(0.0), 0.0, "no message between the nodes refused as {reason}");
    }
}
