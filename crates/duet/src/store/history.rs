//! Call history for account holders: one row per call per account that took part, in
//! both directions, read newest first a page at a time, forgotten after the operator's
//! `--call-history-days` and with the account.
//!
//! ```text
//!  hub CallEnded / CallBusy ─► signaling::history (a listener, off the lock) ─► record
//!  GET /api/calls?before=&limit= ─► page (newest first) + unseen missed calls
//!  POST /api/calls/seen ─► seen     DELETE /api/calls ─► forgotten
//! ```

use rusqlite::{Connection, Row, params};

use super::{StoreError, from_ms, ms};

/// How a call went, from one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Talked (`duration_ms` long).
    Answered,
    /// Rang here and nobody picked up (or the caller gave up first, or it found us
    /// busy); from the caller's side, nobody answered.
    Missed,
    Declined,
    /// The other side was in another call.
    Busy,
    /// The caller gave up (from the caller's side).
    Cancelled,
    /// The other side was not taking calls (do not disturb), from the caller's side.
    Unavailable,
    /// Taken, but the media never connected.
    Failed,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Declined => "declined",
            Self::Busy => "busy",
            Self::Cancelled => "cancelled",
            Self::Unavailable => "unavailable",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "answered" => Self::Answered,
            "declined" => Self::Declined,
            "busy" => Self::Busy,
            "cancelled" => Self::Cancelled,
            "unavailable" => Self::Unavailable,
            "failed" => Self::Failed,
            _ => Self::Missed,
        }
    }
}

/// One call, as one side's history tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The other side.
    pub peer: String,
    pub peer_verified: bool,
    /// Made by this side.
    pub outgoing: bool,
    /// When it was made (ms since the epoch).
    pub started_ms: u64,
    pub outcome: CallOutcome,
    pub duration_ms: u64,
    /// Made as a voice call.
    pub voice: bool,
}

/// A call to write into an account's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The account whose history this is (by name; a call of a name no account holds
    /// is not kept).
    pub account: String,
    pub call: Call,
}

/// A call as an account reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEntry {
    /// Pages go by it: newest first, `before` the last one seen.
    pub id: i64,
    pub call: Call,
    pub seen: bool,
}

/// Writes `records` (one transaction); returns how many were kept.
pub(super) fn record(tx: &Connection, records: &[CallRecord]) -> Result<usize, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO calls (account, peer, peer_verified, outgoing, started, outcome, duration, seen, voice)
         SELECT id, ?, ?, ?, ?, ?, ?, ?, ? FROM accounts WHERE name = ?",
    )?;
    let mut kept = 0;
    for CallRecord { account, call: c } in records {
        // What this account did itself needs no telling: only missed calls are unseen.
        let seen = c.outgoing || c.outcome != CallOutcome::Missed;
        kept += insert.execute(params![
            c.peer,
            c.peer_verified,
            c.outgoing,
            ms(c.started_ms),
            c.outcome.as_str(),
            ms(c.duration_ms),
            seen,
            c.voice,
            account
        ])?;
    }
    Ok(kept)
}

fn entry(row: &Row<'_>) -> rusqlite::Result<CallEntry> {
    let call = Call {
        peer: row.get("peer")?,
        peer_verified: row.get("peer_verified")?,
        outgoing: row.get("outgoing")?,
        started_ms: from_ms(row.get("started")?),
        outcome: CallOutcome::parse(&row.get::<_, String>("outcome")?),
        duration_ms: from_ms(row.get("duration")?),
        voice: row.get("voice")?,
    };
    Ok(CallEntry { id: row.get("seq")?, call, seen: row.get("seen")? })
}

/// `account`'s calls older than `before` (all, without), newest first, at most `limit`.
pub(super) fn page(
    db: &Connection,
    account: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<CallEntry>, StoreError> {
    let mut query = db.prepare_cached(
        "SELECT calls.* FROM calls JOIN accounts ON accounts.id = calls.account
         WHERE accounts.name = ? AND calls.seq < ? ORDER BY calls.seq DESC LIMIT ?",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query.query_map(params![account, before.unwrap_or(i64::MAX), limit], entry)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many of `account`'s missed calls it has not seen.
pub(super) fn unseen(db: &Connection, account: &str) -> Result<u64, StoreError> {
    let mut query = db.prepare_cached(
        "SELECT count(*) FROM calls JOIN accounts ON accounts.id = calls.account
         WHERE accounts.name = ? AND calls.seen = 0",
    )?;
    let count: i64 = query.query_row([account], |row| row.get(0))?;
    Ok(from_ms(count))
}

/// Marks every call of `account` seen.
pub(super) fn mark_seen(tx: &Connection, account: &str) -> Result<usize, StoreError> {
    let sql =
        "UPDATE calls SET seen = 1 WHERE seen = 0 AND account = (SELECT id FROM accounts WHERE name = ?)";
    Ok(tx.execute(sql, [account])?)
}

/// Forgets every call of `account`.
pub(super) fn clear(tx: &Connection, account: &str) -> Result<usize, StoreError> {
    Ok(tx.execute("DELETE FROM calls WHERE account = (SELECT id FROM accounts WHERE name = ?)", [account])?)
}

/// Forgets calls made before `before_ms`.
pub(super) fn forget_before(tx: &Connection, before_ms: u64) -> Result<usize, StoreError> {
    Ok(tx.execute("DELETE FROM calls WHERE started < ?", [ms(before_ms)])?)
}
