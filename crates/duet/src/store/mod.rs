//! The store: what duet must remember across restarts and share between its processes
//! (the server, `duet user`, `duet invite`): accounts, invites and their uses, sessions
//! signed out before they expired, account holders' call history, do not disturb and push
//! subscriptions, and secrets every node shares. One interface ([`Backend`]) over a database with
//! migrations; embedded SQLite in the state directory is the default and the whole story
//! for one node, and the next backends (PostgreSQL for several nodes) implement the same
//! trait and pass the same suite of tests (`store/tests.rs`).
//!
//! ```text
//!  duet serve ── async ──► Store::run(|db| …) ─► blocking thread ─► Backend ─► duet.db (WAL)
//!  duet user / duet invite ──────────────────────► Backend (same file, same transactions)
//!  first start over old files: accounts.json, invites.json, signed-out.json ─► imported
//!  once, in one transaction, the files kept beside it as *.imported
//! ```
//!
//! What this module deliberately does not do: decide anything. Who may come in is
//! `duet_access` (pure); the server keeps a copy of what the store holds, reads only
//! what changed ([`Versions`]), and asks the store only for what a real person did (an
//! invite that would let someone in, a sign-out, a new invite), so nothing a stranger
//! sends costs a write. No call here runs on the async runtime: the server goes through
//! [`Store::run`], the commands are synchronous programs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use duet_access::{AccountError, Accounts, InviteBook, InviteError, InviteRecord, Key};
use duet_signal::UserName;

pub use history::{Call, CallEntry, CallOutcome, CallRecord};
pub use push::{NewPushDevice, PushDevice};
pub use quiet::QuietSetting;

mod history;
mod import;
mod push;
mod quiet;
mod sqlite;
#[cfg(test)]
mod tests;

/// Milliseconds as SQLite stores them (a signed 64-bit integer).
pub(crate) fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The id of the account called `name`, if there is one (the SQLite backend's rows name
/// accounts by id).
pub(crate) fn account_id(db: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    db.query_row("SELECT id FROM accounts WHERE name = ?", [name], |row| row.get(0)).optional()
}

/// The key file that signs sessions and invites, beside the database.
pub const KEY: &str = "access.key";
/// The database file in the state directory.
pub const DATABASE: &str = "duet.db";

/// Why the store could not do what was asked; one variant per cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the database {path} was written by a newer duet (schema {found}, this one knows {known}): upgrade duet"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("cannot import {path}: {reason}")]
    Import { path: PathBuf, reason: String },
    #[error("a database query failed: {0}")]
    Query(String),
    #[error("the database worker stopped: {0}")]
    Worker(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Query(e.to_string())
    }
}

/// How far each part of the store has changed: a number that only grows. The server
/// reads again only the parts whose number moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    pub accounts: i64,
    pub invites: i64,
    /// The sequence number of the newest sign-out.
    pub sign_outs: i64,
}

/// A session signed out before it expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOut {
    pub seq: i64,
    /// The session's id (32 hex digits).
    pub session: String,
    /// When the session would have expired (ms since the epoch): the row goes then.
    pub expires: u64,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    /// argon2id, as a PHC string.
    pub hash: String,
    pub admin: bool,
    /// Random, from the shell's source; never reused.
    pub id: [u8; 16],
    pub now_ms: u64,
}

/// A change to an existing account.
#[derive(Debug, Clone)]
pub enum AccountChange {
    /// The account goes, its sessions end and the invites it made are revoked.
    Remove,
    /// A new password; every older session ends.
    Password {
        hash: String,
        now_ms: u64,
    },
    Admin(bool),
    /// Every session issued before `now_ms` ends.
    SignOutEverywhere {
        now_ms: u64,
    },
}

/// What was forgotten by [`Backend::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub invites: usize,
    pub sign_outs: usize,
}

