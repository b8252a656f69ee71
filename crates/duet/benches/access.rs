//! Access benchmark: what letting people in costs the real server.
//!
//! ```text
//!  this process: C clients ──POST /api/sign-in──► duet --access password
//!     baseline: the server's password (one HMAC)   measured: an account (argon2id, bounded)
//!  this process: C clients ──WebSocket upgrade, read {id}, close──► duet
//!     baseline: an open server, no cookie          measured: a session cookie checked (MAC,
//!                                                  revocation lists, Origin)
//!  this process: C clients ──POST /api/sign-in {invite: a bogus token}──► duet
//!  this process: C clients ──sign in, then POST /api/sign-out──► duet
//!     baseline: a server-password sign-in          measured: a refused invite (no store
//!                                                  work), a sign-in and a sign-out (one
//!                                                  insert) with SIGN_OUT_HISTORY in the store
//! ```
//!
//! Sign-ins per second, their latency, and the server's CPU per sign-in; upgrades per
//! second with and without the session check. Argon2id is slow on purpose (19 MiB, two
//! passes): the figure says how many account sign-ins a server takes when many people
//! arrive at once, and `--limit-password-hashes` bounds the memory they take.
//!
//! Run: `cargo bench -p duet --bench access` (`-- --quick` for a short run).

mod common;

use common::http::{add_account, cookie, exchange, post};

use std::time::{Duration, Instant};

