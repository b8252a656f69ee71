//! What the servers of one process share: how many allocations each user, each client
//! address and everyone hold, against the [`Quotas`], the relay ports held for a
//! RESERVATION-TOKEN, and how many unauthenticated answers each source address had this
//! second (the reflection defence, which must not grow with the number of threads). One ledger per [`crate::Server`], or one shared by several servers
//! (the `duet` binary runs one per UDP thread) so that the quotas hold for the whole
//! process and a token works whichever thread the client's second socket reaches.
//!
//! Taking is atomic (check and count under one lock), so two servers cannot both let in
//! the last allocation of a quota. The lock is held for a few map operations per
//! Allocate and per freed allocation, never per relayed packet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::Quotas;
use crate::ratelimit::PerSource;

/// Allocation counts shared by the servers holding a clone.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Counts>>);

#[derive(Debug, Default)]
struct Counts {
    per_user: HashMap<Box<str>, usize>,
    per_address: HashMap<IpAddr, usize>,
    total: usize,
    /// Relay ports held for a later Allocate with the token (EVEN-PORT with R=1).
    reservations: HashMap<[u8; 8], Reservation>,
    /// Makes every token of every sharing server a different one.
    next_token: u64,
    /// Unauthenticated answers per source address, made on first use with the servers' rates.
    unauthenticated: Option<PerSource>,
}

/// A relay port held for a RESERVATION-TOKEN: its socket's local address, the address
/// announced to the client, and until when it is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub local: SocketAddr,
    pub advertised: SocketAddr,
    pub expires: Instant,
}

