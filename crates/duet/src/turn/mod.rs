//! The TURN driver: sockets around [`duet_turn::Server`].
//!
//! ```text
//!  one shard per UDP thread (all alike):
//!  UDP listener task ──batch────┐                        ┌──► relay socket ──► peer
//!  TCP/TLS conn tasks ──frame───┼──lock──► Server ──ToPeer┘
//!                               │           │
//!  relay socket tasks ──batch───┘           ├──ToClient──► listener / stream ──► client
//!                                           ├──Transmit──► listener / stream ──► client
//!  timer task ── handle_timeout ────────────┘──Event────► open / close relay sockets
//! ```
//!
//! The server is sharded by thread ([`DriverConfig::threads`], one per core by default):
//! each UDP thread has a runtime of its own, a UDP listener on the shared port
//! (SO_REUSEPORT: the kernel sends each client address to one listener, always the same),
//! its own [`Server`] for the clients that reach it, and the relay sockets of their
//! allocations. A client's packets and its peers' packets are thus handled on one thread
//! and never take another thread's lock; the quotas are counted in one [`duet_turn::Ledger`]
//! shared by every shard, so they hold for the process. TCP and TLS clients are given to
//! a shard by their address; their tasks and the timers run on the main runtime.
//! Each shard's server sits behind a `std::sync::Mutex`, held for one batch of datagrams
//! (or one stream frame) at a time and never across an `.await`; sends happen after it
//! is released. UDP is read up to 32 datagrams per system call into the running thread's
//! buffers (see [`batch`]), which have [`duet_turn::HEADROOM`] before each datagram: the
//! server writes the ChannelData header in place, and relaying allocates nothing. What
//! goes to one address from one socket leaves in one segmented write where the system
//! has UDP GSO. Relay sockets are non-blocking UDP sockets, one per allocation, from the
//! configured port range.

pub mod batch;
pub mod issued;
mod relay;
mod stream;
pub use stream::TurnStreams;
mod udp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use batch::{Batch, BatchSocket};
use duet_turn::{Event, FiveTuple, Server, ToPeer, Transmit, Transport};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::PortRange;

/// Largest datagram read from a peer or client (RFC 8656 allows up to 65535 bytes of
/// DATA; browsers send at most about 1200).
const MAX_DATAGRAM: usize = 65_535;

/// How the driver is set up, besides the core's own [`duet_turn::Config`].
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// UDP and TCP listen address (the same port for both).
    pub listen: SocketAddr,
    /// TLS listen address, with the server certificate.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// A TCP listener beside the UDP one (and the TLS one, if any); without them TURN
    /// streams arrive only through [`Turn::streams`] (the web port).
    pub stream_listeners: bool,
    /// Where relay sockets bind, per address family, and the address announced for them.
    pub relay_ips: Vec<RelayIp>,
    pub relay_ports: PortRange,
    /// How long handed-out credentials live: a revoked user is remembered that long.
    pub credential_ttl: std::time::Duration,
    /// TCP and TLS connections one client address may hold, and in all.
    pub streams_per_address: usize,
    pub streams_total: usize,
    /// UDP threads, each with a listener on the same port and a server of its own (at least 1).
    pub threads: usize,
}

/// One address family's relay sockets: the IP they bind to, and the IP clients are told
/// (a public address behind 1:1 NAT, or a concrete one for an unspecified bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayIp {
    pub bind: IpAddr,
    pub announce: IpAddr,
}

