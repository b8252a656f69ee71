//! Certificates by themselves, against a real ACME CA: Debian's `pebble` (Let's Encrypt's
//! test CA) with `pebble-challtestsrv` answering its DNS, and the real duet binary. Each
//! test runs in a network namespace of its own holding only loopback (`unshare --net`),
//! where duet takes ports 443 and 80 as a server would.
//!
//! pebble issues certificates that live 20 seconds, so renewal (with a third left) comes
//! within the test; it forgets everything when restarted, as a CA that lost its state.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use common::netns::inside_namespace;

const DOMAIN: &str = "call.duet.test";
/// How long pebble's certificates live.
const VALIDITY: u64 = 20;

/// A child process ended when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duet-acme-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// pebble and its DNS: names resolve to 127.0.0.1, challenges are checked on `tls_port`
/// (TLS-ALPN-01) and port 80 (HTTP-01).
struct Ca {
    dir: PathBuf,
    /// The root that signs pebble's own HTTPS (made here; duet's --acme-ca-root).
    https_root: PathBuf,
    _dns: Running,
    pebble: Option<Running>,
}

impl Ca {
    fn new(dir: &Path, tls_port: u16) -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("signed");
        let https_root = dir.join("pebble-https-root.pem");
        std::fs::write(&https_root, ca.pem()).expect("write");
        std::fs::write(dir.join("pebble.pem"), leaf.pem()).expect("write");
        std::fs::write(dir.join("pebble.key"), key.serialize_pem()).expect("write");
        let config = json!({"pebble": {
            "listenAddress": "127.0.0.1:14000",
            "managementListenAddress": "127.0.0.1:15000",
            "certificate": dir.join("pebble.pem"),
            "privateKey": dir.join("pebble.key"),
            "httpPort": 80,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": VALIDITY,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).expect("write");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", "127.0.0.1:8053", "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", "127.0.0.1:8055", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv runs (Debian's pebble: ./test.sh installs it)");
        Self { dir: dir.to_owned(), https_root, _dns: Running(dns), pebble: None }
    }

    fn start(&mut self) {
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(self.dir.join("pebble.json"))
            .args(["-dnsserver", "127.0.0.1:8053"])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble runs");
        self.pebble = Some(Running(pebble));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect("127.0.0.1:15000").is_err() {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        self.pebble = None;
    }

    /// The root pebble signs certificates under (made anew at each start).
    async fn root(&self) -> rustls::RootCertStore {
        let (status, pem) =
            get(15000, "localhost", Some(&roots_from_file(&self.https_root)), "/roots/0").await;
        assert_eq!(status, 200, "{pem}");
        roots_from_pem(pem.as_bytes())
    }
}

fn roots_from_file(path: &Path) -> rustls::RootCertStore {
    roots_from_pem(&std::fs::read(path).expect("read"))
}

fn roots_from_pem(pem: &[u8]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("a certificate")).expect("a usable root");
    }
    roots
}

/// The duet binary, with its log lines collected.
struct Duet {
    _child: Running,
    log: Arc<Mutex<Vec<String>>>,
}

impl Duet {
    fn start(state: &Path, ca: &Ca, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
            .args(["serve", "--no-metrics", "--no-echo", "--access", "open"])
            .args(["--acme-domain", DOMAIN, "--acme-email", "ops@duet.test"])
            .args(["--acme-directory", "https://127.0.0.1:14000/dir", "--acme-ca-root"])
            .arg(&ca.https_root)
            .arg("--state-dir")
            .arg(state)
            .args(args)
            .env("DUET_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start duet");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("duet prints its address");
        assert!(line.contains(&format!("https://{DOMAIN}")), "{line}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("not poisoned").push(line);
            }
        });
        Self { _child: Running(child), log }
    }

