//! Signaling benchmark: server memory per idle WebSocket, routed messages per second
//! with latency, and call traffic while a chat flood runs, for duet and for a blind relay
//! measured side by side in the same run.
//!
//! ```text
//!  this process (load generator, tokio-tungstenite)        server process
//!  ────────────────────────────────────────────────        ──────────────
//!  100,000 idle connections ──────────────────────────►  duet  |  blind relay
//!  100 signed-in clients in 50 pairs, each sending
//!  new-ice-candidate to its partner at a set rate ────►  route ─► partner
//!  ◄─── latency = receive time − send time (in the message)
//!  the same at a call's pace (20/s each), while 10 more
//!  clients flood chat to the room ────────────────────►  duet (default limits) | duet (chat
//!                                                        limit raised) | blind relay
//! ```
//!
//! Every client connects from a loopback address of its own (127.a.b.c), as people do
//! from theirs, so duet runs with its default per-address limits. The rising-rate ladder
//! offers each connection up to 8,000 messages a second, far past the 50 a second a
//! connection may send by default, so for it duet's message limit is raised
//! (`--limit-messages`): the limiter still runs on every message.
//!
//! The blind relay is this same binary started with `--blind-relay`: a tokio-tungstenite
//! server with duet's WebSocket buffer sizes that forwards each frame verbatim to the
//! connection paired with the sender, parsing nothing. It is the floor: what any
//! WebSocket relay on this machine costs. Both servers run as separate processes, so
//! their resident memory is read from /proc without the load generator in it.
//!
//! Run: `cargo bench -p duet --bench signaling` (add `-- --quick` for a short run,
//! `-- --idle-only` for the memory figure alone; `DUET_BIN=path` measures another build).

mod common;

use common::routing::{self, Ws, run_rate};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const PAIRS: usize = 50;
/// Messages a second each client sends during the chat flood: a call's pace.
const CALL_PACE: u64 = 20;
/// Clients flooding chat to the room during the flood phase.
const FLOODERS: usize = 10;

#[derive(Clone, Copy, PartialEq)]
enum Server {
    /// duet as it ships.
    Duet,
    /// duet with the per-connection message limit above what the ladder offers.
    DuetMessagesRaised,
    /// duet with the chat limit raised: what a chat flood does without it.
    DuetChatRaised,
    BlindRelay,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Self::Duet => "duet",
            Self::DuetMessagesRaised => "duet",
            Self::DuetChatRaised => "duet, chat limit raised",
            Self::BlindRelay => "blind relay",
        }
    }

    fn is_duet(self) -> bool {
        self != Self::BlindRelay
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let idle_only = args.iter().any(|a| a == "--idle-only");
    if args.iter().any(|a| a == "--blind-relay") {
        return blind_relay::main();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let idle = common::open_files_for(if quick { 2_000 } else { 100_000 }, "connections");

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("# signaling benchmark ({} idle connections, {PAIRS} pairs)", idle);
        let mut memory = HashMap::new();
        for server in [Server::Duet, Server::BlindRelay] {
            let per_conn = idle_memory(server, idle).await;
            memory.insert(server.label(), per_conn);
        }
        println!(
            "idle memory per connection: duet {:.2} KiB, blind relay {:.2} KiB, ratio {:.2}",
            memory["duet"] / 1024.0,
            memory["blind relay"] / 1024.0,
            memory["duet"] / memory["blind relay"],
        );

        if idle_only {
            return;
        }
        let seconds = if quick { 1 } else { 3 };
        let mut best = HashMap::new();
        for server in [Server::DuetMessagesRaised, Server::BlindRelay] {
            best.insert(server.label(), routing(server, seconds).await);
        }
        println!(
            "highest loss-free routed messages/s (at pace, p99 < 50 ms): duet {:.0}, blind relay {:.0}, ratio {:.2}",
            best["duet"],
            best["blind relay"],
            best["duet"] / best["blind relay"],
        );
        let lines = if quick { 500 } else { 2_000 };
        println!(
            "# call traffic ({} clients at {CALL_PACE} messages/s each) while {FLOODERS} clients send {lines} chat lines each",
            PAIRS * 2
        );
        for server in [Server::Duet, Server::DuetChatRaised, Server::BlindRelay] {
            under_flood(server, seconds.max(2), lines).await;
        }
    });
}

/// A server process and the address it listens on.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    async fn start(server: Server) -> Self {
        let mut command = match server {
            Server::BlindRelay => {
                let mut c = Command::new(std::env::current_exe().expect("own path"));
                c.arg("--blind-relay");
                c
            }
            duet => {
                // DUET_BIN runs another build of duet (an A/B against an older one, say).
                let bin = std::env::var("DUET_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_duet").to_owned());
                let mut c = Command::new(bin);
                // No TURN: signaling alone is measured, and duet then gives WebSockets the
                // open files it would keep for relaying.
                c.args(["serve", "--listen", "127.0.0.1:0", "--no-turn"]).env("DUET_LOG", "warn");
                match duet {
                    Server::DuetMessagesRaised => c.args(["--limit-messages", "1000000,1000000/s"]),
                    Server::DuetChatRaised => c.args(["--limit-chat", "1000000,1000000/s"]),
                    _ => &mut c,
                };
                c
            }
        };
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the server");
        let stdout =
            tokio::process::ChildStdout::from_std(child.stdout.take().expect("piped")).expect("async stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next_line().await.expect("read stdout").expect("the server prints its address");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let rest = rest.trim().trim_start_matches("http://");
                break rest.parse().expect("an address");
            }
        };
        Self { child, addr }
    }

    fn rss_bytes(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line");
        kb * 1024.0
    }

    async fn connect(&self, i: usize) -> Ws {
        routing::connect(self.addr, i).await
    }
}

