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
//! one lock, and each connection task writes its own outbox to its own socket. A
//! recipient whose outbox is full is too slow to keep up; its outbox is dropped, which
//! ends its task (close code 1008) instead of letting it grow the server's memory.
//!
//! Not done here: anything about what messages mean (the hub) or HTTP routing (`web`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use duet_signal::{ConnId, Hub, HubConfig, Payload, RoomName, UserName};

use crate::echo::EchoConfig;
use crate::ice::IceServers;
use futures_util::SinkExt;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The service user answered by [`crate::echo`].
pub const ECHO: &str = "echo";

/// Largest text frame or message a client may send. An SDP with many candidates is
/// about 10 KiB; anything past this is refused with close code 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Frames waiting to be written to one slow client before it is disconnected. A call
/// setup is a few dozen frames; a user-list burst is one frame.
const OUTBOX_CAPACITY: usize = 256;

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
    /// Messages refused with an `error` reply, for metrics.
    rejected: std::sync::atomic::AtomicU64,
}

/// Figures for metrics.
#[derive(Debug, Clone, Copy)]
pub struct SignalingCounts {
    pub connections: usize,
    pub users: usize,
    pub calls: usize,
    pub rejected: u64,
}

#[derive(Debug)]
struct Shared {
    hub: Hub,
    outboxes: HashMap<ConnId, mpsc::Sender<Payload>>,
}

/// A service instance the hub just started, and the inbox of its task.
type NewService = (ConnId, mpsc::Receiver<Payload>);

impl Shared {
    /// Drains the hub into the outboxes. Returns the service instances that got their
    /// first message, for the caller to start their tasks.
    fn dispatch(&mut self) -> Vec<NewService> {
        let mut started = Vec::new();
        while let Some(out) = self.hub.poll_output() {
            if !self.outboxes.contains_key(&out.to) && self.hub.is_service(out.to) {
                let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
                self.outboxes.insert(out.to, outbox);
                started.push((out.to, inbox));
            }
            let Some(outbox) = self.outboxes.get(&out.to) else { continue };
            if outbox.try_send(out.payload).is_err() {
                // Full (too slow) or closed (already leaving): dropping the sender ends
                // that connection's task, which then leaves the hub in the normal way.
                tracing::debug!(conn = %out.to, "outbox full; disconnecting slow client");
                self.outboxes.remove(&out.to);
            }
        }
        started
    }
}

/// Why a connection task ended, which decides the close frame sent and whether the
/// session may be resumed.
enum Ending {
    /// The client sent a close frame: it left on purpose.
    ClientLeft,
    /// The socket broke or ended without a close frame: the client may come back.
    Lost,
    TooLarge,
    TooSlow,
    ShuttingDown,
}

