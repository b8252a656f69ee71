//! Cluster benchmark: routed call messages per second and their latency between people
//! on two different duet nodes (every message crosses Redis: relaying node → Redis →
//! the room's node, and back), against the same load on one node, in the same run.
//!
//! ```text
//!  one node                    50 pairs ──► duet ──► partner
//!  one node, --redis           the same, with the node beating to Redis (nothing crosses it)
//!  two nodes                   u0,u2,… ──► node A (owns the room) ──┐
//!                              u1,u3,… ──► node B ══ Redis pub/sub ══╛ every message to or from
//!                                                                    a B client crosses Redis
//! ```
//!
//! Every setup gets a fresh Debian redis-server and fresh nodes with the per-connection
//! message limit raised (the ladder offers far more than a person sends). The ladder and
//! its loss-free rule are the signaling benchmark's (`common::routing`).
//!
//! Run: `cargo bench -p duet --bench cluster` (add `-- --quick` for a short run).

mod common;
#[path = "../tests/common/redis.rs"]
#[allow(dead_code, reason = "the tests kill and pause it; the benchmark only starts it")]
mod redis;

use std::process::Child;

use common::routing;
use futures_util::StreamExt;

const PAIRS: usize = 50;

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    OneNode,
    OneNodeWithRedis,
    TwoNodes,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Self::OneNode => "one node",
            Self::OneNodeWithRedis => "one node, --redis",
            Self::TwoNodes => "two nodes",
        }
    }
}

/// A process ended when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = if quick { 1 } else { 3 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("# cluster benchmark ({PAIRS} pairs; two nodes: every pair has one side on each node)");
        let mut results = Vec::new();
        for setup in [Setup::OneNode, Setup::OneNodeWithRedis, Setup::TwoNodes] {
            results.push((setup, run(setup, seconds).await));
        }
        let one = results[0].1;
        for (setup, (best, p99)) in &results {
            println!(
                "{:>18}: highest loss-free routed messages/s {best:>7.0} ({:.2} of one node); p99 at 10,000/s {p99:.2} ms",
                setup.label(),
                best / one.0.max(1.0),
            );
        }
    });
}

/// Starts `setup`, signs in and pairs the clients, climbs the ladder; the highest
/// loss-free rate and the p99 at the first step.
async fn run(setup: Setup, seconds: u64) -> (f64, f64) {
    let state = std::env::temp_dir().join(format!("duet-cluster-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("a state directory");
    let redis = (setup != Setup::OneNode).then(redis::Redis::start);
    let mut args: Vec<String> =
        ["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-echo", "--no-metrics"]
            .map(String::from)
            .into();
    args.extend(["--limit-messages", "1000000,1000000/s", "--state-dir"].map(String::from));
    args.push(state.display().to_string());
    if let Some(redis) = &redis {
        args.extend(["--redis".to_owned(), redis.url()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let nodes = if setup == Setup::TwoNodes { 2 } else { 1 };
    let started: Vec<(Process, std::net::SocketAddr)> = (0..nodes)
        .map(|_| {
            let (child, addr) = common::start_duet(&[], &args);
            (Process(child), addr.parse().expect("host:port"))
        })
        .collect();
    let addrs: Vec<std::net::SocketAddr> = started.iter().map(|(_, addr)| *addr).collect();
    // The room's node is the first one: a client that stays connected claims it there
    // before anyone joins through the second.
    let mut holder = routing::connect(addrs[0], PAIRS * 2).await;
    holder.next().await.expect("open").expect("the id frame");
    let mut clients = Vec::new();
    for i in 0..PAIRS * 2 {
        clients.push(routing::connect(addrs[i % addrs.len()], i).await);
    }
    routing::sign_in_and_pair(&mut clients).await;
    let result = routing::ladder(clients, setup.label(), seconds).await;
    drop(holder);
    drop(started);
    drop(redis);
    let _ = std::fs::remove_dir_all(&state);
    result
}
