//! The WebSocket driver around [`duet_signal::Hub`]: one task per connection, one short
//! lock per frame.
//!
//! ```text
//!   socket ──frame──► connection task ──lock──► Hub::handle_text ──► outputs
//!                                                                      │ try_send
//!   socket ◄──frame── connection task ◄── outbox (bounded mpsc) ◄──────┘
//!
//!   timer task: sleeps until Hub::poll_timeout, then Hub::handle_timeout (user lists)
//! ```
//!
//! The hub and the outboxes sit behind one `std::sync::Mutex` that is never held across
//! an `.await`: a frame is parsed, routed and queued to its recipients' outboxes within
//! one lock, and each connection task writes its own outbox to its own socket. Nothing
//! but the shared state holds an outbox's sender, so dropping it ends the connection.
//! A recipient that cannot keep up is closed (code 1008) instead of growing the
//! server's memory or going deaf: its outbox is full (`OUTBOX_CAPACITY` frames or
//! `OUTBOX_BYTES` bytes), a write to its socket has not finished in
//! 10 s (`socket::WRITE_TIMEOUT`), or it has answered no ping for two keep-alive intervals. Its
//! session is kept for the resume grace period, so its page reconnects and resumes.
//!
//! Not done here: anything about what messages mean (the hub) or HTTP routing (`web`).

pub mod echo;
pub mod events;
pub mod history;
pub mod ice;
pub mod nodes;
pub mod quiet;
pub mod relayed;
pub mod ringer;
mod socket;
mod upkeep;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use duet_access::{Admitted, Session};
use duet_signal::{Admission, ConnId, Hub, HubConfig, Payload, RoomName, UserName};

use crate::access::Access;
use crate::cluster::{Cluster, wire};
use crate::signaling::nodes::Placement;

use crate::limits::{PerAddressRate, SignalingLimits, Slot, Slots};
use crate::signaling::echo::{EchoConfig, ServiceLink};
use crate::signaling::events::{EventCounts, Listener, Tally};
use crate::signaling::ice::IceServers;
use crate::signaling::socket::{
    CLOSE_TIMEOUT, Ending, Meter, OUTBOX_CAPACITY, Outbox, classify, close_frame, deliver, outbox_dropped,
};
use crate::turn::TurnUsers;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The service user answered by [`crate::signaling::echo`].
pub const ECHO: &str = "echo";

/// Largest text frame or message a client may send. An SDP with many candidates is
/// about 10 KiB; anything past this is refused with close code 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// tungstenite reads into a buffer of this initial size and grows it only for larger
/// frames (it reserves a whole frame once its header is read). axum's default (128 KiB)
/// would cost twenty times the rest of a connection; the signaling benchmark measured
/// 7.5 KiB per idle connection with 2 KiB here and 5.7 KiB with 512 bytes.
const READ_BUFFER_BYTES: usize = 512;

/// Shared by every connection task and the timer task.
#[derive(Debug)]
pub struct Signaling {
    /// Itself, for spawning service tasks from behind `&self`.
    me: std::sync::Weak<Signaling>,
    /// The echo service, when on.
    echo: Option<EchoConfig>,
    shared: Mutex<Shared>,
    /// Woken when the hub may want an earlier timer than the one the timer task sleeps on.
    timer_changed: Notify,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    ice: IceServers,
    /// Ends what the embedded TURN server holds for sessions that ended.
    turn: Option<TurnUsers>,
    /// Open WebSockets per client address.
    sockets: Slots,
    /// TURN credentials handed to each client address (a fresh connection's first).
    credentials: Mutex<PerAddressRate>,
    /// Messages refused with an `error` reply, for metrics.
    rejected: AtomicU64,
    /// What happened, counted (for metrics).
    tally: Arc<Tally>,
    /// The origin of [`Meter::heard`] times.
    epoch: Instant,
    /// Who may come in; sessions of open sockets are checked against it again.
    access: Arc<Access>,
    /// Woken when sessions may have ended (a sign-out), to check them at once.
    sessions_changed: Notify,
    /// This node's part in a cluster (`--redis`).
    cluster: Option<Arc<Cluster>>,
    /// Rings account holders' devices by push (its figures go to metrics).
    pusher: Option<Arc<crate::push::Pusher>>,
}

