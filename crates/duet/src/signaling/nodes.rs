//! Signaling's side of a cluster (`--redis`): where a new socket's room is served, the
//! clients other nodes relay to rooms served here, the beat, and what happens when a
//! node dies, a room moves or this node drains. The rules of the cluster are in
//! [`crate::cluster`]; this file applies them to the hub and the sockets.
//!
//! ```text
//!  new socket ──owned here?──► serve it        ──claim in Redis──► here | relay to owner | refuse (1013)
//!  Open from node B ──► hub.connect_as (a "remote" connection) ──► forward task: outbox ─► Deliver to B
//!  every second: beat (keep rooms in use, free empty ones) ──► rooms lost ─► evict (clients reconnect)
//!                dead nodes ─► links to them close (1012), their clients' sessions here are held
//!  shutdown ──► rooms freed, goodbye to every node, sockets closed (1001): pages reconnect elsewhere
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use duet_signal::{ConnId, Payload, RoomName};
use tokio::sync::mpsc;

use crate::cluster::rooms::Owned;
use crate::cluster::wire::{Message, NodeId, Opening};
use crate::cluster::{Cluster, Owner, liveness::BEAT_EVERY};
use crate::signaling::relayed::Link;
use crate::signaling::socket::{KEEPALIVE, Meter, OUTBOX_CAPACITY, Outbox};
use crate::signaling::{Signaling, renewal, session_nonce};

/// What a node keeps about the other nodes, under the signaling lock.
#[derive(Debug, Default)]
pub(crate) struct Nodes {
    /// Rooms this node serves.
    pub(super) owned: Owned,
    /// Clients on this node relayed to other nodes, by link.
    pub(super) links: HashMap<u64, Link>,
    /// Clients of other nodes in this node's hub: (their node, link) → connection. Each
    /// has a forward task, which removes its entry when its outbox goes.
    remote: HashMap<(NodeId, u64), ConnId>,
}