/// One store of duet's state. Every method is one transaction; none may be called on
/// the async runtime (see [`Store::run`]). An `Err` is the store failing (a full disk,
/// a damaged file); what a person did wrong is the inner `Result`.
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn versions(&self) -> Result<Versions, StoreError>;
    fn accounts(&self) -> Result<Accounts, StoreError>;
    /// Adds an account unless its name is taken or looks like another account's (checked
    /// in the same transaction as the insert).
    fn add_account(&self, account: NewAccount) -> Result<Result<UserName, AccountError>, StoreError>;
    fn change_account(
        &self,
        name: &str,
        change: AccountChange,
    ) -> Result<Result<(), AccountError>, StoreError>;
    fn invites(&self) -> Result<InviteBook, StoreError>;
    fn add_invite(&self, record: &InviteRecord) -> Result<(), StoreError>;
    /// Counts one use of the invite `id` if it still lets someone in at `now_ms`
    /// (atomically: two people cannot both take its last use).
    fn use_invite(&self, id: &str, now_ms: u64) -> Result<Result<InviteRecord, InviteError>, StoreError>;
    /// Revokes the invite `id`; false when there is none.
    fn revoke_invite(&self, id: &str) -> Result<bool, StoreError>;
    /// Lists the session `id` as signed out until it would have expired.
    fn sign_out(&self, session: &str, expires: u64) -> Result<(), StoreError>;
    /// Sign-outs newer than `seq`, oldest first, at most `limit`.
    fn sign_outs_after(&self, seq: i64, limit: usize) -> Result<Vec<SignOut>, StoreError>;
    /// Forgets sign-outs of sessions that have expired anyway, and invites whose sessions
    /// have all expired (expired more than `session_ttl_ms` ago).
    fn prune(&self, now_ms: u64, session_ttl_ms: u64) -> Result<Pruned, StoreError>;
    /// Adds calls to their accounts' histories (a record for a name no account holds is
    /// dropped); returns how many were kept.
    fn record_calls(&self, records: &[CallRecord]) -> Result<usize, StoreError>;
    /// `account`'s calls older than the call `before` (all, without), newest first.
    fn calls(&self, account: &str, before: Option<i64>, limit: usize) -> Result<Vec<CallEntry>, StoreError>;
    /// How many missed calls `account` has not seen.
    fn unseen_calls(&self, account: &str) -> Result<u64, StoreError>;
    fn mark_calls_seen(&self, account: &str) -> Result<usize, StoreError>;
    fn clear_calls(&self, account: &str) -> Result<usize, StoreError>;
    /// Forgets every call made before `before_ms`.
    fn forget_calls_before(&self, before_ms: u64) -> Result<usize, StoreError>;
    /// Keeps `account`'s do not disturb (false: no such account).
    fn set_quiet(&self, account: &str, setting: QuietSetting) -> Result<bool, StoreError>;
    /// Every account's do not disturb that is not off at `now_ms`, by account name.
    fn quiet_settings(&self, now_ms: u64) -> Result<Vec<(String, QuietSetting)>, StoreError>;
    /// Keeps a device's push subscription for `account` (at most `most` per account, the
    /// least recently used going first); `None`: no such account.
    fn add_push_device(
        &self,
        account: &str,
        device: &NewPushDevice,
        now_ms: u64,
        most: usize,
    ) -> Result<Option<i64>, StoreError>;
    /// `account`'s devices, most recently used first.
    fn push_devices(&self, account: &str) -> Result<Vec<PushDevice>, StoreError>;
    /// The accounts with at least one device rung by push.
    fn push_accounts(&self) -> Result<Vec<String>, StoreError>;
    fn remove_push_device(&self, account: &str, endpoint: &str) -> Result<bool, StoreError>;
    /// A push service said the subscription is gone.
    fn forget_push_endpoint(&self, endpoint: &str) -> Result<bool, StoreError>;
    fn push_used(&self, endpoint: &str, now_ms: u64) -> Result<(), StoreError>;
    /// The secret `name` every node shares; `fresh` becomes it if there is none yet.
    fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// The store of a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    backend: Arc<dyn Backend>,
}

impl Store {
    /// Opens (or makes) the store in `dir`: the SQLite database, its schema brought up
    /// to date, and the old access files imported if this is the first start since.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sqlite::Sqlite::open(dir)?;
        import::old_files(&db, dir)?;
        Ok(Self { dir: dir.to_owned(), backend: Arc::new(db) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The backend, for synchronous programs (`duet user`, `duet invite`) and for code
    /// already on a blocking thread.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Runs `f` against the backend on a blocking thread, so the async runtime never
    /// waits for the disk.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<R, StoreError> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || f(&*backend))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// The key that signs sessions and invites, made on first use.
    pub fn key(&self) -> anyhow::Result<Key> {
        crate::state::key(&self.dir, KEY).map(Key::new)
    }
}