/// What signaling is started with besides the hub's configuration.
#[derive(Debug)]
pub struct Setup {
    pub ice: IceServers,
    pub keepalive: Duration,
    /// The echo service, when on.
    pub echo: Option<EchoConfig>,
    pub limits: SignalingLimits,
    /// The embedded TURN server's users, to end what ended sessions hold.
    pub turn: Option<TurnUsers>,
    pub access: Arc<Access>,
    /// With `--redis`: the cluster joined, and what other nodes say to this one.
    pub cluster: Option<(Arc<Cluster>, mpsc::Receiver<wire::Message>)>,
    /// Rings account holders' devices by push when a call rings them.
    pub pusher: Option<Arc<crate::push::Pusher>>,
}

/// Figures for metrics.
#[derive(Debug, Clone)]
pub struct SignalingCounts {
    pub connections: usize,
    pub users: usize,
    pub calls: usize,
    pub rejected: u64,
    /// Sessions and calls since the start, by how they went.
    pub events: EventCounts,
    /// In a cluster: what this node holds of it.
    pub cluster: Option<crate::signaling::nodes::ClusterCounts>,
    /// Pushes since the start, by outcome (a server that rings by push).
    pub push: Option<[(&'static str, u64); 4]>,
}

#[derive(Debug)]
struct Shared {
    hub: Hub,
    outboxes: HashMap<ConnId, Outbox>,
    /// The session each signed-in socket came with, checked again when sessions change.
    sessions: HashMap<ConnId, Session>,
    /// In a cluster: the rooms this node serves, and the clients it relays to others'.
    nodes: crate::signaling::nodes::Nodes,
    /// Who hears what happens in the hub ([`events`]).
    listeners: Vec<Arc<dyn Listener>>,
    /// Sessions that ended since [`Signaling::with_hub`] last looked: what was issued to
    /// them (TURN credentials) ends.
    ended: Vec<u64>,
}

/// A service instance the hub just started, and the inbox of its task.
type NewService = (ConnId, mpsc::Receiver<Payload>);

/// Frames queued for a service instance (echo), which reads them as fast as it can; a
/// call's messages are rate-limited by the hub long before this fills.
const SERVICE_INBOX: usize = 1024;

impl Shared {
    /// Drains the hub: what happened to the listeners, frames into the outboxes. Returns
    /// the service instances that calls just started, for the caller to start their
    /// tasks (their outboxes exist before their first frame is queued).
    fn dispatch(&mut self) -> Vec<NewService> {
        let mut started = Vec::new();
        while let Some(happened) = self.hub.poll_event() {
            self.listeners.iter().for_each(|listener| listener.heard(&happened));
            match happened.event {
                duet_signal::Event::ServiceCallStarted { instance, .. } => {
                    let (frames, inbox) = mpsc::channel(SERVICE_INBOX);
                    self.outboxes.insert(instance, Outbox { frames, meter: Arc::default() });
                    started.push((instance, inbox));
                }
                duet_signal::Event::SessionEnded { who, .. } => self.ended.push(who.session),
                _ => {}
            }
        }
        while let Some(out) = self.hub.poll_output() {
            let Some(outbox) = self.outboxes.get(&out.to) else { continue };
            if !outbox.push(out.payload) {
                // Full (too slow) or closed (already leaving): dropping the sender ends
                // that connection's task, which then leaves the hub in the normal way.
                tracing::debug!(conn = %out.to, "outbox full; disconnecting slow client");
                self.outboxes.remove(&out.to);
            }
        }
        started
    }
}

impl Signaling {
    /// Creates the state and starts the timer task. Everything it spawns stops when
    /// `shutdown` is cancelled; [`Signaling::closed`] waits for that.
    /// With `echo`, the hub lists the `echo` user and its calls are answered here.
    pub fn start(mut config: HubConfig, setup: Setup, shutdown: CancellationToken) -> Arc<Self> {
        let Setup { ice, keepalive, echo, limits, turn, access, cluster, pusher } = setup;
        let ring_timeout = config.ring_timeout;
        let (cluster, heard) = cluster.unzip();
        if echo.is_some() {
            config.services.push(UserName::new(ECHO).expect("a valid name"));
        }
        let mut hub = Hub::new(config);
        hub.reserve_names(access.account_names());
        let signaling = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            echo,
            shared: Mutex::new(Shared {
                hub,
                outboxes: HashMap::new(),
                sessions: HashMap::new(),
                nodes: Default::default(),
                listeners: Vec::new(),
                ended: Vec::new(),
            }),
            timer_changed: Notify::new(),
            shutdown,
            tasks: TaskTracker::new(),
            ice,
            turn,
            sockets: Slots::new(limits.sockets_per_address, limits.sockets_total),
            credentials: Mutex::new(PerAddressRate::new(limits.credentials)),
            rejected: AtomicU64::new(0),
            tally: Arc::default(),
            epoch: Instant::now(),
            access,
            sessions_changed: Notify::new(),
            cluster,
            pusher: pusher.clone(),
        });
        signaling.listen(Arc::clone(&signaling.tally) as Arc<dyn Listener>);
        if let Some(store) = signaling.access.store().filter(|_| !signaling.access.call_history().is_zero()) {
            let history = crate::signaling::history::History::start(
                store.clone(),
                &signaling.tasks,
                signaling.shutdown.clone(),
            );
            signaling.listen(Arc::new(history));
        }
        if let Some(pusher) = pusher {
            signaling.listen(Arc::new(ringer::Ringer { pusher, ring_timeout }));
            signaling.tasks.spawn(Arc::clone(&signaling).read_reachable());
        }
        if let Some(store) = signaling.access.store().cloned() {
            let kept = quiet::KeptQuiet::start(store.clone(), &signaling.tasks, signaling.shutdown.clone());
            signaling.listen(Arc::new(kept));
            let me = Arc::clone(&signaling);
            signaling.tasks.spawn(async move {
                let settings = quiet::kept(&store).await;
                me.with_hub(|hub| settings.into_iter().for_each(|(name, quiet)| hub.set_quiet(name, quiet)));
            });
        }
        if let Some(heard) = heard {
            signaling.tasks.spawn(Arc::clone(&signaling).run_cluster(heard));
        }
        signaling.tasks.spawn(Arc::clone(&signaling).run_recheck());
        signaling.tasks.spawn(Arc::clone(&signaling).run_timer());
        signaling.tasks.spawn(Arc::clone(&signaling).run_keepalive(keepalive));
        signaling
    }

