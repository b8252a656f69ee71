//! Network plumbing, shared by the web port and TURN's streams: taking connections within
//! each address's share (accept), one HTTP(S) accept loop with its limits (http), one port
//! for web and TURN told apart by their first bytes or ALPN (demux), and TLS
//! configurations from certificate files or a kept self-signed one (tls).
//!
//! ```text
//!  TcpListener ──► accept::next (limits per address) ──► http::serve
//!                        └─ demux::route: STUN first byte or ALPN stun.turn ──► TURN
//!                                          else ──► HTTP(S) ──► serve::web
//! ```
//!
//! Nothing here knows what is served: routes are `serve`'s, signaling is `signaling`'s,
//! and a TURN stream found on the web port goes to whatever [`TurnHandoff`] is given.

pub mod accept;
pub mod demux;
pub mod http;
pub mod tls;

/// A byte stream, whatever carries it (plain TCP, TLS, bytes read ahead put back).
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// Where TURN streams that arrived on the web port go (the TURN server's streams).
pub trait TurnHandoff: Send + Sync + std::fmt::Debug {
    /// Serves `stream`, a TURN client at `client` that reached `server` (over TLS when
    /// `tls`), until it ends.
    fn serve(
        &self,
        stream: Box<dyn Stream>,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        tls: bool,
    );
}
