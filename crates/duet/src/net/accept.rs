//! Taking TCP connections the way a public server must: within each client address's
//! share, with a bounded TLS handshake. The web port and TURN over TCP/TLS both do.
//!
//! ```text
//!  listener.accept ──error (out of file descriptors)──► back off, try again
//!        │ Slots::acquire(address) ──refused──► closed at once
//!        ▼
//!  (stream, client, Slot) ──TLS?──► handshake within HANDSHAKE_TIMEOUT, or dropped
//!        a Slot is "unproven" until the handshake is done (plain TCP: at once); when the
//!        unproven hold three quarters of the total, the oldest is evicted for a newcomer
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::limits::{Slot, Slots};

/// A TLS handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The next connection whose address has a place in `slots` (with Nagle off: the
/// messages are small and latency matters), or `None` once `shutdown` is cancelled.
/// `what` names the listener in logs.
pub async fn next(
    listener: &TcpListener,
    slots: &Slots,
    shutdown: &CancellationToken,
    what: &str,
) -> Option<(TcpStream, SocketAddr, Slot)> {
    loop {
        let (stream, client) = tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!("cannot accept a {what} connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        match slots.acquire(client.ip()) {
            Ok(slot) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
                return Some((stream, client, slot));
            }
            // Dropping the stream closes it.
            Err(refused) => tracing::debug!(%client, "{what} connection refused: {refused:?} limit"),
        }
    }
}

/// The TLS side of `stream`, if the client completes its handshake in time; its `slot`
/// is proven then.
pub async fn tls(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    client: SocketAddr,
    slot: &mut Slot,
) -> Option<TlsStream<TcpStream>> {
    let handshake = tokio::select! {
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => done,
        () = slot.evicted() => {
            tracing::debug!(%client, "TLS handshake evicted to make room");
            return None;
        }
    };
    match handshake {
        // A CA checking TLS-ALPN-01: the handshake was the whole answer.
        Ok(Ok(tls)) if tls.get_ref().1.alpn_protocol() == Some(crate::acme::ALPN_ACME) => None,
        Ok(Ok(tls)) => {
            slot.prove();
            Some(tls)
        }
        Ok(Err(e)) => {
            tracing::debug!(%client, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%client, "TLS handshake timed out");
            None
        }
    }
}
