//! Account holders' push subscriptions (one per device that asked to ring when duet is
//! closed) and the server's secrets that must be the same on every node (the VAPID key).
//! A device subscribing again (same endpoint) is the same row; past the most an account
//! may keep, the least recently used goes.

use rusqlite::{Connection, Row, params};

use super::{StoreError, account_id, from_ms, ms};

/// A device's subscription as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub id: i64,
    pub endpoint: String,
    /// The browser's keys, base64url as it wrote them.
    pub p256dh: String,
    pub auth: String,
    /// What the page called the device ("Chrome on Android").
    pub device: String,
    pub created_ms: u64,
    /// When a push last reached it (or when it subscribed).
    pub used_ms: u64,
}

/// A subscription to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPushDevice {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub device: String,
}

/// Keeps `device` for `account` (the same endpoint again replaces its row, whoever had
/// it); then only the `most` most recently used of the account's stay. `None`: no such
/// account.
pub(super) fn add(
    tx: &Connection,
    account: &str,
    device: &NewPushDevice,
    now_ms: u64,
    most: usize,
) -> Result<Option<i64>, StoreError> {
    let Some(id) = account_id(tx, account)? else { return Ok(None) };
    tx.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", [&device.endpoint])?;
    tx.execute(
        "INSERT INTO push_subscriptions (account, endpoint, p256dh, auth, device, created, used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![id, device.endpoint, device.p256dh, device.auth, device.device, ms(now_ms)],
    )?;
    let row = tx.last_insert_rowid();
    tx.execute(
        "DELETE FROM push_subscriptions WHERE account = ?1 AND seq NOT IN
           (SELECT seq FROM push_subscriptions WHERE account = ?1 ORDER BY used DESC, seq DESC LIMIT ?2)",
        params![id, i64::try_from(most).unwrap_or(i64::MAX)],
    )?;
    Ok(Some(row))
}

/// `account`'s devices, most recently used first.
pub(super) fn list(db: &Connection, account: &str) -> Result<Vec<PushDevice>, StoreError> {
    let mut query = db.prepare_cached(
        "SELECT push_subscriptions.* FROM push_subscriptions JOIN accounts ON accounts.id = push_subscriptions.account
         WHERE accounts.name = ? ORDER BY used DESC, seq DESC",
    )?;
    let rows = query.query_map([account], device)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The accounts with at least one device rung by push.
pub(super) fn accounts(db: &Connection) -> Result<Vec<String>, StoreError> {
    let mut query = db.prepare_cached(
        "SELECT DISTINCT accounts.name FROM push_subscriptions JOIN accounts ON accounts.id = push_subscriptions.account",
    )?;
    let rows = query.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Forgets `account`'s subscription at `endpoint` (false: it had none there).
pub(super) fn remove(tx: &Connection, account: &str, endpoint: &str) -> Result<bool, StoreError> {
    let removed = tx.execute(
        "DELETE FROM push_subscriptions WHERE endpoint = ?
           AND account = (SELECT id FROM accounts WHERE name = ?)",
        params![endpoint, account],
    )?;
    Ok(removed > 0)
}

/// A push service said the subscription at `endpoint` is gone (404, 410): forget it.
pub(super) fn forget(tx: &Connection, endpoint: &str) -> Result<bool, StoreError> {
    Ok(tx.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", [endpoint])? > 0)
}

/// A push reached the device at `endpoint` at `now_ms`.
pub(super) fn used(tx: &Connection, endpoint: &str, now_ms: u64) -> Result<(), StoreError> {
    tx.execute("UPDATE push_subscriptions SET used = ? WHERE endpoint = ?", params![ms(now_ms), endpoint])?;
    Ok(())
}

/// The secret called `name`; `fresh` becomes it if there is none yet (the first node to
/// ask decides, every other reads the same).
pub(super) fn secret(tx: &Connection, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
    tx.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", params![name, fresh])?;
    Ok(tx.query_row("SELECT value FROM secrets WHERE name = ?", [name], |row| row.get(0))?)
}

fn device(row: &Row<'_>) -> rusqlite::Result<PushDevice> {
    Ok(PushDevice {
        id: row.get("seq")?,
        endpoint: row.get("endpoint")?,
        p256dh: row.get("p256dh")?,
        auth: row.get("auth")?,
        device: row.get("device")?,
        created_ms: from_ms(row.get("created")?),
        used_ms: from_ms(row.get("used")?),
    })
}
