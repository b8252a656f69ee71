//! The embedded backend: one SQLite file in the state directory (`duet.db`, 0600), in
//! WAL mode so the server reads while `duet user` writes, each change one transaction.
//!
//! ```text
//!  open ──► file made 0600 (and given to the directory's owner) ──► WAL, busy wait 5 s
//!       ──► PRAGMA user_version < MIGRATIONS.len()? ──► the missing steps, each in a
//!           transaction with its version ──► ready
//! ```
//!
//! The schema only grows by appending to [`MIGRATIONS`]; a step is never edited once
//! released. Versions of accounts and invites are counted by triggers, so no write can
//! forget to tell the server to read them again.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use duet_access::{Account, AccountError, Accounts, InviteBook, InviteError, InviteRecord};
use duet_signal::UserName;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::history::{self, CallEntry, CallRecord};
use super::push::{self, NewPushDevice, PushDevice};
use super::quiet::{self, QuietSetting};
use super::{
    AccountChange, Backend, DATABASE, NewAccount, Pruned, SignOut, StoreError, Versions, account_id, from_ms,
    ms,
};

/// The schema, one step per release that changed it. `PRAGMA user_version` says how many
/// steps a database has had.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, invites, sign-outs, and what the server needs to notice changes.
    r"
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        sessions_after INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE invites (
        id TEXT PRIMARY KEY,
        room TEXT,
        name TEXT,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        uses INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        revoked INTEGER NOT NULL DEFAULT 0,
        made_by TEXT NOT NULL,
        made_by_account TEXT
    ) STRICT;
    CREATE INDEX invites_by_expiry ON invites (expires);
    CREATE INDEX invites_by_maker ON invites (made_by_account);
    CREATE TABLE sign_outs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT NOT NULL UNIQUE,
        expires INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sign_outs_by_expiry ON sign_outs (expires);
    CREATE TABLE versions (part TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT;
    INSERT INTO versions VALUES ('accounts', 0), ('invites', 0);
    CREATE TRIGGER accounts_added AFTER INSERT ON accounts
        BEGIN UPDATE versions SET n = n + 1 WHERE part = 'accounts'; END;
    CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts
        BEGIN UPDATE versions SET n = n + 1 WHERE part = 'accounts'; END;
    CREATE TRIGGER accounts_removed AFTER DELETE ON accounts
        BEGIN UPDATE versions SET n = n + 1 WHERE part = 'accounts'; END;
    CREATE TRIGGER invites_added AFTER INSERT ON invites
        BEGIN UPDATE versions SET n = n + 1 WHERE part = 'invites'; END;
    CREATE TRIGGER invites_changed AFTER UPDATE ON invites
        BEGIN UPDATE versions SET n = n + 1 WHERE part = 'invites'; END;
    CREATE TRIGGER invites_removed AFTER DELETE ON invites
        BEGIN UPDATE versions SET n = n + 1 WHERE part = 'invites'; END;
    CREATE TABLE imports (what TEXT PRIMARY KEY, at INTEGER NOT NULL) STRICT;
    ",
    // 2: call history, per account (gone with it).
    r"
    CREATE TABLE calls (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        peer TEXT NOT NULL,
        peer_verified INTEGER NOT NULL,
        outgoing INTEGER NOT NULL,
        started INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        duration INTEGER NOT NULL,
        seen INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX calls_by_account ON calls (account, seq);
    CREATE INDEX calls_by_start ON calls (started);
    CREATE INDEX calls_unseen ON calls (account) WHERE seen = 0;
    ",
    // 3: do not disturb, per account (gone with it).
    r"
    CREATE TABLE quiet (
        account TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        dnd_until INTEGER,
        guests INTEGER NOT NULL
    ) STRICT;
    ",
    // 4: voice calls in the history.
    r"
    ALTER TABLE calls ADD COLUMN voice INTEGER NOT NULL DEFAULT 0;
    ",
    // 5: push subscriptions, per account (gone with it), and secrets every node shares.
    r"
    CREATE TABLE push_subscriptions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        endpoint TEXT NOT NULL UNIQUE,
        p256dh TEXT NOT NULL,
        auth TEXT NOT NULL,
        device TEXT NOT NULL,
        created INTEGER NOT NULL,
        used INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX push_by_account ON push_subscriptions (account, used);
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
    ",
];

/// How long a write waits for another process's transaction to end.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// A SQLite database; one connection, used by one thread at a time.
#[derive(Debug)]
pub struct Sqlite {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl Sqlite {
    /// Opens `dir/duet.db`, making it (and `dir`) if needed, and migrates it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(DATABASE);
        let fail = |reason: String| StoreError::Open { path: path.clone(), reason };
        make_private_file(dir, &path).map_err(|e| fail(format!("{e:#}")))?;
        let connection = Connection::open(&path).map_err(|e| fail(e.to_string()))?;
        connection.busy_timeout(BUSY_WAIT).map_err(|e| fail(e.to_string()))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| fail(e.to_string()))?;
        let db = Self { path, connection: Mutex::new(connection) };
        db.migrate()?;
        db.canonical_names()?;
        Ok(db)
    }

    /// Accounts stored under a name that is not its canonical form today (name rules grow:
    /// runs of spaces became one space) are renamed to it, so they still sign in; one
    /// whose canonical name another account holds is left as it is, and said.
    fn canonical_names(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            let names: Vec<String> = {
                let mut query = tx.prepare("SELECT name FROM accounts")?;
                query.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            for name in names {
                let Ok(canonical) = UserName::new(&name) else { continue };
                if canonical.as_str() == name {
                    continue;
                }
                let renamed = tx.execute(
                    "UPDATE accounts SET name = ? WHERE name = ? AND NOT EXISTS (SELECT 1 FROM accounts WHERE name = ?)",
                    params![canonical.as_str(), name, canonical.as_str()],
                )?;
                match renamed {
                    0 => tracing::warn!("the account {name:?} cannot be called {canonical}: another account is"),
                    _ => tracing::info!("the account {name:?} is called {canonical} now"),
                }
            }
            Ok(())
        })
    }

    /// The connection. A panic while it was held cannot leave a transaction half done
    /// (an unfinished transaction rolls back when dropped), so a poisoned lock is taken
    /// over.
    pub(super) fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let known = i64::try_from(MIGRATIONS.len()).expect("a few migrations");
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if found > known {
            return Err(StoreError::TooNew { path: self.path.clone(), found, known });
        }
        for (version, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", i64::try_from(version + 1).expect("a few migrations"))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` in an immediate (writing) transaction.
    pub(super) fn write<R>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = f(&tx)?;
        tx.commit()?;
        Ok(result)
    }
}

