//! The access files of earlier versions, imported into the database once.
//!
//! ```text
//!  accounts.json ─┐
//!  invites.json ──┼─► one transaction: every account (a random id for each), invite and
//!  signed-out.json┘   sign-out, and a row in `imports` ─► commit ─► files renamed *.imported
//! ```
//!
//! The row in `imports` is what says "done": a second process starting at the same time
//! waits for the first one's transaction and then finds it; a rename that fails leaves
//! the files in place but never imports them twice. A damaged file stops the start with
//! its name and the place of the damage, and nothing is imported.

use std::collections::BTreeMap;
use std::path::Path;

use duet_access::{Accounts, InviteBook};
use rusqlite::{OptionalExtension, params};
use serde::de::DeserializeOwned;

use super::StoreError;
use super::sqlite::{Sqlite, insert_account, insert_invite, insert_sign_out};

const ACCOUNTS: &str = "accounts.json";
const INVITES: &str = "invites.json";
const SIGNED_OUT: &str = "signed-out.json";
/// The lock the file store took around every change; nothing uses it any more.
const LOCK: &str = "access.lock";

/// The old sign-out list: session id to expiry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OldSignedOut {
    #[serde(default)]
    sessions: BTreeMap<String, u64>,
}

/// Imports the old files in `dir` into `db`, if there are any and they were not imported.
pub(super) fn old_files(db: &Sqlite, dir: &Path) -> Result<(), StoreError> {
    let present: Vec<&str> =
        [ACCOUNTS, INVITES, SIGNED_OUT].into_iter().filter(|f| dir.join(f).exists()).collect();
    if present.is_empty() {
        return Ok(());
    }
    let accounts: Accounts = read(dir, ACCOUNTS)?;
    let invites: InviteBook = read(dir, INVITES)?;
    let signed_out: OldSignedOut = read(dir, SIGNED_OUT)?;
    let imported = db.write(|tx| {
        let done: Option<i64> =
            tx.query_row("SELECT at FROM imports WHERE what = 'files'", [], |row| row.get(0)).optional()?;
        if done.is_some() {
            return Ok(false);
        }
        for (name, account) in accounts.iter() {
            let mut account = account.clone();
            if account.id.is_empty() {
                account.id = random_id()?;
            }
            insert_account(tx, name, &account)?;
        }
        for record in invites.iter() {
            insert_invite(tx, record)?;
        }
        for (session, expires) in &signed_out.sessions {
            insert_sign_out(tx, session, *expires)?;
        }
        let now = i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX);
        tx.execute("INSERT INTO imports (what, at) VALUES ('files', ?)", params![now])?;
        Ok(true)
    })?;
    for file in present.iter().chain(std::iter::once(&LOCK)) {
        let from = dir.join(file);
        if from.exists()
            && let Err(e) = std::fs::rename(&from, dir.join(format!("{file}.imported")))
        {
            tracing::warn!("cannot rename {} after importing it: {e}", from.display());
        }
    }
    if imported {
        tracing::info!(
            "imported {} accounts, {} invites and {} sign-outs from {} into the database; the old files are kept as *.imported",
            accounts.len(),
            invites.len(),
            signed_out.sessions.len(),
            dir.display()
        );
    }
    Ok(())
}

fn random_id() -> Result<String, StoreError> {
    let bytes =
        crate::random::bytes::<16>().map_err(|e| StoreError::Query(format!("read random bytes: {e}")))?;
    Ok(duet_access::seal::hex(&bytes))
}

/// The contents of `dir/file`; a missing file is an empty one.
fn read<T: DeserializeOwned + Default>(dir: &Path, file: &str) -> Result<T, StoreError> {
    let path = dir.join(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(StoreError::Import { path, reason: e.to_string() }),
    };
    serde_json::from_str(&text).map_err(|e| StoreError::Import {
        reason: format!("damaged at line {}, column {}: {e}", e.line(), e.column()),
        path,
    })
}
