//! Bind outside, run inside: [`run`] serves on a listener it is given until `shutdown`
//! is cancelled, so `main` and the tests start the very same server.
//!
//! ```text
//!  main ──bind──► TcpListener ──► run(listener, tls, shutdown)
//!                                   ├─ axum::serve / axum-server (TLS)
//!                                   └─ Signaling (connection tasks, timer)
//!  Ctrl-C / SIGTERM ──► shutdown.cancel() ──► clients get close 1001 ──► run returns
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use duet_signal::HubConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::signaling::Signaling;
use crate::web;

/// What `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// HTTPS and WSS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long to wait for connections to close after shutdown begins.
    pub shutdown_grace: Duration,
    pub hub: HubConfig,
}

/// Serves the web client and signaling on `listener` until `shutdown` is cancelled,
/// then tells every client and waits (at most `shutdown_grace`) for them to close.
pub async fn run(
    listener: TcpListener,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let signaling = Signaling::start(options.hub, shutdown.clone());
    let app = web::app(Arc::clone(&signaling));
    match options.tls {
        None => {
            // Signaling frames are small and latency matters: no Nagle delay.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await
                .context("serve HTTP")?;
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let std_listener = listener.into_std().context("prepare the TLS listener")?;
            let server = axum_server::tls_rustls::from_tcp_rustls(
                std_listener,
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            )
            .context("prepare the TLS listener")?
            .handle(handle.clone());
            let grace = options.shutdown_grace;
            let stop = shutdown.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                handle.graceful_shutdown(Some(grace));
            });
            server.serve(app.into_make_service()).await.context("serve HTTPS")?;
        }
    }
    // The HTTP server has stopped accepting; WebSocket tasks are saying goodbye.
    if tokio::time::timeout(options.shutdown_grace, signaling.closed()).await.is_err() {
        tracing::warn!("some connections did not close within {:?}", options.shutdown_grace);
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