/// Makes `path` (and its directory) if missing, readable by its owner only, and owned by
/// the directory's owner (root running `duet user` for the service).
fn make_private_file(dir: &Path, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    crate::state::give_to_owner_of(path, dir)
}

fn account_row(row: &Row<'_>) -> rusqlite::Result<(String, Account)> {
    Ok((
        row.get("name")?,
        Account {
            id: row.get("id")?,
            hash: row.get("hash")?,
            admin: row.get("admin")?,
            created: from_ms(row.get("created")?),
            sessions_after: from_ms(row.get("sessions_after")?),
        },
    ))
}

fn invite_row(row: &Row<'_>) -> rusqlite::Result<InviteRecord> {
    Ok(InviteRecord {
        id: row.get("id")?,
        room: row.get("room")?,
        name: row.get("name")?,
        created: from_ms(row.get("created")?),
        expires: from_ms(row.get("expires")?),
        uses: row.get("uses")?,
        used: row.get("used")?,
        revoked: row.get("revoked")?,
        by: row.get("made_by")?,
        by_account: row.get("made_by_account")?,
    })
}

/// Every account, read inside `tx`.
fn all_accounts(tx: &Connection) -> Result<Accounts, StoreError> {
    let mut query = tx.prepare_cached("SELECT * FROM accounts")?;
    let rows = query.query_map([], account_row)?;
    Ok(rows.collect::<rusqlite::Result<Accounts>>()?)
}

