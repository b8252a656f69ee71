//! This machine's addresses, as the peer policy needs them ("never relay to, never send
//! checks to, the server itself"): read again at most every [`REREAD_EVERY`], so an
//! address added after start (a floating IP, a new IPv6 address from the router) counts
//! as the server's own within seconds.
//!
//! ```text
//!  echo call ──► current() ── fresh? ──yes──► the list
//!                               └─no──► getifaddrs (netlink, microseconds) ──► kept
//!  TURN: every REREAD_EVERY, on a blocking thread ──► changed? ──► every shard's policy
//! ```

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old the list may be.
pub const REREAD_EVERY: Duration = Duration::from_secs(3);

type Cached = Option<(Instant, Arc<[IpAddr]>)>;

static CACHE: Mutex<Cached> = Mutex::new(None);

/// The addresses of every interface, at most [`REREAD_EVERY`] old.
pub fn current() -> Arc<[IpAddr]> {
    // A panic while the cache was held leaves at worst an old list: take it over.
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((read, list)) = cache.as_ref()
        && read.elapsed() < REREAD_EVERY
    {
        return Arc::clone(list);
    }
    let list: Arc<[IpAddr]> =
        if_addrs::get_if_addrs().unwrap_or_default().into_iter().map(|i| i.ip()).collect();
    *cache = Some((Instant::now(), Arc::clone(&list)));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_them_and_the_list_is_kept_a_while() {
        let first = current();
        assert!(first.iter().any(IpAddr::is_loopback), "{first:?}");
        assert!(Arc::ptr_eq(&first, &current()), "read again only when old");
    }
}