async fn idle_memory(server: Server, count: usize) -> f64 {
    let running = Running::start(server).await;
    // Warm up allocator pools with a few connections, then measure from there.
    let warm: Vec<Ws> = futures_util::future::join_all((0..50).map(|i| running.connect(200_000 + i))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = running.rss_bytes();
    let mut conns = Vec::with_capacity(count);
    for batch in 0..count.div_ceil(500) {
        let n = 500.min(count - batch * 500);
        let mut opened =
            futures_util::future::join_all((0..n).map(|i| running.connect(batch * 500 + i))).await;
        if server.is_duet() {
            // Each gets its `id` message: the server has set the connection up fully.
            for ws in &mut opened {
                ws.next().await.expect("id message").expect("valid frame");
            }
        }
        conns.extend(opened);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = running.rss_bytes();
    let per_conn = (after - before) / count as f64;
    println!(
        "{:>12}: {count} idle connections, server RSS {:.1} MiB -> {:.1} MiB, {:.2} KiB per connection",
        server.label(),
        before / 1048576.0,
        after / 1048576.0,
        per_conn / 1024.0
    );
    drop(conns);
    drop(warm);
    per_conn
}

/// Rises through the rates of [`routing::RATES`]; returns the highest rate delivered in full, at pace, with p99
/// under 50 ms.
async fn routing(server: Server, seconds: u64) -> f64 {
    let running = Running::start(server).await;
    let clients = paired_clients(&running, server).await;
    routing::ladder(clients, server.label(), seconds).await.0
}

/// Call traffic at a call's pace while [`FLOODERS`] more clients send `lines` chat lines
/// each, as fast as their sockets take them; prints what got through and how fast, and
/// how many chat lines each member had to receive.
async fn under_flood(server: Server, seconds: u64, lines: usize) {
    let running = Running::start(server).await;
    let clients = paired_clients(&running, server).await;
    let mut flooders = Vec::new();
    for f in 0..FLOODERS {
        let mut ws = running.connect(PAIRS * 2 + f).await;
        if server.is_duet() {
            ws.next().await.expect("id").expect("frame");
            ws.send(Message::text(format!(r#"{{"type":"username","name":"flood{f}"}}"#)))
                .await
                .expect("send");
        }
        flooders.push(ws);
    }
    let flood = tokio::spawn(async move {
        // The blind relay forwards to a pair partner: flooders pair among themselves
        // there, and the chat reaches nobody else; in duet it goes to the whole room.
        let sends = flooders.into_iter().map(|ws| async move {
            let (mut sink, mut stream) = ws.split();
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            for n in 0..lines {
                let line = format!(r#"{{"type":"message","text":"flood line {n} with some words in it"}}"#);
                if sink.feed(Message::text(line)).await.is_err() {
                    break;
                }
            }
            let _ = sink.flush().await;
            tokio::time::sleep(Duration::from_secs(seconds + 3)).await;
            drain.abort();
        });
        futures_util::future::join_all(sends).await;
    });
    let (result, _) = run_rate(clients, CALL_PACE * (PAIRS * 2) as u64, seconds).await;
    result.print(server.label(), "during the flood");
    let _ = flood.await;
}

/// [`PAIRS`] pairs of signed-in clients, each pair in a call (duet relays call messages
/// only between the two sides of a call).
async fn paired_clients(running: &Running, server: Server) -> Vec<Ws> {
    let mut clients = Vec::new();
    for i in 0..PAIRS * 2 {
        clients.push(running.connect(i).await);
    }
    if server.is_duet() {
        routing::sign_in_and_pair(&mut clients).await;
    }
    clients
}

/// The baseline: forwards every text frame to the paired connection, parses nothing.
mod blind_relay {
    use super::*;
    use tokio::net::TcpListener;

    pub fn main() {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            println!("blind relay listening on {}", listener.local_addr().expect("bound"));
            let peers: Arc<Mutex<Vec<Option<mpsc::Sender<Message>>>>> = Arc::default();
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                stream.set_nodelay(true).expect("set TCP_NODELAY");
                let peers = Arc::clone(&peers);
                tokio::spawn(async move {
                    let config = WebSocketConfig::default().read_buffer_size(512).max_message_size(Some(64 << 10));
                    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
                        return;
                    };
                    let (tx, mut rx) = mpsc::channel(256);
                    let me = {
                        let mut peers = peers.lock().expect("not poisoned");
                        peers.push(Some(tx));
                        peers.len() - 1
                    };
                    loop {
                        tokio::select! {
                            out = rx.recv() => match out {
                                Some(msg) => if ws.send(msg).await.is_err() { break },
                                None => break,
                            },
                            frame = ws.next() => match frame {
                                Some(Ok(msg @ Message::Text(_))) => {
                                    let partner = peers.lock().expect("not poisoned").get(me ^ 1).cloned().flatten();
                                    if let Some(partner) = partner {
                                        let _ = partner.try_send(msg);
                                    }
                                }
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                    peers.lock().expect("not poisoned")[me] = None;
                });
            }
        });
    }
}
