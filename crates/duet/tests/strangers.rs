//! What strangers can do to the people inside by hammering the sign-in paths, against
//! the real server with a real store: nothing a member would notice, nothing written.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, TestServer};
use duet::access::Access;
use duet::config::AccessConfig;
use duet_access::Mode;
use serde_json::json;

/// Sign-outs already in the store: a busy server's month.
const SIGN_OUT_HISTORY: usize = 20_000;
/// Stranger addresses for each kind of attempt, and attempts from each (inside the
/// per-address limit of 10).
const ADDRESSES: u8 = 100;
const ATTEMPTS: usize = 10;

/// A signed-in member's socket in a call with the other.
async fn member(server: &TestServer, name: &str, password: &str) -> Client {
    let body = json!({"account": name, "password": password});
    let headers = [("Content-Type", "application/json")];
    let (status, headers, _) =
        common::http_request(server.addr, "POST", "/api/sign-in", &headers, &body.to_string()).await;
    assert_eq!(status, 200);
    let cookie = headers.iter().find(|(n, _)| n == "set-cookie").expect("a cookie").1.split(';').next();
    let mut client = Client::connect_with(&server.url("/ws"), &[("Cookie", cookie.expect("name=value"))])
        .await
        .expect("upgraded");
    client.expect_type("id").await;
    client.send(json!({"type": "username", "name": name, "ringing": true})).await;
    client.expect_type("session").await;
    client
}

/// One round trip ann → bo → ann over signaling.
async fn round_trip(ann: &mut Client, bo: &mut Client, n: usize) -> Duration {
    let started = Instant::now();
    let candidate = |to: &str| json!({"type": "new-ice-candidate", "target": to, "candidate": {"candidate": format!("ping {n}")}});
    ann.send(candidate("bo")).await;
    while bo.recv_not_userlist().await["candidate"]["candidate"] != format!("ping {n}") {}
    bo.send(candidate("ann")).await;
    while ann.recv_not_userlist().await["candidate"]["candidate"] != format!("ping {n}") {}
    started.elapsed()
}

/// Round trips, one every 50 ms, `count` of them: sorted.
async fn round_trips(ann: &mut Client, bo: &mut Client, count: usize, first: usize) -> Vec<Duration> {
    let mut all = Vec::new();
    for n in first..first + count {
        all.push(round_trip(ann, bo, n).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    all.sort();
    all
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_hammering_every_sign_in_path_neither_slow_members_nor_write_anything() {
    let dir = std::env::temp_dir().join(format!("duet-strangers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    common::accounts::add(&dir, "ann", "ann's long password", false);
    common::accounts::add(&dir, "bo", "bo's long password", false);
    let store = duet::store::Store::open(&dir).expect("a store");
    let expires = duet::clock::now_ms() + 86_400_000;
    for n in 0..SIGN_OUT_HISTORY {
        store.backend().sign_out(&format!("{n:032x}"), expires).expect("stored");
    }
    let config = AccessConfig { mode: Mode::Members, password_hashes: 2, ..AccessConfig::open() };
    let access = Arc::new(Access::new(config, Some(&dir)).expect("access"));
    let server = TestServer::start_with(duet::RunOptions { access, ..duet::RunOptions::plain() }).await;
    let mut ann = member(&server, "ann", "ann's long password").await;
    let mut bo = member(&server, "bo", "bo's long password").await;
    ann.call_and_accept(&mut bo, "bo").await;
    let baseline = round_trips(&mut ann, &mut bo, 20, 0).await;

    let (db, wal) = (dir.join("duet.db"), dir.join("duet.db-wal"));
    let written = (file_len(&db), file_len(&wal), store.backend().versions().expect("store"));
    let addr = server.addr;
    let mut strangers = Vec::new();
    for a in 1..=ADDRESSES {
        strangers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..ATTEMPTS {
                let invite = json!({"invite": format!("{a}-{n}.bm90IGFuIGludml0ZQ.AAAA")});
                statuses
                    .push(common::post_from(&format!("127.0.1.{a}"), addr, "/api/sign-in", &invite).await);
                let guess = json!({"account": "ann", "password": format!("guess {a} {n}")});
                statuses.push(common::post_from(&format!("127.0.2.{a}"), addr, "/api/sign-in", &guess).await);
                statuses.push(
                    common::post_from(&format!("127.0.3.{a}"), addr, "/api/sign-out", &json!({})).await,
                );
            }
            statuses
        }));
    }
    let started = Instant::now();
    let under_attack = round_trips(&mut ann, &mut bo, 20, 100).await;
    let own_sign_in = Instant::now();
    let _ann_again = member(&server, "ann", "ann's long password").await;
    let own_sign_in = own_sign_in.elapsed();
    let mut statuses = Vec::new();
    for stranger in strangers {
        statuses.extend(stranger.await.expect("a stranger"));
    }
    let attack = started.elapsed();

    let median = |all: &[Duration]| all[all.len() / 2];
    let worst = |all: &[Duration]| all[all.len() - 1];
    eprintln!(
        "round trip: baseline median {:?} worst {:?}; under attack median {:?} worst {:?}; \
         ann's own sign-in {own_sign_in:?}; {} attempts in {attack:?}",
        median(&baseline),
        worst(&baseline),
        median(&under_attack),
        worst(&under_attack),
        statuses.len()
    );
    assert!(
        statuses.iter().all(|s| [410, 401, 429, 200].contains(s)),
        "every attempt answered: {statuses:?}"
    );
    assert!(
        median(&under_attack) <= median(&baseline) + Duration::from_millis(50),
        "a member's round trip stays near its baseline"
    );
    assert!(worst(&under_attack) < Duration::from_millis(250), "no stall");
    assert!(own_sign_in < Duration::from_secs(2), "the real ann signs in from her own address at once");
    assert_eq!(
        (file_len(&db), file_len(&wal), store.backend().versions().expect("store")),
        written,
        "nothing a stranger sent was written"
    );
    std::fs::remove_dir_all(&dir).ok();
}
