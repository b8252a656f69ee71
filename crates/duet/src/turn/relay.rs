//! Relay sockets: one UDP socket per allocation, from the configured port range, with a
//! task that reads what peers send and hands it to the server.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::Instant;

use duet_turn::{BoundRelay, Event, Family, ToClient, Transport};
use tokio::task::AbortHandle;

use super::batch::{Batch, BatchSocket};
use super::{Outcome, Shared};

#[derive(Debug)]
pub(super) struct Relay {
    pub socket: Arc<BatchSocket>,
    task: AbortHandle,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens relay sockets for `BindRelay`, closes them for `ReleaseRelay`, starts reading a
/// held one for `AdoptRelay`; returns what the server produced in answer.
pub(super) fn handle_events(shared: &Arc<Shared>, events: Vec<Event>) -> Outcome {
    let mut outcome = Outcome::default();
    for event in events {
        match event {
            Event::BindRelay { request, family, even_port, reserve_next } => {
                let bound = bind(shared, family, even_port || reserve_next, reserve_next);
                let mut inner = shared.lock();
                let result = match bound {
                    Ok((socket, next)) => {
                        let (local, advertised) = register(shared, &mut inner, socket);
                        let reserved = next.and_then(|next| park(shared, next));
                        Ok(BoundRelay { local, advertised, reserved })
                    }
                    Err(e) => {
                        tracing::warn!("cannot open a TURN relay socket: {e}");
                        Err(())
                    }
                };
                inner.server.relay_bound(Instant::now(), request, result);
                let more = Shared::drain(&mut inner);
                outcome.transmits.extend(more.transmits);
                outcome.events.extend(more.events);
            }
            Event::AdoptRelay { relay } => {
                // Held since its reservation (by any shard): read it on this shard now.
                let held = shared.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&relay);
                let Some(socket) = held else { continue };
                let socket = {
                    let _in_udp_runtime = shared.udp_runtime.enter();
                    BatchSocket::new(socket)
                };
                match socket {
                    Ok(socket) => {
                        register(shared, &mut shared.lock(), socket);
                    }
                    Err(e) => tracing::warn!("cannot read a reserved TURN relay socket: {e}"),
                }
            }
            Event::ReleaseRelay { relay } => {
                shared.lock().relays.remove(&relay);
                shared.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&relay);
            }
        }
    }
    outcome
}

/// The address announced to clients for a relay socket bound at `local`.
fn advertised(shared: &Shared, local: SocketAddr) -> SocketAddr {
    let announce =
        shared.driver.relay_ips.iter().find(|r| r.bind.is_ipv4() == local.is_ipv4()).map(|r| r.announce);
    SocketAddr::new(announce.unwrap_or(local.ip()), local.port())
}

/// Starts reading a relay socket and files it under its local address; returns that
/// address and the one announced to clients.
fn register(shared: &Arc<Shared>, inner: &mut super::Inner, socket: BatchSocket) -> (SocketAddr, SocketAddr) {
    let local = socket.local_addr().expect("a bound socket has an address");
    let socket = Arc::new(socket);
    let task =
        shared.tasks.spawn_on(read_peers(Arc::clone(shared), Arc::clone(&socket)), &shared.udp_runtime);
    inner.relays.insert(local, Relay { socket, task: task.abort_handle() });
    (local, advertised(shared, local))
}

/// Holds a reserved port's socket, unread, for whichever shard claims the reservation;
/// its local and announced addresses.
fn park(shared: &Shared, socket: StdUdpSocket) -> Option<(SocketAddr, SocketAddr)> {
    let local = socket.local_addr().ok()?;
    shared.parked.lock().unwrap_or_else(|p| p.into_inner()).insert(local, socket);
    Some((local, advertised(shared, local)))
}

/// Binds a UDP socket on a free port of the range, starting at a random one; with
/// `reserve_next`, also the port after it (left unread until it is claimed).
fn bind(
    shared: &Shared,
    family: Family,
    even_port: bool,
    reserve_next: bool,
) -> std::io::Result<(BatchSocket, Option<StdUdpSocket>)> {
    let wanted_v4 = family == Family::V4;
    let Some(ip) = shared.driver.relay_ips.iter().map(|r| r.bind).find(|ip| ip.is_ipv4() == wanted_v4) else {
        return Err(std::io::Error::other("no relay address of that family"));
    };
    let range = &shared.driver.relay_ports.0;
    let span = u32::from(range.end() - range.start()) + 1;
    let start = random_u32() % span;
    let open = |port: u16| StdUdpSocket::bind(SocketAddr::new(ip, port)).ok();
    // Registered with the UDP thread's reactor, where its reader runs.
    let reading = |socket: StdUdpSocket| {
        let _in_udp_runtime = shared.udp_runtime.enter();
        BatchSocket::new(socket).ok()
    };
    // Try a bounded number of ports: a nearly full range fails fast instead of scanning.
    for i in 0..span.min(64) {
        let mut port = range.start() + ((start + i * 7) % span) as u16;
        if even_port && port % 2 == 1 {
            port = if port < *range.end() { port + 1 } else { port - 1 };
        }
        if reserve_next && port == *range.end() {
            continue;
        }
        let Some(socket) = open(port) else { continue };
        if !reserve_next {
            let Some(socket) = reading(socket) else { continue };
            return Ok((socket, None));
        }
        if let Some(next) = open(port + 1) {
            let Some(socket) = reading(socket) else { continue };
            return Ok((socket, Some(next)));
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free port in the relay range"))
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS; good enough to spread relay ports.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(Instant::now().elapsed().as_nanos() as u64);
    hasher.finish() as u32
}

/// Reads what peers send to one relay socket until the allocation is gone.
async fn read_peers(shared: Arc<Shared>, socket: Arc<BatchSocket>) {
    let Ok(relay) = socket.local_addr() else { return };
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            // An error is an ICMP port unreachable from an earlier send: keep reading.
            _ = socket.recv_batch(|batch, n| from_peers(&shared, relay, batch, n)) => {}
        }
    }
}

/// Frames a batch of peer datagrams for their client: UDP clients get runs of frames in
/// one write, TCP and TLS clients a frame each on their writer's queue.
fn from_peers(shared: &Shared, relay: SocketAddr, batch: &mut Batch, n: usize) {
    let now = Instant::now();
    {
        let mut inner = shared.lock();
        let inner = &mut *inner;
        let sends = &mut batch.sends;
        batch.received.for_each(n, |peer, buf, payload| {
            let Some(ToClient { to, frame }) = inner.server.handle_peer(now, relay, peer, buf, payload)
            else {
                return;
            };
            match to.transport {
                Transport::Udp => sends.push(&shared.udp, to.client, &buf[frame]),
                Transport::Tcp | Transport::Tls => inner.send_to_stream(&to, &buf[frame]),
            }
        });
    }
    batch.sends.flush();
}