impl Signaling {
    /// Creates the state and starts the timer task. Everything it spawns stops when
    /// `shutdown` is cancelled; [`Signaling::closed`] waits for that.
    /// With `echo`, the hub lists the `echo` user and its calls are answered here.
    pub fn start(
        mut config: HubConfig,
        ice: IceServers,
        keepalive: Duration,
        echo: Option<EchoConfig>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        if echo.is_some() {
            config.services.push(UserName::new(ECHO).expect("a valid name"));
        }
        let signaling = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            echo,
            shared: Mutex::new(Shared { hub: Hub::new(config), outboxes: HashMap::new() }),
            timer_changed: Notify::new(),
            shutdown,
            tasks: TaskTracker::new(),
            ice,
            rejected: std::sync::atomic::AtomicU64::new(0),
        });
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
            rejected: self.rejected.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Signed-in names in the lobby, for tests and diagnostics.
    pub fn users(&self) -> Vec<String> {
        self.lock().hub.users_in(&RoomName::lobby()).into_iter().map(str::to_owned).collect()
    }

    /// Accepts an upgrade: MDN's client asks for the `json` subprotocol and drops the
    /// connection unless it is echoed.
    /// `host` is the request's Host header: TURN is announced at the same host. `room`
    /// is the room the connection joins (the lobby for MDN's client).
    pub fn upgrade(self: &Arc<Self>, ws: WebSocketUpgrade, host: Option<String>, room: RoomName) -> Response {
        let signaling = Arc::clone(self);
        ws.protocols(["json"])
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(MAX_MESSAGE_BYTES)
            .max_frame_size(MAX_MESSAGE_BYTES)
            .on_upgrade(move |socket| {
                let tasks = signaling.tasks.clone();
                async move {
                    tasks.spawn(signaling.serve_connection(socket, host, room));
                }
            })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock is a bug, but the data is still consistent
        // enough to keep serving everyone else: every hub method finishes before it
        // returns and outboxes are plain senders.
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the hub, delivers what it produced, starts new service instances and
    /// re-arms the timer if needed.
    fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        let mut shared = self.lock();
        let result = f(&mut shared.hub);
        let started = shared.dispatch();
        let timer_wanted = shared.hub.poll_timeout().is_some();
        drop(shared);
        for (conn, inbox) in started {
            self.start_service(conn, inbox);
        }
        if timer_wanted {
            self.timer_changed.notify_one();
        }
        result
    }

    fn start_service(&self, conn: ConnId, inbox: mpsc::Receiver<Payload>) {
        match (self.me.upgrade(), &self.echo) {
            (Some(me), Some(echo)) => {
                self.tasks.spawn(crate::echo::run(me, conn, inbox, echo.clone()));
            }
            // Shutting down (or no such service): the call ends at once.
            _ => self.service_ended(conn),
        }
    }

    /// A service instance says something, as if over its own WebSocket.
    pub(crate) fn service_says(&self, conn: ConnId, text: &str) {
        let result = self.with_hub(|hub| hub.handle_text(Instant::now(), conn, text));
        if let Err(rejected) = result {
            tracing::debug!(%conn, code = rejected.0.as_str(), "a service message was refused");
        }
    }

    /// A service instance is done (its call ended, or it failed): the hub ends its call.
    pub(crate) fn service_ended(&self, conn: ConnId) {
        self.lock().outboxes.remove(&conn);
        self.with_hub(|hub| hub.disconnect(Instant::now(), conn));
    }

    async fn serve_connection(self: Arc<Self>, mut socket: WebSocket, host: Option<String>, room: RoomName) {
        let (outbox, mut inbox) = mpsc::channel(OUTBOX_CAPACITY);
        // Our own messages (ICE servers) go through the outbox too, so they keep their
        // place after what the hub queued before them.
        let own_outbox = outbox.clone();
        let token = session_token();
        let conn = {
            let mut shared = self.lock();
            let conn = shared.hub.connect(room, &token);
            shared.outboxes.insert(conn, outbox);
            let started = shared.dispatch();
            debug_assert!(started.is_empty(), "connecting starts no service");
            conn
        };
        tracing::debug!(%conn, "connected");
        // Armed once the client has signed in: when to hand it fresh TURN credentials.
        let mut ice_due: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut ice_sent = false;
        let ending = loop {
            let ice_timer = async {
                match ice_due.as_mut() {
                    Some(due) => due.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break Ending::ShuttingDown,
                () = ice_timer => {
                    ice_due = self.send_ice_servers(&own_outbox, host.as_deref(), conn);
                }
                out = inbox.recv() => match out {
                    Some(payload) => {
                        if write_batch(&mut socket, payload, &mut inbox).await.is_err() {
                            break Ending::Lost;
                        }
                    }
                    None => break Ending::TooSlow,
                },
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let now = Instant::now();
                        let (result, signed_in) =
                            self.with_hub(|hub| (hub.handle_text(now, conn, &text), hub.is_signed_in(conn)));
                        if let Err(rejected) = result {
                            self.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::debug!(%conn, code = rejected.0.as_str(), "message rejected");
                        }
                        if signed_in && !ice_sent {
                            ice_sent = true;
                            ice_due = self.send_ice_servers(&own_outbox, host.as_deref(), conn);
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let _ = self.with_hub(|hub| hub.handle_binary(conn));
                        self.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {} // tungstenite answers pings
                    Some(Ok(Message::Close(_))) => break Ending::ClientLeft,
                    None => break Ending::Lost,
                    Some(Err(e)) => break classify(&e),
                },
            }
        };
        {
            let mut shared = self.lock();
            shared.outboxes.remove(&conn);
        }
        let now = Instant::now();
        match ending {
            // Told to go, or going: no coming back to this session.
            Ending::ClientLeft | Ending::TooLarge | Ending::TooSlow => {
                self.with_hub(|hub| hub.disconnect(now, conn));
            }
            // The client may reconnect (to this process or, after a restart, the next).
            Ending::Lost | Ending::ShuttingDown => self.with_hub(|hub| hub.connection_lost(now, conn)),
        }
        tracing::debug!(%conn, "disconnected");
        if let Some(frame) = close_frame(&ending) {
            // The peer may be gone already; nothing to do about a failed goodbye.
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
    }

    /// Queues this connection's ICE servers with fresh credentials; returns when to send
    /// the next ones, if they expire.
    fn send_ice_servers(
        &self,
        outbox: &mpsc::Sender<Payload>,
        host: Option<&str>,
        conn: ConnId,
    ) -> Option<std::pin::Pin<Box<tokio::time::Sleep>>> {
        let message = self.ice.message(host, &format!("duet-{}", conn.get()))?;
        // A full outbox means the client is being disconnected as too slow anyway.
        let _ = outbox.try_send(message.into());
        self.ice.refresh_every().map(|every| Box::pin(tokio::time::sleep(every)))
    }

    /// Every `every`, queues a ping for every connection, so that proxies with an idle
    /// timeout (often 60 s) keep the sockets open. One task for all connections: an idle
    /// connection carries no timer of its own.
    async fn run_keepalive(self: Arc<Self>, every: Duration) {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ping: Payload = Payload::from(KEEPALIVE);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                _ = interval.tick() => {
                    for outbox in self.lock().outboxes.values() {
                        // A full outbox belongs to a client being dropped as too slow.
                        let _ = outbox.try_send(ping.clone());
                    }
                }
            }
        }
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

/// A fresh resume secret for a session: 128 random bits, hex.
fn session_token() -> String {
    let bytes = crate::config::random_bytes::<16>().unwrap_or_else(|e| {
        // /dev/urandom missing is a broken system; a guessable token would be worse.
        panic!("no random source for session tokens: {e}")
    });
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `first` and whatever else is already queued, then flushes once: under load a
/// busy client gets several frames per system call.
async fn write_batch(
    socket: &mut WebSocket,
    first: Payload,
    inbox: &mut mpsc::Receiver<Payload>,
) -> Result<(), axum::Error> {
    socket.feed(text(first)).await?;
    for _ in 0..32 {
        match inbox.try_recv() {
            Ok(payload) => socket.feed(text(payload)).await?,
            Err(_) => break,
        }
    }
    socket.flush().await
}

/// The outbox entry that stands for a WebSocket ping: the hub only ever sends JSON, so an
/// empty payload cannot be confused with a message.
const KEEPALIVE: &str = "";

fn text(payload: Payload) -> Message {
    if &*payload == KEEPALIVE {
        return Message::Ping(Default::default());
    }
    Message::Text(Utf8Bytes::from(&*payload))
}

fn classify(error: &axum::Error) -> Ending {
    // axum wraps tungstenite's error; a frame or message over the limit is the only one
    // that gets an answer (1009) rather than silence.
    let inner = std::error::Error::source(error).and_then(|e| e.downcast_ref::<tungstenite::Error>());
    match inner {
        Some(tungstenite::Error::Capacity(_)) => Ending::TooLarge,
        _ => Ending::Lost,
    }
}

fn close_frame(ending: &Ending) -> Option<CloseFrame> {
    let (code, reason) = match ending {
        Ending::ClientLeft | Ending::Lost => return None,
        Ending::TooLarge => (close_code::SIZE, "message larger than 64 KiB"),
        Ending::TooSlow => (close_code::POLICY, "too slow to receive messages"),
        Ending::ShuttingDown => (close_code::AWAY, "server shutting down"),
    };
    Some(CloseFrame { code, reason: reason.into() })
}