const PASSWORD: &str = "the benchmark's server password";
const ACCOUNT_PASSWORD: &str = "the benchmark account's password";
const CLIENTS: usize = 8;
/// Sign-outs already in the store: a busy server's month (the hardening issue measured
/// 200-500 ms a sign-out at this size when they lived in a JSON file).
const SIGN_OUT_HISTORY: usize = 20_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let window = Duration::from_secs(if quick { 1 } else { 5 });
    let state = std::env::temp_dir().join(format!("duet-bench-access-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("a state directory");
    let password_file = state.join("password");
    std::fs::write(&password_file, PASSWORD).expect("write the password");
    add_account(&state, "bench", ACCOUNT_PASSWORD);
    let store = duet::store::Store::open(&state).expect("the store");
    let expires = duet::clock::now_ms() + 86_400_000;
    for n in 0..SIGN_OUT_HISTORY {
        store.backend().sign_out(&format!("{n:032x}"), expires).expect("stored");
    }
    drop(store);
    let state_arg = state.to_str().expect("a UTF-8 path");
    let common_args =
        ["--listen", "127.0.0.1:0", "--no-turn", "--no-echo", "--no-metrics", "--state-dir", state_arg];
    let (mut guarded, guarded_addr) = common::start_duet(
        &[],
        &[
            &common_args[..],
            &["--access", "password", "--access-password-file", password_file.to_str().expect("UTF-8")],
            &["--limit-sign-ins", "1000000,1000000/s", "--limit-websockets-per-address", "100000"],
        ]
        .concat(),
    );
    let (mut open, open_addr) = common::start_duet(
        &[],
        &[&common_args[..], &["--access", "open", "--limit-websockets-per-address", "100000"]].concat(),
    );
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    println!("# access benchmark: {CLIENTS} clients, {window:?} per measurement, duet on loopback");
    runtime.block_on(async {
        let server_password = format!(r#"{{"password":"{PASSWORD}"}}"#);
        let account = format!(r#"{{"account":"bench","password":"{ACCOUNT_PASSWORD}"}}"#);
        let pid = guarded.id();
        let base =
            measure("server password (HMAC)", window, pid, signing_in(&guarded_addr, &server_password)).await;
        let argon = measure("account (argon2id)", window, pid, signing_in(&guarded_addr, &account)).await;
        println!("sign-ins/s: server password {base:.0}, account {argon:.0}, ratio {:.3}", argon / base);
        let cookie = cookie(&guarded_addr, &server_password).await;
        let open_rate = measure("upgrade, open server", window, open.id(), upgrading(&open_addr, None)).await;
        let checked =
            measure("upgrade with a session", window, pid, upgrading(&guarded_addr, Some(cookie))).await;
        println!(
            "WebSocket upgrades/s: open {open_rate:.0}, with a session checked {checked:.0}, ratio {:.2}",
            checked / open_rate
        );
        let bogus = requesting(&guarded_addr, post(&guarded_addr, r#"{"invite":"Ym9ndXM.AAAAAAAAAAAAAAAAAAAAAA"}"#), "HTTP/1.1 410");
        let refused = measure("invite refused (bogus)", window, pid, bogus).await;
        let out = measure("sign-in + sign-out", window, pid, signing_out(&guarded_addr, &server_password)).await;
        println!(
            "with {SIGN_OUT_HISTORY} sign-outs in the store: refused invites/s {refused:.0} ({:.2} of server-password sign-ins), \
             sign-in + sign-out pairs/s {out:.0} ({:.2})",
            refused / base,
            out / base
        );
    });
    let _ = guarded.kill();
    let _ = open.kill();
    let _ = guarded.wait();
    let _ = open.wait();
    let _ = std::fs::remove_dir_all(&state);
}

/// Runs `one` from CLIENTS clients for `window`; prints and returns successes per second.
async fn measure<F, Fut>(label: &str, window: Duration, pid: u32, one: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let cpu_before = common::cpu_us(pid);
    let started = Instant::now();
    let until = started + window;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0;
                while Instant::now() < until {
                    let sent = Instant::now();
                    if one().await {
                        latencies.push(sent.elapsed());
                    } else {
                        failed += 1;
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (mine, lost) = task.await.expect("a client");
        latencies.extend(mine);
        failed += lost;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = common::cpu_us(pid) - cpu_before;
    latencies.sort_unstable();
    let at =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
    let rate = latencies.len() as f64 / elapsed;
    println!(
        "{label:>28}: {rate:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  server CPU {:>8.1} us each  failed {failed}",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        cpu / latencies.len().max(1) as f64,
    );
    rate
}

/// A sign-in with `body`, again and again.
fn signing_in(
    addr: &str,
    body: &str,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Clone + Send + 'static {
    requesting(addr, post(addr, body), "HTTP/1.1 200")
}

/// `request` again and again; a success is an answer starting with `expect`.
fn requesting(
    addr: &str,
    request: String,
    expect: &'static str,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Clone + Send + 'static {
    let addr = addr.to_owned();
    move || {
        let (addr, request) = (addr.clone(), request.clone());
        Box::pin(async move { exchange(&addr, request).await.is_some_and(|r| r.starts_with(expect)) })
    }
}

/// A sign-in with `body`, then a sign-out of that session, again and again.
fn signing_out(
    addr: &str,
    body: &str,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Clone + Send + 'static {
    let (addr, body) = (addr.to_owned(), body.to_owned());
    move || {
        let (addr, body) = (addr.clone(), body.clone());
        Box::pin(async move {
            let cookie = cookie(&addr, &body).await;
            let request = format!(
                "POST /api/sign-out HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Length: 0\r\n\r\n"
            );
            exchange(&addr, request).await.is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        })
    }
}

/// An upgrade (with `cookie`), again and again.
fn upgrading(
    addr: &str,
    cookie: Option<String>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Clone + Send + 'static {
    let addr = addr.to_owned();
    move || Box::pin(upgrade(addr.clone(), cookie.clone()))
}

/// A WebSocket upgrade that reads the server's first message and closes.
async fn upgrade(addr: String, cookie: Option<String>) -> bool {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws").into_client_request().expect("a URL");
    if let Some(cookie) = cookie {
        request.headers_mut().insert("Cookie", cookie.parse().expect("ASCII"));
    }
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await else { return false };
    let first = ws.next().await;
    let _ = ws.close(None).await;
    matches!(first, Some(Ok(_)))
}
