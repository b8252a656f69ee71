//! Limits per client address: how many connections one address may hold at once (web,
//! WebSocket, TURN over TCP), and how often it may be handed something (TURN
//! credentials). Pure policy on a virtual clock; the shell holds each in a mutex and
//! asks before it accepts.
//!
//! ```text
//!  accept ──► Slots::acquire(ip) ──refused──► close at once (or HTTP 429)
//!                  │ ok: a Slot; dropping it gives the place back
//!  sign-in ──► PerAddressRate::allow(ip, now) ──refused──► no TURN credentials
//! ```
//!
//! An IPv6 client owns a whole /64 (any address in it is one `key` away), so IPv6
//! addresses count per /64; IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_signal::limit::{Bucket, Rate};
use tokio_util::sync::CancellationToken;

/// Limits on the web port.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Open connections one client address may hold (WebSockets count once upgraded
    /// in signaling's own limit, not here).
    pub per_address: usize,
    /// Open connections in all.
    pub total: usize,
    /// Time a client has to send a request's headers, and to start the next request on a
    /// kept-alive connection.
    pub header_timeout: Duration,
    /// Reverse proxies (`--trusted-proxy`): everyone's connections arrive from them, so
    /// they count against the total only; the clients behind them are limited by the
    /// address they forward.
    pub trusted_proxies: Vec<duet_turn::policy::Cidr>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            per_address: 64,
            total: 100_000,
            header_timeout: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Limits of the signaling shell (the hub has its own per-connection rates).
#[derive(Debug, Clone)]
pub struct SignalingLimits {
    /// Open WebSockets one client address may hold (the rest get HTTP 429).
    pub sockets_per_address: usize,
    /// Open WebSockets in all.
    pub sockets_total: usize,
    /// How often one address is handed TURN credentials for a new connection.
    pub credentials: duet_signal::limit::Rate,
}

impl Default for SignalingLimits {
    fn default() -> Self {
        Self {
            sockets_per_address: 32,
            sockets_total: 100_000,
            credentials: duet_signal::limit::Rate::every(30, Duration::from_secs(10)),
        }
    }
}

/// Addresses whose rate is tracked at once; past this, buckets back at a full burst
/// are forgotten, and if none is, new addresses are refused until some are.
const MAX_TRACKED: usize = 65_536;

/// What counts as one client: an IPv4 address, or an IPv6 /64 (the same rule as the
/// TURN server's per-address quota).
pub use duet_turn::policy::client_key as key;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This address holds its share already.
    PerAddress,
    /// The server holds as many as it can.
    Total,
}

/// The part of a total that connections which have not finished their TLS handshake may
/// hold: a quarter is kept for those that did. Past it (or when the total is reached),
/// the oldest unfinished one is evicted to make room, so half-sent ClientHellos from many
/// addresses cannot keep anyone out: a real handshake takes milliseconds, and would have
/// to be outlasted by a share's worth of newer connections to be evicted itself.
fn unproven_share(total: usize) -> usize {
    (total - total / 4).max(1)
}

/// Concurrent connections, per address and in all.
#[derive(Debug)]
pub struct Concurrent {
    per_address: usize,
    total: usize,
    held: HashMap<IpAddr, usize>,
    in_use: usize,
    /// Connections that have not proven themselves yet ([`Slot::prove`]), oldest first,
    /// each with the token that evicts it.
    unproven: std::collections::BTreeMap<u64, CancellationToken>,
    next_id: u64,
    /// Addresses held to the total only (trusted reverse proxies).
    exempt: Vec<duet_turn::policy::Cidr>,
}

impl Concurrent {
    pub fn new(per_address: usize, total: usize) -> Self {
        Self {
            per_address,
            total,
            held: HashMap::new(),
            in_use: 0,
            unproven: Default::default(),
            next_id: 0,
            exempt: Vec::new(),
        }
    }

    /// The same, with `exempt` addresses held to the total only.
    pub fn exempting(mut self, exempt: Vec<duet_turn::policy::Cidr>) -> Self {
        self.exempt = exempt;
        self
    }

