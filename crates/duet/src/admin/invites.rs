//! `duet invite`: links that let someone in.

use anyhow::Context;
use duet_access::{InviteRecord, InviteSpec};

use super::MakeInvite;
use super::users::date;
use crate::clock::now_ms;
use crate::store::Store;

/// Where a link points when no --url (DUET_PUBLIC_URL) says otherwise.
const DEFAULT_URL: &str = "http://localhost:8080";

pub(super) fn make(args: MakeInvite, store: &Store) -> anyhow::Result<()> {
    let names: Vec<_> = store.backend().accounts()?.names().collect();
    let spec = InviteSpec::checked(args.room.as_deref(), args.name.as_deref(), args.ttl, args.uses, &names)
        .map_err(|e| anyhow::anyhow!("--{e}"))?;
    let key = store.key()?;
    let id = crate::random::bytes::<8>().context("read random bytes")?;
    let record = InviteRecord::new(spec, id, ("cli", None), now_ms());
    store.backend().add_invite(&record)?;
    let token = record.token(&key);
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            eprintln!(
                "(the link says {DEFAULT_URL}: pass --url or set DUET_PUBLIC_URL to the address people use)"
            );
            DEFAULT_URL.to_owned()
        }
    };
    println!("{base}/i/{token}");
    let uses = if record.uses == 1 { "once".to_owned() } else { format!("{} times", record.uses) };
    let room = record.room.as_deref().map_or(String::new(), |r| format!(" into room {r}"));
    let name = record.name.as_deref().map_or(String::new(), |n| format!(" as {n}"));
    eprintln!("Invite {} lets someone in{room}{name}, {uses}, until {}.", record.id, date(record.expires));
    Ok(())
}

pub(super) fn list(store: &Store) -> anyhow::Result<()> {
    let book = store.backend().invites()?;
    let now = now_ms();
    let mut any = false;
    for record in book.iter() {
        any = true;
        let state = if record.revoked {
            "revoked".to_owned()
        } else if record.expires <= now {
            "expired".to_owned()
        } else if record.used >= record.uses {
            "used".to_owned()
        } else {
            format!("{} of {} left", record.uses - record.used, record.uses)
        };
        println!(
            "{}\t{state}\troom {}\tname {}\tuntil {}\tby {}",
            record.id,
            record.room.as_deref().unwrap_or("(any)"),
            record.name.as_deref().unwrap_or("(their choice)"),
            date(record.expires),
            record.by
        );
    }
    if !any {
        println!("No invite links: make one with `duet invite`.");
    }
    Ok(())
}

pub(super) fn revoke(id: &str, store: &Store) -> anyhow::Result<()> {
    anyhow::ensure!(
        store.backend().revoke_invite(id)?,
        "there is no invite {id}: `duet invite list` shows them"
    );
    println!("Invite {id} is revoked; its guests are signed out within seconds.");
    Ok(())
}