    /// Waits until every connection task has sent its close frame and ended (after
    /// shutdown was requested).
    pub async fn closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Open connections, signed-in users, refused messages.
    pub fn counts(&self) -> SignalingCounts {
        let shared = self.lock();
        SignalingCounts {
            connections: shared.hub.connection_count(),
            users: shared.hub.user_count(),
            calls: shared.hub.call_count(),
            rejected: self.rejected.load(Ordering::Relaxed),
            events: self.tally.read(),
            cluster: self.cluster.as_ref().map(|cluster| shared.nodes.counts(cluster)),
            push: self.pusher.as_ref().map(|pusher| pusher.figures()),
        }
    }

    /// From now on, `listener` hears everything that happens in the hub, in order (see
    /// [`events`]).
    pub fn listen(&self, listener: Arc<dyn Listener>) {
        self.lock().listeners.push(listener);
    }

    /// Signed-in names in the lobby, for tests and diagnostics.
    pub fn users(&self) -> Vec<String> {
        self.lock().hub.users_in(&RoomName::lobby()).into_iter().map(str::to_owned).collect()
    }

    /// Accepts an upgrade: MDN's client asks for the `json` subprotocol and drops the
    /// connection unless it is echoed.
    /// `host` is the request's Host header: TURN is announced at the same host. `room`
    /// is the room the connection joins (the lobby for MDN's client). An address that
    /// holds its share of sockets already gets HTTP 429. `admitted`: the session the
    /// upgrade came with (`None`: a guest of an open server).
    pub fn upgrade(
        self: &Arc<Self>,
        ws: WebSocketUpgrade,
        host: Option<String>,
        room: RoomName,
        address: IpAddr,
        admitted: Option<Admitted>,
    ) -> Response {
        let slot = match self.sockets.acquire(address) {
            Ok(slot) => slot,
            Err(refused) => {
                tracing::info!(client = %address, "WebSocket refused: {refused:?} limit of open sockets");
                let text = "Too many open connections from your address; close some tabs and try again.\n";
                return (axum::http::StatusCode::TOO_MANY_REQUESTS, text).into_response();
            }
        };
        let signaling = Arc::clone(self);
        ws.protocols(["json"])
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(MAX_MESSAGE_BYTES)
            .max_frame_size(MAX_MESSAGE_BYTES)
            .on_upgrade(move |socket| {
                let tasks = signaling.tasks.clone();
                async move {
                    let admitted = admitted.map(Box::new);
                    match signaling.place(&room).await {
                        Placement::Here => {
                            tasks.spawn(signaling.serve_connection(socket, host, room, slot, admitted));
                        }
                        Placement::Relayed(owner) => {
                            let to = crate::signaling::relayed::Relayed { owner, room, host, admitted };
                            tasks.spawn(signaling.serve_relayed(socket, to, slot));
                        }
                        Placement::Nowhere => crate::signaling::relayed::refuse(socket).await,
                    }
                }
            })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock is a bug, but the data is still consistent
        // enough to keep serving everyone else: every hub method finishes before it
        // returns and outboxes are plain senders.
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the hub, delivers what it produced, starts new service instances,
    /// ends what was issued to ended sessions and re-arms the timer if needed.
    fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        let mut shared = self.lock();
        let result = f(&mut shared.hub);
        let started = shared.dispatch();
        let ended = std::mem::take(&mut shared.ended);
        let timer_wanted = shared.hub.poll_timeout().is_some();
        drop(shared);
        for (conn, inbox) in started {
            self.start_service(conn, inbox);
        }
        if let Some(turn) = &self.turn {
            for session in ended {
                turn.revoke(&self.ice.session_user(session));
            }
        }
        if timer_wanted {
            self.timer_changed.notify_one();
        }
        result
    }

