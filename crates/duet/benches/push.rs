//! Push benchmark: what ringing by push costs.
//!
//! ```text
//!  CPU per push: duet_push's Push::request (ECDH, HKDF, AES-GCM, an ES256 VAPID token)
//!                against npm's web-push (generateRequestDetails), N each, same run
//!  ringing at once: ACCOUNTS accounts with one device each at npm's web-push-testing (a
//!                push service that checks VAPID and decrypts); duet's Pusher rings them
//!                all at once; from ring to the service's 201, p50 / p99, against one
//!                account rung alone (the baseline)
//! ```
//!
//! Run: `cargo bench -p duet --bench push` (`-- --quick` for fewer). Needs node and e2e's
//! packages (the test command installs them).

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet::push::{Outcome, PushConfig, Pusher};
use duet::store::{NewAccount, NewPushDevice, Store};
use duet_push::{EndpointRules, Push, Subscription, Urgency, Vapid};
use serde_json::{Value, json};

struct Size {
    pushes: usize,
    accounts: usize,
}

const FULL: Size = Size { pushes: 5_000, accounts: 1_000 };
const QUICK: Size = Size { pushes: 300, accounts: 100 };
const E2E: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e");

fn main() {
    let size = if std::env::args().any(|a| a == "--quick") { QUICK } else { FULL };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (service, origin) = push_service().await;
        cpu_per_push(&origin, size.pushes).await;
        ringing_at_once(&origin, size.accounts).await;
        drop(service);
    });
}

/// npm's web-push-testing on 127.0.0.1: the child (stopped when dropped) and its origin.
async fn push_service() -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new("node")
        .arg(format!("{E2E}/bin/push-service.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs e2e/bin/push-service.mjs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    loop {
        let line = lines.next_line().await.expect("read").expect("the service says where it listens");
        if let Some(origin) = line.strip_prefix("listening on ") {
            return (child, origin.to_owned());
        }
    }
}

/// POSTs `body` to the push service; its JSON answer.
async fn post(origin: &str, path: &str, body: Value) -> Value {
    let addr: std::net::SocketAddr = origin.trim_start_matches("http://").parse().expect("an address");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.to_string().len()
    );
    let answer = common::http::exchange(&addr.to_string(), request).await.unwrap_or_default();
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// A device subscribed at the service for `key`: (endpoint, p256dh, auth).
async fn subscribe(origin: &str, key: &str) -> (String, String, String) {
    let answer =
        post(origin, "/subscribe", json!({"userVisibleOnly": "true", "applicationServerKey": key})).await;
    let data = &answer["data"];
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    (text(&data["endpoint"]), text(&data["keys"]["p256dh"]), text(&data["keys"]["auth"]))
}

async fn cpu_per_push(origin: &str, n: usize) {
    let vapid = Vapid::from_secret(&[9; 32], "mailto:bench@example.org").expect("a key");
    let (endpoint, p256dh, auth) = subscribe(origin, &vapid.public_key()).await;
    let rules = EndpointRules { dangerous_allowed: vec![origin.to_owned()] };
    let sub = Subscription::new(&endpoint, &p256dh, &auth, &rules).expect("a subscription");
    let payload =
        json!({"type": "call", "call": 7, "from": "ann", "verified": true, "voice": false, "room": ""});
    let push = Push::new(
        payload.to_string().into_bytes(),
        Duration::from_secs(30),
        Urgency::High,
        Some("call-7".into()),
    );
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(push.request(&sub, &vapid).expect("built"));
    }
    let ours = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let script = format!(
        r#"const webpush = require("{E2E}/node_modules/web-push");
        const keys = webpush.generateVAPIDKeys();
        const sub = {{ endpoint: {endpoint:?}, keys: {{ p256dh: {p256dh:?}, auth: {auth:?} }} }};
        const payload = {payload:?};
        const options = {{ vapidDetails: {{ subject: "mailto:bench@example.org", publicKey: keys.publicKey, privateKey: keys.privateKey }}, TTL: 30, urgency: "high", topic: "call-7" }};
        const n = {n};
        const t = process.hrtime.bigint();
        for (let i = 0; i < n; i++) webpush.generateRequestDetails(sub, payload, options);
        console.log(Number(process.hrtime.bigint() - t) / 1000 / n);"#,
        payload = payload.to_string()
    );
    let output = Command::new("node").args(["-e", &script]).output().expect("node runs web-push");
    let theirs: f64 = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(f64::NAN);
    println!("# CPU per push (encrypt + sign), {n} pushes each, one core");
    println!("  duet (duet-push on web-push-native)   {ours:8.1} µs per push");
    println!("  npm web-push 3.6.7 (baseline)         {theirs:8.1} µs per push   ({:.2}x)", theirs / ours);
}

async fn ringing_at_once(origin: &str, accounts: usize) {
    let state = std::env::temp_dir().join(format!("duet-bench-push-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let store = Store::open(&state).expect("a store");
    let config = PushConfig {
        rules: EndpointRules { dangerous_allowed: vec![origin.to_owned()] },
        at_once: accounts * 2,
        ..PushConfig::default()
    };
    let tasks = tokio_util::task::TaskTracker::new();
    let pusher =
        Pusher::start(store.clone(), config, Arc::new(Default::default()), tasks).await.expect("a pusher");
    for n in 0..accounts {
        let name = format!("user{n}");
        let mut id = [0x5a; 16];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let account =
            NewAccount { name: name.clone(), hash: "not a real hash".into(), admin: false, id, now_ms: 0 };
        store.backend().add_account(account).expect("stored").expect("added");
        let (endpoint, p256dh, auth) = subscribe(origin, &pusher.public_key()).await;
        let device = NewPushDevice { endpoint, p256dh, auth, device: "bench".into() };
        store.backend().add_push_device(&name, &device, 0, 10).expect("stored").expect("kept");
    }
    let ring = |account: String| {
        let pusher = Arc::clone(&pusher);
        async move {
            let push =
                Push::new(br#"{"type":"call"}"#.to_vec(), Duration::from_secs(30), Urgency::High, None);
            let started = Instant::now();
            let outcomes =
                pusher.ring_and_wait(account, push, Instant::now() + Duration::from_secs(30)).await;
            assert_eq!(outcomes, [Outcome::Delivered]);
            started.elapsed()
        }
    };
    let mut alone = Vec::new();
    for _ in 0..20 {
        alone.push(ring("user0".to_owned()).await);
    }
    let started = Instant::now();
    let all: Vec<_> = (0..accounts).map(|n| tokio::spawn(ring(format!("user{n}")))).collect();
    let mut together = Vec::new();
    for one in all {
        together.push(one.await.expect("rung"));
    }
    let wall = started.elapsed();
    println!("# ringing by push: from ring to the push service's 201 (web-push-testing on loopback)");
    report("one account alone (baseline)", &mut alone);
    report(&format!("{accounts} accounts at once"), &mut together);
    println!("  all {accounts} delivered in {:.0} ms", wall.as_secs_f64() * 1e3);
    let _ = std::fs::remove_dir_all(&state);
}

fn report(label: &str, latencies: &mut [Duration]) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!("  {label:<32} p50 {:7.2} ms   p99 {:7.2} ms", at(0.5), at(0.99));
}
