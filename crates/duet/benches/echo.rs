//! Echo benchmark: how many simultaneous echo calls duet carries on one core before
//! frames are lost, and the latency the echo adds, with duet-peer as the caller.
//!
//! ```text
//!  this process (CPU 1): N callers, each a duet-peer Session     duet serve (CPU 0)
//!    VP8 pattern at 15 fps + Opus every 20 ms ──SRTP──► echo instance per call
//!    each frame carries a sequence number     ◄──SRTP── the same frames, written back
//! ```
//!
//! duet runs as its own process pinned to CPU 0 (taskset), the callers pinned to CPU 1,
//! so the figures are one core's worth of echo. Each frame carries an 8-byte trailer
//! (a sequence number the echo passes on untouched); every echoed frame is matched to
//! when it was sent. Rising N until more than 1% of the frames are lost or the p99 round
//! trip passes 250 ms.
//!
//! Baseline, in the same run: a bare UDP reflector (this binary with `--reflector`, also
//! pinned to CPU 0) sent the same frames as plain datagrams, by the same number of
//! senders at the same pace: the path and the scheduler with no WebRTC at all. The echo
//! adds the difference in round trip, and its CPU per frame is set beside the
//! reflector's.
//!
//! Run: `cargo bench -p duet --bench echo` (`-- --quick` for a short run: 1, 16 and 64
//! calls, 2 seconds each).

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_peer::media::ivf::IvfReader;
use duet_peer::str0m::Event;
use duet_peer::{Kind, Poll, Session};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

const STEPS: [usize; 9] = [1, 4, 8, 16, 32, 48, 64, 96, 128];
const QUICK_STEPS: [usize; 3] = [1, 16, 64];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--reflector") {
        return reflector(&args[i + 1]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let window = Duration::from_secs(if quick { 2 } else { 6 });
    let steps: &[usize] = if quick { &QUICK_STEPS } else { &STEPS };
    pin_self_to_cpu(1);
    let server = Server::start();
    let reflector = Reflector::start();
    let frames = Arc::new(pattern_frames());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    println!("# echo benchmark: duet on CPU 0, callers on CPU 1, {window:?} per step");
    println!("# each call: VP8 320x240 at 15 fps (~250 kbit/s) + a 20 ms audio frame every 20 ms, both ways");
    let mut carried = 0;
    for &n in steps {
        // Setting up many calls at once (DTLS) takes a moment; streaming starts after.
        let start = Instant::now() + Duration::from_millis(2000 + 150 * n as u64);
        let end = start + window;
        let cpu = CpuWindow::measure(server.child.id(), start, end);
        let result = runtime.block_on(step(server.url.clone(), n, start, end, Arc::clone(&frames)));
        let cpu_s = cpu.seconds();
        let r = match result {
            Ok(r) => r,
            Err(why) => {
                println!("{n:>3} calls: not every call could be set up: {why}");
                break;
            }
        };
        let base_cpu = CpuWindow::measure(reflector.child.id(), Instant::now(), Instant::now() + window);
        let base = runtime.block_on(reflected(reflector.addr, n, window, Arc::clone(&frames)));
        let base_cpu_s = base_cpu.seconds();
        println!(
            "{n:>3} calls: {:>6} frames, lost {:>5.2}%, round trip p50 {:>6.2} ms p99 {:>6.2} ms, \
             duet CPU {:>5.1}% of a core, {:>4.0} us/frame | bare reflector: lost {:>5.2}%, p50 {:>5.2} ms \
             p99 {:>5.2} ms, {:>4.1} us/frame",
            r.sent,
            r.loss * 100.0,
            r.p50_ms,
            r.p99_ms,
            cpu_s / window.as_secs_f64() * 100.0,
            cpu_s * 1e6 / (r.received.max(1) as f64),
            base.loss * 100.0,
            base.p50_ms,
            base.p99_ms,
            base_cpu_s * 1e6 / (base.received.max(1) as f64),
        );
        if r.loss > 0.01 || r.p99_ms > 250.0 {
            break;
        }
        carried = n;
        println!(
            "           the echo adds {:.2} ms (p50) to a bare reflector's round trip; CPU per frame ratio {:.0}",
            r.p50_ms - base.p50_ms,
            (cpu_s / r.received.max(1) as f64) / (base_cpu_s / base.received.max(1) as f64).max(1e-9),
        );
    }
    let more = if quick && carried == QUICK_STEPS[QUICK_STEPS.len() - 1] {
        " or more (the quick run stops there)"
    } else {
        ""
    };
    println!("simultaneous echo calls carried loss-free by duet on one core: {carried}{more}");
}

