//! How many unauthenticated answers each source address gets per second.
//!
//! A 401 is larger than the request that caused it, so an open server answering every
//! spoofed request is an amplifier. Each source address gets `rate` answers per
//! one-second window; the table is cleared every window and capped in size, so a flood
//! from many spoofed addresses costs bounded memory (when the table is full, new
//! addresses get no answer until the next window).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);
/// Source addresses tracked per window at most.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug)]
pub(super) struct PerSource {
    rate: u32,
    window_start: Option<Instant>,
    counts: HashMap<IpAddr, u32>,
}

impl PerSource {
    pub fn new(rate: u32) -> Self {
        Self { rate, window_start: None, counts: HashMap::new() }
    }

    /// Counts one answer to `ip`; false if it is over its rate.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.forget_before(now);
        self.window_start.get_or_insert(now);
        if self.counts.len() >= MAX_SOURCES && !self.counts.contains_key(&ip) {
            return false;
        }
        let count = self.counts.entry(ip).or_insert(0);
        *count += 1;
        *count <= self.rate
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

    #[test]
    fn each_source_gets_its_rate_per_second() {
        let mut limiter = PerSource::new(3);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("literal");
        let b: IpAddr = "192.0.2.2".parse().expect("literal");
        assert_eq!(
            (0..5).map(|_| limiter.allow(a, now)).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        assert!(limiter.allow(b, now), "another source has its own budget");
        assert!(limiter.allow(a, now + WINDOW), "a new window, a new budget");
    }
}
