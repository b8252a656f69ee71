//! Debian's coturn tools, an independent TURN implementation, against duet's TURN server:
//! `turnutils_uclient` relays through duet to `turnutils_peer` (an echo peer) over UDP,
//! TCP and TLS, with channels and with Send indications, using ephemeral credentials;
//! `turnutils_stunclient` reads its reflexive address; wrong secrets and forbidden peers
//! fail. ./test.sh installs the tools (Debian's `coturn` package).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use duet::config::{EmbeddedTurn, TlsSource};
use duet::serve::start_turn;
use duet::turn::{PortRange, Turn};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

mod common;

use common::coturn::{assert_all_echoed, free_udp_port, tail, tool, uclient};

const SECRET: &str = "a shared secret of some length";

struct Fixture {
    turn: Turn,
    shutdown: CancellationToken,
    peer: Child,
    peer_port: u16,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = self.peer.start_kill();
    }
}

async fn start(dangerous_allow_loopback_peers: bool) -> Fixture {
    start_on("127.0.0.1", dangerous_allow_loopback_peers).await
}

async fn start_on(host: &str, dangerous_allow_loopback_peers: bool) -> Fixture {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let state = std::env::temp_dir().join(format!("duet-turn-tls-{}-{n}", std::process::id()));
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let tls =
        duet::net::tls::server_config(&TlsSource::SelfSigned { dir: state, names }).expect("a certificate");
    let listen = SocketAddr::new(host.parse().expect("an IP"), 0);
    let settings = EmbeddedTurn {
        relay_ports: PortRange(20_000..=30_000),
        peer_policy: duet_turn::policy::PeerPolicy { dangerous_allow_loopback_peers, ..Default::default() },
        ..common::embedded_turn(listen, SECRET)
    };
    let shutdown = CancellationToken::new();
    let turn = start_turn(&settings, Duration::from_secs(600), tls, None, shutdown.clone())
        .await
        .expect("TURN starts");
    let peer_port = free_udp_port(host);
    let peer = tool("turnutils_peer")
        .args(["-L", host, "-p", &peer_port.to_string()])
        .spawn()
        .expect("start turnutils_peer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    Fixture { turn, shutdown, peer, peer_port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_relays_every_packet_over_udp_with_channels_and_with_send_indications() {
    let f = start(true).await;
    let run = uclient(f.turn.udp, SECRET, "127.0.0.1", f.peer_port, &[]).await;
    assert_all_echoed(&run, "UDP, channels");
    let run = uclient(f.turn.udp, SECRET, "127.0.0.1", f.peer_port, &["-s"]).await;
    assert_all_echoed(&run, "UDP, Send indications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_relays_every_packet_over_tcp() {
    let f = start(true).await;
    let run = uclient(f.turn.tcp.expect("a TCP listener"), SECRET, "127.0.0.1", f.peer_port, &["-t"]).await;
    assert_all_echoed(&run, "TCP, channels");
    let run =
        uclient(f.turn.tcp.expect("a TCP listener"), SECRET, "127.0.0.1", f.peer_port, &["-t", "-s"]).await;
    assert_all_echoed(&run, "TCP, Send indications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_relays_every_packet_over_tls() {
    let f = start(true).await;
    let tls = f.turn.tls.expect("TLS is on");
    // -S alone would be DTLS over UDP (which browsers never use); -t -S is TLS over TCP.
    let run = uclient(tls, SECRET, "127.0.0.1", f.peer_port, &["-t", "-S"]).await;
    assert_all_echoed(&run, "TLS, channels");
    let run = uclient(tls, SECRET, "127.0.0.1", f.peer_port, &["-t", "-S", "-s"]).await;
    assert_all_echoed(&run, "TLS, Send indications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_gets_no_allocation() {
    let f = start(true).await;
    let run = uclient(f.turn.udp, "not the secret at all", "127.0.0.1", f.peer_port, &[]).await;
    assert!(!run.success, "a wrong secret must fail:\n{}", tail(&run.output));
    assert_eq!(f.turn.allocation_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_and_unspecified_peers_are_refused_without_the_dangerous_option() {
    let f = start(false).await;
    for peer in ["127.0.0.1", "0.0.0.0", "::ffff:127.0.0.1"] {
        let run = uclient(f.turn.udp, SECRET, peer, f.peer_port, &[]).await;
        assert!(!run.success, "peer {peer} must be refused:\n{}", tail(&run.output));
        // 403 from the peer policy; for the IPv6 form uclient asks for an IPv6 relay,
        // which a server listening on 127.0.0.1 has none of (508); on an IPv6 relay it
        // gets 403 (see ipv4_mapped_loopback_is_refused_on_an_ipv6_relay).
        let refused = ["403", "443", "508"].iter().any(|code| run.output.contains(code));
        assert!(refused, "peer {peer}:\n{}", tail(&run.output));
    }
    assert!(f.turn.stats().peer_denied >= 2, "{:?}", f.turn.stats());
    let run = uclient(f.turn.udp, SECRET, "127.0.0.1", f.peer_port, &["-s"]).await;
    assert!(!run.success, "Send indications to a refused peer relay nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stunclient_learns_its_reflexive_address() {
    let f = start(true).await;
    let out = tool("turnutils_stunclient")
        .args(["-p", &f.turn.udp.port().to_string(), "127.0.0.1"])
        .output()
        .await
        .expect("stunclient runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("reflexive addr: 127.0.0.1:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_relays_every_packet_over_ipv6() {
    let f = start_on("::1", true).await;
    let run = uclient(f.turn.udp, SECRET, "::1", f.peer_port, &[]).await;
    assert_all_echoed(&run, "IPv6 UDP, channels");
    let run = uclient(f.turn.tcp.expect("a TCP listener"), SECRET, "::1", f.peer_port, &["-t"]).await;
    assert_all_echoed(&run, "IPv6 TCP, channels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_mapped_loopback_is_refused_on_an_ipv6_relay() {
    let f = start_on("::1", false).await;
    for peer in ["::ffff:127.0.0.1", "::1", "::"] {
        let run = uclient(f.turn.udp, SECRET, peer, f.peer_port, &[]).await;
        assert!(!run.success, "peer {peer} must be refused:\n{}", tail(&run.output));
        assert!(run.output.contains("403"), "peer {peer}:\n{}", tail(&run.output));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_over_tls_refuses_anything_older_than_tls_1_2() {
    let f = start(true).await;
    let tls = f.turn.tls.expect("TLS is on").to_string();
    // SECLEVEL=0 lets the client offer old versions, so the refusal is the server's.
    let handshake = |version: &'static str| {
        let tls = tls.clone();
        async move {
            let out = Command::new("openssl")
                .args(["s_client", version, "-cipher", "DEFAULT@SECLEVEL=0", "-connect", &tls])
                .stdin(Stdio::null())
                .output()
                .await
                .expect("openssl runs");
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
        }
    };
    let modern = handshake("-tls1_2").await;
    assert!(modern.contains("New, TLSv1.2, Cipher is ECDHE"), "{modern}");
    for old in ["-tls1", "-tls1_1"] {
        let out = handshake(old).await;
        assert!(
            out.contains("alert handshake failure") || out.contains("alert protocol version"),
            "{old}:\n{out}"
        );
        assert!(out.contains("Cipher is (NONE)"), "{old} must not be negotiated:\n{out}");
    }
}