/// The relay addresses for a TURN server listening on `listen`: its own family, or both
/// when it listens on `[::]` (dual stack). `external` is announced for its family; an
/// unspecified bind with nothing to announce takes the first usable address of
/// `interfaces` for that family.
pub fn relay_ips(
    listen: IpAddr,
    external: Option<IpAddr>,
    interfaces: &[IpAddr],
) -> anyhow::Result<Vec<RelayIp>> {
    let binds: Vec<IpAddr> = match listen {
        IpAddr::V6(v6) if v6.is_unspecified() => vec![IpAddr::from([0u8; 4]), listen],
        other => vec![other],
    };
    let mut relays = Vec::new();
    for bind in binds {
        let usable = |ip: &&IpAddr| {
            let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            ip.is_ipv4() == bind.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified() && !link_local
        };
        let announce = match external.filter(|e| e.is_ipv4() == bind.is_ipv4()) {
            Some(external) => Some(external),
            None if bind.is_unspecified() => interfaces.iter().find(usable).copied(),
            None => Some(bind),
        };
        match announce {
            Some(announce) => relays.push(RelayIp { bind, announce }),
            // Dual stack without a usable IPv6 address: IPv4 relays only.
            None if bind.is_ipv6() && relays.len() == 1 => {
                tracing::info!("no global IPv6 address to announce: TURN relays IPv4 only");
            }
            None => anyhow::bail!(
                "TURN listens on {listen} but this machine has no {} address to announce: set --turn-external-ip",
                if bind.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
        }
    }
    Ok(relays)
}

/// A running TURN server: its bound addresses, and a way to wait for it to stop.
#[derive(Debug)]
pub struct Turn {
    pub udp: SocketAddr,
    /// The TURN TCP listener, unless TURN streams come through the web port only.
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    tasks: TaskTracker,
    shards: Shards,
}

/// Every shard of the server, one per UDP thread.
#[derive(Debug, Clone)]
pub(crate) struct Shards(Arc<[Arc<Shared>]>);

impl Shards {
    /// The shard that serves a TCP or TLS client at `client` (UDP clients are given to
    /// shards by the kernel).
    fn for_client(&self, client: SocketAddr) -> &Arc<Shared> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        client.hash(&mut hasher);
        &self.0[(hasher.finish() % self.0.len() as u64) as usize]
    }

    fn first(&self) -> &Arc<Shared> {
        &self.0[0]
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Shared>> {
        self.0.iter()
    }
}

impl Turn {
    /// Binds the listeners and starts every task; they stop when `shutdown` is cancelled.
    pub async fn start(
        core: duet_turn::Config,
        driver: DriverConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let threads = driver.threads.max(1);
        let (udp_sockets, tcp_listener) =
            bind_listeners(driver.listen, threads, driver.stream_listeners).await?;
        let udp = udp_sockets[0].local_addr().context("read the TURN UDP address")?;
        let tcp = match &tcp_listener {
            Some(listener) => Some(listener.local_addr().context("read the TURN TCP address")?),
            None => None,
        };
        let tls = match &driver.tls {
            Some(_) if !driver.stream_listeners => None,
            Some((addr, config)) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("bind TURN TLS {addr}"))?;
                Some((listener, Arc::clone(config)))
            }
            None => None,
        };
        let tls_addr = match &tls {
            Some((l, _)) => Some(l.local_addr().context("read the TURN TLS address")?),
            None => None,
        };
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let ledger = duet_turn::Ledger::new();
        let stream_slots = crate::limits::Slots::new(driver.streams_per_address, driver.streams_total);
        let parked = Arc::new(Mutex::new(HashMap::new()));
        let tasks = TaskTracker::new();
        let mut shards = Vec::with_capacity(threads);
        for (i, udp_socket) in udp_sockets.into_iter().enumerate() {
            let udp_runtime = start_udp_thread(i, shutdown.clone())?;
            let udp_socket = {
                let _in_udp_runtime = udp_runtime.enter();
                BatchSocket::new(udp_socket).context("set up the TURN UDP socket")?
            };
            let server = Server::with_ledger(core.clone(), Instant::now(), unix, ledger.clone());
            shards.push(Arc::new(Shared {
                inner: Mutex::new(Inner { server, relays: HashMap::new(), streams: HashMap::new() }),
                udp: Arc::new(udp_socket),
                udp_addr: udp,
                udp_runtime,
                stream_slots: stream_slots.clone(),
                parked: Arc::clone(&parked),
                driver: driver.clone(),
                timer: Notify::new(),
                shutdown: shutdown.clone(),
                tasks: tasks.clone(),
            }));
        }
        let shards = Shards(shards.into());
        for shard in shards.iter() {
            tasks.spawn_on(udp::serve(Arc::clone(shard)), &shard.udp_runtime);
            tasks.spawn(Arc::clone(shard).run_timer());
        }
        if let Some(listener) = tcp_listener {
            tasks.spawn(stream::accept(shards.clone(), listener, None));
        }
        if let Some((listener, config)) = tls {
            tasks.spawn(stream::accept(shards.clone(), listener, Some(config)));
        }
        Ok(Self { udp, tcp, tls: tls_addr, tasks, shards })
    }

    /// Keeps every shard's "never relay to this server" list up to date: every
    /// [`crate::interfaces::REREAD_EVERY`], `own` is asked (on a blocking thread) for the
    /// addresses as they are, and a change goes to each shard's server.
    pub fn watch_own_addresses(
        &self,
        own: impl Fn() -> Vec<IpAddr> + Send + Sync + 'static,
        mut last: Vec<IpAddr>,
        shutdown: CancellationToken,
    ) {
        let shards = self.shards.clone();
        let own = Arc::new(own);
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(crate::interfaces::REREAD_EVERY) => {}
                }
                let own = Arc::clone(&own);
                let Ok(now) = tokio::task::spawn_blocking(move || own()).await else { continue };
                if now == last {
                    continue;
                }
                tracing::info!(
                    "this server's addresses changed; never relaying to: {}",
                    now.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                );
                for shard in shards.iter() {
                    shard.lock().server.set_own_addresses(now.clone());
                }
                last = now;
            }
        });
    }

    /// Waits until every TURN task has stopped (after shutdown).
    pub async fn closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Live allocations, for tests and diagnostics.
    pub fn allocation_count(&self) -> usize {
        self.monitor().snapshot().0
    }

    /// Live allocations of each UDP thread, for tests and diagnostics.
    pub fn allocations_per_thread(&self) -> Vec<usize> {
        self.shards.iter().map(|shard| shard.lock().server.allocation_count()).collect()
    }

    /// A handle for serving TURN streams that arrive on the web port.
    pub fn streams(&self) -> stream::TurnStreams {
        stream::TurnStreams { shards: self.shards.clone() }
    }

    /// A handle for ending what a session holds when it ends.
    pub fn users(&self) -> TurnUsers {
        TurnUsers { shards: self.shards.clone() }
    }

    /// A handle for reading figures while the server runs.
    pub fn monitor(&self) -> TurnMonitor {
        TurnMonitor { shards: self.shards.clone() }
    }

    /// The server's counters (packets dropped, peers denied, ...), over every shard.
    pub fn stats(&self) -> duet_turn::Stats {
        self.monitor().snapshot().1
    }
}

