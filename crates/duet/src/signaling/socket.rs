//! One WebSocket's plumbing: the outbox the hub's frames wait in, what both sides count,
//! batched writes, and why a connection ended (which decides its close frame).
//!
//! ```text
//!  Shared::dispatch ──push──► Outbox (≤ OUTBOX_CAPACITY frames, ≤ OUTBOX_BYTES) ──► write_batch ──► socket
//!  ending ──► close_frame: 1009 too large, 1008 too slow, 1001 shutting down, 4001 signed out,
//!            1012 moved to another node, 1013 no node can serve the room now
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use duet_signal::Payload;
use futures_util::SinkExt;
use tokio::sync::mpsc;

/// Frames waiting to be written to one slow client before it is disconnected. A call
/// setup is a few dozen frames; a user-list burst is one frame.
pub(super) const OUTBOX_CAPACITY: usize = 256;

/// Bytes waiting to be written to one client before it is disconnected: a frame may be
/// 64 KiB, so frames alone do not bound memory. Shared frames (a user list) are counted
/// once per recipient.
pub(super) const OUTBOX_BYTES: usize = 1024 * 1024;

/// A write to a client's socket (a batch of frames) that takes longer than this means the
/// client stopped reading: it is closed.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the goodbye (close frame) may take.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Close code for a session the server ended (sign-out, revoked account or invite): the
/// page must not reconnect and resume, but sign in again. (4000-4999: the application's.)
pub(super) const SIGNED_OUT: u16 = 4001;

/// Where the hub's frames for one connection go. Only the shared state holds it: removing
/// it closes the channel, which ends the connection task.
#[derive(Debug)]
pub(super) struct Outbox {
    pub(super) frames: mpsc::Sender<Payload>,
    /// Shared with the connection task.
    pub(super) meter: Arc<Meter>,
}

/// What the shared state and a connection task both keep count of.
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// Bytes queued and not yet written.
    pub(super) queued: AtomicUsize,
    /// When the client was last heard from (any frame, pongs included), in milliseconds
    /// since [`Signaling::epoch`].
    pub(super) heard: AtomicU64,
    /// Set when the session was ended by the server (signed out, revoked): the task
    /// closes the socket with 4001 instead of 1008.
    pub(super) ended: AtomicBool,
    /// Set when the connection's room is served by another node now (or its owner died):
    /// the task closes the socket with 1012, and the page reconnects and resumes there.
    pub(super) moved: AtomicBool,
}

impl Outbox {
    /// Queues `payload`; false when the client is too far behind to take it.
    pub(super) fn push(&self, payload: Payload) -> bool {
        let len = payload.len();
        if self.meter.queued.load(Ordering::Relaxed) + len > OUTBOX_BYTES {
            return false;
        }
        if self.frames.try_send(payload).is_err() {
            return false;
        }
        self.meter.queued.fetch_add(len, Ordering::Relaxed);
        true
    }
}

/// Why a connection task ended, which decides the close frame sent and whether the
/// session may be resumed.
pub(super) enum Ending {
    /// The client sent a close frame: it left on purpose.
    ClientLeft,
    /// The socket broke or ended without a close frame: the client may come back.
    Lost,
    TooLarge,
    TooSlow,
    ShuttingDown,
    /// The session was signed out or revoked: not to be resumed.
    SignedOut,
    /// The room moved to another node, or the node serving it died: reconnect.
    Moved,
    /// No node could be found to serve the room (Redis away): try again soon.
    Unavailable,
}

/// Writes `first` and whatever else is already queued, then flushes once: under load a
/// busy client gets several frames per system call.
async fn write_batch(
    socket: &mut WebSocket,
    first: Payload,
    inbox: &mut mpsc::Receiver<Payload>,
    meter: &Meter,
) -> Result<(), axum::Error> {
    let mut written = first.len();
    socket.feed(text(first)).await?;
    for _ in 0..32 {
        match inbox.try_recv() {
            Ok(payload) => {
                written += payload.len();
                socket.feed(text(payload)).await?;
            }
            Err(_) => break,
        }
    }
    meter.queued.fetch_sub(written, Ordering::Relaxed);
    socket.flush().await
}

/// [`write_batch`] within [`WRITE_TIMEOUT`]; why the connection ends if it failed.
pub(super) async fn deliver(
    socket: &mut WebSocket,
    first: Payload,
    inbox: &mut mpsc::Receiver<Payload>,
    meter: &Meter,
) -> Result<(), Ending> {
    match tokio::time::timeout(WRITE_TIMEOUT, write_batch(socket, first, inbox, meter)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ending::Lost),
        Err(_) => Err(Ending::TooSlow),
    }
}

/// Why the shared state dropped a connection's outbox, as its meter says: signed out,
/// moved to another node, or (with neither) too slow to keep up.
pub(super) fn outbox_dropped(meter: &Meter) -> Ending {
    if meter.ended.load(Ordering::Relaxed) {
        Ending::SignedOut
    } else if meter.moved.load(Ordering::Relaxed) {
        Ending::Moved
    } else {
        Ending::TooSlow
    }
}

/// The outbox entry that stands for a WebSocket ping: the hub only ever sends JSON, so an
/// empty payload cannot be confused with a message.
pub(super) const KEEPALIVE: &str = "";

fn text(payload: Payload) -> Message {
    if &*payload == KEEPALIVE {
        return Message::Ping(Default::default());
    }
    Message::Text(Utf8Bytes::from(&*payload))
}

pub(super) fn classify(error: &axum::Error) -> Ending {
    // axum wraps tungstenite's error; a frame or message over the limit is the only one
    // that gets an answer (1009) rather than silence.
    let inner = std::error::Error::source(error).and_then(|e| e.downcast_ref::<tungstenite::Error>());
    match inner {
        Some(tungstenite::Error::Capacity(_)) => Ending::TooLarge,
        _ => Ending::Lost,
    }
}

pub(super) fn close_frame(ending: &Ending) -> Option<CloseFrame> {
    let (code, reason) = match ending {
        Ending::ClientLeft | Ending::Lost => return None,
        Ending::TooLarge => (close_code::SIZE, "message larger than 64 KiB"),
        Ending::TooSlow => (close_code::POLICY, "too slow to receive messages"),
        Ending::ShuttingDown => (close_code::AWAY, "server shutting down"),
        Ending::SignedOut => (SIGNED_OUT, "signed out"),
        Ending::Moved => (close_code::RESTART, "reconnect: served by another node now"),
        Ending::Unavailable => (close_code::AGAIN, "try again: no node can serve this room now"),
    };
    Some(CloseFrame { code, reason: reason.into() })
}
