//! TURN benchmark: duet's TURN server against Debian's coturn and against zero-protocol
//! UDP relays (the path's physical limit), measured side by side in one run.
//!
//! ```text
//!  load generator (this process)                 server process              echo peer
//!  N clients, one UDP socket each ──ChannelData──► duet | coturn | zero relay ──► (this
//!       ▲  closed loop, W packets in flight                                      process)
//!       └─────────────────ChannelData────────────── relay ◄──────── echo ◄──────────┘
//! ```
//!
//! Reported per server: round trips/s through the relay (each is two relayed packets),
//! loss, added latency p50/p99, and the server's CPU time per relayed packet read from
//! /proc/PID/stat over the loaded window; then allocations/s from four parallel clients
//! and server CPU per allocation. The zero relays forward raw UDP without any TURN
//! processing: "zero relay" with one receive and one send per datagram (a thread per
//! upstream socket), "zero batched" on duet's own batched I/O (recvmmsg, GSO, one
//! thread), so duet against it is the cost of the TURN protocol itself. duet runs with
//! one UDP thread and with two (SO_REUSEPORT listeners, a server per thread), the load
//! from 32 client sockets spread over them by the kernel. Both TURN servers run with
//! loopback peers allowed, ephemeral
//! ("TURN REST") credentials and no TLS.
//!
//! Run: `cargo bench -p duet --bench turn` (needs `turnserver`: Debian's coturn package;
//! add `-- --quick` for a short run).

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duet::turn::batch::BatchSocket;
use duet_turn::auth::{ephemeral_password, ephemeral_username, long_term_key};
use duet_turn::stun::{Class, Message, MessageBuilder, Method, TransactionId, attr};
use tokio::net::UdpSocket;

