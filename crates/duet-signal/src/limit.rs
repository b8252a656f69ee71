//! Rate limits on a virtual clock: how often one connection (or one address) may do
//! something, as a burst and a steady pace.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, which the `governor` crate
//! also uses): a [`Bucket`] keeps one instant, the "theoretical arrival time" of the next
//! event at the steady pace, instead of a token count and a refill timestamp. An event is
//! allowed when that instant is no further ahead of `now` than the burst allows.
//!
//! ```text
//!   tat ──── now + every × (burst − 1) ─── ahead of that? refuse : allow, tat += every
//! ```
//!
//! Time is a parameter: nothing here reads a clock, so limits are tested in microseconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// `burst` events at once, then one every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many events may come back to back after a quiet spell (at least 1).
    pub burst: u32,
    /// The steady pace: one event per this much time.
    pub every: Duration,
}

impl Rate {
    /// `burst` at once, then `per_second` a second.
    pub const fn per_second(burst: u32, per_second: u32) -> Self {
        Self { burst, every: Duration::from_nanos(1_000_000_000 / per_second as u64) }
    }

    /// `burst` at once, then one every `every`.
    pub const fn every(burst: u32, every: Duration) -> Self {
        Self { burst, every }
    }

    /// How far ahead of `now` the next event's time may run.
    fn tolerance(self) -> Duration {
        self.every.saturating_mul(self.burst.saturating_sub(1))
    }
}

/// The state of one limited thing: one instant (16 bytes), nothing until first used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// When the next event would be due at the steady pace; `None` until the first.
    tat: Option<Instant>,
}

impl Bucket {
    /// Counts one event at `now` if `rate` allows it; false (and nothing counted) if not.
    pub fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let tat = self.tat.map_or(now, |tat| tat.max(now));
        if tat > now + rate.tolerance() {
            return false;
        }
        self.tat = Some(tat + rate.every);
        true
    }

    /// How long until [`Bucket::take`] would allow one more event (zero if now).
    pub fn wait(&self, rate: Rate, now: Instant) -> Duration {
        let Some(tat) = self.tat else { return Duration::ZERO };
        tat.saturating_duration_since(now + rate.tolerance())
    }

    /// Whether the bucket is back to a full burst at `now`, so it can be forgotten.
    pub fn is_full(&self, now: Instant) -> bool {
        self.tat.is_none_or(|tat| tat <= now)
    }
}

/// Addresses whose buckets are kept at once; past this, buckets back at a full burst are
/// forgotten, and if none is, the address is refused until some are.
const MAX_ADDRESSES: usize = 65_536;

/// A [`Bucket`] per client address (an IPv6 client per /64, which it owns whole), in
/// bounded memory: for what many sockets of one address share, such as chat.
#[derive(Debug, Default)]
pub struct PerAddress {
    buckets: HashMap<IpAddr, Bucket>,
}

impl PerAddress {
    /// Counts one event for `address` at `now` if `rate` allows it.
    pub fn take(&mut self, address: IpAddr, rate: Rate, now: Instant) -> bool {
        let key = client_key(address);
        if self.buckets.len() >= MAX_ADDRESSES && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            if self.buckets.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        self.buckets.entry(key).or_default().take(rate, now)
    }
}

/// One client: an IPv4 address (IPv4-mapped IPv6 too), or an IPv6 /64.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_of_one_address_share_its_budget() {
        let rate = Rate::per_second(3, 1);
        let mut per = PerAddress::default();
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8::1".parse().expect("literal");
        let same: IpAddr = "2001:db8::ffff:2".parse().expect("literal");
        assert_eq!((0..5).filter(|_| per.take(a, rate, t0)).count(), 3);
        assert!(!per.take(same, rate, t0), "the same /64");
        assert!(per.take("2001:db8:0:1::1".parse().expect("literal"), rate, t0), "another /64");
        let v4: IpAddr = "192.0.2.1".parse().expect("literal");
        assert!(per.take(v4, rate, t0));
        assert_eq!(client_key("::ffff:192.0.2.1".parse().expect("literal")), v4);
    }

    #[test]
    fn a_burst_then_the_steady_pace() {
        let rate = Rate::per_second(3, 2);
        let mut bucket = Bucket::default();
        let t0 = Instant::now();
        let allowed: Vec<bool> = (0..5).map(|_| bucket.take(rate, t0)).collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        assert_eq!(bucket.wait(rate, t0), Duration::from_millis(500));
        assert!(!bucket.take(rate, t0 + Duration::from_millis(499)));
        assert!(bucket.take(rate, t0 + Duration::from_millis(500)), "one more every 500 ms");
        assert!(!bucket.take(rate, t0 + Duration::from_millis(600)));
    }

    #[test]
    fn a_quiet_spell_restores_the_whole_burst_and_no_more() {
        let rate = Rate::per_second(4, 10);
        let mut bucket = Bucket::default();
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| bucket.take(rate, t0)).count(), 4);
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.is_full(later));
        assert_eq!((0..10).filter(|_| bucket.take(rate, later)).count(), 4, "a burst, not a minute's worth");
    }

    #[test]
    fn a_refused_event_costs_nothing() {
        let rate = Rate::every(1, Duration::from_secs(1));
        let mut bucket = Bucket::default();
        let t0 = Instant::now();
        assert!(bucket.take(rate, t0));
        for ms in 0..1000 {
            assert!(!bucket.take(rate, t0 + Duration::from_millis(ms)));
        }
        assert!(bucket.take(rate, t0 + Duration::from_secs(1)), "hammering did not push the next slot back");
    }
}