/// CPU seconds a process spends between two instants, read by a thread of its own.
struct CpuWindow(std::thread::JoinHandle<f64>);

impl CpuWindow {
    fn measure(pid: u32, start: Instant, end: Instant) -> Self {
        Self(std::thread::spawn(move || {
            std::thread::sleep(start.saturating_duration_since(Instant::now()));
            let before = common::cpu_us(pid);
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            (common::cpu_us(pid) - before) / 1e6
        }))
    }

    fn seconds(self) -> f64 {
        self.0.join().expect("the CPU reader")
    }
}

struct StepResult {
    sent: u64,
    received: u64,
    loss: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl StepResult {
    fn new(sent: u64, received: u64, latencies: &Mutex<Vec<f64>>) -> Self {
        let mut lat = latencies.lock().expect("not poisoned").clone();
        lat.sort_unstable_by(f64::total_cmp);
        let pct = |p: f64| if lat.is_empty() { f64::NAN } else { lat[((lat.len() - 1) as f64 * p) as usize] };
        Self {
            sent,
            received,
            loss: 1.0 - received as f64 / sent.max(1) as f64,
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
        }
    }
}

/// `n` callers call echo at once and stream from `start` to `end`.
async fn step(
    url: String,
    n: usize,
    start: Instant,
    end: Instant,
    frames: Arc<Vec<Vec<u8>>>,
) -> Result<StepResult, &'static str> {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (url, frames, latencies) = (url.clone(), Arc::clone(&frames), Arc::clone(&latencies));
        tasks.push(tokio::spawn(async move { caller(i, &url, start, end, &frames, &latencies).await }));
    }
    let mut sent = 0;
    let mut received = 0;
    for task in tasks {
        let (s, r) =
            task.await.map_err(|_| "a caller panicked")?.ok_or("a call failed before streaming")??;
        sent += s;
        received += r;
    }
    Ok(StepResult::new(sent, received, &latencies))
}

/// The baseline: `n` senders at the same pace, plain datagrams to a bare reflector.
async fn reflected(
    addr: std::net::SocketAddr,
    n: usize,
    window: Duration,
    frames: Arc<Vec<Vec<u8>>>,
) -> StepResult {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + window;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (frames, latencies) = (Arc::clone(&frames), Arc::clone(&latencies));
        tasks.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            socket.connect(addr).await.expect("connect");
            let mut tally = Tally::new(&latencies);
            let mut schedule = Schedule::new(&frames, start, end);
            let mut buf = vec![0u8; 65536];
            loop {
                let now = Instant::now();
                if now >= end + Duration::from_millis(300) {
                    return tally.totals();
                }
                let due = schedule.next_due().unwrap_or(end + Duration::from_millis(300));
                tokio::select! {
                    got = socket.recv(&mut buf) => {
                        if let Ok(len) = got {
                            tally.arrived(&buf[..len]);
                        }
                    }
                    () = tokio::time::sleep_until(due.into()) => {}
                }
                let now = Instant::now();
                for due in schedule.due(now) {
                    if socket.send(&due.payload).await.is_ok() {
                        tally.sent(&due, now);
                    }
                }
            }
        }));
    }
    let (mut sent, mut received) = (0, 0);
    for task in tasks {
        let (s, r) = task.await.expect("a sender");
        sent += s;
        received += r;
    }
    StepResult::new(sent, received, &latencies)
}