/// Inserts `account` as it is (an import keeps ids and times).
pub(super) fn insert_account(tx: &Connection, name: &str, account: &Account) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO accounts (id, name, hash, admin, created, sessions_after) VALUES (?, ?, ?, ?, ?, ?)",
        params![
            account.id,
            name,
            account.hash,
            account.admin,
            ms(account.created),
            ms(account.sessions_after)
        ],
    )?;
    Ok(())
}

pub(super) fn insert_invite(tx: &Connection, r: &InviteRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO invites (id, room, name, created, expires, uses, used, revoked, made_by, made_by_account)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![r.id, r.room, r.name, ms(r.created), ms(r.expires), r.uses, r.used, r.revoked, r.by, r.by_account],
    )?;
    Ok(())
}

pub(super) fn insert_sign_out(tx: &Connection, session: &str, expires: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sign_outs (session, expires) VALUES (?, ?) ON CONFLICT (session) DO NOTHING",
        params![session, ms(expires)],
    )?;
    Ok(())
}

impl Backend for Sqlite {
    fn versions(&self) -> Result<Versions, StoreError> {
        let connection = self.connection();
        let mut query = connection.prepare_cached(
            "SELECT (SELECT n FROM versions WHERE part = 'accounts'),
                    (SELECT n FROM versions WHERE part = 'invites'),
                    (SELECT COALESCE(MAX(seq), 0) FROM sign_outs)",
        )?;
        Ok(query.query_row([], |row| {
            Ok(Versions { accounts: row.get(0)?, invites: row.get(1)?, sign_outs: row.get(2)? })
        })?)
    }

    fn accounts(&self) -> Result<Accounts, StoreError> {
        all_accounts(&self.connection())
    }

    fn add_account(&self, new: NewAccount) -> Result<Result<UserName, AccountError>, StoreError> {
        self.write(|tx| {
            let mut accounts = all_accounts(tx)?;
            let name = match accounts.add(&new.name, new.hash, new.admin, new.id, new.now_ms) {
                Ok(name) => name,
                Err(refused) => return Ok(Err(refused)),
            };
            let (_, account) = accounts.iter().find(|(n, _)| *n == name.as_str()).expect("just added");
            insert_account(tx, name.as_str(), account)?;
            Ok(Ok(name))
        })
    }

    fn change_account(
        &self,
        name: &str,
        change: AccountChange,
    ) -> Result<Result<(), AccountError>, StoreError> {
        self.write(|tx| {
            let Some(id) = account_id(tx, name)? else {
                return Ok(Err(AccountError::NoSuchAccount(name.to_owned())));
            };
            match change {
                AccountChange::Remove => {
                    tx.execute("DELETE FROM accounts WHERE id = ?", [&id])?;
                    tx.execute(
                        "UPDATE invites SET revoked = 1 WHERE made_by_account = ? AND revoked = 0",
                        [&id],
                    )?;
                }
                AccountChange::Password { hash, now_ms } => {
                    tx.execute(
                        "UPDATE accounts SET hash = ?, sessions_after = ? WHERE id = ?",
                        params![hash, ms(now_ms), id],
                    )?;
                }
                AccountChange::Admin(admin) => {
                    tx.execute("UPDATE accounts SET admin = ? WHERE id = ?", params![admin, id])?;
                }
                AccountChange::SignOutEverywhere { now_ms } => {
                    tx.execute(
                        "UPDATE accounts SET sessions_after = ? WHERE id = ?",
                        params![ms(now_ms), id],
                    )?;
                }
            }
            Ok(Ok(()))
        })
    }

    fn invites(&self) -> Result<InviteBook, StoreError> {
        let connection = self.connection();
        let mut query = connection.prepare_cached("SELECT * FROM invites")?;
        let rows = query.query_map([], invite_row)?;
        Ok(rows.collect::<rusqlite::Result<InviteBook>>()?)
    }

    fn add_invite(&self, record: &InviteRecord) -> Result<(), StoreError> {
        self.write(|tx| insert_invite(tx, record))
    }

