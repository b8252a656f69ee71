//! `duet user`: accounts in the state directory.

use anyhow::Context;
use duet_access::accounts::hash_password;

use super::UserAction;
use crate::clock::now_ms;
use crate::store::{AccountChange, NewAccount, Store};

pub(super) fn run(action: UserAction, store: &Store) -> anyhow::Result<()> {
    let db = store.backend();
    match action {
        UserAction::Add { name, admin } => {
            // Refuse a bad or taken name before asking for a password.
            db.accounts()?.check_new_name(&name)?;
            let hash = hash_password(&super::read_password(&name)?, &salt()?);
            let id = crate::random::bytes::<16>().context("read random bytes for the account's id")?;
            let name = db.add_account(NewAccount { name, hash, admin, id, now_ms: now_ms() })??;
            let role = if admin { "an admin account" } else { "an account" };
            println!("{name} is {role} now; they sign in with that name and password.");
        }
        UserAction::List => {
            let accounts = db.accounts()?;
            if accounts.is_empty() {
                println!("No accounts yet: add one with `duet user add NAME`.");
            }
            for (name, account) in accounts.iter() {
                let role = if account.admin { "admin" } else { "member" };
                println!("{name}\t{role}\tsince {}", date(account.created));
            }
        }
        UserAction::Remove { name } => {
            db.change_account(&name, AccountChange::Remove)??;
            println!(
                "{name} is removed; their open sessions end and the invite links they made stop working within seconds."
            );
        }
        UserAction::Passwd { name } => {
            anyhow::ensure!(db.accounts()?.get(&name).is_some(), "there is no account named {name}");
            let hash = hash_password(&super::read_password(&name)?, &salt()?);
            db.change_account(&name, AccountChange::Password { hash, now_ms: now_ms() })??;
            println!("{name} has a new password; sessions signed in with the old one end within seconds.");
        }
        UserAction::SignOut { name } => {
            db.change_account(&name, AccountChange::SignOutEverywhere { now_ms: now_ms() })??;
            println!("Every session of {name} ends within seconds.");
        }
    }
    Ok(())
}

fn salt() -> anyhow::Result<[u8; 16]> {
    crate::random::bytes::<16>().context("read random bytes for the salt")
}

/// A UTC date and time for listings.
pub(super) fn date(ms: u64) -> String {
    let seconds = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_else(|_| "?".into())
}
