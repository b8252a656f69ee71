//! Account holders' do not disturb, kept so that a restart (or a closed app) does not
//! ring someone who asked for quiet. One row per account that set anything; a setting
//! back to off removes it.

use rusqlite::{Connection, params};

use super::{StoreError, account_id, from_ms, ms};

/// One account's do not disturb, on the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuietSetting {
    /// Calls do not ring until then (ms since the epoch; [`QuietSetting::FOREVER`]: until turned off);
    /// `None`: do not disturb is off.
    pub dnd_until_ms: Option<u64>,
    /// Calls from guests never ring.
    pub guests: bool,
}

impl QuietSetting {
    /// Until turned off (the largest time the database holds).
    pub const FOREVER: u64 = i64::MAX as u64;

    /// Nothing set at `now_ms` (a do not disturb that ran out is off).
    pub fn is_off(&self, now_ms: u64) -> bool {
        !self.guests && self.dnd_until_ms.is_none_or(|until| until <= now_ms)
    }
}

pub(super) fn set(tx: &Connection, account: &str, setting: QuietSetting) -> Result<bool, StoreError> {
    let Some(id) = account_id(tx, account)? else { return Ok(false) };
    if setting == QuietSetting::default() {
        tx.execute("DELETE FROM quiet WHERE account = ?", [&id])?;
    } else {
        tx.execute(
            "INSERT INTO quiet (account, dnd_until, guests) VALUES (?1, ?2, ?3)
             ON CONFLICT (account) DO UPDATE SET dnd_until = ?2, guests = ?3",
            params![id, setting.dnd_until_ms.map(ms), setting.guests],
        )?;
    }
    Ok(true)
}

pub(super) fn all(db: &Connection, now_ms: u64) -> Result<Vec<(String, QuietSetting)>, StoreError> {
    let mut query = db.prepare_cached(
        "SELECT accounts.name, quiet.dnd_until, quiet.guests FROM quiet
         JOIN accounts ON accounts.id = quiet.account",
    )?;
    let rows = query.query_map([], |row| {
        let until: Option<i64> = row.get(1)?;
        let setting = QuietSetting { dnd_until_ms: until.map(from_ms), guests: row.get(2)? };
        Ok((row.get::<_, String>(0)?, setting))
    })?;
    let mut kept = Vec::new();
    for row in rows {
        let (name, setting) = row?;
        if !setting.is_off(now_ms) {
            kept.push((name, setting));
        }
    }
    Ok(kept)
}