/// The bare reflector: every datagram goes straight back to where it came from.
fn reflector(port: &str) {
    let socket = std::net::UdpSocket::bind(format!("127.0.0.1:{port}")).expect("bind the reflector");
    let mut buf = vec![0u8; 65536];
    loop {
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    }
}

struct Reflector {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Reflector {
    fn start() -> Self {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(std::env::current_exe().expect("own path"))
            .args(["--reflector", &port.to_string()])
            .spawn()
            .expect("start the reflector");
        std::thread::sleep(Duration::from_millis(300));
        Self { child, addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)) }
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One call to echo; returns (frames sent, frames echoed back) over the window, leaving
/// out the last half second's frames that may still be on their way. `None` when a step
/// of the setup failed; an error says which setup failure it was.
async fn caller(
    i: usize,
    url: &str,
    start: Instant,
    end: Instant,
    frames: &[Vec<u8>],
    latencies: &Mutex<Vec<f64>>,
) -> Option<Result<(u64, u64), &'static str>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let name = format!("bench-{i}-{}", std::process::id());
    ws.send(Message::text(json!({"type": "username", "name": name, "ringing": true}).to_string()))
        .await
        .ok()?;
    ws.send(Message::text(json!({"type": "call", "target": "echo"}).to_string())).await.ok()?;
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let local = socket.local_addr().ok()?;
    let mut session = Session::new(Instant::now(), &[local]).ok()?;
    let setup_deadline = start;
    let mut connected = false;
    let mut buf = vec![0u8; 2048];
    let mut wake = Instant::now();
    let mut tally = Tally::new(latencies);
    let mut schedule = Schedule::new(frames, start, end);
    loop {
        let now = Instant::now();
        if now >= end + Duration::from_millis(300) {
            break;
        }
        if !connected && now >= setup_deadline {
            return Some(Err("a call did not connect before streaming began"));
        }
        let media_due = if connected { schedule.next_due() } else { None };
        let until =
            [Some(wake), media_due, Some(end + Duration::from_millis(300))].into_iter().flatten().min()?;
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue, // keep-alive pings
                    _ => return Some(Err("the server closed a signaling connection")),
                };
                let msg: Value = serde_json::from_str(&text).ok()?;
                match msg["type"].as_str() {
                    Some("call-accepted") => {
                        let offer: Value = serde_json::from_str(&session.create_offer().ok()?).ok()?;
                        ws.send(Message::text(json!({"type": "video-offer", "target": "echo", "sdp": offer}).to_string())).await.ok()?;
                    }
                    Some("video-answer") => session.accept_answer(&msg["sdp"].to_string()).ok()?,
                    Some("call-ended") => return Some(Err("echo ended a call")),
                    _ => {}
                }
            }
            got = socket.recv_from(&mut buf) => {
                if let Ok((len, source)) = got {
                    session.handle_datagram(Instant::now(), source, local, &buf[..len]).ok()?;
                }
            }
            () = tokio::time::sleep_until(until.into()) => {}
        }
        let now = Instant::now();
        session.handle_timeout(now).ok()?;
        if connected {
            for due in schedule.due(now) {
                if session.send_frame(due.kind, now, due.rtp, &due.payload) {
                    tally.sent(&due, now);
                }
            }
        }
        loop {
            match session.poll().ok()? {
                Poll::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Poll::Timeout(at) => {
                    wake = at;
                    break;
                }
                Poll::Event(event) => match *event {
                    Event::Connected => connected = true,
                    Event::MediaData(data) => tally.arrived(&data.data),
                    _ => {}
                },
            }
        }
    }
    let _ = ws.send(Message::text(json!({"type": "hang-up", "target": "echo"}).to_string())).await;
    let _ = ws.close(None).await;
    Some(Ok(tally.totals()))
}

/// Frames sent and echoed back, matched by the sequence number at their end.
struct Tally<'a> {
    sent_at: HashMap<u64, Instant>,
    sent: u64,
    received: u64,
    latencies: &'a Mutex<Vec<f64>>,
}

impl<'a> Tally<'a> {
    fn new(latencies: &'a Mutex<Vec<f64>>) -> Self {
        Self { sent_at: HashMap::new(), sent: 0, received: 0, latencies }
    }