    fn start_service(&self, conn: ConnId, inbox: mpsc::Receiver<Payload>) {
        match (self.me.upgrade(), &self.echo) {
            (Some(me), Some(echo)) => {
                self.tasks.spawn(crate::signaling::echo::run(me, conn, inbox, echo.clone()));
            }
            // Shutting down (or no such service): the call ends at once.
            _ => self.ended(conn),
        }
    }
}

impl ServiceLink for Signaling {
    /// A service instance says something, as if over its own WebSocket.
    fn says(&self, conn: ConnId, msg: duet_signal::ClientMessage<'_>) {
        let result = self.with_hub(|hub| hub.handle_message(Instant::now(), conn, msg));
        if let Err(rejected) = result {
            tracing::debug!(%conn, code = rejected.0.as_str(), "a service message was refused");
        }
    }

    /// A service instance is done (its call ended, or it failed): the hub ends its call.
    fn ended(&self, conn: ConnId) {
        self.lock().outboxes.remove(&conn);
        self.with_hub(|hub| hub.disconnect(Instant::now(), conn));
    }
}

/// Who is at the other end of a connection being served.
#[derive(Debug, Clone, Copy)]
struct Client<'a> {
    conn: ConnId,
    address: IpAddr,
    /// The Host the page was loaded from (TURN is announced there).
    host: Option<&'a str>,
}

