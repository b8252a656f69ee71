//! `duet call` against a real duet server: two native peers call each other, one plays
//! files, the other records, and what was recorded is what was played.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TestServer;
use duet::call::{CallArgs, CallError, run};
use duet_peer::media::ivf::IvfReader;
use duet_peer::media::ogg::OggOpusReader;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(name)
}

fn args(server: &TestServer, name: &str) -> CallArgs {
    CallArgs {
        server: Some(format!("http://{}", server.addr)),
        name: Some(name.into()),
        password: None,
        account: None,
        invite: None,
        ca: None,
        to: None,
        play: Vec::new(),
        record: Vec::new(),
        looping: false,
        relay_only: false,
        wait: Duration::from_secs(10),
        fingerprints: Vec::new(),
    }
}

fn ivf_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut reader = IvfReader::new(std::fs::File::open(path).expect("open")).expect("an IVF file");
    std::iter::from_fn(|| reader.next_frame().expect("readable")).map(|f| f.data).collect()
}

fn ogg_packets(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut reader = OggOpusReader::new(std::fs::File::open(path).expect("open")).expect("an Ogg Opus file");
    std::iter::from_fn(|| reader.next_packet().expect("readable")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_peer_plays_the_other_records_frame_for_frame() {
    let server = TestServer::start().await;
    play_and_record(&server, false, "direct").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_calls_go_through_duet_s_turn_with_the_credentials_signaling_hands_out() {
    let server = TestServer::start_with_turn("a secret for duet call").await;
    play_and_record(&server, true, "relayed").await;
    // Neither side offered a host candidate: the frames that arrived came through relays.
    let metrics = common::http_get(server.metrics.expect("metrics are on"), "/metrics").await;
    let allocations = metrics
        .lines()
        .find_map(|l| l.strip_prefix("duet_turn_allocations_created_total ")?.trim().parse::<f64>().ok())
        .unwrap_or_default();
    assert!(allocations >= 2.0, "both sides allocated a relay ({allocations})\n{metrics}");
}

async fn play_and_record(server: &TestServer, relay_only: bool, label: &str) {
    let dir = std::env::temp_dir().join(format!("duet-call-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let (video_out, audio_out) = (dir.join("got.ivf"), dir.join("got.ogg"));

    let callee =
        CallArgs { record: vec![video_out.clone(), audio_out.clone()], relay_only, ..args(server, "bo") };
    let callee = tokio::spawn(run(callee));
    tokio::time::sleep(Duration::from_millis(300)).await; // bo signs in first
    let caller = CallArgs {
        to: Some("bo".into()),
        play: vec![fixture("pattern.ivf"), fixture("tone.ogg")],
        relay_only,
        ..args(server, "ann")
    };
    run(caller).await.expect("ann's call plays to the end");
    tokio::time::timeout(Duration::from_secs(10), callee)
        .await
        .expect("bo ends too")
        .expect("joined")
        .expect("bo's call went well");

    let (played, recorded) = (ivf_frames(&fixture("pattern.ivf")), ivf_frames(&video_out));
    assert_eq!(recorded.len(), played.len(), "every video frame arrived");
    assert!(recorded == played, "the frames arrived byte for byte");
    let (played, recorded) = (ogg_packets(&fixture("tone.ogg")), ogg_packets(&audio_out));
    assert_eq!(recorded.len(), played.len(), "every audio packet arrived");
    assert!(recorded == played, "the audio arrived byte for byte");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_broken_file_an_unreachable_server_and_a_declined_call_each_say_what_went_wrong() {
    let dir = std::env::temp_dir().join(format!("duet-call-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let broken = dir.join("broken.ivf");
    std::fs::write(&broken, b"DKIF\0\0 \0VP80").expect("write");
    let server = TestServer::start().await;

    let err = run(CallArgs { play: vec![broken], ..args(&server, "ann") }).await.expect_err("a broken file");
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string().contains("broken.ivf: the file ends in the middle of the IVF file header"),
        "{err}"
    );

    let err =
        run(CallArgs { play: vec![dir.join("song.mp3")], ..args(&server, "ann") }).await.expect_err("mp3");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains(".ivf (VP8 video) and .ogg/.opus"), "{err}");

    let nowhere = CallArgs { server: Some("http://127.0.0.1:9".into()), ..args(&server, "ann") };
    let err = run(nowhere).await.expect_err("nobody listens on port 9");
    assert!(
        matches!(err, CallError::Server(_)) && err.to_string().contains("cannot reach the duet server"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);

    let err = run(CallArgs { to: Some("ghost".into()), ..args(&server, "ann") }).await.expect_err("nobody");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("nobody called ghost is online"), "{err}");

    // bo declines: a ringing-aware client that says no.
    let (mut bo, _) = server.ringing_user("", "bo").await;
    let decliner = tokio::spawn(async move {
        let incoming = bo.expect_type("incoming-call").await;
        bo.send(serde_json::json!({"type": "decline", "callId": incoming["callId"]})).await;
        bo
    });
    let err = run(CallArgs { to: Some("bo".into()), ..args(&server, "cy") }).await.expect_err("declined");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("bo declined the call"), "{err}");
    decliner.await.expect("joined");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_self_signed_server_is_trusted_with_ca_and_refused_without() {
    let dir = std::env::temp_dir().join(format!("duet-call-tls-{}", std::process::id()));
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let tls = duet::net::tls::server_config(&duet::config::TlsSource::SelfSigned { dir: dir.clone(), names })
        .expect("a self-signed certificate")
        .expect("TLS on");
    let server =
        TestServer::start_with(duet::RunOptions { tls: Some(tls), ..duet::RunOptions::plain() }).await;
    let https = |name: &str, ca: bool| CallArgs {
        server: Some(format!("https://localhost:{}", server.addr.port())),
        ca: ca.then(|| dir.join("self-signed-cert.pem")),
        ..args(&server, name)
    };

    let err = run(CallArgs { to: Some("bo".into()), ..https("eve", false) }).await.expect_err("untrusted");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("pass --ca"), "{err}");

    let callee = tokio::spawn(run(https("bo", true)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caller = CallArgs { to: Some("bo".into()), play: vec![fixture("tone.ogg")], ..https("ann", true) };
    run(caller).await.expect("a call over wss");
    tokio::time::timeout(Duration::from_secs(10), callee)
        .await
        .expect("bo ends")
        .expect("joined")
        .expect("bo's call");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_members_server_duet_call_signs_in_with_an_account_or_an_invite_link() {
    use duet::access::Access;
    let dir = std::env::temp_dir().join(format!("duet-call-members-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    common::accounts::add(&dir, "bo", "bo's long password", false);
    let config =
        duet::config::AccessConfig { mode: duet_access::Mode::Members, ..duet::config::AccessConfig::open() };
    let access = std::sync::Arc::new(Access::new(config, Some(&dir)).expect("access"));
    let spec = duet_access::InviteSpec {
        room: None,
        name: Some(duet_signal::UserName::new("Kim").expect("valid")),
        ttl_ms: 600_000,
        uses: 1,
    };
    let (_, path) = access.invite(spec, ("cli", None)).await.expect("an invite");
    let server = TestServer::start_with(duet::RunOptions { access, ..duet::RunOptions::plain() }).await;

    let err = run(CallArgs { to: Some("bo".into()), ..args(&server, "eve") }).await.expect_err("no session");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("lets in only people who sign in"), "{err}");
    let wrong =
        CallArgs { account: Some("bo".into()), password: Some("a guess".into()), ..args(&server, "x") };
    let err = run(wrong).await.expect_err("a wrong password");
    assert!(err.to_string().contains("Wrong name or password"), "{err}");

    // bo waits under his account's name; Kim calls with her invite link alone.
    let bo = CallArgs {
        name: None,
        account: Some("bo".into()),
        password: Some("bo's long password".into()),
        record: vec![dir.join("heard.ogg")],
        ..args(&server, "")
    };
    let callee = tokio::spawn(run(bo));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kim = CallArgs {
        server: None,
        name: None,
        invite: Some(format!("http://{}{path}", server.addr)),
        to: Some("bo".into()),
        play: vec![fixture("tone.ogg")],
        ..args(&server, "")
    };
    run(kim).await.expect("Kim's call, signed in by her invite");
    tokio::time::timeout(Duration::from_secs(10), callee)
        .await
        .expect("bo ends")
        .expect("joined")
        .expect("bo's call");
    assert!(!ogg_packets(&dir.join("heard.ogg")).is_empty(), "bo heard Kim");
    std::fs::remove_dir_all(&dir).ok();
}