/// Starts UDP thread `index`: a runtime of its own that reads one UDP listener and the
/// relay sockets of its allocations, so relayed media never waits behind web or
/// signaling work and a packet never hops between threads. It stops with `shutdown`.
fn start_udp_thread(index: usize, shutdown: CancellationToken) -> anyhow::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start a TURN UDP runtime")?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("duet-turn-udp-{index}"))
        .spawn(move || runtime.block_on(shutdown.cancelled()))
        .context("start a TURN UDP thread")?;
    Ok(handle)
}

/// `threads` UDP listeners on one port (with SO_REUSEPORT when more than one, so the
/// kernel spreads clients over them) and, with `tcp`, a TCP listener on the same port,
/// so one firewall rule covers both. With port 0 the system picks the port, which may be
/// taken for TCP: then another is tried.
async fn bind_listeners(
    listen: SocketAddr,
    threads: usize,
    tcp: bool,
) -> anyhow::Result<(Vec<std::net::UdpSocket>, Option<tokio::net::TcpListener>)> {
    let attempts = if listen.port() == 0 && tcp { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let first = bind_udp(listen, threads > 1).with_context(|| format!("bind TURN UDP {listen}"))?;
        let port = first.local_addr().context("read the TURN UDP address")?.port();
        let at = SocketAddr::new(listen.ip(), port);
        let listener = if tcp {
            match tokio::net::TcpListener::bind(at).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    last = Some((port, e));
                    continue;
                }
            }
        } else {
            None
        };
        let mut sockets = vec![first];
        for _ in 1..threads {
            sockets
                .push(bind_udp(at, true).with_context(|| format!("bind another TURN UDP listener on {at}"))?);
        }
        return Ok((sockets, listener));
    }
    let (port, e) = last.expect("at least one attempt");
    Err(e).with_context(|| format!("bind TURN TCP {}", SocketAddr::new(listen.ip(), port)))
}

/// A UDP socket bound to `at`, joining the SO_REUSEPORT group of that port if `shared`
/// (the kernel admits only sockets of the same user to a group).
fn bind_udp(at: SocketAddr, shared: bool) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
    if at.is_ipv6() {
        // `[::]` takes IPv4 too (dual stack), as a plain bind does on Linux.
        socket.set_only_v6(false)?;
    }
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&at.into())?;
    Ok(socket.into())
}

