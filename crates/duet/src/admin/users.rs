//! `duet user`: accounts in the state directory.

use anyhow::Context;
use duet_access::Accounts;
use duet_access::accounts::hash_password;

use super::UserAction;
use crate::access::store::{ACCOUNTS, Store};
use crate::clock::now_ms;

pub(super) fn run(action: UserAction, store: &Store) -> anyhow::Result<()> {
    match action {
        UserAction::Add { name, admin } => {
            // Refuse a bad or taken name before asking for a password.
            store.read::<Accounts>(ACCOUNTS)?.check_new_name(&name)?;
            let hash = hash_password(&super::read_password(&name)?, &salt()?);
            let name = store
                .update::<Accounts, _>(ACCOUNTS, |accounts| accounts.add(&name, hash, admin, now_ms()))??;
            let role = if admin { "an admin account" } else { "an account" };
            println!("{name} is {role} now; they sign in with that name and password.");
        }
        UserAction::List => {
            let accounts: Accounts = store.read(ACCOUNTS)?;
            if accounts.is_empty() {
                println!("No accounts yet: add one with `duet user add NAME`.");
            }
            for (name, account) in accounts.iter() {
                let role = if account.admin { "admin" } else { "member" };
                println!("{name}\t{role}\tsince {}", date(account.created));
            }
        }
        UserAction::Remove { name } => {
            store.update::<Accounts, _>(ACCOUNTS, |accounts| accounts.remove(&name))??;
            println!("{name} is removed; their open sessions end within seconds.");
        }
        UserAction::Passwd { name } => {
            let accounts: Accounts = store.read(ACCOUNTS)?;
            anyhow::ensure!(accounts.get(&name).is_some(), "there is no account named {name}");
            let hash = hash_password(&super::read_password(&name)?, &salt()?);
            store
                .update::<Accounts, _>(ACCOUNTS, |accounts| accounts.set_password(&name, hash, now_ms()))??;
            println!("{name} has a new password; sessions signed in with the old one end within seconds.");
        }
        UserAction::SignOut { name } => {
            store.update::<Accounts, _>(ACCOUNTS, |accounts| accounts.revoke_sessions(&name, now_ms()))??;
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
