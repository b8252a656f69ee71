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

#[cfg(test)]
mod tests {
    use super::*;

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
