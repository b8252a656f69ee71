//! How many unauthenticated answers each source address gets per second.
//!
//! A 401 is larger than the request that caused it, so an open server answering every
//! spoofed request is an amplifier. Each source address gets `rate` answers per
//! one-second window. An address that has authenticated successfully has proven it
//! receives what is sent to it (it echoed a nonce back with a valid MAC), so it gets
//! `verified_rate` for a while: many users behind one NAT can all start calls at once,
//! while a spoofer, who never sees a nonce, stays at `rate`.
//!
//! Both tables are bounded (cleared per window, or capped), so a flood from many spoofed
//! addresses costs bounded memory: when a table is full, new addresses get the
//! unverified budget, or none.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);
/// How long a successful authentication raises an address's budget.
const VERIFIED_FOR: Duration = Duration::from_secs(600);
/// Source addresses tracked per window, and verified addresses kept, at most.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug)]
pub(crate) struct PerSource {
    rate: u32,
    verified_rate: u32,
    window_start: Option<Instant>,
    counts: HashMap<IpAddr, u32>,
    /// Addresses that authenticated, and until when that counts.
    verified: HashMap<IpAddr, Instant>,
}

impl PerSource {
    pub fn new(rate: u32, verified_rate: u32) -> Self {
        Self { rate, verified_rate, window_start: None, counts: HashMap::new(), verified: HashMap::new() }
    }

    /// Counts one answer to `ip`; false if it is over its budget.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.forget_before(now);
        self.window_start.get_or_insert(now);
        if self.counts.len() >= MAX_SOURCES && !self.counts.contains_key(&ip) {
            return false;
        }
        let budget = match self.verified.get(&ip) {
            Some(&until) if now < until => self.verified_rate,
            _ => self.rate,
        };
        let count = self.counts.entry(ip).or_insert(0);
        *count += 1;
        *count <= budget
    }

    /// `ip` just authenticated.
    pub fn verified(&mut self, ip: IpAddr, now: Instant) {
        if self.verified.len() >= MAX_SOURCES && !self.verified.contains_key(&ip) {
            self.verified.retain(|_, until| now < *until);
            if self.verified.len() >= MAX_SOURCES {
                return;
            }
        }
        self.verified.insert(ip, now + VERIFIED_FOR);
    }

    /// Starts a new window if the current one is over.
    pub fn forget_before(&mut self, now: Instant) {
        if self.window_start.is_some_and(|start| now >= start + WINDOW) {
            self.counts.clear();
            self.window_start = None;
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
    fn each_source_gets_its_rate_per_second() {
        let mut limiter = PerSource::new(3, 100);
        let now = Instant::now();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(
            (0..5).map(|_| limiter.allow(a, now)).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        assert!(limiter.allow(b, now), "another source has its own budget");
        assert!(limiter.allow(a, now + WINDOW), "a new window, a new budget");
    }

    #[test]
    fn an_address_that_authenticated_gets_the_larger_budget_for_a_while() {
        let mut limiter = PerSource::new(2, 5);
        let now = Instant::now();
        let a = ip("192.0.2.1");
        limiter.verified(a, now);
        assert_eq!((0..6).filter(|_| limiter.allow(a, now)).count(), 5);
        let later = now + VERIFIED_FOR;
        assert_eq!((0..6).filter(|_| limiter.allow(a, later)).count(), 2, "verification expires");
    }
}
