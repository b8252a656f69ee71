//! One port for everything: with HTTPS on, the web port also carries TURN over TCP and
//! over TLS. coturn's `turnutils_uclient` relays through it both ways while HTTPS and
//! WSS go on beside it, and garbage first bytes harm nothing.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::coturn::{assert_all_echoed, free_udp_port, tool, uclient};
use common::embedded_turn;
use duet::config::{IceSettings, TlsSource, TurnMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "one port for everything";

struct OnePort {
    web: SocketAddr,
    cert: std::path::PathBuf,
    shutdown: CancellationToken,
    _peer: tokio::process::Child,
    peer_port: u16,
}

impl Drop for OnePort {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(test: &str) -> OnePort {
    start_with(test, true, duet::limits::HttpLimits::default()).await.0
}

/// The server, with or without TURN's own TCP and TLS listeners, with `http` limits on
/// the web port; also the ICE servers a browser on the web port is handed.
async fn start_with(
    test: &str,
    stream_listeners: bool,
    http: duet::limits::HttpLimits,
) -> (OnePort, serde_json::Value) {
    let state = std::env::temp_dir().join(format!("duet-one-port-{test}-{}", std::process::id()));
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let tls = duet::net::tls::server_config(&TlsSource::SelfSigned { dir: state.clone(), names })
        .expect("a certificate")
        .expect("TLS on");
    let shutdown = CancellationToken::new();
    let mut turn = embedded_turn("127.0.0.1:0".parse().expect("literal"), SECRET);
    turn.relay_ports = duet::turn::PortRange(31_000..=33_000);
    turn.stream_listeners = stream_listeners;
    let settings = IceSettings { host: None, ttl: Duration::from_secs(600) };
    let (turn, ice) = duet::serve::start_ice(
        &TurnMode::Embedded(Box::new(turn)),
        &settings,
        Some(Arc::clone(&tls)),
        shutdown.clone(),
    )
    .await
    .expect("TURN starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let web = listener.local_addr().expect("bound");
    let running = turn.as_ref().expect("TURN runs");
    assert_eq!(running.tcp.is_some(), stream_listeners, "TURN's own TCP listener");
    assert_eq!(running.tls.is_some(), stream_listeners, "TURN's own TLS listener");
    let handed = ice.message(Some(&web.to_string()), "probe-1").expect("ICE servers");
    let handed: serde_json::Value = serde_json::from_str(&handed).expect("JSON");
    let options = duet::RunOptions { tls: Some(tls), ice, turn, http, ..duet::RunOptions::plain() };
    tokio::spawn(duet::run(listener, options, shutdown.clone()));
    let peer_port = free_udp_port("127.0.0.1");
    let peer =
        tool("turnutils_peer").args(["-L", "127.0.0.1", "-p", &peer_port.to_string()]).spawn().expect("peer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let port = OnePort { web, cert: state.join("self-signed-cert.pem"), shutdown, _peer: peer, peer_port };
    (port, handed["iceServers"][1]["urls"].clone())
}

/// An HTTPS GET through rustls that trusts the server's certificate: the status line.
async fn https_get(port: &OnePort, path: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&port.cert).expect("the certificate") {
        roots.add(cert.expect("a certificate")).expect("added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()]; // as a browser offers
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(port.web).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut tls = connector.connect(name, tcp).await.expect("a TLS handshake");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_over_tcp_and_tls_share_the_https_port_with_the_web() {
    let port = start("share").await;
    let run = uclient(port.web, SECRET, "127.0.0.1", port.peer_port, &["-t"]).await;
    assert_all_echoed(&run, "TURN over TCP on the web port");
    let run = uclient(port.web, SECRET, "127.0.0.1", port.peer_port, &["-t", "-S"]).await;
    assert_all_echoed(&run, "TURN over TLS on the web port");
    assert_eq!(https_get(&port, "/healthz").await, "HTTP/1.1 200 OK", "HTTPS is served beside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_first_bytes_close_that_connection_and_nothing_else() {
    let port = start("garbage").await;
    for garbage in
        [&[0xffu8, 0xfe, 0x00, 0x13][..], &[0x00, 0x03, 0xff, 0xff, 0, 0, 0, 0], b"\x16\x03\x01junk"]
    {
        let mut tcp = tokio::net::TcpStream::connect(port.web).await.expect("connect");
        tcp.write_all(garbage).await.expect("write");
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a connection starting {garbage:02x?} is closed");
    }
    assert_eq!(https_get(&port, "/healthz").await, "HTTP/1.1 200 OK", "others are served");
    let run = uclient(port.web, SECRET, "127.0.0.1", port.peer_port, &["-t", "-S"]).await;
    assert_all_echoed(&run, "TURN over TLS after the garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_separate_listeners_off_the_web_port_is_the_only_way_in_over_tcp() {
    let (port, urls) = start_with("web-only", false, duet::limits::HttpLimits::default()).await;
    let web_turns = format!("turns:127.0.0.1:{}?transport=tcp", port.web.port());
    let udp = urls[0].as_str().expect("a URL").to_owned();
    assert!(udp.starts_with("turn:127.0.0.1:") && udp.ends_with("?transport=udp"), "{urls}");
    assert_eq!(urls.as_array().map(Vec::len), Some(2), "UDP, and TLS on the web port only: {urls}");
    assert_eq!(urls[1], serde_json::json!(web_turns));
    let run = uclient(port.web, SECRET, "127.0.0.1", port.peer_port, &["-t", "-S"]).await;
    assert_all_echoed(&run, "TURN over TLS on the web port, the only TCP way in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_tls_handshakes_from_many_addresses_never_keep_a_visitor_out() {
    let http = duet::limits::HttpLimits { total: 40, ..Default::default() };
    let (port, _) = start_with("half-sent", true, http).await;
    // 33 addresses send the first bytes of a ClientHello, four connections each (more
    // than the web port's total), and say no more.
    let partial_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    let mut stalled = Vec::new();
    for a in 1..=33 {
        for _ in 0..4 {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(format!("127.0.6.{a}:0").parse().expect("an address")).expect("bind");
            let Ok(mut stream) = socket.connect(port.web).await else { continue };
            let _ = stream.write_all(&partial_hello).await;
            stalled.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let visit = tokio::time::timeout(Duration::from_secs(5), https_get(&port, "/healthz"));
    assert_eq!(visit.await.expect("served in time"), "HTTP/1.1 200 OK", "a visitor gets in");
    assert_eq!(https_get(&port, "/healthz").await, "HTTP/1.1 200 OK", "and the next one");
}
