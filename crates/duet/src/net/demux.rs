//! One port for everything: the web port also carries TURN over TCP and over TLS, so a
//! browser behind a firewall that lets only TCP 443 out still gets a relayed call.
//!
//! ```text
//!  first byte 0x00/0x01 (a STUN message) ────────────────► TURN over TCP
//!  first byte 0x16 (a TLS ClientHello) ──► handshake ─┬─ ALPN "stun.turn" ─► TURN over TLS
//!                                                     ├─ ALPN "http/1.1" ──► HTTPS
//!                                                     └─ no ALPN: first decrypted byte
//!                                                          0x00/0x01 ─► TURN over TLS, else HTTPS
//!  anything else ──► HTTP (plain), or the TLS handshake fails (HTTPS)
//! ```
//!
//! Browsers always offer ALPN for HTTPS, so a page load never waits on a peek; TURN
//! clients (browsers' `turns:` included) offer none and speak first. A connection that
//! says nothing within the header timeout is closed, as an idle HTTP one is.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::TurnHandoff;

/// The ALPN protocol id of TURN over TLS (RFC 7443).
pub const ALPN_TURN: &[u8] = b"stun.turn";

/// Whether a stream's first byte starts a STUN message: its two top bits are zero and
/// every method TURN uses keeps the rest of the first byte at 0 or 1 (HTTP starts with a
/// letter, TLS with 0x16).
fn starts_stun(first: u8) -> bool {
    first <= 0x01
}

/// What a web-port connection turned out to be, when it is the web's.
#[derive(Debug)]
pub enum Web {
    Plain(TcpStream),
    Tls(Box<Prefixed<TlsStream<TcpStream>>>),
}

/// Sorts a new connection: TURN streams are handed to `turn` (and `None` returned), the
/// rest comes back for HTTP. `None` also for one that sent nothing in time or failed its
/// TLS handshake.
pub async fn route(
    stream: TcpStream,
    client: SocketAddr,
    acceptor: Option<&tokio_rustls::TlsAcceptor>,
    turn: &dyn TurnHandoff,
    wait: Duration,
    slot: &mut crate::limits::Slot,
) -> Option<Web> {
    let server = stream.local_addr().ok()?;
    let mut first = [0u8; 1];
    match tokio::time::timeout(wait, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return None, // closed, or silent
    }
    if starts_stun(first[0]) {
        turn.serve(Box::new(stream), client, server, false);
        return None;
    }
    let Some(acceptor) = acceptor else { return Some(Web::Plain(stream)) };
    let tls = crate::net::accept::tls(acceptor, stream, client, slot).await?;
    match tls.get_ref().1.alpn_protocol() {
        Some(ALPN_TURN) => {
            turn.serve(Box::new(tls), client, server, true);
            None
        }
        Some(_) => Some(Web::Tls(Box::new(Prefixed::new(tls, Vec::new())))),
        None => {
            let mut tls = tls;
            let mut head = vec![0u8; 1];
            match tokio::time::timeout(wait, tls.read(&mut head)).await {
                Ok(Ok(1)) => {}
                _ => return None,
            }
            let stream = Prefixed::new(tls, head);
            if starts_stun(stream.prefix[0]) {
                turn.serve(Box::new(stream), client, server, true);
                None
            } else {
                Some(Web::Tls(Box::new(stream)))
            }
        }
    }
}

/// A stream with bytes already read from it put back in front.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(inner: S, prefix: Vec<u8>) -> Self {
        Self { prefix, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn stun_is_told_from_http_and_tls_by_its_first_byte() {
        // An Allocate request starts 0x00 0x03; a success response 0x01 0x03.
        assert!(starts_stun(0x00) && starts_stun(0x01));
        for other in [b'G', b'P', b'H', 0x16, 0x40, 0x7f, 0xff] {
            assert!(!starts_stun(other), "{other:#x}");
        }
    }

    #[tokio::test]
    async fn bytes_read_ahead_are_read_again_first() {
        let mut stream = Prefixed::new(&b"ET / HTTP/1.1"[..], b"G".to_vec());
        let mut all = String::new();
        stream.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "GET / HTTP/1.1");
    }
}