/// Ends a user's allocations and credentials when the signaling session they were issued
/// to is over (signed out, or gone for good).
#[derive(Debug, Clone)]
pub struct TurnUsers {
    shards: Shards,
}

impl TurnUsers {
    /// `user` (the part after the expiry in ephemeral usernames) is over, on every shard.
    pub fn revoke(&self, user: &str) {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        for shard in self.shards.iter() {
            let until = unix + shard.driver.credential_ttl.as_secs();
            let outcome = {
                let mut inner = shard.lock();
                inner.server.revoke_user(Instant::now(), user, until);
                Shared::drain(&mut inner)
            };
            shard.complete(outcome);
        }
    }
}

/// A cheap handle for reading the TURN server's figures (metrics).
#[derive(Debug, Clone)]
pub struct TurnMonitor {
    shards: Shards,
}

impl TurnMonitor {
    /// Live allocations and the server's counters, summed over the shards.
    pub fn snapshot(&self) -> (usize, duet_turn::Stats) {
        let mut total = (0, duet_turn::Stats::default());
        for shard in self.shards.iter() {
            let inner = shard.lock();
            total.0 += inner.server.allocation_count();
            total.1.add(inner.server.stats());
        }
        total
    }
}

/// One shard: what the tasks of one UDP thread (and the streams given to it) share.
#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// This shard's UDP listener (all are on the same port): the clients the kernel
    /// gives it are answered from it.
    udp: Arc<BatchSocket>,
    udp_addr: SocketAddr,
    /// The runtime of this shard's UDP thread, where its UDP sockets are read.
    udp_runtime: tokio::runtime::Handle,
    driver: DriverConfig,
    /// Woken when the server's next timeout may have moved earlier.
    timer: Notify,
    /// TCP and TLS connections per client address (shared by every shard).
    stream_slots: crate::limits::Slots,
    /// Reserved relay ports (EVEN-PORT with R=1), unread until a shard claims one with
    /// its token (shared by every shard: the claim may reach any).
    parked: Arc<Mutex<HashMap<SocketAddr, std::net::UdpSocket>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

#[derive(Debug)]
struct Inner {
    server: Server,
    relays: HashMap<SocketAddr, relay::Relay>,
    /// Writers of TCP and TLS clients, by five-tuple.
    streams: HashMap<FiveTuple, mpsc::Sender<Vec<u8>>>,
}

impl Inner {
    /// Queues `data` for a TCP or TLS client's writer, if it is still connected.
    fn send_to_stream(&self, to: &FiveTuple, data: &[u8]) {
        if let Some(writer) = self.streams.get(to) {
            // A client too slow to read loses packets, not the server's memory.
            let _ = writer.try_send(data.to_vec());
        }
    }
}

/// What one locked step produced, to be sent after the lock is released.
#[derive(Debug, Default)]
struct Outcome {
    transmits: Vec<Transmit>,
    events: Vec<Event>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The server's methods finish before returning; a panic elsewhere while the lock
        // was held leaves nothing half-done worth refusing to serve over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drains what the server queued (under the lock).
    fn drain(inner: &mut Inner) -> Outcome {
        let mut outcome = Outcome::default();
        while let Some(t) = inner.server.poll_transmit() {
            outcome.transmits.push(t);
        }
        while let Some(e) = inner.server.poll_event() {
            outcome.events.push(e);
        }
        outcome
    }

    /// Datagrams from UDP clients, read in one batch: data for peers is relayed (runs to
    /// one peer in one write), then whatever else the server produced is handled.
    fn from_udp_clients(self: &Arc<Self>, batch: &mut Batch, n: usize) {
        let server = self.udp_addr;
        let now = Instant::now();
        let outcome = {
            let mut inner = self.lock();
            let sends = &mut batch.sends;
            batch.received.for_each(n, |client, buf, packet| {
                let from = FiveTuple { client, server, transport: Transport::Udp };
                let packet = &buf[packet];
                if let Some((socket, peer, payload)) = Self::to_peer(&mut inner, now, from, packet) {
                    sends.push(socket, peer, &packet[payload]);
                }
            });
            Self::drain(&mut inner)
        };
        batch.sends.flush();
        self.complete(outcome);
    }

