//! Who may come in, wired to HTTP: the policy is `duet_access` (pure); this module keeps
//! a copy of the books the store holds, reads cookies and headers, counts attempts, and
//! bounds the password hashing.
//!
//! ```text
//!  POST /api/sign-in ──► attempts per address (429 + Retry-After)
//!        │                 └► hashing permit (at most --limit-password-hashes at once)
//!        ├─ password ──► instance password (constant-time)
//!        ├─ account ───► Accounts::verify (argon2id, on a blocking thread)
//!        └─ invite ────► InviteBook::peek (the copy: a refused token costs nothing more)
//!                          └► store: the use counted in one transaction (blocking thread)
//!                 └► Session sealed into the cookie
//!  WebSocket upgrade ──► Origin (403) ──► session needed and valid? (401) ──► room allowed? (403)
//!  every few seconds ──► the store's versions ──► only what changed read again (blocking
//!                        thread) ──► sessions of live sockets checked again
//! ```
//!
//! The copy is what every check reads: a session is checked in memory, never against
//! the disk, and the store is written only for what a real person did (an invite that
//! lets them in, a sign-out, a new invite).

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::http::{HeaderMap, StatusCode, header};
use duet_access::failures::{Failures, Wait};
use duet_access::{Admitted, Gate, InviteError, Key, Mode, Session, SessionError, Who};
use duet_signal::{RoomName, UserName};

use crate::clock::now_ms;
use crate::config::AccessConfig;
use crate::limits::PerAddressRate;
use crate::store::{AccountChange, Store, StoreError};

mod api;
mod books;
mod calls;
pub mod cookie;
pub mod http;
pub mod proxy;
mod push;
mod refusal;

use books::Books;
pub use refusal::SignInRefusal;

/// How long a sign-in waits for a hashing permit before the server says it is busy.
const HASHING_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The access policy of a running server.
#[derive(Debug)]
pub struct Access {
    config: AccessConfig,
    /// The origins and proxies to trust: the config's at start, then SIGHUP's.
    lists: std::sync::RwLock<Lists>,
    key: Key,
    store: Option<Store>,
    books: Mutex<Books>,
    attempts: Mutex<PerAddressRate>,
    /// Wrong passwords per account and for everyone.
    failures: Mutex<Failures>,
    hashing: tokio::sync::Semaphore,
}

/// What SIGHUP can change without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lists {
    pub allowed_origins: Vec<duet_access::Origin>,
    pub trusted_proxies: Vec<duet_turn::policy::Cidr>,
    /// The host names requests may be for.
    pub hosts: duet_access::Hosts,
}

impl Lists {
    /// The lists a configuration gives.
    pub fn of(config: &AccessConfig) -> Self {
        Self {
            allowed_origins: config.allowed_origins.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            hosts: config.hosts.clone(),
        }
    }
}

/// What a sign-in asks for: exactly one of an instance password, an account and
/// password, or an invite token.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub invite: Option<String>,
}

/// Why a WebSocket upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRefusal {
    pub status: StatusCode,
    pub message: String,
}

impl Access {
    /// The access policy, with its books read from the store in `state_dir`.
    pub fn new(config: AccessConfig, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        let store = state_dir.map(Store::open).transpose()?;
        Self::with_store(config, store)
    }

    /// The access policy over `store` (none: nothing outlives the process).
    pub fn with_store(config: AccessConfig, store: Option<Store>) -> anyhow::Result<Self> {
        let key = match &store {
            Some(store) => store.key().context("the key that signs sessions and invites")?,
            None => {
                anyhow::ensure!(
                    config.mode != Mode::Members,
                    "--access members keeps accounts and invites in the state directory: pass --state-dir"
                );
                if config.mode == Mode::Password {
                    tracing::warn!("no state directory (set --state-dir): a restart signs everyone out");
                }
                Key::new(crate::random::bytes::<32>().context("read random bytes")?)
            }
        };
        let lists = std::sync::RwLock::new(Lists::of(&config));
        let books = match &store {
            Some(store) => Books::read_all(store.backend())?,
            None => Books::default(),
        };
        Ok(Self {
            lists,
            attempts: Mutex::new(PerAddressRate::new(config.sign_ins)),
            failures: Mutex::new(Failures::new(config.failures_per_account, config.failures)),
            hashing: tokio::sync::Semaphore::new(config.password_hashes),
            config,
            key,
            store,
            books: Mutex::new(books),
        })
    }