    /// Takes a place for `ip`, not proven yet: its id and the token that is cancelled if
    /// it is evicted before it proves itself. Or says why there is none.
    pub fn acquire(&mut self, ip: IpAddr) -> Result<(u64, CancellationToken), Refused> {
        let full = self.in_use >= self.total || self.unproven.len() >= unproven_share(self.total);
        if full && self.unproven.is_empty() {
            return Err(Refused::Total);
        }
        let exempt = self.exempt.iter().any(|cidr| cidr.contains(ip));
        let held = self.held.entry(key(ip)).or_insert(0);
        if *held >= self.per_address && !exempt {
            return Err(Refused::PerAddress);
        }
        *held += 1;
        self.in_use += 1;
        if full && let Some((_, oldest)) = self.unproven.pop_first() {
            oldest.cancel(); // its task drops it, giving its place back
        }
        let id = self.next_id;
        self.next_id += 1;
        let evicted = CancellationToken::new();
        self.unproven.insert(id, evicted.clone());
        Ok((id, evicted))
    }

    /// Connection `id` proved itself: it is no longer evicted for newcomers.
    pub fn prove(&mut self, id: u64) {
        self.unproven.remove(&id);
    }

    /// Gives back the place connection `id` took for `ip`.
    pub fn release(&mut self, ip: IpAddr, id: u64) {
        self.unproven.remove(&id);
        let key = key(ip);
        if let Some(held) = self.held.get_mut(&key) {
            *held -= 1;
            self.in_use -= 1;
            if *held == 0 {
                self.held.remove(&key);
            }
        }
    }

    /// Places taken, in all.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
}

/// [`Concurrent`] shared by the tasks of one listener; [`Slot`]s give places back when
/// dropped, however the connection ends.
#[derive(Debug, Clone)]
pub struct Slots(Arc<Mutex<Concurrent>>);

impl Slots {
    /// Slots for `limits`, trusted proxies held to the total only.
    pub fn for_web(limits: &HttpLimits) -> Self {
        let concurrent =
            Concurrent::new(limits.per_address, limits.total).exempting(limits.trusted_proxies.clone());
        Self(Arc::new(Mutex::new(concurrent)))
    }

    pub fn new(per_address: usize, total: usize) -> Self {
        Self(Arc::new(Mutex::new(Concurrent::new(per_address, total))))
    }

    /// Addresses held to the total only from now on (SIGHUP's trusted proxies).
    pub fn set_exempt(&self, exempt: Vec<duet_turn::policy::Cidr>) {
        self.lock().exempt = exempt;
    }

    pub fn acquire(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let (id, evicted) = self.lock().acquire(ip)?;
        Ok(Slot { slots: self.clone(), ip, id, evicted })
    }

    pub fn in_use(&self) -> usize {
        self.lock().in_use()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Concurrent> {
        // Counting never panics half-way; a poisoned lock still holds true counts.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One connection's place; given back on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Slots,
    ip: IpAddr,
    id: u64,
    /// Cancelled when the connection is evicted before it proved itself.
    evicted: CancellationToken,
}

impl Slot {
    /// The address the place was taken for.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The connection finished its TLS handshake (or needs none): it is no longer
    /// evicted to make room for newcomers.
    pub fn prove(&mut self) {
        self.slots.lock().prove(self.id);
    }

    /// Resolves if the connection is evicted before it proves itself.
    pub async fn evicted(&self) {
        self.evicted.cancelled().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().release(self.ip, self.id);
    }
}

/// A rate per address (a [`Bucket`] each), in bounded memory.
#[derive(Debug)]
pub struct PerAddressRate {
    rate: Rate,
    buckets: HashMap<IpAddr, Bucket>,
}

impl PerAddressRate {
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: HashMap::new() }
    }

