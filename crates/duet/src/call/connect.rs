//! Reaching the server from a terminal: TCP or TLS, signing in as the page does
//! (`POST /api/sign-in`, keeping the session cookie), then the signaling WebSocket.
//!
//! ```text
//!  --password / --account + --password / --invite LINK
//!        └─► POST /api/sign-in (hyper, one connection) ──► Set-Cookie, the session's name and room
//!  ws(s)://host/ws?room=… with Cookie ──► the WebSocket; 401 means "sign in first", in words
//! ```
//!
//! A terminal sends no `Origin`, so the server judges it by its session alone.

use std::net::IpAddr;
use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{CallArgs, CallError};

/// The signaling socket: plain TCP, or TLS for an https:// server.
pub(super) type Stream =
    tokio_util::either::Either<tokio::net::TcpStream, tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// What signing in gave: the cookie for the WebSocket, and the name and room the session
/// comes with (an account's, an invite's).
#[derive(Debug, Default)]
pub(super) struct SignedIn {
    cookie: Option<String>,
    pub(super) name: Option<String>,
    room: Option<String>,
}

/// Where the server is: `--server`, or the address of `--invite`'s link.
fn server(args: &CallArgs) -> String {
    match (&args.server, &args.invite) {
        (Some(server), _) => server.clone(),
        (None, Some(link)) if link.contains("/i/") => link.split("/i/").next().unwrap_or(link).to_owned(),
        (None, _) => "http://127.0.0.1:8080".to_owned(),
    }
}