    /// `due` went out at `now`.
    fn sent(&mut self, due: &Due, now: Instant) {
        if due.counted {
            self.sent_at.insert(due.seq, now);
            self.sent += 1;
        }
    }

    /// A frame came back: its round trip, if it is one we sent and counted.
    fn arrived(&mut self, payload: &[u8]) {
        let Some(tail) = payload.len().checked_sub(8) else { return };
        let seq = u64::from_be_bytes(payload[tail..].try_into().expect("8 bytes"));
        if let Some(at) = self.sent_at.remove(&seq) {
            self.received += 1;
            self.latencies.lock().expect("not poisoned").push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }

    fn totals(&self) -> (u64, u64) {
        (self.sent, self.received)
    }
}

/// What one call sends: the VP8 pattern at 15 fps and a 20 ms audio frame every 20 ms,
/// each ending in its sequence number. Frames of the last half second are not counted:
/// they may still be on their way when the window closes.
struct Schedule<'a> {
    frames: &'a [Vec<u8>],
    start: Instant,
    end: Instant,
    next_video: Instant,
    next_audio: Instant,
    seq: u64,
}

/// One frame to send now.
struct Due {
    kind: Kind,
    seq: u64,
    /// RTP time: 90 kHz for video, 48 kHz for audio.
    rtp: u64,
    payload: Vec<u8>,
    counted: bool,
}

impl<'a> Schedule<'a> {
    fn new(frames: &'a [Vec<u8>], start: Instant, end: Instant) -> Self {
        Self { frames, start, end, next_video: start, next_audio: start, seq: 0 }
    }

    /// When the next frame is due, while the window lasts.
    fn next_due(&self) -> Option<Instant> {
        let next = self.next_video.min(self.next_audio);
        (next < self.end).then_some(next)
    }

    /// The frames due by `now`.
    fn due(&mut self, now: Instant) -> Vec<Due> {
        let counted_until = self.end - Duration::from_millis(500);
        let mut due = Vec::new();
        // (kind, when the next is due, interval, RTP clock in kHz)
        let tracks = [
            (Kind::Video, &mut self.next_video, Duration::from_micros(66_667), 90),
            (Kind::Audio, &mut self.next_audio, Duration::from_millis(20), 48),
        ];
        for (kind, next, interval, khz) in tracks {
            while now < self.end && *next <= now {
                self.seq += 1;
                let mut payload = match kind {
                    Kind::Video => self.frames[(self.seq as usize) % self.frames.len()].clone(),
                    Kind::Audio => vec![0xfc, 0xff, 0xfe], // an Opus CELT 20 ms TOC and a little payload
                };
                payload.extend_from_slice(&self.seq.to_be_bytes());
                let rtp = (*next - self.start).as_micros() as u64 * khz / 1000;
                due.push(Due { kind, seq: self.seq, rtp, payload, counted: *next < counted_until });
                *next += interval;
            }
        }
        due
    }
}

fn pattern_frames() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/pattern.ivf");
    let mut reader =
        IvfReader::new(std::fs::File::open(path).expect("fixtures/pattern.ivf")).expect("an IVF file");
    std::iter::from_fn(|| reader.next_frame().expect("readable")).map(|f| f.data).collect()
}

/// The duet binary, pinned to CPU 0.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Self {
        // Every caller here comes from 127.0.0.1, where people would come from their own
        // addresses: the per-address limits are raised past what the benchmark opens.
        let unlimited = [
            "--limit-echo-calls-per-address",
            "100000",
            "--limit-websockets-per-address",
            "100000",
            "--limit-web-connections-per-address",
            "100000",
        ];
        let (child, address) = common::start_duet(
            &["taskset", "-c", "0"],
            &[&["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-metrics"][..], &unlimited[..]]
                .concat(),
        );
        Self { child, url: format!("ws://{address}/ws") }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pin_self_to_cpu(cpu: usize) {
    let status = Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("could not pin the callers to CPU {cpu}; figures will be noisier");
    }
}