/// Figures for metrics.
#[derive(Debug, Clone, Copy)]
pub struct ClusterCounts {
    /// Other nodes alive, as this one hears them.
    pub nodes: usize,
    /// Rooms this node serves.
    pub rooms: usize,
    /// Sockets here relayed to rooms other nodes serve.
    pub relayed: usize,
    /// Clients of other nodes in this node's hub.
    pub remote: usize,
    /// Messages to other nodes lost (Redis away or too slow).
    pub lost: u64,
    /// Messages heard but refused, by why (unsigned, stale, replayed).
    pub refused: [(&'static str, u64); 3],
}

impl Nodes {
    pub(super) fn counts(&self, cluster: &Cluster) -> ClusterCounts {
        ClusterCounts {
            nodes: cluster.alive(Instant::now()),
            rooms: self.owned.len(),
            relayed: self.links.len(),
            remote: self.remote.len(),
            lost: cluster.dropped(),
            refused: cluster.refused(),
        }
    }
}

/// Where a new socket is served.
#[derive(Debug)]
pub(crate) enum Placement {
    Here,
    Relayed(NodeId),
    /// Nobody can say (Redis away, and the room is not served here).
    Nowhere,
}

impl Signaling {
    /// Where a socket joining `room` is served: here without a cluster or when this node
    /// owns the room; else whoever Redis says owns it (this node, if nobody living does).
    pub(super) async fn place(&self, room: &RoomName) -> Placement {
        let Some(cluster) = &self.cluster else { return Placement::Here };
        if self.lock().nodes.owned.contains(room) {
            return Placement::Here;
        }
        match cluster.claim(room).await {
            Ok(Owner::Me) => Placement::Here,
            Ok(Owner::Node(owner)) => Placement::Relayed(owner),
            Err(e) => {
                tracing::warn!("{e:#}: a client joining room {room:?} is told to try again");
                Placement::Nowhere
            }
        }
    }

    /// The cluster's loop: what other nodes say, and the beat.
    pub(super) async fn run_cluster(self: Arc<Self>, mut heard: mpsc::Receiver<Message>) {
        let Some(cluster) = self.cluster.clone() else { return };
        let mut beat = tokio::time::interval(BEAT_EVERY);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = cluster.lost.notified() => self.messages_lost(),
                message = heard.recv() => match message {
                    Some(message) => self.on_message(message),
                    None => break,
                },
                _ = beat.tick() => {
                    let beat = {
                        let mut shared = self.lock();
                        let in_use = shared.hub.rooms_in_use();
                        shared.nodes.owned.beat(in_use)
                    };
                    tracing::trace!(keep = beat.keep.len(), release = beat.release.len(), "beat");
                    match cluster.beat(&beat.keep, &beat.release).await {
                        Ok(lost) => {
                            if failing {
                                failing = false;
                                tracing::info!("Redis answers again; this node's rooms are asserted");
                            }
                            for room in lost {
                                self.evict(&room);
                            }
                        }
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!("{e:#}: serving the rooms this node has; new rooms wait for Redis");
                        }
                        Err(_) => {}
                    }
                    for node in cluster.expired(Instant::now()) {
                        tracing::warn!(%node, "a node stopped beating; its clients reconnect and resume");
                        self.node_gone(&node);
                    }
                }
            }
        }
        // Draining: free the rooms first, so the pages the shutdown closes find a new
        // node for them at once.
        let rooms = self.lock().nodes.owned.all();
        cluster.leave(&rooms).await;
    }

    fn on_message(self: &Arc<Self>, message: Message) {
        let Some(cluster) = &self.cluster else { return };
        let me = cluster.node().clone();
        match message {
            Message::Beat { from } if from != me => cluster.heard(&from, Instant::now()),
            Message::Beat { .. } => {}
            Message::Bye { from } if from != me => {
                cluster.left(&from);
                tracing::info!(node = %from, "a node drained");
                self.node_gone(&from);
            }
            Message::Bye { .. } => {}
            Message::Open { from, link, open } => {
                cluster.heard(&from, Instant::now());
                self.open_remote(from, link, *open);
            }
            Message::Text { from, link, text } => {
                let conn = self.lock().nodes.remote.get(&(from.clone(), link)).copied();
                let Some(conn) = conn else {
                    cluster.send(&from, &Message::Drop { from: me, link });
                    return;
                };
                let result = self.with_hub(|hub| hub.handle_text(Instant::now(), conn, &text));
                if result.is_err() {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::Close { from, link, lost } => {
                let conn = {
                    let mut shared = self.lock();
                    let conn = shared.nodes.remote.remove(&(from, link));
                    if let Some(conn) = conn {
                        shared.outboxes.remove(&conn);
                    }
                    conn
                };
                if let Some(conn) = conn {
                    let now = Instant::now();
                    self.with_hub(|hub| {
                        if lost { hub.connection_lost(now, conn) } else { hub.disconnect(now, conn) }
                    });
                }
            }
            Message::Deliver { from, link, text } => {
                cluster.heard(&from, Instant::now());
                let mut shared = self.lock();
                let full = shared.nodes.links.get(&link).is_some_and(|l| !l.outbox.push(Payload::from(text)));
                if full {
                    shared.nodes.links.remove(&link);
                }
            }
            Message::Drop { link, .. } => {
                if let Some(link) = self.lock().nodes.links.remove(&link) {
                    link.outbox.meter.moved.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// A client of node `from` joins a room served here.
    fn open_remote(self: &Arc<Self>, from: NodeId, link: u64, open: Opening) {
        let Some(cluster) = &self.cluster else { return };
        let (frames, inbox) = mpsc::channel(OUTBOX_CAPACITY);
        let conn = {
            let mut shared = self.lock();
            if !shared.nodes.owned.contains(&open.room) {
                // The room moved meanwhile: the client asks Redis again.
                drop(shared);
                cluster.send(&from, &Message::Drop { from: cluster.node().clone(), link });
                return;
            }
            let conn = shared.hub.connect_as(open.room, &session_nonce(), open.address, open.admission);
            // No socket here: pings and silence are the relaying node's business.
            shared.outboxes.insert(conn, Outbox { frames, meter: Arc::new(Meter::default()) });
            shared.nodes.remote.insert((from.clone(), link), conn);
            let started = shared.dispatch();
            debug_assert!(started.is_empty(), "connecting starts no service");
            conn
        };
        let remote = Remote { conn, node: from, link, host: open.host, address: open.address };
        self.tasks.spawn(Arc::clone(self).forward(remote, inbox));
    }

    /// Sends what the hub says to a relayed client back to its node, and its ICE servers
    /// once it has signed in (renewed as for a socket here).
    async fn forward(self: Arc<Self>, remote: Remote, mut inbox: mpsc::Receiver<Payload>) {
        let Some(cluster) = self.cluster.clone() else { return };
        let me = cluster.node().clone();
        let mut ice_due: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut ice_sent = false;
        loop {
            let ice_timer = renewal(&mut ice_due);
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = ice_timer => {
                    ice_due = self.send_ice_servers(remote.host.as_deref(), remote.conn, remote.address, true);
                }
                out = inbox.recv() => {
                    let Some(payload) = out else { break };
                    if &*payload != KEEPALIVE {
                        let text = payload.to_string();
                        cluster.send(&remote.node, &Message::Deliver { from: me.clone(), link: remote.link, text });
                    }
                    if !ice_sent && self.lock().hub.is_signed_in(remote.conn) {
                        ice_sent = true;
                        ice_due = self.send_ice_servers(remote.host.as_deref(), remote.conn, remote.address, false);
                    }
                }
            }
        }
        // The outbox was dropped here: too slow, the room moved, the node died.
        // Still listed: nobody else (a Close, a dead node) ended it in the hub.
        let mine = self.lock().nodes.remote.remove(&(remote.node.clone(), remote.link)).is_some();
        if mine {
            self.with_hub(|hub| hub.connection_lost(Instant::now(), remote.conn));
            cluster.send(&remote.node, &Message::Drop { from: me, link: remote.link });
        }
    }

    /// Another living node serves `room` now: its clients here reconnect (and resume
    /// there), and nothing of it is kept.
    fn evict(&self, room: &RoomName) {
        tracing::warn!("room {room:?} is served by another node now; its clients here reconnect there");
        let open = self.with_hub(|hub| hub.evict_room(Instant::now(), room));
        let mut shared = self.lock();
        shared.nodes.owned.lost(room);
        for conn in open {
            shared.sessions.remove(&conn);
            // A remote client's forward task sees its outbox go and tells its node.
            if let Some(outbox) = shared.outboxes.remove(&conn) {
                outbox.meter.moved.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Messages to some nodes were lost (Redis went away under them, or too much was
    /// queued): every client between this node and those may have missed one, so each
    /// is treated as a lost socket. Sockets relayed to them are told to reconnect (and
    /// resume with what the room's hub held for them); their clients here are held, and
    /// their nodes are told to send them to reconnect too.
    fn messages_lost(&self) {
        let Some(cluster) = &self.cluster else { return };
        let me = cluster.node().clone();
        for node in cluster.take_lost() {
            let (links, relayed) = {
                let shared = self.lock();
                let links: Vec<u64> =
                    shared.nodes.remote.keys().filter(|(n, _)| *n == node).map(|(_, link)| *link).collect();
                (links, shared.nodes.links.values().filter(|l| l.owner == node).count())
            };
            if links.is_empty() && relayed == 0 {
                continue; // nobody was between us: nothing to resume (and nothing to say)
            }
            tracing::warn!(
                %node,
                clients = links.len() + relayed,
                "messages to a node were lost: the clients between us reconnect and resume"
            );
            for link in links {
                cluster.send(&node, &Message::Drop { from: me.clone(), link });
            }
            self.node_gone(&node);
        }
    }

    /// `node` died or drained: the clients relayed to it reconnect, and its clients'
    /// sessions here are held for them to resume.
    fn node_gone(&self, node: &NodeId) {
        let lost: Vec<ConnId> = {
            let mut shared = self.lock();
            shared.nodes.links.retain(|_, link| {
                let gone = &link.owner == node;
                if gone {
                    link.outbox.meter.moved.store(true, Ordering::Relaxed);
                }
                !gone
            });
            let mut conns = Vec::new();
            shared.nodes.remote.retain(|(n, _), conn| {
                let gone = n == node;
                if gone {
                    conns.push(*conn);
                }
                !gone
            });
            for conn in &conns {
                shared.outboxes.remove(conn);
            }
            conns
        };
        let now = Instant::now();
        self.with_hub(|hub| lost.iter().for_each(|&conn| hub.connection_lost(now, conn)));
    }
}

/// A client of another node, in this node's hub.
#[derive(Debug)]
struct Remote {
    conn: ConnId,
    node: NodeId,
    link: u64,
    host: Option<String>,
    address: std::net::IpAddr,
}
