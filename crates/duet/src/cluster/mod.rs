//! Several duet nodes as one service, on one Redis (`--redis URL`).
//!
//! A room is owned by one node at a time, which runs that room's hub unchanged (names,
//! busy, glare, ring timers stay in one place, so the hub's invariants hold across
//! nodes). A client whose WebSocket lands on another node is *relayed*: that node keeps
//! the socket, checks access and pings it, and forwards its frames to the owner over
//! Redis pub/sub, where it is an ordinary hub connection; the owner's frames for it come
//! back the same way.
//!
//! ```text
//!  browser ══ws══ node B ──Open/Text/Close──► duet:node:A ──► node A: hub of room R
//!                  ▲                                              │
//!                  └──────────── Deliver/Drop ◄── duet:node:B ◄───┘
//!  every node, every second: Beat on duet:nodes; duet:alive:<node> refreshed; its rooms
//!  asserted (see `store`)
//! ```
//!
//! Failures become what a single node already survives, a lost socket and a `resume`:
//! a node that stops beating for [`liveness::DEAD_AFTER`] is dead; the sockets relayed to
//! it are closed with "reconnect" and its clients' sessions elsewhere are held; their
//! pages reconnect, the room is claimed by a living node and the pages resume their names
//! and calls there (resume tokens are signed with the key every node shares). A node
//! that finds one of its rooms owned by another living node (after Redis lost its data,
//! or a node came back from a pause) sends that room's clients to reconnect, so no name
//! is ever held twice once the nodes have beaten again.
//!
//! Not here: the hub (duet-signal) and the sockets (`signaling`, `signaling::relayed`).

pub mod delivery;
pub mod envelope;
pub mod liveness;
pub mod rooms;
pub mod store;
pub mod wire;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use duet_signal::RoomName;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::delivery::Outgoing;
use self::envelope::{ClusterKey, Refused, Replays};
use self::liveness::{BEAT_EVERY, Peers};
use self::store::Store;
use self::wire::{Message, NODES_CHANNEL, NodeId, node_channel};

/// Messages waiting to be published. A burst of a whole room's call setup is a few
/// hundred; past this Redis is not keeping up and messages are dropped (and counted),
/// which the clients see as a lost socket and resume from.
const OUTGOING: usize = 16 * 1024;

/// How soon a message nobody heard is sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Messages received and not yet handled.
const INCOMING: usize = 16 * 1024;

/// A subscription that hears nothing for this long (not even this node's own beats) is
/// broken, whatever the socket says: it is made again.
const SILENT_SUBSCRIPTION: Duration = Duration::from_secs(3);

/// This node's part in the cluster.
#[derive(Debug)]
pub struct Cluster {
    node: NodeId,
    store: Store,
    peers: Mutex<Peers>,
    outgoing: mpsc::Sender<(String, String)>,
    next_link: AtomicU64,
    /// Messages dropped because Redis was not keeping up.
    dropped: AtomicU64,
    /// Told when messages to other nodes were lost: the clients between this node and
    /// those nodes must resume ([`Cluster::take_lost`] says which nodes).
    pub(crate) lost: tokio::sync::Notify,
    lost_to: Mutex<std::collections::HashSet<NodeId>>,
    /// Signs what this node says and checks what it hears.
    key: ClusterKey,
    replays: Mutex<Replays>,
    /// Messages refused, by why: unsigned, stale, replayed.
    refused: [AtomicU64; 3],
}

/// Who serves a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Me,
    Node(NodeId),
}

