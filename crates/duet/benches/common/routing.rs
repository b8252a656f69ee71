//! Routed call messages at a rising rate: pairs of signed-in clients in calls send each
//! other ICE candidates stamped with the send time; what arrives, how fast and how late.
//! Shared by the signaling benchmark (duet against a blind relay) and the cluster one
//! (two nodes against one).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The offered rates of the ladder, messages a second over all clients.
pub const RATES: [u64; 10] =
    [10_000, 25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000, 600_000, 800_000];

/// Client number `i` of the server at `addr`, from a loopback address of its own
/// (127.a.b.c: 250 of them per b, 62,500 per a, so a hundred thousand clients fit).
pub async fn connect(addr: SocketAddr, i: usize) -> Ws {
    let url = format!("ws://{addr}/ws");
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let source =
        std::net::Ipv4Addr::new(127, (i / 62_500) as u8, 1 + (i / 250 % 250) as u8, 1 + (i % 250) as u8);
    socket.bind((source, 0).into()).expect("bind a loopback source address");
    let stream = socket.connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), Some(config))
            .await
            .expect("the server accepts the WebSocket");
    ws
}

/// Signs client `i` in as `u<i>`, waits until every client sees them all, then pairs
/// client 2k with 2k+1 in an MDN-style call (duet relays call messages only between the
/// two sides of a call).
pub async fn sign_in_and_pair(clients: &mut [Ws]) {
    let count = clients.len();
    for (i, ws) in clients.iter_mut().enumerate() {
        ws.next().await.expect("id").expect("frame");
        let name = format!("u{i}");
        ws.send(Message::text(format!(r#"{{"type":"username","name":"{name}"}}"#))).await.expect("send");
    }
    // Wait until every client has seen the full list (and drain the lists).
    for ws in clients.iter_mut() {
        loop {
            let frame = ws.next().await.expect("open").expect("frame");
            let msg: serde_json::Value =
                serde_json::from_str(&frame.into_text().expect("text")).expect("JSON");
            // Count our own clients only: the list also holds service users (echo).
            let ours = |users: &Vec<serde_json::Value>| {
                users
                    .iter()
                    .filter_map(|u| u.as_str())
                    .filter(|u| u.strip_prefix('u').is_some_and(|n| n.parse::<usize>().is_ok()))
                    .count()
            };
            if msg["users"].as_array().is_some_and(|users| ours(users) == count) {
                break;
            }
        }
    }
    for pair in 0..count / 2 {
        let offer = format!(
            r#"{{"type":"video-offer","target":"u{}","sdp":{{"type":"offer","sdp":"v=0"}}}}"#,
            pair * 2 + 1
        );
        clients[pair * 2].send(Message::text(offer)).await.expect("send");
        let callee = &mut clients[pair * 2 + 1];
        loop {
            let frame = callee.next().await.expect("open").expect("frame");
            if frame.into_text().expect("text").contains("\"video-offer\"") {
                break;
            }
        }
    }
}

/// Rises through [`RATES`], printing each step under `label`; returns the highest rate
/// delivered in full, at pace, with p99 under 50 ms, and the p99 at the first step.
pub async fn ladder(mut clients: Vec<Ws>, label: &str, seconds: u64) -> (f64, f64) {
    let mut best = 0.0;
    let mut first_p99 = None;
    for rate in RATES {
        let (result, back) = run_rate(std::mem::take(&mut clients), rate, seconds).await;
        clients = back;
        result.print(label, &format!("offered {rate:>7}/s"));
        first_p99.get_or_insert(result.p99_ms);
        let kept_pace =
            result.sent_per_s >= 0.95 * rate as f64 && result.delivered_per_s >= 0.95 * rate as f64;
        if result.delivered_fraction >= 0.999 && result.p99_ms < 50.0 && kept_pace {
            best = result.delivered_per_s;
        } else {
            break;
        }
    }
    (best, first_p99.unwrap_or(0.0))
}

impl RateResult {
    pub fn print(&self, label: &str, what: &str) {
        println!(
            "{label:>24}: {what} sent {:>7.0}/s delivered {:>7.0}/s ({:>5.1}%)  p50 {:>6.2} ms  p99 {:>6.2} ms{}",
            self.sent_per_s,
            self.delivered_per_s,
            self.delivered_fraction * 100.0,
            self.p50_ms,
            self.p99_ms,
            if self.closed > 0 {
                format!("  ({} of {} clients closed by the server as too slow)", self.closed, self.clients)
            } else {
                String::new()
            },
        );
    }
}

pub struct RateResult {
    /// What the load generator really sent (below the offered rate when it is the limit).
    pub sent_per_s: f64,
    /// Clients the server closed meanwhile (too slow to read what they were sent), of all.
    pub closed: usize,
    pub clients: usize,
    pub delivered_per_s: f64,
    pub delivered_fraction: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Every client sends `rate / clients` messages per second to its partner for `seconds`,
/// then waits for stragglers; latencies come from a send timestamp in each message.
pub async fn run_rate(clients: Vec<Ws>, rate: u64, seconds: u64) -> (RateResult, Vec<Ws>) {
    let n = clients.len();
    let epoch = Instant::now();
    let tick = Duration::from_millis(10);
    let per_tick = rate as f64 * tick.as_secs_f64() / n as f64;
    let ticks = seconds * 100;
    let latencies = Arc::new(Mutex::new(Vec::<u32>::with_capacity((rate * seconds) as usize)));
    let (back_tx, mut back_rx) = mpsc::unbounded_channel();
    let mut expected_total = 0u64;
    let mut tasks = Vec::new();
    for (i, ws) in clients.into_iter().enumerate() {
        let partner = i ^ 1;
        let (mut sink, mut stream) = ws.split();
        let latencies = Arc::clone(&latencies);
        let expected = (per_tick * ticks as f64).floor() as u64;
        expected_total += expected;
        let back_tx = back_tx.clone();
        tasks.push(tokio::spawn(async move {
            let sender = async {
                let mut interval = tokio::time::interval(tick);
                // A sender that falls behind catches up in bursts; its real pace is
                // measured (offered vs sent) rather than assumed.
                let mut owed = 0.0;
                let mut sent = 0u64;
                let mut closed = false;
                // A client the server closed (too slow to read what it is sent: the load
                // generator itself falls behind at the top of the ladder) stops sending;
                // what it did not receive counts as lost.
                'sending: for _ in 0..ticks {
                    interval.tick().await;
                    owed += per_tick;
                    while owed >= 1.0 {
                        let t = epoch.elapsed().as_nanos() as u64;
                        let msg = format!(
                            r#"{{"type":"new-ice-candidate","target":"u{partner}","candidate":{{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 5000{} typ host","sdpMid":"0","sdpMLineIndex":0,"t":{t}}}}}"#,
                            i % 10
                        );
                        if sink.feed(Message::text(msg)).await.is_err() {
                            closed = true;
                            break 'sending;
                        }
                        sent += 1;
                        owed -= 1.0;
                    }
                    if sink.flush().await.is_err() {
                        closed = true;
                        break;
                    }
                }
                (sink, epoch.elapsed(), sent, closed)
            };
            let receiver = async {
                let mut got = 0u64;
                let mut last = Duration::ZERO;
                let mut local = Vec::with_capacity(expected as usize);
                while got < expected {
                    let frame = match tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
                        Ok(Some(Ok(frame))) => frame,
                        _ => break,
                    };
                    let Message::Text(text) = frame else { continue };
                    let Some(t) = text.rsplit("\"t\":").next().and_then(|s| s.trim_end_matches(['}', ' ']).parse::<u64>().ok())
                    else {
                        continue;
                    };
                    let now = epoch.elapsed().as_nanos() as u64;
                    local.push(((now.saturating_sub(t)) / 1000) as u32);
                    last = epoch.elapsed();
                    got += 1;
                }
                latencies.lock().expect("not poisoned").extend(local);
                (stream, last)
            };
            let ((sink, sent_at, sent, closed), (stream, last)) = tokio::join!(sender, receiver);
            let _ = back_tx.send((i, sink.reunite(stream).expect("same socket"), sent_at, last, sent, closed));
        }));
    }
    drop(back_tx);
    for task in tasks {
        task.await.expect("client task");
    }
    let mut back = Vec::new();
    let (mut sending, mut receiving) = (Duration::ZERO, Duration::ZERO);
    let (mut sent_total, mut closed) = (0u64, 0usize);
    while let Some((i, ws, sent_at, last, sent, was_closed)) = back_rx.recv().await {
        back.push((i, ws));
        sending = sending.max(sent_at);
        receiving = receiving.max(last);
        sent_total += sent;
        closed += usize::from(was_closed);
    }
    back.sort_by_key(|(i, _)| *i);
    let mut lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0)
            as f64
            / 1000.0
    };
    let delivered = lat.len() as f64;
    let result = RateResult {
        sent_per_s: sent_total as f64 / sending.as_secs_f64().max(1e-9),
        delivered_per_s: delivered / receiving.as_secs_f64().max(1e-9),
        // Of what was offered: what a closed client could not send is lost too.
        delivered_fraction: delivered / expected_total.max(1) as f64,
        closed,
        clients: n,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    };
    (result, back.into_iter().map(|(_, ws)| ws).collect())
}