/// Signs in with the credentials given, if any.
pub(super) async fn sign_in(args: &CallArgs) -> Result<SignedIn, CallError> {
    let body = match (&args.invite, &args.account, &args.password) {
        (Some(link), None, None) => {
            let token = link.rsplit("/i/").next().unwrap_or(link).trim_end_matches('/');
            json!({ "invite": token })
        }
        (None, Some(account), Some(password)) => json!({ "account": account, "password": password }),
        (None, Some(_), None) => {
            return Err(CallError::Usage("--account needs its password: --password or DUET_PASSWORD".into()));
        }
        (None, None, Some(password)) => json!({ "password": password }),
        (None, None, None) => return Ok(SignedIn::default()),
        (Some(_), _, _) => {
            return Err(CallError::Usage(
                "--invite signs in by itself: leave out --account and --password".into(),
            ));
        }
    };
    let server = server(args);
    let url = signaling_url(&server)?;
    let (stream, _) = open(&url, &server, args.ca.as_deref()).await?;
    let host = authority(&url).to_owned();
    let broken = |e: &dyn std::fmt::Display| CallError::Server(format!("signing in at {server} failed: {e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| broken(&e))?;
    tokio::spawn(connection);
    let request = hyper::Request::post("/api/sign-in")
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| broken(&e))?;
    let response = sender.send_request(request).await.map_err(|e| broken(&e))?;
    let status = response.status();
    let cookie = response
        .headers()
        .get(hyper::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = response.into_body().collect().await.map_err(|e| broken(&e))?.to_bytes();
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = answer["message"].as_str().unwrap_or("the server refused the sign-in");
        return Err(CallError::Server(format!("cannot sign in at {server}: {message}")));
    }
    let text = |key: &str| answer[key].as_str().map(str::to_owned);
    Ok(SignedIn { cookie, name: text("name"), room: text("room") })
}

/// Opens the signaling WebSocket as `signed_in`; returns it with our IP address on that
/// connection (the one to offer for media).
pub(super) async fn websocket(
    args: &CallArgs,
    signed_in: &SignedIn,
) -> Result<(tokio_tungstenite::WebSocketStream<Stream>, IpAddr), CallError> {
    let server = server(args);
    let mut url = signaling_url(&server)?;
    if let Some(room) = &signed_in.room {
        // An invite for a room: that room, whatever the address said.
        url = format!("{}?room={room}", url.split('?').next().unwrap_or(&url));
    }
    let (stream, local_ip) = open(&url, &server, args.ca.as_deref()).await?;
    let mut request =
        url.as_str().into_client_request().map_err(|e| CallError::Usage(format!("--server: {e}")))?;
    if let Some(cookie) = &signed_in.cookie {
        let value =
            cookie.parse().map_err(|_| CallError::Server("the server sent an unusable cookie".into()))?;
        request.headers_mut().insert(hyper::header::COOKIE, value);
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok((ws, local_ip)),
        Err(tungstenite::Error::Http(response)) if response.status() == 401 => {
            Err(CallError::Server(format!(
                "{server} lets in only people who sign in: pass --password (the server's or an account's, \
             with --account NAME), or --invite LINK"
            )))
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            Err(CallError::Server(format!(
                "{server} refused the connection: {} {}",
                response.status(),
                body.trim()
            )))
        }
        Err(e) => Err(CallError::Server(format!("cannot reach the duet server at {server}: {e}"))),
    }
}

/// The host and port of a ws(s):// address.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// A TCP (and, for wss://, TLS) connection to the host of `url`.
async fn open(url: &str, server: &str, ca: Option<&Path>) -> Result<(Stream, IpAddr), CallError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        CallError::Server(format!("cannot reach the duet server at {server}: {e}"))
    };
    let tls = url.starts_with("wss://");
    let host_port = authority(url);
    let has_port = host_port.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !host_port.ends_with(']');
    let target =
        if has_port { host_port.to_owned() } else { format!("{host_port}:{}", if tls { 443 } else { 80 }) };
    let tcp = tokio::net::TcpStream::connect(&target).await.map_err(|e| unreachable(&e))?;
    let local_ip = tcp.local_addr().map_err(|e| unreachable(&e))?.ip();
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok((tokio_util::either::Either::Left(tcp), local_ip));
    }
    let host = if has_port { host_port.rsplit_once(':').map_or(host_port, |(h, _)| h) } else { host_port };
    let host = host.trim_matches(['[', ']']);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| CallError::Usage(format!("--server: {host} is not a host name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls_config(ca)?));
    let stream = connector.connect(name, tcp).await.map_err(|e| {
        let hint = if ca.is_none() {
            " (for duet's self-signed certificate, pass --ca with the server's self-signed-cert.pem)"
        } else {
            ""
        };
        CallError::Server(format!("cannot reach the duet server at {server} over TLS: {e}{hint}"))
    })?;
    Ok((tokio_util::either::Either::Right(stream), local_ip))
}

/// Public authorities, plus `ca` when given.
fn tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, CallError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| CallError::Usage(format!("--ca {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(CallError::Usage(format!("--ca {}: no certificate in it", path.display())));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| CallError::Usage(format!("--ca {}: {e}", path.display())))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CallError::Usage(format!("TLS: {e}")))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

/// The page address (http, https, ws, wss) → the signaling WebSocket address, room kept.
fn signaling_url(server: &str) -> Result<String, CallError> {
    let (scheme, rest) = server.split_once("://").unwrap_or(("http", server));
    let scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(CallError::Usage(format!("--server: unknown scheme {other}://"))),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(CallError::Usage(format!("--server {server} names no host")));
    }
    let room = path.strip_prefix("r/").map(|r| r.trim_end_matches('/'));
    Ok(match room {
        Some(room) if !room.is_empty() => format!("{scheme}://{host}/ws?room={room}"),
        _ => format!("{scheme}://{host}/ws"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_become_signaling_urls_with_their_room() {
        assert_eq!(signaling_url("http://127.0.0.1:8080").ok(), Some("ws://127.0.0.1:8080/ws".into()));
        assert_eq!(
            signaling_url("localhost:9000/r/team").ok(),
            Some("ws://localhost:9000/ws?room=team".into())
        );
        assert_eq!(signaling_url("ws://h/r/x/").ok(), Some("ws://h/ws?room=x".into()));
        assert_eq!(
            signaling_url("https://duet.example/r/a").ok(),
            Some("wss://duet.example/ws?room=a".into())
        );
        assert!(signaling_url("ftp://h").is_err());
        assert!(signaling_url("http://").is_err());
    }
}
