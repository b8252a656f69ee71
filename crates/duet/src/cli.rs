//! The command line: `duet` and its subcommands, each handing its options to the room
//! that runs it (`serve`, `call`, `admin`, the TURN node). The settings themselves are
//! [`crate::config`], which knows nothing of the commands.
//!
//! ```text
//!  argv ──► config::file (the TOML file merged under flags and environment) ──► Cli
//!        ├─ serve (default) / config ──► config::ServeArgs ──► ServeConfig
//!        ├─ call ──► call::CallArgs      ├─ user / invite ──► admin
//!        └─ turn ──► config::TurnNodeArgs
//! ```

use clap::{Parser, Subcommand};

use crate::config::{LogFormat, ServeArgs, ServeConfig, TurnNodeArgs, file};

/// Self-hosted 1:1 video calls: a web client, signaling and (soon) TURN in one binary.
#[derive(Debug, Parser)]
#[command(name = "duet", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `duet` alone means `duet serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web client and the signaling server (the default).
    Serve(Box<ServeArgs>),
    /// Call someone on a duet server from this terminal (or wait to be called), playing
    /// and recording media files.
    Call(crate::call::CallArgs),
    /// Print the effective configuration (file, environment and flags merged) as a
    /// commented TOML file: `duet config > duet.toml` starts one.
    Config(Box<ServeArgs>),
    /// Manage accounts: add, list, remove, passwd, sign-out.
    User(crate::admin::UserArgs),
    /// Make an invite link (or list and revoke them).
    Invite(crate::admin::InviteArgs),
    /// Run only a STUN/TURN server: a TURN node for signaling nodes started with
    /// --external-turn-url and the same shared secret.
    Turn(Box<TurnNodeArgs>),
}

/// The serve options as the command line, the environment and the config file (read
/// again) give them now: checked, with the effective configuration `duet config` prints.
pub fn serve_config_from(argv: &[std::ffi::OsString]) -> anyhow::Result<(ServeConfig, String)> {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command();
    let merged = file::merged(&command, argv.to_vec())?;
    let matches = command.clone().try_get_matches_from(&merged)?;
    let (serve, sub) = file::serve_matches(&matches).ok_or_else(|| anyhow::anyhow!("not a serve command"))?;
    let options = match sub.and_then(|name| command.find_subcommand(name)) {
        Some(sub) => sub.clone(),
        None => command.clone(),
    };
    let effective = file::effective(&options, serve);
    let cli = Cli::from_arg_matches(&matches)?;
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        None => cli.serve,
        Some(_) => anyhow::bail!("not a serve command"),
    };
    Ok((args.into_config()?, effective))
}

impl Cli {
    /// The log level a `duet serve` (or `duet turn`) asked for; other commands read DUET_LOG alone.
    pub fn log_level(&self) -> String {
        match &self.command {
            Some(Command::Serve(args)) => args.log_level.clone(),
            Some(Command::Turn(args)) => args.log_level.clone(),
            None => self.serve.log_level.clone(),
            Some(_) => std::env::var("DUET_LOG").unwrap_or_else(|_| "info".to_owned()),
        }
    }

    /// The log format a `duet serve` asked for (other commands write for people).
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Some(Command::Serve(args) | Command::Config(args)) => args.log_format,
            Some(Command::Turn(args)) => args.log_format,
            None => self.serve.log_format,
            Some(_) => LogFormat::Text,
        }
    }
}
