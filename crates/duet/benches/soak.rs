//! Soak benchmark: many clients signing in, calling, relaying call messages, chatting and
//! hanging up, round after round, for a bounded time on one duet node. Printed per time
//! window: rounds, messages, latency p50/p99 and the server's RSS; at the end, messages
//! lost and the last window against the first (the baseline of the same run: flat is
//! the aim).
//!
//! ```text
//!  pair p (room soak-p, its own loopback addresses):
//!   a ─username─►            ◄─username─ b
//!   a ─call b──► duet ─incoming-call─► b ─accept─► duet ─call-accepted─► a, b
//!   a ─K new-ice-candidate (send time inside)─► b ─each sent back─► a   (latency, loss)
//!   a ─message─► duet ─► a and b                                         (loss)
//!   a ─hang-up─► duet ─call-ended─► b ;  wait until the next round
//! ```
//!
//! Run: `cargo bench -p duet --bench soak` (10,000 clients for 10 minutes; needs root for
//! the open-file limit) or `-- --quick` (200 clients for 6 seconds).

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Call messages each side sends per round.
const CANDIDATES: usize = 10;
/// How long a message may take before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(10);

struct Plan {
    clients: usize,
    run_for: Duration,
    window: Duration,
    /// Each pair starts a round this often.
    round_every: Duration,
}

/// What every pair adds to, per time window.
#[derive(Default)]
struct Window {
    rounds: u64,
    sent: u64,
    delivered: u64,
    latencies_us: Vec<u32>,
    rss_kib: u64,
}

struct Tally {
    start: Instant,
    window: Duration,
    windows: Mutex<Vec<Window>>,
}

impl Tally {
    fn at(&self, now: Instant) -> usize {
        (now.duration_since(self.start).as_secs_f64() / self.window.as_secs_f64()) as usize
    }

    fn add(&self, f: impl FnOnce(&mut Window)) {
        let i = self.at(Instant::now());
        let mut windows = self.windows.lock().expect("tally");
        if windows.len() <= i {
            windows.resize_with(i + 1, Window::default);
        }
        f(&mut windows[i]);
    }

