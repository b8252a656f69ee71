//! `duet user` and `duet invite`: the operator's commands for accounts and invite links.
//! They change the store in the state directory (one transaction each, beside a running
//! server, see [`crate::store`]); a running server notices within seconds, signing out
//! sessions of removed accounts and revoked invites.
//!
//! ```text
//!  duet user add|list|remove|passwd|sign-out ──► accounts
//!  duet invite [--room R] [--name N] [--ttl 24h] [--uses 1] ──► invites ──► prints the link
//!  duet invite list | revoke ID
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::clock::parse_duration;
use crate::store::Store;

mod invites;
mod users;

/// Where the server keeps its state (the same option as `duet serve`'s).
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The server's state directory. Default: $XDG_STATE_HOME/duet, else
    /// ~/.local/state/duet; for root, the duet service's /var/lib/duet when it exists.
    #[arg(long, env = "DUET_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    fn store(&self) -> anyhow::Result<Store> {
        let dir = match &self.state_dir {
            Some(dir) => dir.clone(),
            None => crate::config::default_state_dir()?,
        };
        Ok(Store::open(&dir)?)
    }
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Make an account. Asks for its password twice (or reads one line from stdin when
    /// that is not a terminal).
    Add {
        name: String,
        /// The account may make invite links from the page.
        #[arg(long)]
        admin: bool,
    },
    /// List the accounts.
    List,
    /// Remove an account; its sessions end.
    Remove { name: String },
    /// Set a new password; every session signed in with the old one ends.
    Passwd { name: String },
    /// End every session of an account (it signs in again with its password).
    SignOut { name: String },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InviteArgs {
    #[command(subcommand)]
    pub action: Option<InviteAction>,
    #[command(flatten)]
    pub make: MakeInvite,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MakeInvite {
    /// The room the link opens (and the only one its guest may join). Default: the lobby
    /// and any room.
    #[arg(long)]
    pub room: Option<String>,
    /// The name the guest will have (they cannot change it). Default: they pick one.
    #[arg(long)]
    pub name: Option<String>,
    /// How long the link works.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// How many people may use it.
    #[arg(long, default_value_t = 1)]
    pub uses: u32,
    /// The address people reach duet at; the link starts with it.
    #[arg(long, env = "DUET_PUBLIC_URL")]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InviteAction {
    /// List invite links that still work or whose sessions may still be open.
    List,
    /// Revoke an invite link by its id: it stops working and its guests are signed out.
    Revoke { id: String },
}

/// Runs `duet user ...`.
pub fn user(args: UserArgs) -> anyhow::Result<()> {
    users::run(args.action, &args.state.store()?)
}

/// Runs `duet invite ...`.
pub fn invite(args: InviteArgs) -> anyhow::Result<()> {
    let store = args.state.store()?;
    match args.action {
        None => invites::make(args.make, &store),
        Some(InviteAction::List) => invites::list(&store),
        Some(InviteAction::Revoke { id }) => invites::revoke(&id, &store),
    }
}

/// A password for `name`: asked twice on a terminal, else the first line of stdin.
fn read_password(name: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password(format!("Password for {name}: ")).context("read the password")?;
        let again = rpassword::prompt_password("The same again: ").context("read the password")?;
        anyhow::ensure!(first == again, "the two passwords differ; nothing was changed");
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    duet_access::accounts::check_password(&password)?;
    Ok(password)
}