const SECRET: &str = "benchmark shared secret 0123456789";
const REALM: &str = "duet";
const CHANNEL: u16 = 0x4000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// duet with one UDP thread (`--turn-threads 1`), and with two.
    Duet1,
    Duet2,
    Coturn,
    ZeroRelay,
    ZeroBatched,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Duet1 => "duet 1 thread",
            Kind::Duet2 => "duet 2 threads",
            Kind::Coturn => "coturn",
            Kind::ZeroRelay => "zero relay",
            Kind::ZeroBatched => "zero batched",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--zero-relay") {
        let port: u16 = args[i + 1].parse().expect("a port");
        let echo: SocketAddr = args[i + 2].parse().expect("the echo peer's address");
        return zero_relay::run(port, echo);
    }
    if let Some(i) = args.iter().position(|a| a == "--zero-batched") {
        let port: u16 = args[i + 1].parse().expect("a port");
        let echo: SocketAddr = args[i + 2].parse().expect("the echo peer's address");
        return zero_relay::run_batched(port, echo);
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only duet` (or coturn, zero) runs one server's relay load, or with
    // `--allocations` its allocations: for a profiler.
    let only = args.iter().position(|a| a == "--only").map(|i| args[i + 1].clone());
    let only_allocations = args.iter().any(|a| a == "--allocations");
    let seconds = if quick { 1.0 } else { 3.0 };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let echo = EchoPeer::start();
        println!("# TURN benchmark: relayed round trips through each server to a UDP echo peer on loopback");
        let mut summary: HashMap<(&str, usize), (f64, f64)> = HashMap::new();
        for size in [160usize, 1200] {
            for kind in [Kind::ZeroRelay, Kind::ZeroBatched, Kind::Duet1, Kind::Duet2, Kind::Coturn] {
                if only.as_deref().is_some_and(|o| !kind.label().starts_with(o) || only_allocations) {
                    continue;
                }
                let server = Server::start(kind, echo.addr).await;
                let best = relay_load(&server, echo.addr, size, seconds).await;
                summary.insert((kind.label(), size), best);
            }
        }
        let allocations = if quick { 200 } else { 1000 };
        if let Some(only) = only {
            if only_allocations {
                let kind = [Kind::Duet1, Kind::Coturn].into_iter().find(|k| k.label().starts_with(&only));
                let server = Server::start(kind.expect("duet or coturn"), echo.addr).await;
                allocation_rate(&server, allocations).await;
            }
            return echo.stop();
        }
        println!("\n# summary (best loss-free window)");
        for size in [160usize, 1200] {
            let (duet_rate, duet_cpu) = summary[&("duet 1 thread", size)];
            let (duet2_rate, duet2_cpu) = summary[&("duet 2 threads", size)];
            let (coturn_rate, coturn_cpu) = summary[&("coturn", size)];
            let (zero_rate, zero_cpu) = summary[&("zero relay", size)];
            let (batched_rate, batched_cpu) = summary[&("zero batched", size)];
            println!(
                "{size:>5} B: round trips/s duet {duet_rate:.0} (2 threads {duet2_rate:.0}, ratio {:.2}), coturn \
                 {coturn_rate:.0}, zero relay {zero_rate:.0}, zero batched {batched_rate:.0} (duet/coturn {:.2}, \
                 duet/zero {:.2}, duet/zero batched {:.2}); server CPU per relayed packet duet {duet_cpu:.2} us \
                 (2 threads {duet2_cpu:.2} us), coturn {coturn_cpu:.2} us, zero relay {zero_cpu:.2} us, zero \
                 batched {batched_cpu:.2} us (duet/coturn {:.2}, duet/zero batched {:.2})",
                duet2_rate / duet_rate,
                duet_rate / coturn_rate,
                duet_rate / zero_rate,
                duet_rate / batched_rate,
                duet_cpu / coturn_cpu,
                duet_cpu / batched_cpu,
            );
        }
        let mut alloc = HashMap::new();
        for kind in [Kind::Duet1, Kind::Coturn] {
            let server = Server::start(kind, echo.addr).await;
            alloc.insert(kind.label(), allocation_rate(&server, allocations).await);
        }
        let (d, c) = (alloc["duet 1 thread"], alloc["coturn"]);
        println!(
            "allocations: duet {:.0}/s at {:.3} ms CPU each, coturn {:.0}/s at {:.3} ms CPU each \
             (rate ratio {:.2}, CPU ratio {:.2})",
            d.0,
            d.1,
            c.0,
            c.1,
            d.0 / c.0,
            d.1 / c.1
        );
        echo.stop();
    });
}

/// A running server process.
struct Server {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    _log: Option<tempfile_path::TempPath>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempfile_path {
    /// A file removed on drop.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn free_port() -> u16 {
    // UDP and TCP both free, for servers that listen on both.
    loop {
        let udp = StdUdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("bound").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Server {
    async fn start(kind: Kind, echo: SocketAddr) -> Self {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (child, log) = match kind {
            Kind::Duet1 | Kind::Duet2 => {
                let turn = addr.to_string();
                let threads = if kind == Kind::Duet1 { "1" } else { "2" };
                let args =
                    ["serve", "--listen", "127.0.0.1:0", "--turn-listen", &turn, "--turn-threads", threads];
                let (child, _) = common::start_duet(
                    &[],
                    // Every client here comes from 127.0.0.1: the per-address cap is raised
                    // past what the benchmark allocates.
                    &[
                        &args[..],
                        &["--turn-secret", SECRET, "--turn-relay-ports", "50000-59999"],
                        &["--turn-allocations-per-address", "2500"],
                    ]
                    .concat(),
                );
                (child, None)
            }
            Kind::Coturn => {
                let log =
                    std::env::temp_dir().join(format!("duet-bench-coturn-{}-{port}.log", std::process::id()));
                let _ = std::fs::remove_file(&log);
                let child = Command::new("/usr/bin/turnserver")
                    .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--allow-loopback-peers"])
                    .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
                    .arg(format!("--listening-port={port}"))
                    .args(["--min-port", "50000", "--max-port", "59999", "--relay-threads", "2"])
                    .args([
                        "--use-auth-secret",
                        &format!("--static-auth-secret={SECRET}"),
                        &format!("--realm={REALM}"),
                    ])
                    .arg(format!("--log-file={}", log.display()))
                    .args(["--simple-log", "--no-stdout-log"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start turnserver (Debian's coturn package)");
                wait_for_binding(addr);
                (child, Some(tempfile_path::TempPath(log)))
            }
            Kind::ZeroRelay | Kind::ZeroBatched => {
                let flag = if kind == Kind::ZeroRelay { "--zero-relay" } else { "--zero-batched" };
                let child = Command::new(std::env::current_exe().expect("own path"))
                    .args([flag, &port.to_string(), &echo.to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start the zero relay");
                std::thread::sleep(Duration::from_millis(300));
                (child, None)
            }
        };
        Self { kind, child, addr, _log: log }
    }

    /// User plus system CPU time of the server process, in microseconds.
    fn cpu_us(&self) -> f64 {
        common::cpu_us(self.child.id())
    }

    /// User and system CPU time of the server process, in microseconds.
    fn cpu_split_us(&self) -> (f64, f64) {
        common::cpu_split_us(self.child.id())
    }
}

/// Waits until `addr` answers a STUN Binding request (coturn's log does not reliably say
/// when its listener is up).
fn wait_for_binding(addr: SocketAddr) {
    let socket = StdUdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut request = Vec::new();
    MessageBuilder::new(&mut request, Method::BINDING, Class::Request, TransactionId([7; 12]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    loop {
        assert!(Instant::now() < deadline, "{addr} does not answer STUN");
        let _ = socket.send_to(&request, addr);
        if socket.recv_from(&mut buf).is_ok() {
            return;
        }
    }
}

/// A UDP echo peer on its own thread.
struct EchoPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl EchoPeer {
    fn start() -> Self {
        let socket = StdUdpSocket::bind("127.0.0.1:0").expect("bind the echo peer");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let addr = socket.local_addr().expect("bound");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        Self { addr, stop }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A TURN client with an allocation and a channel to the echo peer (or, for the zero
/// relay, a plain socket).
struct Client {
    socket: UdpSocket,
    framed: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

async fn transact(socket: &UdpSocket, request: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    for _ in 0..5 {
        socket.send(request).await.expect("send");
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await {
            buf.truncate(n);
            return buf;
        }
    }
    panic!("no answer from the TURN server");
}

struct Auth {
    username: String,
    key: [u8; 16],
    nonce: String,
}

async fn request(
    socket: &UdpSocket,
    method: Method,
    auth: Option<&Auth>,
    tid: u8,
    fill: impl Fn(&mut MessageBuilder<'_>),
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut id = [tid; 12];
    id[..8].copy_from_slice(&rand_u64().to_be_bytes());
    let mut b = MessageBuilder::new(&mut buf, method, Class::Request, TransactionId(id));
    fill(&mut b);
    if let Some(auth) = auth {
        b.add(attr::USERNAME, auth.username.as_bytes())
            .add(attr::REALM, REALM.as_bytes())
            .add(attr::NONCE, auth.nonce.as_bytes())
            .add_integrity(&auth.key);
    }
    b.add_fingerprint();
    transact(socket, &buf).await
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

fn error_code(msg: &Message<'_>) -> Option<u16> {
    msg.get(attr::ERROR_CODE).map(|v| u16::from(v[2]) * 100 + u16::from(v[3]))
}

/// Allocate (401 round trip included); returns the auth for later requests, or the
/// error code of the first answer when it is not the expected 401.
async fn allocate(socket: &UdpSocket) -> Result<Auth, Option<u16>> {
    let transport = |b: &mut MessageBuilder<'_>| {
        b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    };
    let first = request(socket, Method::ALLOCATE, None, 1, transport).await;
    let first = Message::parse(&first).expect("STUN");
    if error_code(&first) != Some(401) {
        return Err(error_code(&first));
    }
    // One user per allocation: duet's per-user quota (10) is not what is measured here.
    static NEXT_USER: AtomicU64 = AtomicU64::new(0);
    let user = format!("bench{}", NEXT_USER.fetch_add(1, Ordering::Relaxed));
    let username = ephemeral_username(unix_now() + 3600, &user);
    let password = ephemeral_password(SECRET.as_bytes(), &username);
    let key = long_term_key(&username, REALM, &password);
    let nonce = first.text(attr::NONCE).expect("a nonce").to_owned();
    let auth = Auth { username, key, nonce };
    let reply = request(socket, Method::ALLOCATE, Some(&auth), 2, transport).await;
    let reply = Message::parse(&reply).expect("STUN");
    assert_eq!(reply.class(), Class::Success, "allocate failed: {:?}", error_code(&reply));
    Ok(auth)
}

impl Client {
    async fn connect(server: &Server, peer: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        socket.connect(server.addr).await.expect("connect");
        if matches!(server.kind, Kind::ZeroRelay | Kind::ZeroBatched) {
            return Self { socket, framed: false };
        }
        let auth = allocate(&socket).await.unwrap_or_else(|code| panic!("allocate answered {code:?}"));
        let reply = request(&socket, Method::CHANNEL_BIND, Some(&auth), 3, |b| {
            b.add(attr::CHANNEL_NUMBER, &[(CHANNEL >> 8) as u8, CHANNEL as u8, 0, 0])
                .add_xor_address(attr::XOR_PEER_ADDRESS, peer);
        })
        .await;
        let reply = Message::parse(&reply).expect("STUN");
        assert_eq!(reply.class(), Class::Success, "channel bind failed: {:?}", error_code(&reply));
        Self { socket, framed: true }
    }
}

struct Window {
    round_trips_per_s: f64,
    loss: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_packet: f64,
    /// The part of the server's CPU spent in user space (the rest is the kernel).
    user_share: f64,
}

/// Runs the closed loop at several windows; returns the best loss-free (rate, CPU/packet).
async fn relay_load(server: &Server, peer: SocketAddr, size: usize, seconds: f64) -> (f64, f64) {
    const CLIENTS: usize = 32;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Arc::new(Client::connect(server, peer).await));
    }
    let mut best = (0.0, f64::NAN);
    for window in [1usize, 4, 16] {
        let w = run_window(server, &clients, size, window, seconds).await;
        println!(
            "{:>12} {size:>5} B window {:>3}: {:>8.0} round trips/s  loss {:>6.3}%  p50 {:>6.0} us  p99 {:>6.0} us  \
             server CPU {:>5.2} us/relayed packet ({:>3.0}% user)",
            server.kind.label(),
            window * CLIENTS,
            w.round_trips_per_s,
            w.loss * 100.0,
            w.p50_us,
            w.p99_us,
            w.cpu_us_per_packet,
            w.user_share * 100.0,
        );
        if w.loss < 0.001 && w.round_trips_per_s > best.0 {
            best = (w.round_trips_per_s, w.cpu_us_per_packet);
        }
    }
    best
}

async fn run_window(
    server: &Server,
    clients: &[Arc<Client>],
    size: usize,
    window: usize,
    seconds: f64,
) -> Window {
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs_f64(seconds);
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let (user_before, system_before) = server.cpu_split_us();
    let mut tasks = Vec::new();
    for client in clients {
        let client = Arc::clone(client);
        let (sent, received) = (Arc::clone(&sent), Arc::clone(&received));
        tasks.push(tokio::spawn(async move {
            let header = if client.framed { 4 } else { 0 };
            let mut packet = vec![0u8; header + size];
            if client.framed {
                packet[..2].copy_from_slice(&CHANNEL.to_be_bytes());
                packet[2..4].copy_from_slice(&(size as u16).to_be_bytes());
            }
            let mut latencies = Vec::with_capacity(100_000);
            let send = |packet: &mut Vec<u8>| {
                let t = epoch.elapsed().as_nanos() as u64;
                packet[header..header + 8].copy_from_slice(&t.to_be_bytes());
            };
            for _ in 0..window {
                send(&mut packet);
                let _ = client.socket.send(&packet).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            let mut buf = vec![0u8; 4096];
            while Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_millis(50), client.socket.recv(&mut buf)).await {
                    Ok(Ok(n)) if n >= header + 8 => {
                        let t = u64::from_be_bytes(buf[header..header + 8].try_into().expect("8 bytes"));
                        latencies.push((epoch.elapsed().as_nanos() as u64).saturating_sub(t) / 1000);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => continue,
                    Err(_) => {} // a loss: refill the window below
                }
                send(&mut packet);
                let _ = client.socket.send(&packet).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            // Collect stragglers so the next window starts clean.
            let drain_until = Instant::now() + Duration::from_millis(200);
            while let Ok(Ok(n)) =
                tokio::time::timeout_at(drain_until.into(), client.socket.recv(&mut buf)).await
            {
                if n >= header + 8 {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let (user_after, system_after) = server.cpu_split_us();
    let (user, system) = (user_after - user_before, system_after - system_before);
    let cpu = user + system;
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get((latencies.len() as f64 * p) as usize).copied().unwrap_or(0) as f64;
    let (sent, received) = (sent.load(Ordering::Relaxed) as f64, received.load(Ordering::Relaxed) as f64);
    Window {
        round_trips_per_s: latencies.len() as f64 / seconds,
        loss: ((sent - received) / sent.max(1.0)).max(0.0),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        // Every round trip is two relayed packets: client to peer, and peer to client.
        cpu_us_per_packet: cpu / (2.0 * received.max(1.0)),
        user_share: user / cpu.max(1.0),
    }
}

/// Allocations per second from four parallel clients, each allocation on a fresh socket
/// (a fresh five-tuple), then released with Refresh(LIFETIME=0); and server CPU each.
async fn allocation_rate(server: &Server, total: usize) -> (f64, f64) {
    let cpu_before = server.cpu_us();
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mismatches = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let addr = server.addr;
        let mismatches = Arc::clone(&mismatches);
        tasks.push(tokio::spawn(async move {
            // Sockets stay open until the end: a reused source port would meet the
            // previous allocation's five-tuple, which coturn keeps for a while (437).
            let mut sockets = Vec::new();
            for _ in 0..total / 4 {
                let (socket, auth) = loop {
                    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
                    socket.connect(addr).await.expect("connect");
                    match allocate(&socket).await {
                        Ok(auth) => break (socket, auth),
                        // Now and then coturn answers a fresh source port's first Allocate
                        // with 437 (mismatch): counted, and tried again from another port.
                        Err(Some(437)) => mismatches.fetch_add(1, Ordering::Relaxed),
                        Err(code) => panic!("allocate answered {code:?}"),
                    };
                };
                let reply = request(&socket, Method::REFRESH, Some(&auth), 4, |b| {
                    b.add_u32(attr::LIFETIME, 0);
                })
                .await;
                assert_eq!(Message::parse(&reply).expect("STUN").class(), Class::Success);
                sockets.push(socket);
            }
            sockets
        }));
    }
    for task in tasks {
        task.await.expect("allocation task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_ms = (server.cpu_us() - cpu_before) / 1000.0;
    let done = (total / 4 * 4) as f64;
    println!(
        "{:>12}: {} allocations in {:.2} s = {:.0}/s, server CPU {:.3} ms per allocation ({} answered 437 first)",
        server.kind.label(),
        done,
        elapsed,
        done / elapsed,
        cpu_ms / done,
        mismatches.load(Ordering::Relaxed),
    );
    (done / elapsed, cpu_ms / done)
}

/// The physical limit: a UDP relay that forwards raw datagrams with no protocol at all.
/// Each client gets its own upstream socket; one thread per upstream socket sends the
/// peer's answers back through the listening socket.
mod zero_relay {
    use super::*;

    /// Relays raw datagrams between clients of `port` and the echo peer `echo`.
    pub fn run(port: u16, echo: SocketAddr) {
        let listen = Arc::new(StdUdpSocket::bind(("127.0.0.1", port)).expect("bind the zero relay"));
        let mut peer_of: HashMap<SocketAddr, Arc<StdUdpSocket>> = HashMap::new();
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, client)) = listen.recv_from(&mut buf) else { continue };
            let upstream = {
                Arc::clone(peer_of.entry(client).or_insert_with(|| {
                    let upstream = Arc::new(StdUdpSocket::bind("127.0.0.1:0").expect("bind upstream"));
                    upstream.connect(echo).expect("connect upstream");
                    let (up, back) = (Arc::clone(&upstream), Arc::clone(&listen));
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 2048];
                        while let Ok(n) = up.recv(&mut buf) {
                            let _ = back.send_to(&buf[..n], client);
                        }
                    });
                    upstream
                }))
            };
            let _ = upstream.send(&buf[..n]);
        }
    }

    /// The same relay on duet's batched I/O: datagrams read 32 at a time, runs to one
    /// address sent as one segmented write, everything on one thread. No TURN at all.
    pub fn run_batched(port: u16, echo: SocketAddr) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let bind = |addr: SocketAddr| {
                let socket = StdUdpSocket::bind(addr).expect("bind the zero relay");
                Arc::new(BatchSocket::new(socket).expect("a batched socket"))
            };
            let listen = bind(([127, 0, 0, 1], port).into());
            let mut upstream_of: HashMap<SocketAddr, Arc<BatchSocket>> = HashMap::new();
            loop {
                let _ = listen
                    .recv_batch(|batch, n| {
                        let sends = &mut batch.sends;
                        batch.received.for_each(n, |client, buf, datagram| {
                            let upstream = upstream_of.entry(client).or_insert_with(|| {
                                let upstream = bind(([127, 0, 0, 1], 0).into());
                                tokio::spawn(back(Arc::clone(&upstream), Arc::clone(&listen), client));
                                upstream
                            });
                            sends.push(upstream, echo, &buf[datagram]);
                        });
                        sends.flush();
                    })
                    .await;
            }
        });
    }

    /// Relays what the echo peer sends to `upstream` back to `client`.
    async fn back(upstream: Arc<BatchSocket>, listen: Arc<BatchSocket>, client: SocketAddr) {
        loop {
            let _ = upstream
                .recv_batch(|batch, n| {
                    let sends = &mut batch.sends;
                    batch
                        .received
                        .for_each(n, |_, buf, datagram| sends.push(&listen, client, &buf[datagram]));
                    sends.flush();
                })
                .await;
        }
    }
}