    /// An open server without a state directory: what most tests run.
    pub fn open() -> Self {
        Self::new(AccessConfig::open(), None).expect("an open server needs no files")
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    pub fn session_ttl(&self) -> Duration {
        self.config.session_ttl
    }

    /// How long account holders' calls are kept (zero: none are).
    pub fn call_history(&self) -> Duration {
        self.config.call_history
    }

    fn session_ttl_ms(&self) -> u64 {
        u64::try_from(self.config.session_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// The store, if this server keeps its state.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The books. Every holder of this lock does in-memory work only; a panic cannot
    /// leave them half changed in a way a check would trust (each change is one swap or
    /// one insert), so a poisoned lock is taken over.
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads from the store what changed since the books were last read (a `duet user`
    /// or `duet invite` command ran, another process signed someone out), on a blocking
    /// thread. Returns whether the accounts changed (their names are reserved in the
    /// hub), or `None` when nothing did.
    pub async fn refresh(&self) -> Result<Option<bool>, StoreError> {
        let Some(store) = &self.store else { return Ok(None) };
        let seen = self.books().versions;
        let catch = store.run(move |db| books::Catch::since(db, seen)).await?;
        let accounts = catch.has_accounts();
        Ok(self.books().apply(catch).then_some(accounts))
    }

    /// Forgets, in the store and the books, sign-outs and invites that can no longer
    /// matter (their sessions have expired).
    pub async fn prune(&self) -> Result<(), StoreError> {
        let (now, ttl) = (now_ms(), self.session_ttl_ms());
        if let Some(store) = &self.store {
            let history = u64::try_from(self.config.call_history.as_millis()).unwrap_or(u64::MAX);
            let before = now.saturating_sub(history);
            let (pruned, calls) =
                store.run(move |db| Ok((db.prune(now, ttl)?, db.forget_calls_before(before)?))).await?;
            if calls > 0 {
                tracing::debug!("forgot {calls} calls older than the call history keeps");
            }
            if pruned != crate::store::Pruned::default() {
                tracing::debug!(
                    "forgot {} expired sign-outs and {} old invites",
                    pruned.sign_outs,
                    pruned.invites
                );
            }
        }
        self.books().prune(now, ttl);
        let accounts = Arc::clone(&self.books().accounts);
        self.failures().forget(|name| accounts.get(name).is_some(), Instant::now());
        Ok(())
    }

    /// Reads the whole store again (SIGHUP); returns what it holds, for the log.
    pub async fn reload(&self) -> Result<String, StoreError> {
        if let Some(store) = &self.store {
            let read = store.run(Books::read_all).await?;
            *self.books() = read;
        }
        let books = self.books();
        let live = books.invites.iter().filter(|i| !i.revoked).count();
        Ok(format!(
            "{} accounts, {live} invites, {} sessions signed out",
            books.accounts.len(),
            books.signed_out.len()
        ))
    }

    /// Takes the origins, proxies and host names of a re-read configuration; says what
    /// changed.
    pub fn set_lists(&self, new: Lists) -> Vec<String> {
        let mut lists = self.lists.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut changed = Vec::new();
        let listed = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
        if lists.allowed_origins != new.allowed_origins {
            changed.push(format!(
                "allowed origins: {}",
                listed(new.allowed_origins.iter().map(ToString::to_string).collect())
            ));
        }
        if lists.trusted_proxies != new.trusted_proxies {
            changed.push(format!(
                "trusted proxies: {}",
                listed(new.trusted_proxies.iter().map(ToString::to_string).collect())
            ));
        }
        if lists.hosts != new.hosts {
            changed.push(format!("host names: {}", listed(new.hosts.names().map(str::to_owned).collect())));
        }
        *lists = new;
        changed
    }

    fn lists(&self) -> std::sync::RwLockReadGuard<'_, Lists> {
        self.lists.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether anyone can sign in with an account here.
    pub fn has_accounts(&self) -> bool {
        !self.books().accounts.is_empty()
    }

    /// Every account's name, which no guest may take.
    pub fn account_names(&self) -> Vec<UserName> {
        self.books().accounts.names().collect()
    }

    /// Who sent a request that came from `peer`.
    pub fn client(&self, peer: IpAddr, tls: bool, headers: &HeaderMap) -> proxy::Client {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        proxy::client(
            peer,
            tls,
            get("x-forwarded-for"),
            get("x-forwarded-proto"),
            &self.lists().trusted_proxies,
        )
    }

    /// Whether the request is for one of the names this server answers to; `Err` with
    /// the name it asked for when not.
    pub fn host_allowed(&self, headers: &HeaderMap) -> Result<(), String> {
        let host = headers.get(header::HOST).map(|v| v.to_str().unwrap_or("?"));
        if self.lists().hosts.allows(host) {
            return Ok(());
        }
        let host = host.unwrap_or_default();
        Err(duet_access::host::host_name(host).unwrap_or_else(|| host.chars().take(100).collect()))
    }

    /// The request's `Origin` judged against its own and the allowed ones.
    pub fn origin(&self, headers: &HeaderMap, https: bool) -> duet_access::OriginCheck {
        let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("null"));
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let scheme = if https { "https" } else { "http" };
        duet_access::origin::check(origin, scheme, host, &self.lists().allowed_origins)
    }

    /// The request's session, checked: `None` without a session cookie.
    pub fn session(&self, headers: &HeaderMap, https: bool) -> Option<Result<Admitted, SessionError>> {
        let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
        let value = cookie::find(cookies, https)?;
        Some(self.with_gate(|gate| gate.check(value, now_ms())))
    }

    /// Whether `session` still holds (checked again while its sockets are open).
    pub fn still_valid(&self, session: &Session) -> bool {
        self.with_gate(|gate| gate.holds(session, now_ms()))
    }

    fn with_gate<R>(&self, f: impl FnOnce(Gate<'_>) -> R) -> R {
        let books = self.books();
        f(Gate {
            key: &self.key,
            accounts: &books.accounts,
            invites: &books.invites,
            signed_out: &books.signed_out,
            password: self.config.password.as_deref(),
        })
    }

    /// Decides a WebSocket upgrade to `room`: the session it may run as (`None`: a guest
    /// of an open server), or why not.
    pub fn admit_websocket(
        &self,
        headers: &HeaderMap,
        client: proxy::Client,
        room: &RoomName,
    ) -> Result<Option<Admitted>, UpgradeRefusal> {
        let refuse = |status, message: &str| Err(UpgradeRefusal { status, message: message.to_owned() });
        if !self.origin(headers, client.https).allowed() {
            return refuse(
                StatusCode::FORBIDDEN,
                "This page may not connect to duet (its origin is not duet's own).",
            );
        }
        let admitted = match self.session(headers, client.https) {
            Some(Ok(admitted)) => Some(admitted),
            Some(Err(_)) | None if self.config.mode.needs_session() => {
                return refuse(StatusCode::UNAUTHORIZED, "Sign in first.");
            }
            _ => None, // an open server: a stale cookie makes a guest, as no cookie does
        };
        if let Some(admitted) = &admitted
            && !admitted.may_join(room)
        {
            return refuse(StatusCode::FORBIDDEN, "Your invite is for another room.");
        }
        Ok(admitted)
    }

    /// Signs someone in from `ip`: the session and its cookie value.
    pub async fn sign_in(&self, request: SignIn, ip: IpAddr) -> Result<(Admitted, String), SignInRefusal> {
        let who = match request {
            SignIn { invite: Some(token), account: None, password: None } => {
                self.count_attempt(ip)?;
                self.redeem(&token, ip).await?
            }
            SignIn { account: Some(name), password: Some(password), invite: None } => {
                self.count_attempt(ip)?;
                self.check_account(name, password, ip).await?
            }
            SignIn { password: Some(password), account: None, invite: None } => {
                if self.config.mode != Mode::Password {
                    return Err(SignInRefusal::NotOffered(
                        "This server has no shared password: sign in with your account or an invite link.",
                    ));
                }
                self.count_attempt(ip)?;
                self.check_instance_password(&password, ip)?
            }
            _ => {
                return Err(SignInRefusal::BadRequest(
                    "Send a password, an account and password, or an invite.",
                ));
            }
        };
        let id = crate::random::bytes::<16>().map_err(|e| SignInRefusal::Unavailable(e.to_string()))?;
        let session = Session::new(id, who, now_ms(), self.session_ttl_ms());
        let value = session.seal(&self.key);
        let admitted = self
            .with_gate(|gate| gate.check_session(session, now_ms()))
            .map_err(|e| SignInRefusal::Unavailable(e.to_string()))?;
        Ok((admitted, value))
    }

    fn count_attempt(&self, ip: IpAddr) -> Result<(), SignInRefusal> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        attempts.allow_or_wait(ip, Instant::now()).map_err(|retry_after| {
            tracing::warn!("failed sign-in from {ip}: too many attempts");
            SignInRefusal::TooMany { retry_after }
        })
    }

    fn check_instance_password(&self, password: &str, ip: IpAddr) -> Result<Who, SignInRefusal> {
        let Some(expected) = &self.config.password else { return Err(SignInRefusal::WrongPassword) };
        let given = Gate::password_tag(&self.key, password);
        let tag = Gate::password_tag(&self.key, expected);
        if given != tag {
            tracing::warn!("failed sign-in from {ip}: wrong instance password");
            return Err(SignInRefusal::WrongPassword);
        }
        Ok(Who::Password { tag })
    }

    /// Checks an account's password: within the failure budgets (before any hashing),
    /// with a hashing permit, on a blocking thread.
    async fn check_account(&self, name: String, password: String, ip: IpAddr) -> Result<Who, SignInRefusal> {
        let client = crate::limits::key(ip);
        let account = UserName::new(&name)
            .ok()
            .map(|n| n.to_string())
            .filter(|n| self.books().accounts.get(n).is_some());
        self.within_failure_budget(account.as_deref(), client, ip)?;
        let permit = tokio::time::timeout(HASHING_QUEUE_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| SignInRefusal::Busy)?
            .map_err(|_| SignInRefusal::Busy)?;
        // Asked again: the budget may have run out while this attempt queued, and the
        // queue then drains at once instead of hashing for strangers.
        self.within_failure_budget(account.as_deref(), client, ip)?;
        // An account made a moment ago by `duet user add` signs in at once.
        if let Err(e) = self.refresh().await {
            tracing::error!("cannot read the store: {e}");
        }
        let accounts = Arc::clone(&self.books().accounts);
        let shown = name.chars().take(UserName::MAX_CHARS).collect::<String>();
        let checked = tokio::task::spawn_blocking(move || {
            let account = accounts.verify(&name, &password).ok()?;
            let name = UserName::new(&name).map(|n| n.to_string()).unwrap_or(name);
            Some(Who::Account { name, id: Some(account.id.clone()) })
        })
        .await
        .map_err(|e| SignInRefusal::Unavailable(e.to_string()))?;
        drop(permit);
        match checked {
            Some(who) => {
                if let Who::Account { name, .. } = &who {
                    self.failures().succeeded(name, client, Instant::now());
                }
                Ok(who)
            }
            None => {
                self.failures().failed(account.as_deref(), Instant::now());
                tracing::warn!("failed sign-in from {ip}: wrong password for account {shown:?}");
                Err(SignInRefusal::WrongPassword)
            }
        }
    }

    fn within_failure_budget(
        &self,
        account: Option<&str>,
        client: IpAddr,
        ip: IpAddr,
    ) -> Result<(), SignInRefusal> {
        self.failures().may_try(account, client, Instant::now()).map_err(|wait| {
            tracing::warn!("failed sign-in from {ip}: too many wrong passwords ({wait:?})");
            match wait {
                Wait::Account(retry_after) => SignInRefusal::Resting { retry_after, account: true },
                Wait::Everyone(retry_after) => SignInRefusal::Resting { retry_after, account: false },
            }
        })
    }

    fn failures(&self) -> MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Uses an invite link once. The token is checked against the books first, so a
    /// damaged, foreign, revoked, expired or used-up link is refused without touching the
    /// store; only a link that would let someone in is counted there.
    async fn redeem(&self, token: &str, ip: IpAddr) -> Result<Who, SignInRefusal> {
        let refused = |e: InviteError| {
            tracing::warn!("failed sign-in from {ip}: invite link {}", e.code());
            SignInRefusal::Invite(e)
        };
        let Some(store) = &self.store else { return Err(refused(InviteError::Unknown)) };
        let now = now_ms();
        let mut peeked = self.books().invites.peek(&self.key, token, now).map(|r| r.id.clone());
        if peeked == Err(InviteError::Unknown) {
            // Signed by this server but not in the books yet: made a moment ago.
            self.refresh().await.map_err(|e| SignInRefusal::Unavailable(e.to_string()))?;
            peeked = self.books().invites.peek(&self.key, token, now).map(|r| r.id.clone());
        }
        let id = peeked.map_err(refused)?;
        let used = store
            .run(move |db| db.use_invite(&id, now))
            .await
            .map_err(|e| SignInRefusal::Unavailable(e.to_string()))?;
        if let Err(e) = self.refresh().await {
            tracing::error!("cannot read the store: {e}");
        }
        used.map(|record| Who::invited(&record)).map_err(refused)
    }

    /// Ends one session for good (sign out).
    pub async fn sign_out(&self, session: &Session) -> Result<(), StoreError> {
        if let Some(store) = &self.store {
            let (id, expires) = (session.id.clone(), session.expires);
            store.run(move |db| db.sign_out(&id, expires)).await?;
        }
        self.books().signed_out.sign_out(session);
        Ok(())
    }

    /// Ends every session of the account `name` ("sign out everywhere").
    pub async fn sign_out_everywhere(&self, name: &str) -> anyhow::Result<()> {
        let store = self.store.as_ref().context("accounts need a state directory")?;
        let (name, change) = (name.to_owned(), AccountChange::SignOutEverywhere { now_ms: now_ms() });
        store.run(move |db| db.change_account(&name, change)).await??;
        self.refresh().await?;
        Ok(())
    }

    /// A new invite link's path (`/i/<token>`) and record, made by the admin `by` (an
    /// account's name and id, or "cli").
    pub async fn invite(
        &self,
        spec: duet_access::InviteSpec,
        by: (&str, Option<&str>),
    ) -> anyhow::Result<(duet_access::InviteRecord, String)> {
        let store = self.store.as_ref().context("invites need a state directory")?;
        let id = crate::random::bytes::<8>().context("read random bytes")?;
        let record = duet_access::InviteRecord::new(spec, id, by, now_ms());
        let token = record.token(&self.key);
        let stored = record.clone();
        store.run(move |db| db.add_invite(&stored)).await?;
        self.refresh().await?;
        Ok((record, format!("/i/{token}")))
    }
}
