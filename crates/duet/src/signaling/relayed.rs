//! A client whose room another node serves: this node keeps its WebSocket (access,
//! pings, limits on the socket) and relays its frames to the room's owner over Redis,
//! where the owner's hub sees an ordinary connection (see `serve::cluster`).
//!
//! ```text
//!   socket ──text──► relay task ──Text──► owner's channel
//!   socket ◄──────── relay task ◄── link outbox ◄── Deliver (from the owner)
//!   ends: client left/lost ─► Close to the owner │ owner dropped it or died ─► close 1012
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use duet_access::{Admitted, Session};
use duet_signal::{Admission, RoomName};
use tokio::sync::mpsc;

use crate::cluster::wire::{self, NodeId, Opening};
use crate::limits::Slot;
use crate::signaling::Signaling;
use crate::signaling::socket::{
    CLOSE_TIMEOUT, Ending, Meter, OUTBOX_CAPACITY, Outbox, classify, close_frame, deliver, outbox_dropped,
};

/// How long the owner has to answer a relayed client's arrival (its hub's `id`) before
/// the client is told to try again.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);

/// A relayed client, as the relaying node keeps it.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) owner: NodeId,
    pub(super) outbox: Outbox,
    /// The session the socket came with, checked again when sessions change.
    pub(super) session: Option<Session>,
}

/// Where a relayed socket goes.
#[derive(Debug)]
pub(super) struct Relayed {
    pub(super) owner: NodeId,
    pub(super) room: RoomName,
    pub(super) host: Option<String>,
    pub(super) admitted: Option<Box<Admitted>>,
}

/// No node can serve the room now (Redis is away and this node does not own it): the
/// page is told to try again, which it does with its usual backoff.
pub(super) async fn refuse(mut socket: WebSocket) {
    if let Some(frame) = close_frame(&Ending::Unavailable) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
}

impl Signaling {
    /// Serves a socket whose room `to.owner` serves, until it ends.
    pub(super) async fn serve_relayed(self: Arc<Self>, mut socket: WebSocket, to: Relayed, slot: Slot) {
        let Some(cluster) = self.cluster.clone() else { return };
        let address = slot.ip();
        let link = cluster.new_link();
        let (frames, mut inbox) = mpsc::channel(OUTBOX_CAPACITY);
        let meter = Arc::new(Meter::default());
        meter.heard.store(self.millis(), Ordering::Relaxed);
        let (admission, session) = match to.admitted {
            Some(admitted) => (admitted.admission, Some(admitted.session)),
            None => (Admission::Guest, None),
        };
        let owner = to.owner;
        let outbox = Outbox { frames, meter: Arc::clone(&meter) };
        self.lock().nodes.links.insert(link, Link { owner: owner.clone(), outbox, session });
        let from = cluster.node().clone();
        // An owner that dies before this node heard it beat is found dead all the same.
        cluster.expect(&owner, std::time::Instant::now());
        let open = Opening { room: to.room, address, admission, host: to.host };
        cluster.send(&owner, &wire::Message::Open { from: from.clone(), link, open: Box::new(open) });
        tracing::debug!(link, %owner, "relaying a client to the room's node");
        let mut opened = false;
        let ending = loop {
            let wait = async {
                if opened {
                    inbox.recv().await
                } else {
                    tokio::time::timeout(OPEN_TIMEOUT, inbox.recv()).await.unwrap_or(None)
                }
            };
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break Ending::ShuttingDown,
                out = wait => match out {
                    Some(payload) => {
                        opened = true;
                        if let Err(ending) = deliver(&mut socket, payload, &mut inbox, &meter).await {
                            break ending;
                        }
                    }
                    None if !opened => break Ending::Unavailable,
                    None => break outbox_dropped(&meter),
                },
                frame = socket.recv() => {
                    meter.heard.store(self.millis(), Ordering::Relaxed);
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            cluster.send(&owner, &wire::Message::Text { from: from.clone(), link, text: text.as_str().to_owned() });
                        }
                        // The owner's hub answers a binary frame with its error, as for any client.
                        Some(Ok(Message::Binary(_))) => {
                            cluster.send(&owner, &wire::Message::Text { from: from.clone(), link, text: String::new() });
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) => break Ending::ClientLeft,
                        None => break Ending::Lost,
                        Some(Err(e)) => break classify(&e),
                    }
                }
            }
        };
        self.lock().nodes.links.remove(&link);
        let lost = match ending {
            Ending::ClientLeft | Ending::TooLarge | Ending::SignedOut => Some(false),
            Ending::Lost | Ending::TooSlow | Ending::ShuttingDown | Ending::Unavailable => Some(true),
            // The owner let go of it, or died: nothing to tell.
            Ending::Moved => None,
        };
        if let Some(lost) = lost {
            cluster.send(&owner, &wire::Message::Close { from, link, lost });
        }
        tracing::debug!(link, "relayed client gone");
        if let Some(frame) = close_frame(&ending) {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
        }
        drop(slot);
    }

    /// Closes the relayed sockets whose sessions no longer hold (signed out, revoked).
    pub(super) fn recheck_links(&self) {
        let mut shared = self.lock();
        let access = &self.access;
        shared.nodes.links.retain(|_, link| {
            let valid = link.session.as_ref().is_none_or(|session| access.still_valid(session));
            if !valid {
                // The relay task reads this flag and tells the owner the client left.
                link.outbox.meter.ended.store(true, Ordering::Relaxed);
            }
            valid
        });
    }
}