    fn micros(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = if quick {
        Plan {
            clients: 200,
            run_for: Duration::from_secs(6),
            window: Duration::from_secs(2),
            round_every: Duration::from_secs(1),
        }
    } else {
        Plan {
            clients: 10_000,
            run_for: Duration::from_secs(600),
            window: Duration::from_secs(60),
            round_every: Duration::from_secs(10),
        }
    };
    let clients = common::open_files_for(plan.clients, "clients");
    let plan = Plan { clients: clients - clients % 2, ..plan };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(soak(plan));
}

async fn soak(plan: Plan) {
    // No TURN and no echo: signaling alone; duet then gives WebSockets its open files.
    let (mut child, address) =
        common::start_duet(&[], &["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-echo"]);
    let addr: SocketAddr = address.parse().expect("an address");
    let pairs = plan.clients / 2;
    println!(
        "# soak: {} clients in {pairs} rooms of two, a round (call, {CANDIDATES} call messages each way, a chat \
         line, hang-up) every {:?} per room, for {:?}",
        plan.clients, plan.round_every, plan.run_for
    );
    let connecting = Instant::now();
    let mut rooms = Vec::with_capacity(pairs);
    for batch in (0..pairs).collect::<Vec<_>>().chunks(250) {
        rooms.extend(futures_util::future::join_all(batch.iter().map(|&p| Room::open(addr, p))).await);
    }
    let start_rss = rss_kib(&child);
    println!(
        "{} clients signed in in {:.1} s; server RSS {:.1} MiB",
        plan.clients,
        connecting.elapsed().as_secs_f64(),
        start_rss as f64 / 1024.0
    );
    let tally =
        Arc::new(Tally { start: Instant::now(), window: plan.window, windows: Mutex::new(Vec::new()) });
    let deadline = tally.start + plan.run_for;
    let mut tasks = Vec::new();
    for (p, room) in rooms.into_iter().enumerate() {
        let tally = Arc::clone(&tally);
        // Rooms start spread over the first interval, as people do.
        let offset = plan.round_every.mul_f64(p as f64 / pairs as f64);
        let every = plan.round_every;
        tasks.push(tokio::spawn(async move { room.run(tally, offset, every, deadline).await }));
    }
    // The server's RSS once per window, while the rooms run.
    let sampler = {
        let pid = child.id();
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            while Instant::now() < deadline {
                tokio::time::sleep(tally.window / 2).await;
                let rss = rss_of(pid);
                tally.add(|w| w.rss_kib = w.rss_kib.max(rss));
            }
        })
    };
    for task in tasks {
        task.await.expect("a room's task");
    }
    sampler.abort();
    let end_rss = rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();

    let mut windows = std::mem::take(&mut *tally.windows.lock().expect("tally"));
    // A round begun just before the end finishes after it: counted in the last window.
    let full = ((plan.run_for.as_secs_f64() / plan.window.as_secs_f64()).round() as usize).max(1);
    windows.resize_with(windows.len().max(full), Window::default);
    for late in windows.split_off(full) {
        let last = windows.last_mut().expect("at least one window");
        last.rounds += late.rounds;
        last.sent += late.sent;
        last.delivered += late.delivered;
        last.latencies_us.extend(late.latencies_us);
        last.rss_kib = last.rss_kib.max(late.rss_kib);
    }
    let mut sent = 0;
    let mut delivered = 0;
    let mut summaries = Vec::new();
    for (i, mut w) in windows.into_iter().enumerate() {
        sent += w.sent;
        delivered += w.delivered;
        w.latencies_us.sort_unstable();
        let at = |q: f64| {
            let n = w.latencies_us.len();
            w.latencies_us.get(((n as f64 * q) as usize).min(n.saturating_sub(1))).copied().unwrap_or(0)
        };
        let (p50, p99) = (at(0.5), at(0.99));
        println!(
            "window {i:>3} ({:>4.0} s): {:>6} rounds, {:>8} messages sent, {:>8} delivered, p50 {:>6.2} ms, p99 \
             {:>6.2} ms, server RSS {:>6.1} MiB",
            (i as f64 + 1.0) * plan.window.as_secs_f64(),
            w.rounds,
            w.sent,
            w.delivered,
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
            w.rss_kib as f64 / 1024.0
        );
        summaries.push((p99, w.rss_kib));
    }
    let (first, last) = (summaries[0], summaries[summaries.len() - 1]);
    println!(
        "soak: {sent} messages sent, {} lost ({:.4}%); server RSS {:.1} MiB signed in and idle, {:.1} MiB in the \
         first window, {:.1} MiB in the last (ratio {:.2}), {:.1} MiB at the end; p99 first window {:.2} ms, last \
         {:.2} ms (ratio {:.2})",
        sent.saturating_sub(delivered),
        sent.saturating_sub(delivered) as f64 * 100.0 / sent.max(1) as f64,
        start_rss as f64 / 1024.0,
        first.1 as f64 / 1024.0,
        last.1 as f64 / 1024.0,
        last.1 as f64 / first.1.max(1) as f64,
        end_rss as f64 / 1024.0,
        first.0 as f64 / 1000.0,
        last.0 as f64 / 1000.0,
        last.0 as f64 / first.0.max(1) as f64,
    );
}

fn rss_kib(child: &Child) -> u64 {
    rss_of(child.id())
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(str::to_owned))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Two people in a room of their own.
struct Room {
    a: Ws,
    b: Ws,
}

impl Room {
    /// Connects `a` and `b` of room `p` (each from a loopback address of its own) and
    /// signs them in; returns once `a` sees `b`.
    async fn open(addr: SocketAddr, p: usize) -> Self {
        let mut a = connect(addr, p, 0).await;
        let mut b = connect(addr, p, 1).await;
        for (ws, name) in [(&mut a, "a"), (&mut b, "b")] {
            send(ws, json!({"type": "username", "name": name, "ringing": true})).await;
        }
        until(&mut a, |m| m["type"] == "userlist" && m["users"].as_array().is_some_and(|u| u.len() == 2))
            .await
            .expect("a sees b");
        Self { a, b }
    }