    /// Counts one event for `ip` at `now`; false when its budget is spent.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.allow_or_wait(ip, now).is_ok()
    }

    /// Counts one event for `ip` at `now`, or says how long until one would be allowed
    /// (for `Retry-After`).
    pub fn allow_or_wait(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = key(ip);
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            if self.buckets.len() >= MAX_TRACKED {
                return Err(self.rate.every);
            }
        }
        let bucket = self.buckets.entry(key).or_default();
        if bucket.take(self.rate, now) {
            Ok(())
        } else {
            Err(bucket.wait(self.rate, now).max(Duration::from_secs(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    /// A place for a connection that then finishes its handshake.
    fn take(limits: &mut Concurrent, ip: IpAddr) -> Result<(), Refused> {
        limits.acquire(ip).map(|(id, _)| limits.prove(id))
    }

    #[test]
    fn one_address_gets_its_share_and_others_still_get_in() {
        let mut limits = Concurrent::new(2, 5);
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Ok(()));
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Ok(()));
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Err(Refused::PerAddress));
        assert_eq!(take(&mut limits, ip("::ffff:192.0.2.1")), Err(Refused::PerAddress), "the same address");
        assert_eq!(take(&mut limits, ip("192.0.2.2")), Ok(()));
        limits.release(ip("192.0.2.1"), 0);
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Ok(()), "a place given back is free again");
        assert_eq!(take(&mut limits, ip("192.0.2.3")), Ok(()));
        assert_eq!(take(&mut limits, ip("192.0.2.4")), Ok(()));
        assert_eq!(take(&mut limits, ip("192.0.2.5")), Err(Refused::Total));
        assert_eq!(limits.in_use(), 5);
    }

    #[test]
    fn a_trusted_proxy_counts_against_the_total_only() {
        let proxy = "10.0.0.2/32".parse().expect("literal");
        let mut limits = Concurrent::new(1, 3).exempting(vec![proxy]);
        assert_eq!(take(&mut limits, ip("10.0.0.2")), Ok(()));
        assert_eq!(take(&mut limits, ip("10.0.0.2")), Ok(()), "everyone's connections come from the proxy");
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Ok(()));
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Err(Refused::Total));
        limits.release(ip("10.0.0.2"), 0);
        assert_eq!(take(&mut limits, ip("192.0.2.1")), Err(Refused::PerAddress), "others keep their share");
    }

    #[test]
    fn an_ipv6_client_counts_per_64() {
        let mut limits = Concurrent::new(1, 10);
        assert_eq!(take(&mut limits, ip("2001:db8:1:2::1")), Ok(()));
        assert_eq!(take(&mut limits, ip("2001:db8:1:2:ffff::9")), Err(Refused::PerAddress));
        assert_eq!(take(&mut limits, ip("2001:db8:1:3::1")), Ok(()), "another /64");
    }

    #[test]
    fn unfinished_handshakes_make_room_for_newcomers_oldest_first_and_finished_ones_stay() {
        let slots = Slots::new(100, 8);
        let mut real = slots.acquire(ip("192.0.2.100")).expect("a place");
        real.prove();
        let stalled: Vec<Slot> =
            (1..=6).map(|n| slots.acquire(ip(&format!("192.0.2.{n}"))).expect("a place")).collect();
        assert!(stalled.iter().all(|s| !s.evicted.is_cancelled()), "within the share");
        let newcomer = slots.acquire(ip("192.0.2.50")).expect("room is made");
        assert!(stalled[0].evicted.is_cancelled(), "the oldest unfinished one goes");
        assert!(stalled[1..].iter().all(|s| !s.evicted.is_cancelled()));
        assert!(!real.evicted.is_cancelled(), "a finished one is never evicted");
        drop(stalled);
        drop(newcomer);
        let proven: Vec<Slot> = (0..7)
            .map(|n| {
                let mut slot = slots.acquire(ip(&format!("192.0.2.{}", 200 + n))).expect("a place");
                slot.prove();
                slot
            })
            .collect();
        assert_eq!(slots.acquire(ip("192.0.2.99")).map(|_| ()), Err(Refused::Total), "nothing to evict");
        drop(proven);
        drop(real);
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_dropped_slot_gives_its_place_back() {
        let slots = Slots::new(1, 10);
        let slot = slots.acquire(ip("192.0.2.1")).expect("free");
        assert_eq!(slots.acquire(ip("192.0.2.1")).map(|_| ()), Err(Refused::PerAddress));
        drop(slot);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.acquire(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn a_rate_per_address_refills_with_time() {
        let mut limits = PerAddressRate::new(Rate::every(2, Duration::from_secs(10)));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!((0..5).filter(|_| limits.allow(a, t0)).count(), 2);
        assert!(limits.allow(ip("192.0.2.2"), t0), "another address has its own");
        assert!(!limits.allow(a, t0 + Duration::from_secs(9)));
        assert!(limits.allow(a, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_refused_attempt_says_when_to_come_back() {
        let mut limits = PerAddressRate::new(Rate::every(3, Duration::from_secs(10)));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!((0..3).map(|_| limits.allow_or_wait(a, t0)).filter(Result::is_ok).count(), 3);
        assert_eq!(limits.allow_or_wait(a, t0), Err(Duration::from_secs(10)));
        assert_eq!(limits.allow_or_wait(a, t0 + Duration::from_secs(4)), Err(Duration::from_secs(6)));
        assert_eq!(limits.allow_or_wait(a, t0 + Duration::from_secs(10)), Ok(()));
    }
}
