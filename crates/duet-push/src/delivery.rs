//! What to do with each answer of a push service, on a clock the caller passes in: a
//! push is good until its deadline (a ringing call's ring time); a service that is busy
//! (429) or failing (5xx), or a connection that failed, is tried again within it,
//! waiting what `Retry-After` asks; a subscription the service no longer knows (404,
//! 410) is gone for good; anything else is given up on.
//!
//! ```text
//!  2xx ──► Delivered        404 / 410 ──► Gone (forget the subscription)
//!  429 / 5xx / no answer ──► RetryAt(now + Retry-After, or 1 s, 2 s, 4 s…) if before the
//!                            deadline, else GiveUp
//!  other 4xx (400 bad VAPID, 413 too big…) ──► GiveUp
//! ```

use std::time::{Duration, Instant};

/// The first wait before trying again without a `Retry-After`; it doubles each time.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// Tries at most, whatever the deadline.
const MOST_TRIES: u32 = 5;

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// The subscription is gone: forget it.
    Gone,
    RetryAt(Instant),
    /// Not delivered, for this reason (for the log).
    GiveUp(String),
}

/// One push's attempts.
#[derive(Debug, Clone)]
pub struct Delivery {
    deadline: Instant,
    tries: u32,
}

impl Delivery {
    /// A push that is worth delivering until `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self { deadline, tries: 0 }
    }

    /// The service answered `status` (with `Retry-After` in seconds, if it said one).
    pub fn answered(&mut self, now: Instant, status: u16, retry_after: Option<Duration>) -> Next {
        self.tries += 1;
        match status {
            200..=299 => Next::Delivered,
            404 | 410 => Next::Gone,
            429 | 500..=599 => self.again(now, retry_after, &format!("the push service answered {status}")),
            _ => Next::GiveUp(format!("the push service refused it with {status}")),
        }
    }

    /// No answer: the connection failed or timed out.
    pub fn failed(&mut self, now: Instant, why: &str) -> Next {
        self.tries += 1;
        self.again(now, None, why)
    }

    fn again(&self, now: Instant, retry_after: Option<Duration>, why: &str) -> Next {
        let wait = retry_after.unwrap_or(FIRST_WAIT * 2u32.pow(self.tries.saturating_sub(1).min(8)));
        let at = now + wait;
        if self.tries >= MOST_TRIES || at >= self.deadline {
            return Next::GiveUp(format!("{why}; no time left to try again"));
        }
        Next::RetryAt(at)
    }
}

/// `Retry-After` as a push service writes it: seconds (a date is read as "not said").
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: Duration = Duration::from_secs(30);

    #[test]
    fn accepted_is_delivered_and_404_or_410_loses_the_subscription() {
        let now = Instant::now();
        assert_eq!(Delivery::new(now + RING).answered(now, 201, None), Next::Delivered);
        assert_eq!(Delivery::new(now + RING).answered(now, 404, None), Next::Gone);
        assert_eq!(Delivery::new(now + RING).answered(now, 410, None), Next::Gone);
    }

    #[test]
    fn a_busy_service_is_tried_again_when_it_asks_within_the_ring_time_and_not_after() {
        let now = Instant::now();
        let mut delivery = Delivery::new(now + RING);
        assert_eq!(
            delivery.answered(now, 429, retry_after(Some("5"))),
            Next::RetryAt(now + Duration::from_secs(5))
        );
        let later = now + Duration::from_secs(5);
        let too_late = delivery.answered(later, 429, retry_after(Some("60")));
        assert!(matches!(too_late, Next::GiveUp(_)), "60 s is past the ring time: {too_late:?}");
    }

    #[test]
    fn failures_back_off_doubling_and_stop_at_the_deadline_or_after_five_tries() {
        let now = Instant::now();
        let mut delivery = Delivery::new(now + Duration::from_secs(600));
        let mut at = now;
        let mut waits = Vec::new();
        loop {
            match delivery.failed(at, "connection refused") {
                Next::RetryAt(next) => {
                    waits.push((next - at).as_secs());
                    at = next;
                }
                Next::GiveUp(why) => {
                    assert!(why.contains("connection refused"));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(
            Delivery::new(now + Duration::from_millis(500)).answered(now, 503, None),
            Next::GiveUp("the push service answered 503; no time left to try again".into())
        );
    }

    #[test]
    fn a_refusal_is_given_up_on_at_once_and_a_date_retry_after_is_not_read() {
        let now = Instant::now();
        assert!(matches!(Delivery::new(now + RING).answered(now, 400, None), Next::GiveUp(_)));
        assert!(matches!(Delivery::new(now + RING).answered(now, 413, None), Next::GiveUp(_)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
    }
}
