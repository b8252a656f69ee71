//! HTTP: the embedded web client, the WebSocket endpoints and a health check.
//!
//! ```text
//!  GET /            WebSocket upgrade? ──yes──► signaling (MDN's client connects here)
//!                                      ──no───► index.html
//!  GET /ws          WebSocket upgrade (duet's own client); `?room=<room>` joins a room
//!  GET /r/<room>    index.html: the same client, in a private room
//!  GET /i/<token>   index.html: the client redeems the invite link (a GET changes
//!                   nothing, so link previews do not use up one-time links)
//!  /api/...         sign-in, sign-out, invites (see access::http)
//!  GET /healthz     "ok" while the process serves
//!  GET /readyz      200 "ready" once every listener is bound; 503 once shutdown began, so
//!                   a load balancer stops sending people here while calls are handed off
//!  GET /sw.js       the service worker, told this build's app shell (serve::shell)
//!  GET /<file>      a file from web/, compiled into the binary
//! ```
//!
//! Every request must name a host this server answers to (421 otherwise: DNS rebinding).
//! Every WebSocket upgrade passes the access check first: a foreign Origin gets 403, no
//! valid session (in password and members modes) 401, an invite for another room 403.
//!
//! Every response carries a strict Content-Security-Policy: the client is plain ES
//! modules from this origin, and user text is never interpreted as markup anyway.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use duet_signal::RoomName;
use tower_http::set_header::SetResponseHeaderLayer;

use super::shell::{serve_file, service_worker};
use crate::access::Access;
use crate::signaling::Signaling;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// What the routes share.
#[derive(Debug, Clone)]
pub struct Web {
    pub signaling: Arc<Signaling>,
    pub access: Arc<Access>,
    /// The listener serves HTTPS.
    pub tls: bool,
    /// Cancelled when shutdown begins: /readyz then says so.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// With ACME: until the CA's certificate is in place, /readyz and every page say why.
    pub certificates: Option<Arc<crate::acme::Certificates>>,
    /// Rings account holders' devices by push.
    pub pusher: Option<Arc<crate::push::Pusher>>,
}

/// The whole HTTP surface, ready for `axum::serve` or a test.
pub fn app(web: Web) -> Router {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(self), microphone=(self), display-capture=(self)",
        ),
    ];
    let mut router = Router::new()
        .route("/", get(root))
        .route("/ws", get(websocket))
        .route("/r/{room}", get(room_page))
        .route("/i/{token}", get(|headers: HeaderMap| async move { serve_file("index.html", &headers) }))
        .route("/sw.js", get(|| async { service_worker() }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(get(asset))
        .with_state(web.clone())
        .merge(crate::access::http::routes(
            web.access.clone(),
            web.signaling.clone(),
            web.tls,
            web.pusher.clone(),
        ))
        .layer(axum::middleware::from_fn_with_state(web.clone(), until_certified))
        .layer(axum::middleware::from_fn_with_state(web.clone(), known_host));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    router
}

/// Every request must be for a name this server answers to (DNS rebinding: a foreign
/// page whose name resolves here sends its own name in `Host`); 421 Misdirected Request
/// otherwise, on every route.
async fn known_host(
    State(web): State<Web>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match web.access.host_allowed(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(name) => {
            tracing::debug!("refused a request for the host name {name:?}");
            let words = format!(
                "This server does not answer to the name {name}. If people reach duet by that name, \
                 start it with --allowed-host {name}.\n"
            );
            (StatusCode::MISDIRECTED_REQUEST, words).into_response()
        }
    }
}

/// `?room=` of the WebSocket URL.
#[derive(Debug, serde::Deserialize)]
struct RoomQuery {
    #[serde(default)]
    room: String,
}

async fn room_page(Path(room): Path<String>, headers: HeaderMap) -> Response {
    match RoomName::new(&room) {
        Ok(_) => serve_file("index.html", &headers),
        Err(e) => (StatusCode::BAD_REQUEST, format!("That is not a room link: {e}.\n")).into_response(),
    }
}

async fn root(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
) -> Response {
    match ws {
        Ok(ws) => upgrade(&web, ws, &headers, peer, RoomName::lobby()),
        Err(_) => serve_file("index.html", &headers),
    }
}

/// A WebSocket upgrade that passed the access check becomes a signaling connection.
fn upgrade(
    web: &Web,
    ws: WebSocketUpgrade,
    headers: &HeaderMap,
    peer: SocketAddr,
    room: RoomName,
) -> Response {
    let client = web.access.client(peer.ip(), web.tls, headers);
    match web.access.admit_websocket(headers, client, &room) {
        Ok(admitted) => web.signaling.upgrade(ws, host(headers), room, client.ip, admitted),
        Err(refused) => {
            tracing::debug!(client = %client.ip, status = %refused.status, "WebSocket refused: {}", refused.message);
            (refused.status, format!("{}\n", refused.message)).into_response()
        }
    }
}

async fn websocket(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    query: Result<Query<RoomQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let room = match query.map(|q| RoomName::new(&q.room)) {
        Ok(Ok(room)) => room,
        Ok(Err(e)) => return (StatusCode::BAD_REQUEST, format!("bad room: {e}\n")).into_response(),
        Err(rejection) => return rejection.into_response(),
    };
    match ws {
        Ok(ws) => upgrade(&web, ws, &headers, peer, room),
        Err(rejection) => rejection.into_response(),
    }
}

/// Every listener was bound before the router ran (`main` binds, then serves), so being
/// asked at all means ready, until shutdown begins; with ACME, once the CA's certificate
/// is in place.
async fn ready(State(web): State<Web>) -> Response {
    if web.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    if let Some(why) = web.certificates.as_ref().and_then(|c| c.waiting()) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("waiting for a certificate: {why}\n"))
            .into_response();
    }
    "ready\n".into_response()
}

/// Until duet has its certificate, whoever gets through the stand-in's warning learns
/// why instead of getting a page that cannot work (health checks still answer).
async fn until_certified(
    State(web): State<Web>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let checks = matches!(request.uri().path(), "/healthz" | "/readyz");
    match web.certificates.as_ref().and_then(|c| c.waiting()) {
        Some(why) if !checks => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "30")],
            format!("duet is not ready yet: {why}.\nThis page works once the certificate is in place.\n"),
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

fn host(headers: &HeaderMap) -> Option<String> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned)
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    serve_file(uri.path().trim_start_matches('/'), &headers)
}