    /// A packet from a TCP or TLS client.
    fn from_stream_client(self: &Arc<Self>, from: FiveTuple, packet: &[u8]) {
        let (forward, outcome) = {
            let mut inner = self.lock();
            let forward = Self::to_peer(&mut inner, Instant::now(), from, packet)
                .map(|(socket, peer, payload)| (Arc::clone(socket), peer, payload));
            (forward, Self::drain(&mut inner))
        };
        if let Some((socket, peer, payload)) = forward {
            socket.send(peer, &packet[payload], None);
        }
        self.complete(outcome);
    }

    /// Hands a client's packet to the server; for data to relay, the relay socket, the
    /// peer and where the data is in `packet`.
    fn to_peer<'a>(
        inner: &'a mut Inner,
        now: Instant,
        from: FiveTuple,
        packet: &[u8],
    ) -> Option<(&'a Arc<BatchSocket>, SocketAddr, std::ops::Range<usize>)> {
        match inner.server.handle_client(now, from, packet) {
            Ok(Some(ToPeer { relay, peer, payload })) => {
                inner.relays.get(&relay).map(|r| (&r.socket, peer, payload))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::trace!(client = %from.client, "dropped a malformed packet: {e}");
                None
            }
        }
    }

    /// Sends responses and opens or closes relay sockets.
    fn complete(self: &Arc<Self>, mut outcome: Outcome) {
        // Relayed data changes no timer: the hot path stops here, without another lock
        // or a wake-up of the timer task.
        if outcome.transmits.is_empty() && outcome.events.is_empty() {
            return;
        }
        loop {
            for transmit in outcome.transmits.drain(..) {
                self.send_to_client(transmit.to, &transmit.data);
            }
            if outcome.events.is_empty() {
                break;
            }
            let events = std::mem::take(&mut outcome.events);
            outcome = relay::handle_events(self, events);
        }
        let wants_timer = self.lock().server.poll_timeout().is_some();
        if wants_timer {
            self.timer.notify_one();
        }
    }

    fn send_to_client(&self, to: FiveTuple, data: &[u8]) {
        match to.transport {
            Transport::Udp => self.udp.send(to.client, data, None),
            Transport::Tcp | Transport::Tls => self.lock().send_to_stream(&to, data),
        }
    }

    async fn run_timer(self: Arc<Self>) {
        loop {
            let due = self.lock().server.poll_timeout();
            let sleep = crate::clock::sleep_until(due);
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.timer.notified() => {}
                () = sleep => {
                    let outcome = {
                        let mut inner = self.lock();
                        inner.server.handle_timeout(Instant::now());
                        Self::drain(&mut inner)
                    };
                    self.complete(outcome);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    #[test]
    fn a_specific_listen_address_relays_and_announces_itself() {
        let relays = relay_ips(ip("192.0.2.10"), None, &[]).expect("valid");
        assert_eq!(relays, [RelayIp { bind: ip("192.0.2.10"), announce: ip("192.0.2.10") }]);
        let nat = relay_ips(ip("10.0.0.5"), Some(ip("203.0.113.7")), &[]).expect("valid");
        assert_eq!(nat[0].announce, ip("203.0.113.7"));
    }

    #[test]
    fn dual_stack_relays_both_families_with_concrete_announced_addresses() {
        let interfaces = [ip("127.0.0.1"), ip("::1"), ip("fe80::1"), ip("192.0.2.10"), ip("2001:db8::10")];
        let relays = relay_ips(ip("::"), Some(ip("203.0.113.7")), &interfaces).expect("valid");
        assert_eq!(
            relays,
            [
                RelayIp { bind: ip("0.0.0.0"), announce: ip("203.0.113.7") },
                RelayIp { bind: ip("::"), announce: ip("2001:db8::10") },
            ]
        );
        let v4_only = relay_ips(ip("::"), None, &[ip("192.0.2.10"), ip("fe80::1")]).expect("valid");
        assert_eq!(v4_only, [RelayIp { bind: ip("0.0.0.0"), announce: ip("192.0.2.10") }]);
    }

    #[test]
    fn an_unspecified_address_with_nothing_to_announce_is_refused() {
        assert!(relay_ips(ip("0.0.0.0"), None, &[ip("127.0.0.1")]).is_err());
    }
}
