//! `duet turn`: only the STUN/TURN server (and its metrics), until Ctrl-C or SIGTERM.
//!
//! ```text
//!  browsers ──turn:/turns: with credentials from a signaling node──► duet turn
//!                                      (the same shared secret)      ├─ UDP threads, TCP, TLS
//!  Prometheus ──GET /metrics──────────────────────────────────────────┘  allocations, bytes
//! ```

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{TURN_NODE_CREDENTIAL_TTL, TlsSource, TurnNodeConfig};
use crate::serve::metrics::{self, Metrics};

/// Runs a TURN node with `config` until a shutdown signal.
pub async fn run(config: TurnNodeConfig) -> anyhow::Result<()> {
    let mut settings = config.turn;
    // A relay socket per allocation and a descriptor per stream: sized so that neither
    // can take the other's (or the metrics listener's) file descriptors.
    let open_files = crate::serve::raise_open_files();
    let room = usize::try_from(open_files.saturating_sub(64) / 2).unwrap_or(usize::MAX).max(1);
    settings.allocations_total = settings.allocations_total.min(room);
    settings.streams_total = settings.streams_total.min(room);
    let tls = match &config.tls {
        Some((cert, key)) => {
            crate::net::tls::server_config(&TlsSource::Files { cert: cert.clone(), key: key.clone() })?
        }
        None => None,
    };
    let shutdown = CancellationToken::new();
    let turn = crate::serve::start_turn(&settings, TURN_NODE_CREDENTIAL_TTL, tls, None, shutdown.clone())
        .await
        .context("start the TURN server")?;
    if let Some(at) = config.metrics
        && let Some(listener) = metrics::bind(at).await?
    {
        let figures = Arc::new(Metrics::new(None, Some(turn.monitor())));
        tokio::spawn(metrics::serve(listener, figures, shutdown.clone()));
    }
    // Printed on stdout (logs go to stderr) so scripts and tests can read the addresses.
    println!(
        "duet turn is listening on {} (UDP and TCP){}",
        turn.udp,
        turn.tls.map(|a| format!(", TLS on {a}")).unwrap_or_default()
    );
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    turn.closed().await;
    Ok(())
}