impl Cluster {
    /// Joins the cluster on `url`. `keys` fingerprints the keys every node must share
    /// (resume tokens, cookies): a node with different ones is refused, with a message
    /// saying what to do. Returns the cluster and what other nodes say to this one.
    pub async fn join(
        url: &str,
        keys: &str,
        key: ClusterKey,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(std::sync::Arc<Self>, mpsc::Receiver<Message>)> {
        let node: NodeId = crate::random::bytes::<8>()
            .context("read random bytes from /dev/urandom")?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into();
        let store = Store::new(url, node.clone())?;
        let shown = store::without_password(url);
        let shared =
            store.fingerprint(keys).await.with_context(|| format!("cannot reach Redis at {shown}"))?;
        anyhow::ensure!(
            shared == keys,
            "the nodes on this Redis sign sessions with other keys than this node's state directory \
             holds: give every node the same resume.key and session key (copy the state directory), \
             or clear the key `duet:keys` in Redis if they all changed"
        );
        let (outgoing, queue) = mpsc::channel(OUTGOING);
        let (inbound, incoming) = mpsc::channel(INCOMING);
        let cluster = std::sync::Arc::new(Self {
            node,
            store,
            peers: Mutex::new(Peers::default()),
            outgoing,
            next_link: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
            lost: tokio::sync::Notify::new(),
            lost_to: Mutex::default(),
            key,
            replays: Mutex::default(),
            refused: Default::default(),
        });
        tokio::spawn(std::sync::Arc::clone(&cluster).publish(queue, shutdown.clone()));
        tokio::spawn(std::sync::Arc::clone(&cluster).listen(inbound, shutdown));
        tracing::info!(node = %cluster.node, "joined the cluster on {shown}");
        Ok((cluster, incoming))
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// A fresh id for a client relayed to another node.
    pub fn new_link(&self) -> u64 {
        self.next_link.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues `message` for `to`; never waits (a full queue drops it, see `OUTGOING`).
    pub fn send(&self, to: &str, message: &Message) {
        self.queue(node_channel(to), message);
    }

    /// Queues `message` for every node.
    pub fn broadcast(&self, message: &Message) {
        self.queue(NODES_CHANNEL.to_owned(), message);
    }

    fn queue(&self, channel: String, message: &Message) {
        if let Err(refused) = self.outgoing.try_send((channel, message.encode())) {
            let (channel, _) = refused.into_inner();
            self.lost([channel].iter());
        }
    }

    /// Messages to `channels` were lost: what they were for must resume.
    fn lost<'a>(&self, channels: impl Iterator<Item = &'a String>) {
        let mut lost_to = self.lost_to.lock().unwrap_or_else(|p| p.into_inner());
        for channel in channels {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(node) = wire::node_of_channel(channel) {
                lost_to.insert(node);
            }
        }
        drop(lost_to);
        self.lost.notify_one();
    }

    /// The nodes messages were lost to since the last call.
    pub fn take_lost(&self) -> Vec<NodeId> {
        self.lost_to.lock().unwrap_or_else(|p| p.into_inner()).drain().collect()
    }

    /// Messages to other nodes dropped so far (Redis too slow or away).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Messages heard but refused so far: (unsigned, stale, replayed).
    pub fn refused(&self) -> [(&'static str, u64); 3] {
        [Refused::Unsigned, Refused::Stale, Refused::Replayed]
            .map(|why| (why.as_str(), self.refused[why as usize].load(Ordering::Relaxed)))
    }

    /// The message in `raw` if a node of this cluster sent it and it was not heard
    /// before; a refusal is counted and logged once in a while.
    fn accept(&self, raw: &[u8]) -> Option<Message> {
        let verdict = std::str::from_utf8(raw)
            .map_err(|_| Refused::Unsigned)
            .and_then(|raw| self.key.open(raw, crate::clock::now_ms()))
            .and_then(|(counter, text)| Ok((counter, Message::decode(text).map_err(|_| Refused::Unsigned)?)))
            .and_then(|(counter, message)| {
                let mut replays = self.replays.lock().unwrap_or_else(|p| p.into_inner());
                replays.take(message.from(), counter)?;
                if let Message::Bye { from } = &message {
                    replays.forget(from);
                }
                Ok(message)
            });
        match verdict {
            Ok(message) => Some(message),
            Err(why) => {
                let before = self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
                if before.is_power_of_two() || before == 0 {
                    tracing::warn!(
                        "refused a {} message between nodes ({} so far): is someone else publishing on this Redis?",
                        why.as_str(),
                        before + 1
                    );
                }
                None
            }
        }
    }

    /// Who serves `room`: this node if nobody living does.
    pub async fn claim(&self, room: &RoomName) -> anyhow::Result<Owner> {
        let owner = self.store.claim(room).await?;
        Ok(if owner == self.node { Owner::Me } else { Owner::Node(owner) })
    }

    /// Beats: see [`Store::beat`].
    pub async fn beat(&self, keep: &[RoomName], release: &[RoomName]) -> anyhow::Result<Vec<RoomName>> {
        self.broadcast(&Message::Beat { from: self.node.clone() });
        self.store.beat(keep, release).await
    }

    /// Draining: frees `rooms` and tells every node this one is gone.
    pub async fn leave(&self, rooms: &[RoomName]) {
        self.broadcast(&Message::Bye { from: self.node.clone() });
        if let Err(e) = self.store.leave(rooms).await {
            tracing::warn!("{e:#}: the other nodes take this node's rooms over when it stops beating");
        }
    }

    /// `node` is one this node depends on (it relays a client to it): if it was never
    /// heard, it is dead unless it beats within [`liveness::DEAD_AFTER`] from now.
    pub fn expect(&self, node: &NodeId, now: Instant) {
        self.lock_peers().expect(node, now);
    }

    /// `node` was heard from.
    pub fn heard(&self, node: &NodeId, now: Instant) {
        if self.lock_peers().heard(node, now) {
            tracing::info!(%node, "a node joined (or came back)");
        }
    }

    /// `node` said goodbye; true if it was known.
    pub fn left(&self, node: &NodeId) -> bool {
        self.lock_peers().left(node)
    }

    /// Whether `node` beat recently.
    pub fn is_alive(&self, node: &NodeId, now: Instant) -> bool {
        self.lock_peers().is_alive(node, now)
    }

    /// How many other nodes are alive.
    pub fn alive(&self, now: Instant) -> usize {
        self.lock_peers().alive(now)
    }

    /// The nodes that died since the last call.
    pub fn expired(&self, now: Instant) -> Vec<NodeId> {
        self.lock_peers().expired(now)
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes what is queued, in order, a batch per round trip; what nobody heard
    /// goes again first (see [`delivery`]). Only this task numbers and seals messages,
    /// as it publishes them, so counters reach Redis in order whatever thread queued a
    /// message, and a message sent again gets a new one (its first was never heard).
    async fn publish(
        self: std::sync::Arc<Self>,
        mut queue: mpsc::Receiver<(String, String)>,
        shutdown: CancellationToken,
    ) {
        let mut failing = false;
        let mut counter = 0u64;
        let mut again: Vec<Outgoing> = Vec::new();
        loop {
            let mut batch = std::mem::take(&mut again);
            let first = if batch.is_empty() {
                tokio::select! {
                    // Draining sends a goodbye after shutdown began: publish what is queued.
                    () = shutdown.cancelled() => queue.try_recv().ok(),
                    first = queue.recv() => first,
                }
            } else {
                // Nobody heard these yet: their node is subscribing again.
                tokio::select! {
                    () = tokio::time::sleep(RETRY_PAUSE) => None,
                    first = queue.recv() => first,
                }
            };
            let now = Instant::now();
            match first {
                Some((channel, text)) => batch.push(Outgoing { channel, text, since: now }),
                None if batch.is_empty() => return,
                None => {}
            }
            while batch.len() < 512 {
                match queue.try_recv() {
                    Ok((channel, text)) => batch.push(Outgoing { channel, text, since: now }),
                    Err(_) => break,
                }
            }
            let sealed: Vec<(&str, String)> = batch
                .iter()
                .map(|message| {
                    counter += 1;
                    (message.channel.as_str(), self.key.seal(counter, crate::clock::now_ms(), &message.text))
                })
                .collect();
            let published = self.store.publish(&sealed).await;
            drop(sealed);
            let lost = match published {
                Ok(heard) => {
                    if failing {
                        failing = false;
                        tracing::info!("Redis takes messages between nodes again");
                    }
                    let settled = delivery::settle(batch, &heard, Instant::now());
                    again = settled.again;
                    settled.lost
                }
                Err(e) => {
                    if !failing {
                        failing = true;
                        tracing::warn!("{e:#}: messages to other nodes are lost until Redis answers");
                    }
                    batch
                }
            };
            if !lost.is_empty() {
                self.lost(lost.iter().map(|message| &message.channel));
            }
        }
    }

    /// Hears this node's channel and the shared one, making the subscription again when
    /// it breaks or goes silent (after Redis restarts, a subscription can look healthy
    /// and hear nothing).
    async fn listen(self: std::sync::Arc<Self>, inbound: mpsc::Sender<Message>, shutdown: CancellationToken) {
        let channels = [node_channel(&self.node), NODES_CHANNEL.to_owned()];
        let mut failing = false;
        loop {
            let pubsub = tokio::select! {
                () = shutdown.cancelled() => return,
                pubsub = self.store.subscribe(&channels) => pubsub,
            };
            let pubsub = match pubsub {
                Ok(pubsub) => pubsub,
                Err(e) => {
                    if !failing {
                        failing = true;
                        tracing::warn!("{e:#}: not hearing other nodes until Redis answers");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(BEAT_EVERY / 2) => continue,
                    }
                }
            };
            if failing {
                failing = false;
                tracing::info!("hearing other nodes again");
            }
            let mut stream = pubsub.into_on_message();
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = tokio::time::timeout(SILENT_SUBSCRIPTION, stream.next()) => next,
                };
                let Ok(Some(raw)) = next else {
                    tracing::warn!("the subscription to Redis broke or went silent; subscribing again");
                    break;
                };
                let Some(message) = self.accept(raw.get_payload_bytes()) else { continue };
                if inbound.send(message).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A fingerprint of the keys every node must share: not the keys (it is stored in
/// Redis), a hash of them.
pub fn fingerprint(keys: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for key in keys {
        hash.update((key.len() as u64).to_be_bytes());
        hash.update(key);
    }
    hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}