    /// Rounds until `deadline`, the first after `offset`, then one every `every`.
    async fn run(mut self, tally: Arc<Tally>, offset: Duration, every: Duration, deadline: Instant) {
        let mut next = Instant::now() + offset;
        loop {
            tokio::time::sleep_until(next.into()).await;
            if Instant::now() >= deadline {
                return;
            }
            self.round(&tally).await;
            next += every;
        }
    }

    /// One round; what was sent and what arrived go into `tally`.
    async fn round(&mut self, tally: &Tally) {
        let (a, b) = (&mut self.a, &mut self.b);
        let mut sent = 0;
        let mut delivered = 0;
        let mut latencies = Vec::with_capacity(CANDIDATES * 2);
        // Ring, pick up.
        send(a, json!({"type": "call", "target": "b"})).await;
        sent += 1;
        let Some(ring) = until(b, |m| m["type"] == "incoming-call").await else {
            return tally.add(|w| w.sent += sent);
        };
        delivered += 1;
        send(b, json!({"type": "accept", "callId": ring["callId"]})).await;
        sent += 1;
        if until(a, |m| m["type"] == "call-accepted").await.is_some() {
            delivered += 1;
        }
        // Call messages both ways, each carrying its send time.
        for seq in 0..CANDIDATES {
            let t = tally.micros();
            send(a, json!({"type": "new-ice-candidate", "target": "b", "candidate": {"seq": seq, "t": t}}))
                .await;
        }
        sent += CANDIDATES as u64;
        for _ in 0..CANDIDATES {
            let Some(m) = until(b, |m| m["type"] == "new-ice-candidate").await else { break };
            delivered += 1;
            latencies.push(tally.micros().saturating_sub(m["candidate"]["t"].as_u64().unwrap_or(0)) as u32);
            let back = json!({"seq": m["candidate"]["seq"], "t": tally.micros()});
            send(b, json!({"type": "new-ice-candidate", "target": "a", "candidate": back})).await;
            sent += 1;
        }
        for _ in 0..CANDIDATES {
            let Some(m) = until(a, |m| m["type"] == "new-ice-candidate").await else { break };
            delivered += 1;
            latencies.push(tally.micros().saturating_sub(m["candidate"]["t"].as_u64().unwrap_or(0)) as u32);
        }
        // A chat line reaches both (the sender hears its own).
        send(a, json!({"type": "message", "text": "still here"})).await;
        sent += 2;
        for ws in [&mut *a, &mut *b] {
            if until(ws, |m| m["type"] == "message").await.is_some() {
                delivered += 1;
            }
        }
        // Hang up; the other side is told.
        send(a, json!({"type": "hang-up", "target": "b"})).await;
        sent += 1;
        if until(b, |m| m["type"] == "call-ended" || m["type"] == "hang-up").await.is_some() {
            delivered += 1;
        }
        tally.add(|w| {
            w.rounds += 1;
            w.sent += sent;
            w.delivered += delivered;
            w.latencies_us.extend(latencies);
        });
    }
}

/// Client `side` of room `p`, from loopback address 127.a.b.c of its own.
async fn connect(addr: SocketAddr, p: usize, side: usize) -> Ws {
    let i = p * 2 + side;
    let source =
        std::net::Ipv4Addr::new(127, 1 + (i / 62_500) as u8, 1 + (i / 250 % 250) as u8, 1 + (i % 250) as u8);
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind((source, 0).into()).expect("bind a loopback source address");
    let stream = socket.connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let url = format!("ws://{addr}/ws?room=soak-{p}");
    let (ws, _) =
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.expect("a WebSocket");
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.expect("send");
}

/// The next message that `wanted` picks, skipping the rest (user lists, ringing...);
/// `None` if it does not come within [`PATIENCE`].
async fn until(ws: &mut Ws, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
    tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(frame)) = ws.next().await {
            let Ok(text) = frame.into_text() else { continue };
            let Ok(msg) = serde_json::from_str::<Value>(&text) else { continue };
            if wanted(&msg) {
                return Some(msg);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
