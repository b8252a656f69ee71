//! Call history benchmark: what Recent costs when the store is large.
//!
//! ```text
//!  store: ACCOUNTS accounts, CALLS calls in all; one heavy account holds HEAVY of them,
//!         another holds LIGHT (the baseline)
//!  this process ──GET /api/calls (first page, 50)──► duet   p50 / p99, heavy vs light
//!  this process ──GET /api/calls?before=<middle>──► duet    a page deep in the heavy list
//!  recording: record_calls in batches of 256 (the writer task's batch), rows per second
//! ```
//!
//! Run: `cargo bench -p duet --bench history` (`-- --quick` for a smaller store).

mod common;

use std::time::{Duration, Instant};

use common::http::{add_account, cookie, exchange};
use duet::store::{Call, CallOutcome, CallRecord, NewAccount, Store};

const PASSWORD: &str = "the history benchmark's password";

struct Size {
    accounts: usize,
    calls: usize,
    heavy: usize,
    light: usize,
    requests: usize,
}

const FULL: Size = Size { accounts: 1_000, calls: 1_000_000, heavy: 100_000, light: 100, requests: 2_000 };
const QUICK: Size = Size { accounts: 100, calls: 100_000, heavy: 10_000, light: 100, requests: 300 };

fn main() {
    let size = if std::env::args().any(|a| a == "--quick") { QUICK } else { FULL };
    let state = std::env::temp_dir().join(format!("duet-bench-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("a state directory");
    add_account(&state, "heavy", PASSWORD);
    add_account(&state, "light", PASSWORD);
    println!(
        "# call history: {} calls among {} accounts; 'heavy' holds {}, 'light' {}",
        size.calls, size.accounts, size.heavy, size.light
    );
    fill(&state, &size);
    let state_arg = state.to_str().expect("a UTF-8 path");
    let args = ["--listen", "127.0.0.1:0", "--no-turn", "--no-echo", "--no-metrics", "--access", "members"];
    let (mut duet, addr) = common::start_duet(&[], &[&args[..], &["--state-dir", state_arg]].concat());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let light = latencies(&addr, "light", None, size.requests).await;
        let heavy = latencies(&addr, "heavy", None, size.requests).await;
        let middle = {
            let store = Store::open(&state).expect("the store");
            let page = store.backend().calls("heavy", None, size.heavy / 2).expect("read");
            page.last().map(|c| c.id)
        };
        let deep = latencies(&addr, "heavy", middle, size.requests).await;
        report("light (baseline)", &light, &light);
        report("heavy, first page", &heavy, &light);
        report("heavy, page halfway", &deep, &light);
    });
    let _ = duet.kill();
    let _ = duet.wait();
    let _ = std::fs::remove_dir_all(&state);
}

/// Accounts and calls straight into the store, as a server that ran for years would have.
fn fill(state: &std::path::Path, size: &Size) {
    let store = Store::open(state).expect("the store");
    let db = store.backend();
    for n in 0..size.accounts {
        let hash = "not a real hash".to_owned();
        let account = NewAccount { name: format!("user{n}"), hash, admin: false, id: id(n), now_ms: 0 };
        db.add_account(account).expect("stored").expect("added");
    }
    let others = size.calls - size.heavy - size.light;
    let owners = (0..size.heavy)
        .map(|_| "heavy".to_owned())
        .chain((0..size.light).map(|_| "light".to_owned()))
        .chain((0..others).map(|n| format!("user{}", n % size.accounts)));
    let started = Instant::now();
    let mut batch = Vec::with_capacity(256);
    let mut written = 0;
    for (n, account) in owners.enumerate() {
        batch.push(record(account, n));
        if batch.len() == 256 {
            written += db.record_calls(&batch).expect("recorded");
            batch.clear();
        }
    }
    written += db.record_calls(&batch).expect("recorded");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "recorded {written} calls in batches of 256 (the writer's) in {seconds:.1} s: {:.0} calls/s",
        written as f64 / seconds
    );
}

fn id(n: usize) -> [u8; 16] {
    let mut id = [0xa5; 16];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    id
}

fn record(account: String, n: usize) -> CallRecord {
    let outcome = [CallOutcome::Answered, CallOutcome::Missed, CallOutcome::Declined][n % 3];
    let call = Call {
        peer: format!("peer{}", n % 97),
        peer_verified: n.is_multiple_of(2),
        outgoing: n % 2 == 1,
        started_ms: 1_700_000_000_000 + n as u64 * 1_000,
        outcome,
        duration_ms: if outcome == CallOutcome::Answered { 60_000 } else { 0 },
        voice: n.is_multiple_of(5),
    };
    CallRecord { account, call }
}

/// `requests` reads of `account`'s Recent (the page before `before`), one after another.
async fn latencies(addr: &str, account: &str, before: Option<i64>, requests: usize) -> Vec<Duration> {
    let body = format!(r#"{{"account":"{account}","password":"{PASSWORD}"}}"#);
    let cookie = cookie(addr, &body).await;
    let path = match before {
        Some(id) => format!("/api/calls?before={id}"),
        None => "/api/calls".to_owned(),
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n");
    let mut took = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let answer = exchange(addr, request.clone()).await.expect("an answer");
        took.push(started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("\"calls\":[{"), "{answer}");
    }
    took.sort();
    took
}

fn report(label: &str, took: &[Duration], baseline: &[Duration]) {
    let at = |list: &[Duration], q: f64| list[((list.len() - 1) as f64 * q) as usize].as_secs_f64() * 1_000.0;
    println!(
        "{label:>22}: GET /api/calls p50 {:6.2} ms  p99 {:6.2} ms  (p99 {:.2}x the light account's)",
        at(took, 0.5),
        at(took, 0.99),
        at(took, 0.99) / at(baseline, 0.99)
    );
}