    fn use_invite(&self, id: &str, now_ms: u64) -> Result<Result<InviteRecord, InviteError>, StoreError> {
        self.write(|tx| {
            let record = tx.query_row("SELECT * FROM invites WHERE id = ?", [id], invite_row).optional()?;
            let Some(mut record) = record else { return Ok(Err(InviteError::Unknown)) };
            if let Err(refused) = record.usable(now_ms) {
                return Ok(Err(refused));
            }
            tx.execute("UPDATE invites SET used = used + 1 WHERE id = ?", [id])?;
            record.used += 1;
            Ok(Ok(record))
        })
    }

    fn revoke_invite(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("UPDATE invites SET revoked = 1 WHERE id = ?", [id])? > 0))
    }

    fn sign_out(&self, session: &str, expires: u64) -> Result<(), StoreError> {
        self.write(|tx| insert_sign_out(tx, session, expires))
    }

    fn sign_outs_after(&self, seq: i64, limit: usize) -> Result<Vec<SignOut>, StoreError> {
        let connection = self.connection();
        let mut query = connection.prepare_cached(
            "SELECT seq, session, expires FROM sign_outs WHERE seq > ? ORDER BY seq LIMIT ?",
        )?;
        let rows = query.query_map(params![seq, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(SignOut { seq: row.get(0)?, session: row.get(1)?, expires: from_ms(row.get(2)?) })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn prune(&self, now_ms: u64, session_ttl_ms: u64) -> Result<Pruned, StoreError> {
        self.write(|tx| {
            let sign_outs = tx.execute("DELETE FROM sign_outs WHERE expires <= ?", [ms(now_ms)])?;
            let forgotten = ms(now_ms.saturating_sub(session_ttl_ms));
            let invites = tx.execute("DELETE FROM invites WHERE expires <= ?", [forgotten])?;
            Ok(Pruned { invites, sign_outs })
        })
    }

    fn record_calls(&self, records: &[CallRecord]) -> Result<usize, StoreError> {
        self.write(|tx| history::record(tx, records))
    }

    fn calls(&self, account: &str, before: Option<i64>, limit: usize) -> Result<Vec<CallEntry>, StoreError> {
        history::page(&self.connection(), account, before, limit)
    }

    fn unseen_calls(&self, account: &str) -> Result<u64, StoreError> {
        history::unseen(&self.connection(), account)
    }

    fn mark_calls_seen(&self, account: &str) -> Result<usize, StoreError> {
        self.write(|tx| history::mark_seen(tx, account))
    }

    fn clear_calls(&self, account: &str) -> Result<usize, StoreError> {
        self.write(|tx| history::clear(tx, account))
    }

    fn forget_calls_before(&self, before_ms: u64) -> Result<usize, StoreError> {
        self.write(|tx| history::forget_before(tx, before_ms))
    }

    fn set_quiet(&self, account: &str, setting: QuietSetting) -> Result<bool, StoreError> {
        self.write(|tx| quiet::set(tx, account, setting))
    }

    fn quiet_settings(&self, now_ms: u64) -> Result<Vec<(String, QuietSetting)>, StoreError> {
        quiet::all(&self.connection(), now_ms)
    }

    fn add_push_device(
        &self,
        account: &str,
        device: &NewPushDevice,
        now_ms: u64,
        most: usize,
    ) -> Result<Option<i64>, StoreError> {
        self.write(|tx| push::add(tx, account, device, now_ms, most))
    }

    fn push_devices(&self, account: &str) -> Result<Vec<PushDevice>, StoreError> {
        push::list(&self.connection(), account)
    }

    fn push_accounts(&self) -> Result<Vec<String>, StoreError> {
        push::accounts(&self.connection())
    }

    fn remove_push_device(&self, account: &str, endpoint: &str) -> Result<bool, StoreError> {
        self.write(|tx| push::remove(tx, account, endpoint))
    }

    fn forget_push_endpoint(&self, endpoint: &str) -> Result<bool, StoreError> {
        self.write(|tx| push::forget(tx, endpoint))
    }

    fn push_used(&self, endpoint: &str, now_ms: u64) -> Result<(), StoreError> {
        self.write(|tx| push::used(tx, endpoint, now_ms))
    }

    fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.write(|tx| push::secret(tx, name, fresh))
    }
}