/// Why an allocation was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user's or the address's quota is reached (486).
    Quota,
    /// The server as a whole is full (508).
    Capacity,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Every update completes before the guard drops: a panic elsewhere leaves whole counts.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one allocation of `user` from `address` (already keyed: an IPv6 /64 is one
    /// address) unless that would pass one of `quotas`.
    pub fn take(&self, user: &str, address: IpAddr, quotas: &Quotas) -> Result<(), Refusal> {
        let mut counts = self.counts();
        let mine = counts.per_user.get(user).copied().unwrap_or(0);
        let here = counts.per_address.get(&address).copied().unwrap_or(0);
        if mine >= quotas.allocations_per_user || here >= quotas.allocations_per_address {
            return Err(Refusal::Quota);
        }
        if counts.total >= quotas.allocations_total {
            return Err(Refusal::Capacity);
        }
        *counts.per_user.entry(user.into()).or_default() += 1;
        *counts.per_address.entry(address).or_default() += 1;
        counts.total += 1;
        Ok(())
    }

    /// Gives back what [`Ledger::take`] counted.
    pub fn give_back(&self, user: &str, address: IpAddr) {
        let mut counts = self.counts();
        // What was never counted is not given back (every take counts all three).
        let Some(count) = counts.per_user.get_mut(user) else { return };
        *count -= 1;
        if *count == 0 {
            counts.per_user.remove(user);
        }
        if let Some(count) = counts.per_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                counts.per_address.remove(&address);
            }
        }
        counts.total -= 1;
    }

    /// Allocations counted in all.
    pub fn total(&self) -> usize {
        self.counts().total
    }

    /// Holds `reservation` under a new token, unguessable (a MAC of a counter under
    /// `secret`) and unique among the servers sharing this ledger.
    pub fn reserve(&self, secret: &[u8], reservation: Reservation) -> [u8; 8] {
        use hmac::{Hmac, Mac};
        let mut counts = self.counts();
        counts.next_token += 1;
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any key length");
        mac.update(b"reservation");
        mac.update(&counts.next_token.to_be_bytes());
        let mut token = [0; 8];
        token.copy_from_slice(&mac.finalize().into_bytes()[..8]);
        counts.reservations.insert(token, reservation);
        token
    }

    /// The reservation of `token`, taken (a token works once), if there is one.
    pub fn claim(&self, token: &[u8; 8]) -> Option<Reservation> {
        self.counts().reservations.remove(token)
    }

    /// Takes the reservations that expired by `now`: their ports are to be closed.
    pub fn expire_reservations(&self, now: Instant) -> Vec<SocketAddr> {
        let mut expired = Vec::new();
        self.counts().reservations.retain(|_, r| {
            let keep = now < r.expires;
            if !keep {
                expired.push(r.local);
            }
            keep
        });
        expired
    }

    /// Counts an unauthenticated answer to `ip`; false if it is over its budget
    /// (`rates`: per second, and once verified).
    pub(crate) fn allow_unauthenticated(&self, ip: IpAddr, now: Instant, rates: (u32, u32)) -> bool {
        Self::per_source(&mut self.counts(), rates).allow(ip, now)
    }

    /// `ip` authenticated: it has the verified budget for a while.
    pub(crate) fn authenticated(&self, ip: IpAddr, now: Instant, rates: (u32, u32)) {
        Self::per_source(&mut self.counts(), rates).verified(ip, now);
    }

    /// Starts a new second of unauthenticated answers if the current one is over.
    pub(crate) fn forget_unauthenticated_before(&self, now: Instant) {
        if let Some(per_source) = &mut self.counts().unauthenticated {
            per_source.forget_before(now);
        }
    }

    fn per_source(counts: &mut Counts, (rate, verified): (u32, u32)) -> &mut PerSource {
        counts.unauthenticated.get_or_insert_with(|| PerSource::new(rate, verified))
    }

    /// When the next reservation expires.
    pub fn next_reservation_expiry(&self) -> Option<Instant> {
        self.counts().reservations.values().map(|r| r.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(per_user: usize, per_address: usize, total: usize) -> Quotas {
        Quotas {
            allocations_per_user: per_user,
            allocations_per_address: per_address,
            allocations_total: total,
            ..Quotas::default()
        }
    }

    #[test]
    fn quotas_hold_across_every_clone_and_come_back_when_given_back() {
        let a = Ledger::new();
        let b = a.clone();
        let address: IpAddr = [192, 0, 2, 1].into();
        let q = quotas(2, 10, 100);
        assert_eq!(a.take("ann", address, &q), Ok(()));
        assert_eq!(b.take("ann", address, &q), Ok(()));
        assert_eq!(
            a.take("ann", address, &q),
            Err(Refusal::Quota),
            "ann's two are taken, whichever clone counted them"
        );
        assert_eq!(b.take("bo", address, &q), Ok(()));
        b.give_back("ann", address);
        assert_eq!(a.take("ann", address, &q), Ok(()));
        assert_eq!(a.total(), 3);
    }

    #[test]
    fn a_reservation_is_claimed_once_from_any_clone_and_tokens_never_repeat() {
        let a = Ledger::new();
        let b = a.clone();
        let now = Instant::now();
        let port = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let held = Reservation {
            local: port(50001),
            advertised: port(50001),
            expires: now + std::time::Duration::from_secs(30),
        };
        let first = a.reserve(b"secret", held);
        let second = b.reserve(b"secret", Reservation { local: port(50003), ..held });
        assert_ne!(first, second, "two servers never hand out the same token");
        assert_eq!(b.claim(&first), Some(held), "claimed through another clone");
        assert_eq!(a.claim(&first), None, "once");
        assert_eq!(a.expire_reservations(now), vec![], "not yet");
        assert_eq!(a.next_reservation_expiry(), Some(held.expires));
        assert_eq!(b.expire_reservations(held.expires), vec![port(50003)]);
        assert_eq!(a.next_reservation_expiry(), None);
    }

    #[test]
    fn an_address_and_the_whole_server_have_limits_of_their_own() {
        let ledger = Ledger::new();
        let one: IpAddr = [192, 0, 2, 1].into();
        let two: IpAddr = [192, 0, 2, 2].into();
        let q = quotas(10, 2, 3);
        assert_eq!(ledger.take("a", one, &q), Ok(()));
        assert_eq!(ledger.take("b", one, &q), Ok(()));
        assert_eq!(ledger.take("c", one, &q), Err(Refusal::Quota), "the address's quota");
        assert_eq!(ledger.take("c", two, &q), Ok(()));
        assert_eq!(ledger.take("d", two, &q), Err(Refusal::Capacity), "the server is full");
        ledger.give_back("a", one);
        ledger.give_back("nobody", two); // never counted: changes nothing
        assert_eq!(ledger.total(), 2);
        assert_eq!(ledger.take("d", two, &q), Ok(()));
    }
}
