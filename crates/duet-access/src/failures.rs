//! How many wrong passwords duet listens to: a budget per account and one for everyone,
//! so that guessing one account from many addresses goes at a crawl and a crowd of
//! strangers cannot keep the password hashing (and the people waiting on it) busy.
//!
//! ```text
//!  attempt(account?, client) ──► a recent address of that account? ──yes──► go
//!        │ no
//!        ├─► the account's failures over budget? ──► wait (Retry-After), no hash spent
//!        └─► everyone's failures over budget? ────► wait, no hash spent
//!  hash ──► wrong: failed(account?) counts in both ── right: succeeded(account, client)
//! ```
//!
//! It delays, it never locks out: a refused attempt costs nothing and says when to come
//! back, the account's owner keeps their cookie, and an address the account signed in
//! from recently is let through whatever strangers did. Memory is bounded: a bucket per
//! existing account (the caller names an account only when it exists) with at most
//! [`RECENT_ADDRESSES`] addresses each, and one bucket for all. Time is a parameter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use duet_signal::limit::{Bucket, Rate};

/// Addresses remembered per account as "where its owner signs in from".
pub const RECENT_ADDRESSES: usize = 8;
/// How long an address stays recent after a sign-in from it.
pub const RECENT_FOR: Duration = Duration::from_secs(30 * 86_400);

/// Why an attempt must wait, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// This account had too many wrong passwords lately.
    Account(Duration),
    /// Everyone's wrong passwords together are over the server's budget.
    Everyone(Duration),
}

/// The failure budgets.
#[derive(Debug)]
pub struct Failures {
    per_account: Rate,
    everyone: Rate,
    accounts: HashMap<String, AccountFailures>,
    all: Bucket,
}

#[derive(Debug, Default)]
struct AccountFailures {
    failures: Bucket,
    /// Client addresses (as the caller keys them) the account signed in from, newest last.
    recent: Vec<(IpAddr, Instant)>,
}

impl Failures {
    pub fn new(per_account: Rate, everyone: Rate) -> Self {
        Self { per_account, everyone, accounts: HashMap::new(), all: Bucket::default() }
    }

    /// Whether an attempt at `account` (`None`: a name that is no account, or the
    /// instance password) from `client` may be checked at `now`.
    pub fn may_try(&self, account: Option<&str>, client: IpAddr, now: Instant) -> Result<(), Wait> {
        let entry = account.and_then(|name| self.accounts.get(name));
        if entry.is_some_and(|e| e.is_recent(client, now)) {
            return Ok(());
        }
        if let Some(entry) = entry {
            let wait = entry.failures.wait(self.per_account, now);
            if !wait.is_zero() {
                return Err(Wait::Account(wait));
            }
        }
        let wait = self.all.wait(self.everyone, now);
        if !wait.is_zero() {
            return Err(Wait::Everyone(wait));
        }
        Ok(())
    }

    /// Counts a wrong password for `account` (if it exists) and for everyone.
    pub fn failed(&mut self, account: Option<&str>, now: Instant) {
        if let Some(name) = account {
            let entry = self.accounts.entry(name.to_owned()).or_default();
            entry.failures.take(self.per_account, now);
        }
        self.all.take(self.everyone, now);
    }

    /// Remembers that `account` signed in from `client`.
    pub fn succeeded(&mut self, account: &str, client: IpAddr, now: Instant) {
        let entry = self.accounts.entry(account.to_owned()).or_default();
        entry.recent.retain(|(ip, at)| *ip != client && now.saturating_duration_since(*at) < RECENT_FOR);
        if entry.recent.len() >= RECENT_ADDRESSES {
            entry.recent.remove(0);
        }
        entry.recent.push((client, now));
    }

    /// Forgets what no longer matters: accounts that no longer exist (`exists` says),
    /// and entries back to a full budget with no recent address.
    pub fn forget(&mut self, exists: impl Fn(&str) -> bool, now: Instant) {
        self.accounts.retain(|name, entry| {
            entry.recent.retain(|(_, at)| now.saturating_duration_since(*at) < RECENT_FOR);
            exists(name) && !(entry.failures.is_full(now) && entry.recent.is_empty())
        });
    }

    /// Accounts tracked now.
    pub fn tracked(&self) -> usize {
        self.accounts.len()
    }
}

impl AccountFailures {
    fn is_recent(&self, client: IpAddr, now: Instant) -> bool {
        self.recent.iter().any(|(ip, at)| *ip == client && now.saturating_duration_since(*at) < RECENT_FOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn failures() -> Failures {
        Failures::new(Rate::every(3, MINUTE), Rate::per_second(10, 2))
    }

    #[test]
    fn an_account_guessed_from_many_addresses_slows_to_its_pace() {
        let mut f = failures();
        let t0 = Instant::now();
        for n in 0..3 {
            assert_eq!(f.may_try(Some("ann"), ip(n), t0), Ok(()));
            f.failed(Some("ann"), t0);
        }
        assert_eq!(
            f.may_try(Some("ann"), ip(50), t0),
            Err(Wait::Account(MINUTE)),
            "a new address changes nothing"
        );
        assert_eq!(f.may_try(Some("bo"), ip(50), t0), Ok(()), "another account has its own budget");
        assert_eq!(f.may_try(Some("ann"), ip(50), t0 + MINUTE), Ok(()), "one more a minute");
    }

    #[test]
    fn the_owner_s_recent_address_gets_in_while_strangers_wait() {
        let mut f = failures();
        let t0 = Instant::now();
        f.succeeded("ann", ip(1), t0);
        for _ in 0..20 {
            f.failed(Some("ann"), t0);
        }
        assert!(f.may_try(Some("ann"), ip(9), t0).is_err());
        assert_eq!(f.may_try(Some("ann"), ip(1), t0), Ok(()), "home is let through");
        let month = t0 + RECENT_FOR;
        (0..20).for_each(|_| f.failed(Some("ann"), month));
        assert!(f.may_try(Some("ann"), ip(1), month).is_err(), "a month later it is a stranger");
    }

    #[test]
    fn everyone_s_failures_together_have_a_budget_that_refills() {
        let mut f = failures();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(f.may_try(None, ip(7), t0), Ok(()));
            f.failed(None, t0);
        }
        assert_eq!(f.may_try(None, ip(8), t0), Err(Wait::Everyone(Duration::from_millis(500))));
        assert_eq!(f.may_try(Some("new"), ip(8), t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(f.tracked(), 0, "names that are no account are never kept");
    }

    #[test]
    fn memory_stays_bounded_by_accounts_and_recent_addresses() {
        let mut f = failures();
        let t0 = Instant::now();
        for n in 0..50 {
            f.succeeded("ann", ip(n), t0);
        }
        assert_eq!(f.accounts.get("ann").map(|e| e.recent.len()), Some(RECENT_ADDRESSES));
        assert_eq!(f.may_try(Some("ann"), ip(49), t0), Ok(()));
        f.failed(Some("bo"), t0);
        f.forget(|name| name == "ann", t0);
        assert_eq!(f.tracked(), 1, "a removed account is forgotten");
        f.forget(|_| true, t0 + RECENT_FOR);
        assert_eq!(f.tracked(), 0, "and a quiet one in time");
    }
}
