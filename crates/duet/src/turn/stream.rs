//! TURN over TCP and TLS (`turn:...?transport=tcp`, `turns:`): a byte stream carrying
//! STUN messages and ChannelData frames back to back (RFC 8656 section 12.5).
//!
//! ```text
//!  socket ──read──► frames: STUN (20 + length) | ChannelData (4 + length, padded to 4)
//!         ◄─write── writer task ◄── bounded channel ◄── responses and relayed packets
//! ```
//!
//! A stream that sends something that is neither ends: there is no way to find the next
//! frame boundary in a byte stream after garbage. A stream exists for its allocation: one
//! that holds none [`ALLOCATION_DEADLINE`] after it opened (or after its allocation
//! went) is closed, so idle connections cost nothing for long. Each client address may
//! hold a bounded number of streams, and a stream's read buffer grows only as large as
//! the frames it carries.

use std::sync::Arc;
use std::time::Duration;

use duet_turn::framing::{FRAME_HEADER_LEN, MAX_FRAME_LEN, frame_len};
use duet_turn::{FiveTuple, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Shards, Shared};

/// Frames queued for one slow stream client before new ones are dropped.
const WRITE_QUEUE: usize = 512;
/// A stream must hold an allocation this long after it opens, and is checked as often.
pub(super) const ALLOCATION_DEADLINE: Duration = Duration::from_secs(10);

pub(super) async fn accept(shards: Shards, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    // Every shard holds the same limits, shutdown and task tracker.
    let any = Arc::clone(shards.first());
    while let Some((stream, client, mut slot)) =
        crate::net::accept::next(&listener, &any.stream_slots, &any.shutdown, "TURN").await
    {
        let Ok(server) = stream.local_addr() else { continue };
        let shard = Arc::clone(shards.for_client(client));
        match &acceptor {
            None => {
                slot.prove(); // no handshake; it must hold an allocation soon anyway
                let tuple = FiveTuple { client, server, transport: Transport::Tcp };
                any.tasks.spawn(async move {
                    serve(shard, stream, tuple).await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                any.tasks.spawn(async move {
                    let tuple = FiveTuple { client, server, transport: Transport::Tls };
                    if let Some(tls) = crate::net::accept::tls(&acceptor, stream, client, &mut slot).await {
                        serve(shard, tls, tuple).await;
                    }
                    drop(slot);
                });
            }
        }
    }
}

/// Hands TURN streams that arrived on another listener (the web port, see
/// `serve::http`) to this server, within the same per-address limit as its own.
#[derive(Debug, Clone)]
pub struct TurnStreams {
    pub(super) shards: Shards,
}

impl crate::net::TurnHandoff for TurnStreams {
    fn serve(
        &self,
        stream: Box<dyn crate::net::Stream>,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        tls: bool,
    ) {
        TurnStreams::serve(self, stream, client, server, tls);
    }
}

impl TurnStreams {
    /// Serves `stream`, a TURN client at `client` that reached `server` (over TLS when
    /// `tls`), until it ends.
    pub fn serve<S>(&self, stream: S, client: std::net::SocketAddr, server: std::net::SocketAddr, tls: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shard = Arc::clone(self.shards.for_client(client));
        let slot = match shard.stream_slots.acquire(client.ip()) {
            Ok(mut slot) => {
                slot.prove(); // its handshake, if any, is done
                slot
            }
            Err(refused) => {
                tracing::debug!(%client, "TURN stream on the web port refused: {refused:?} limit");
                return;
            }
        };
        let transport = if tls { Transport::Tls } else { Transport::Tcp };
        let tuple = FiveTuple { client, server, transport };
        let tasks = shard.tasks.clone();
        tasks.spawn(async move {
            serve(shard, stream, tuple).await;
            drop(slot);
        });
    }
}

async fn serve<S>(shared: Arc<Shared>, stream: S, tuple: FiveTuple)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    shared.lock().streams.insert(tuple, tx);
    let write = async {
        while let Some(frame) = rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    let read = async {
        let mut buf = Vec::new();
        loop {
            let Some(len) = read_frame(&mut reader, &mut buf).await else { break };
            shared.from_stream_client(tuple, &buf[..len]);
        }
    };
    let allocated = async {
        let mut check =
            tokio::time::interval_at(tokio::time::Instant::now() + ALLOCATION_DEADLINE, ALLOCATION_DEADLINE);
        loop {
            check.tick().await;
            if !shared.lock().server.has_allocation(&tuple) {
                tracing::debug!(client = %tuple.client, "TURN stream without an allocation; closing");
                return;
            }
        }
    };
    tokio::select! {
        () = shared.shutdown.cancelled() => {}
        () = read => {}
        () = write => {}
        () = allocated => {}
    }
    // The stream is gone: so are its writer and (RFC 8656 section 3.1) its allocation.
    let outcome = {
        let mut inner = shared.lock();
        inner.streams.remove(&tuple);
        inner.server.handle_stream_closed(tuple);
        Shared::drain(&mut inner)
    };
    shared.complete(outcome);
}

/// Reads one STUN message or ChannelData frame into `buf`, which grows to the largest
/// frame seen (at most [`MAX_FRAME_LEN`]); its length, or `None` at the end of the
/// stream or on garbage.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> Option<usize> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    reader.read_exact(&mut header).await.ok()?;
    // Garbage means the stream is out of step: there is no next boundary to find.
    let total = frame_len([header[0], header[1], header[2], header[3]]).ok()?;
    if !(FRAME_HEADER_LEN..=MAX_FRAME_LEN).contains(&total) {
        return None;
    }
    if buf.len() < total {
        buf.resize(total, 0);
    }
    buf[..FRAME_HEADER_LEN].copy_from_slice(&header);
    reader.read_exact(&mut buf[FRAME_HEADER_LEN..total]).await.ok()?;
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_split_on_stun_and_padded_channel_data_boundaries() {
        let mut stream: Vec<u8> = Vec::new();
        stream.extend_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        stream.extend_from_slice(&[7; 12]); // a 20-byte Binding request
        stream.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]); // 5 bytes + 3 padding
        stream.extend_from_slice(&[0xff, 0xff, 0, 0]); // garbage
        let mut reader = stream.as_slice();
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut reader, &mut buf).await, Some(20));
        assert_eq!(read_frame(&mut reader, &mut buf).await, Some(12));
        assert_eq!(&buf[..9], &[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5]);
        assert_eq!(read_frame(&mut reader, &mut buf).await, None, "garbage ends the stream");
    }

    #[tokio::test]
    async fn a_truncated_frame_ends_the_stream() {
        let mut reader: &[u8] = &[0x00, 0x01, 0x00, 0x08, 0x21, 0x12];
        assert_eq!(read_frame(&mut reader, &mut Vec::new()).await, None);
    }
}