impl Signaling {
    /// Serves one WebSocket until it ends; `slot` is its place among its address's
    /// sockets, given back when this returns.
    ///
    /// An `async move` block rather than an `async fn`: an `async fn` keeps its
    /// arguments twice in its state (as arguments, then moved into locals), and this
    /// state is what every idle connection costs (the signaling benchmark measured
    /// 0.5 KiB per connection).
    #[allow(clippy::manual_async_fn, reason = "an async fn would store its arguments twice")]
    fn serve_connection(
        self: Arc<Self>,
        mut socket: WebSocket,
        host: Option<String>,
        room: RoomName,
        slot: Slot,
        admitted: Option<Box<Admitted>>,
    ) -> impl Future<Output = ()> + Send + 'static {
        async move {
            let address = slot.ip();
            let (conn, mut inbox, meter) = self.admit(room, address, admitted);
            tracing::debug!(%conn, "connected");
            let client = Client { conn, address, host: host.as_deref() };
            let ending = self.serve_frames(&mut socket, client, &mut inbox, &meter).await;
            self.close(socket, conn, &ending).await;
            drop(slot);
        }
    }

    /// Admits a new connection to `room` into the hub: its id, the outbox the hub's
    /// frames for it arrive in, and its meter.
    fn admit(
        &self,
        room: RoomName,
        address: IpAddr,
        admitted: Option<Box<Admitted>>,
    ) -> (ConnId, mpsc::Receiver<Payload>, Arc<Meter>) {
        let (frames, inbox) = mpsc::channel(OUTBOX_CAPACITY);
        let meter = Arc::new(Meter::default());
        meter.heard.store(self.millis(), Ordering::Relaxed);
        let mut shared = self.lock();
        let (admission, session) = match admitted {
            Some(admitted) => (admitted.admission, Some(admitted.session)),
            None => (Admission::Guest, None),
        };
        if self.cluster.is_some() {
            shared.nodes.owned.claimed(room.clone());
        }
        let conn = shared.hub.connect_as(room, &session_nonce(), address, admission);
        shared.outboxes.insert(conn, Outbox { frames, meter: Arc::clone(&meter) });
        if let Some(session) = session {
            shared.sessions.insert(conn, session);
        }
        let started = shared.dispatch();
        debug_assert!(started.is_empty(), "connecting starts no service");
        (conn, inbox, meter)
    }

    /// Carries frames both ways (and TURN credentials when due) until the connection
    /// ends; why it ended.
    async fn serve_frames(
        &self,
        socket: &mut WebSocket,
        client: Client<'_>,
        inbox: &mut mpsc::Receiver<Payload>,
        meter: &Meter,
    ) -> Ending {
        // Armed once the client has signed in: when to hand it fresh TURN credentials.
        let mut ice_due: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut ice_sent = false;
        loop {
            let ice_timer = renewal(&mut ice_due);
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Ending::ShuttingDown,
                () = ice_timer => {
                    ice_due = self.send_ice_servers(client.host, client.conn, client.address, true);
                }
                out = inbox.recv() => match out {
                    Some(payload) => {
                        if let Err(ending) = deliver(socket, payload, inbox, meter).await {
                            return ending;
                        }
                    }
                    None => return outbox_dropped(meter),
                },
                frame = socket.recv() => {
                    meter.heard.store(self.millis(), Ordering::Relaxed);
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            if self.on_text(client.conn, &text) && !ice_sent {
                                ice_sent = true;
                                ice_due = self.send_ice_servers(client.host, client.conn, client.address, false);
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let _ = self.with_hub(|hub| hub.handle_binary(Instant::now(), client.conn));
                            self.rejected.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {} // tungstenite answers pings
                        Some(Ok(Message::Close(_))) => return Ending::ClientLeft,
                        None => return Ending::Lost,
                        Some(Err(e)) => return classify(&e),
                    }
                }
            }
        }
    }

    /// A text frame from `conn` into the hub; whether `conn` is signed in now.
    fn on_text(&self, conn: ConnId, text: &str) -> bool {
        let now = Instant::now();
        let (result, signed_in) =
            self.with_hub(|hub| (hub.handle_text(now, conn, text), hub.is_signed_in(conn)));
        if let Err(rejected) = result {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%conn, code = rejected.0.as_str(), "message rejected");
        }
        signed_in
    }

    /// The connection ended as `ending` says: the hub is told (its session ends, or is
    /// held for a resume) and the client gets a close frame when one is owed.
    async fn close(&self, mut socket: WebSocket, conn: ConnId, ending: &Ending) {
        {
            let mut shared = self.lock();
            shared.outboxes.remove(&conn);
            shared.sessions.remove(&conn);
        }
        let now = Instant::now();
        match ending {
            // Told to go, or going: no coming back to this session.
            Ending::ClientLeft | Ending::TooLarge | Ending::SignedOut => {
                self.with_hub(|hub| hub.disconnect(now, conn));
            }
            // The client may reconnect (to this process or, after a restart, the next).
            Ending::Lost | Ending::TooSlow | Ending::ShuttingDown | Ending::Moved | Ending::Unavailable => {
                self.with_hub(|hub| hub.connection_lost(now, conn));
            }
        }
        tracing::debug!(%conn, "disconnected");
        if let Some(frame) = close_frame(ending) {
            // The peer may be gone or not reading; nothing to do about a failed goodbye.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Milliseconds since [`Signaling::epoch`], from 1 (0 is "never", for service
    /// instances), for [`Meter::heard`].
    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Queues this connection's ICE servers with fresh credentials for its session;
    /// returns when to send the next ones, if they expire. A new connection's first
    /// credentials count against its address's rate ([`SignalingLimits::credentials`]);
    /// renewals for a connection that has them do not.
    fn send_ice_servers(
        &self,
        host: Option<&str>,
        conn: ConnId,
        address: IpAddr,
        renewal: bool,
    ) -> Option<std::pin::Pin<Box<tokio::time::Sleep>>> {
        if !renewal
            && !self.credentials.lock().unwrap_or_else(|p| p.into_inner()).allow(address, Instant::now())
        {
            tracing::info!(client = %address, "TURN credentials refused: too many sign-ins from this address");
            return None;
        }
        let shared = self.lock();
        let session = shared.hub.session_of(conn)?;
        let message = self.ice.message(host, &self.ice.session_user(session))?;
        if let Some(outbox) = shared.outboxes.get(&conn) {
            // A full outbox means the client is being disconnected as too slow anyway.
            let _ = outbox.push(message.into());
        }
        drop(shared);
        self.ice.refresh_every().map(|every| Box::pin(tokio::time::sleep(every)))
    }

    async fn run_timer(self: Arc<Self>) {
        loop {
            let due = self.lock().hub.poll_timeout();
            let sleep = crate::clock::sleep_until(due);
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.timer_changed.notified() => {}
                () = sleep => self.with_hub(|hub| hub.handle_timeout(Instant::now())),
            }
        }
    }
}

