//! The server's copy of what the store holds, and how it catches up: the store's
//! [`Versions`] are read (one small query), and only the parts that moved are read again:
//! every account when an account changed, every invite when an invite changed, and only
//! the sign-outs newer than the last one seen.
//!
//! ```text
//!  blocking thread: Catch::since(store, held versions) ──► Catch{versions, accounts?, invites?, sign-outs}
//!  runtime: Books::apply(catch) ── under the books lock, a few pointer swaps and inserts
//! ```
//!
//! Reading happens on a blocking thread; applying is cheap and takes the lock briefly.
//! Two catches racing (a sign-out's and the timer's) apply in either order: each part
//! is taken only when it is newer than what is held.

use std::sync::Arc;

use duet_access::{Accounts, InviteBook, SignedOut};

use crate::store::{Backend, SignOut, StoreError, Versions};

/// Sign-outs read at once; a longer list is read over the next catches.
const SIGN_OUTS_PER_CATCH: usize = 50_000;

/// What the store held when last read.
#[derive(Debug, Default)]
pub(super) struct Books {
    pub accounts: Arc<Accounts>,
    pub invites: InviteBook,
    pub signed_out: SignedOut,
    pub versions: Versions,
}

/// What changed in the store since some versions.
#[derive(Debug)]
pub(super) struct Catch {
    versions: Versions,
    accounts: Option<Accounts>,
    invites: Option<InviteBook>,
    sign_outs: Vec<SignOut>,
}

impl Catch {
    /// Reads what changed since `seen` (on a blocking thread).
    pub fn since(db: &dyn Backend, seen: Versions) -> Result<Self, StoreError> {
        Self::since_at_most(db, seen, SIGN_OUTS_PER_CATCH)
    }

    /// The same, reading at most `limit` sign-outs.
    fn since_at_most(db: &dyn Backend, seen: Versions, limit: usize) -> Result<Self, StoreError> {
        let mut versions = db.versions()?;
        let accounts = (versions.accounts != seen.accounts).then(|| db.accounts()).transpose()?;
        let invites = (versions.invites != seen.invites).then(|| db.invites()).transpose()?;
        let sign_outs = if versions.sign_outs > seen.sign_outs {
            db.sign_outs_after(seen.sign_outs, limit)?
        } else {
            Vec::new()
        };
        if sign_outs.len() == limit {
            versions.sign_outs = sign_outs.last().map_or(seen.sign_outs, |s| s.seq);
        }
        Ok(Self { versions, accounts, invites, sign_outs })
    }

    /// Whether the accounts changed (their names are reserved in the hub).
    pub fn has_accounts(&self) -> bool {
        self.accounts.is_some()
    }
}

impl Books {
    /// Everything the store holds, read in as many catches as the sign-outs take (at
    /// start and on SIGHUP, on a blocking thread): no sign-out is missing once it returns.
    pub fn read_all(db: &dyn Backend) -> Result<Self, StoreError> {
        Self::read_all_at_most(db, SIGN_OUTS_PER_CATCH)
    }

    fn read_all_at_most(db: &dyn Backend, limit: usize) -> Result<Self, StoreError> {
        let mut books = Self::default();
        loop {
            let catch = Catch::since_at_most(db, books.versions, limit)?;
            let more = catch.sign_outs.len() == limit;
            books.apply(catch);
            if !more {
                return Ok(books);
            }
        }
    }

    /// Takes what `catch` read that is newer than what is held; true when anything was.
    pub fn apply(&mut self, catch: Catch) -> bool {
        let mut changed = false;
        if let Some(accounts) = catch.accounts
            && catch.versions.accounts > self.versions.accounts
        {
            self.accounts = Arc::new(accounts);
            self.versions.accounts = catch.versions.accounts;
            changed = true;
        }
        if let Some(invites) = catch.invites
            && catch.versions.invites > self.versions.invites
        {
            self.invites = invites;
            self.versions.invites = catch.versions.invites;
            changed = true;
        }
        for sign_out in &catch.sign_outs {
            self.signed_out.insert(&sign_out.session, sign_out.expires);
        }
        if catch.versions.sign_outs > self.versions.sign_outs {
            self.versions.sign_outs = catch.versions.sign_outs;
            changed |= !catch.sign_outs.is_empty();
        }
        changed
    }

    /// Forgets what can no longer matter at `now_ms`, as the store does.
    pub fn prune(&mut self, now_ms: u64, session_ttl_ms: u64) {
        self.signed_out.prune(now_ms);
        self.invites.prune(now_ms, session_ttl_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_sign_out_list_is_read_whole_in_bounded_catches_and_then_only_what_is_new() {
        let dir = std::env::temp_dir().join(format!("duet-books-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = crate::store::Store::open(&dir).expect("a store");
        let db = store.backend();
        let id = |n: u32| format!("{n:032x}");
        (0..10).for_each(|n| db.sign_out(&id(n), u64::MAX / 2).expect("stored"));
        let mut books = Books::read_all_at_most(db, 3).expect("read");
        assert_eq!(books.signed_out.len(), 10, "all of them, three at a time");
        let catch = Catch::since_at_most(db, books.versions, 3).expect("read");
        assert!(!books.apply(catch), "nothing new");
        db.sign_out(&id(10), u64::MAX / 2).expect("stored");
        let catch = Catch::since_at_most(db, books.versions, 3).expect("read");
        assert_eq!(catch.sign_outs.len(), 1, "only the new one is read");
        assert!(books.apply(catch) && books.signed_out.contains(&id(10)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