    /// Waits (at most `within`) for a log line holding `words`; returns it.
    async fn logged(&self, words: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log.lock().expect("not poisoned").iter().find(|l| l.contains(words)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no log line with {words:?} within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Accepts any certificate: for looking at the stand-in served before the CA's arrives.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection to 127.0.0.1:`port` for `name`, checked against `roots` (or not at all).
async fn tls(
    port: u16,
    name: &str,
    roots: Option<&rustls::RootCertStore>,
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    tls_for(port, name, roots, b"http/1.1").await
}

/// The same, asking for `alpn` (`stun.turn` for TURN over TLS).
async fn tls_for(
    port: u16,
    name: &str,
    roots: Option<&rustls::RootCertStore>,
    alpn: &[u8],
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions");
    let mut config = match roots {
        Some(roots) => builder.with_root_certificates(roots.clone()).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(name.to_owned()).expect("a name");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await
}

/// The certificate duet's HTTPS answers with, if it chains to `roots` for the domain.
async fn served(port: u16, roots: &rustls::RootCertStore) -> Result<Vec<u8>, std::io::Error> {
    served_for(port, roots, b"http/1.1").await
}

/// The certificate a TLS client asking for `alpn` gets.
async fn served_for(
    port: u16,
    roots: &rustls::RootCertStore,
    alpn: &[u8],
) -> Result<Vec<u8>, std::io::Error> {
    let stream = tls_for(port, DOMAIN, Some(roots), alpn).await?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn), "the protocol asked for");
    Ok(stream.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec())
}

/// GET `path` over HTTPS: status and body.
async fn get(port: u16, name: &str, roots: Option<&rustls::RootCertStore>, path: &str) -> (u16, String) {
    let mut stream = tls(port, name, roots).await.expect("a TLS connection");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    (status, body)
}

/// Waits (at most `within`) until duet serves a certificate chaining to `roots` other
/// than `old`; returns it.
async fn new_certificate(port: u16, roots: &rustls::RootCertStore, old: &[u8], within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(cert) = served(port, roots).await
            && cert != old
        {
            return cert;
        }
        assert!(Instant::now() < deadline, "no new certificate within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type Wss = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// A person signed in as `name` over WSS (the certificate checked against `roots`).
async fn signed_in(port: u16, roots: &rustls::RootCertStore, name: &str) -> Wss {
    let stream = tls(port, DOMAIN, Some(roots)).await.expect("TLS");
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("wss://{DOMAIN}/ws"), stream).await.expect("WSS");
    ws.send(json!({"type": "username", "name": name}).to_string().into()).await.expect("send");
    userlist_with(&mut ws, name).await;
    ws
}

/// Reads until a user list naming `name` arrives.
async fn userlist_with(ws: &mut Wss, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no user list with {name}"))
            .expect("the WebSocket is open")
            .expect("a message");
        let Ok(text) = message.to_text() else { continue };
        let Ok(value) = serde_json::from_str::<Value>(text) else { continue };
        if value["type"] == "userlist"
            && value["users"].as_array().is_some_and(|u| u.iter().any(|u| u == name))
        {
            return;
        }
    }
}

#[tokio::test]
async fn duet_gets_its_certificate_renews_it_under_an_open_call_and_rides_out_a_ca_outage() {
    if !inside_namespace(
        "duet_gets_its_certificate_renews_it_under_an_open_call_and_rides_out_a_ca_outage",
        "",
    ) {
        return;
    }
    let dir = temp_dir("tls-alpn");
    let state = dir.join("state");
    let mut ca = Ca::new(&dir, 443);
    // duet starts before the CA is up: it serves a stand-in and says why it is not ready.
    let with_turn = ["--listen", "127.0.0.1:443", "--turn-listen", "127.0.0.1:3478"];
    let duet = Duet::start(&state, &ca, &with_turn);
    duet.logged("cannot talk to the CA", Duration::from_secs(10)).await;
    let (status, body) = get(443, DOMAIN, None, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("waiting for a certificate") && body.contains("cannot talk to the CA"), "{body}");
    let (status, body) = get(443, DOMAIN, None, "/").await;
    assert_eq!(status, 503, "the page says why instead of half working: {body}");
    assert!(body.contains("not ready yet"), "{body}");

    // The CA comes up: duet gets a certificate by TLS-ALPN-01 on its HTTPS port.
    ca.start();
    let root = ca.root().await;
    let first = new_certificate(443, &root, &[], Duration::from_secs(30)).await;
    assert_eq!(get(443, DOMAIN, Some(&root), "/readyz").await, (200, "ready\n".to_owned()));
    let (status, page) = get(443, DOMAIN, Some(&root), "/").await;
    assert!(status == 200 && page.contains("<video"), "{status}: the app over the CA's certificate");

    // Two people online over WSS; the certificate is renewed with a third of its life left.
    let mut ann = signed_in(443, &root, "ann").await;
    let renewed = new_certificate(443, &root, &first, Duration::from_secs(VALIDITY + 10)).await;
    let _bo = signed_in(443, &root, "bo").await;
    userlist_with(&mut ann, "bo").await; // Ann's socket, opened before the renewal, still works
    // TURN over TLS uses it too: on its own port and on the web port.
    assert_eq!(served_for(5349, &root, b"stun.turn").await.expect("TURN's TLS port"), renewed);
    assert_eq!(served_for(443, &root, b"stun.turn").await.expect("TURN on the web port"), renewed);

    // The CA goes down: renewal fails, duet keeps serving what it has and says so.
    ca.stop();
    let failed =
        duet.logged("still serving the current certificate", Duration::from_secs(VALIDITY + 5)).await;
    assert!(failed.contains("cannot talk to the CA"), "{failed}");
    assert_eq!(served(443, &root).await.expect("still valid"), renewed);
    // Back up (empty, with a new root, as a CA that lost its state): duet catches up.
    ca.start();
    let root = ca.root().await;
    let third = new_certificate(443, &root, &renewed, Duration::from_secs(30)).await;
    let _cy = signed_in(443, &root, "cy").await;
    userlist_with(&mut ann, "cy").await;
    drop(duet);

    // The certificate is kept: a restarted duet is ready at once, without asking the CA.
    ca.stop();
    let kept = std::fs::read_dir(state.join("acme")).expect("acme folder").count();
    assert_eq!(kept, 1, "one folder for the one CA directory");
    let _again = Duet::start(&state, &ca, &["--listen", "127.0.0.1:443", "--no-turn"]);
    assert_eq!(get(443, DOMAIN, Some(&root), "/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(served(443, &root).await.expect("the kept one"), third);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn http_01_on_port_80_which_sends_everything_else_to_https() {
    if !inside_namespace("http_01_on_port_80_which_sends_everything_else_to_https", "") {
        return;
    }
    let dir = temp_dir("http-01");
    let mut ca = Ca::new(&dir, 443);
    ca.start();
    let root = ca.root().await;
    let args = [
        "--listen",
        "127.0.0.1:8443",
        "--acme-challenge",
        "http-01",
        "--http-redirect-listen",
        "127.0.0.1:80",
    ];
    let duet = Duet::start(&dir.join("state"), &ca, &args);
    new_certificate(8443, &root, &[], Duration::from_secs(30)).await;
    duet.logged("obtained a certificate for call.duet.test", Duration::from_secs(5)).await;
    assert_eq!(get(8443, DOMAIN, Some(&root), "/readyz").await.0, 200);

    // Plain HTTP on port 80 sends people to the same place over HTTPS.
    let mut stream = TcpStream::connect("127.0.0.1:80").await.expect("port 80");
    let request = format!("GET /r/family?x=1 HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 308"), "{response}");
    assert!(response.contains(&format!("location: https://{DOMAIN}:8443/r/family?x=1")), "{response}");
    // A Host header that would make the redirect point elsewhere is not believed.
    let mut stream = TcpStream::connect("127.0.0.1:80").await.expect("port 80");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: evil.example/x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.contains(&format!("location: https://{DOMAIN}:8443/")), "{response}");
    std::fs::remove_dir_all(&dir).ok();
}