/// Waits for the next renewal of a connection's TURN credentials, or for ever while none
/// is armed (the client has not signed in yet).
pub(crate) async fn renewal(due: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match due.as_mut() {
        Some(due) => due.await,
        None => std::future::pending().await,
    }
}

/// A fresh nonce for a connection's resume token: 128 random bits, hex.
fn session_nonce() -> String {
    let bytes = crate::random::bytes::<16>().unwrap_or_else(|e| {
        // /dev/urandom missing is a broken system; a guessable token would be worse.
        panic!("no random source for session tokens: {e}")
    });
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl crate::access::http::SessionsChanged for Signaling {
    fn sessions_changed(&self) {
        self.sessions_changed.notify_one();
    }

    fn decline_for_account(&self, account: &str, call: u64) -> bool {
        let Ok(account) = UserName::new(account) else { return false };
        self.with_hub(|hub| hub.decline_for_account(Instant::now(), &account, call))
    }

    fn push_devices_changed(&self) {
        if let Some(me) = self.me.upgrade() {
            self.tasks.spawn(me.read_reachable());
        }
    }
}

impl Signaling {
    /// Tells the hub which accounts can be rung by push while no device of theirs is
    /// online (those with a subscribed device), as the store says now.
    async fn read_reachable(self: Arc<Self>) {
        let Some(store) = self.access.store() else { return };
        match store.run(|db| db.push_accounts()).await {
            Ok(names) => {
                let names: Vec<UserName> = names.iter().filter_map(|n| UserName::new(n).ok()).collect();
                self.with_hub(|hub| hub.set_reachable(names));
            }
            Err(e) => tracing::error!("cannot read which accounts are rung by push: {e}"),
        }
    }
}
