//! Accepting web connections: the one place a TCP connection to the web port becomes
//! HTTP (or HTTPS), with the limits a public server needs.
//!
//! ```text
//!  accept ──► Slots::acquire(client address) ──refused──► closed at once
//!     │ with embedded TURN: STUN first? ALPN stun.turn? ──► TURN (see `demux`)
//!     │ (TLS: handshake within HANDSHAKE_TIMEOUT)
//!     ▼
//!  hyper HTTP/1.1: request headers within `header_timeout` (also between requests on a
//!  kept-alive connection), at most HEADER_BUFFER bytes of them ──► web::app
//!     │ WebSocket upgrade: the connection leaves HTTP for signaling (its own limits)
//!  shutdown ──► stop accepting; open requests finish within the grace period
//! ```
//!
//! Every request carries the client's address as axum's `ConnectInfo<SocketAddr>`.
//! Not done here: routing (`web`), WebSockets (`signaling`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::TurnHandoff;
use crate::limits::{HttpLimits, Slots};
use crate::net::demux::{self, Web};

/// Request headers larger than this are refused (431): duet's own requests carry a few
/// hundred bytes. It is also what an unfinished request can make duet hold.
const HEADER_BUFFER: usize = 16 * 1024;

/// How the web port is served.
#[derive(Debug)]
pub struct WebPort {
    /// HTTPS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: HttpLimits,
    /// Where each connection takes its place (per client address and in total).
    pub slots: Slots,
    /// How long open requests may finish after shutdown.
    pub grace: Duration,
    /// TURN streams on the same port, when the embedded server runs.
    pub turn: Option<std::sync::Arc<dyn TurnHandoff>>,
}

/// Serves `app` on `listener` until `shutdown`, then waits at most `port.grace` for open
/// requests.
pub async fn serve(listener: TcpListener, app: Router, port: WebPort, shutdown: CancellationToken) {
    let WebPort { tls, limits, slots, grace, turn } = port;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let tasks = TaskTracker::new();
    while let Some((stream, client, mut slot)) =
        crate::net::accept::next(&listener, &slots, &shutdown, "web").await
    {
        let (app, acceptor, shutdown, limits, turn) =
            (app.clone(), acceptor.clone(), shutdown.clone(), limits.clone(), turn.clone());
        tasks.spawn(async move {
            if acceptor.is_none() {
                slot.prove(); // no handshake to wait for; the header timeout bounds it
            }
            match (turn, acceptor) {
                // One port for everything: TURN streams go to the TURN server.
                (Some(turn), acceptor) => {
                    let header_timeout = limits.header_timeout;
                    match demux::route(stream, client, acceptor.as_ref(), &*turn, header_timeout, &mut slot)
                        .await
                    {
                        Some(Web::Plain(stream)) => {
                            serve_connection(stream, client, app, &limits, shutdown).await
                        }
                        Some(Web::Tls(stream)) => {
                            serve_connection(stream, client, app, &limits, shutdown).await
                        }
                        None => {}
                    }
                }
                (None, None) => serve_connection(stream, client, app, &limits, shutdown).await,
                (None, Some(acceptor)) => {
                    if let Some(tls) = crate::net::accept::tls(&acceptor, stream, client, &mut slot).await {
                        serve_connection(tls, client, app, &limits, shutdown).await;
                    }
                }
            }
            drop(slot);
        });
    }
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::debug!("some web requests did not finish within {grace:?}");
    }
}

async fn serve_connection<S>(
    stream: S,
    client: SocketAddr,
    app: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(client));
        request
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(HEADER_BUFFER);
    let connection =
        http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app)).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(client, result),
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            log_end(client, connection.await);
        }
    }
}

fn log_end(client: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(%client, "web connection ended: {e}");
    }
}
