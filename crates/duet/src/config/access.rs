//! Who may come in, as options: the access mode, the instance password, origins and
//! proxies to trust, how long a sign-in lasts and how often one may be tried.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use duet_access::{Mode, Origin};
use duet_signal::limit::Rate;
use duet_turn::policy::Cidr;

use super::{RateArg, parse_duration};

/// What a person must choose before duet listens beyond this machine.
pub const CHOOSE_A_MODE: &str = "\
duet listens on a network address, so people other than you can reach it; choose who may \
come in with --access (or DUET_ACCESS): `--access open` lets anyone who reaches the server \
pick a name and call (fine on a home or office LAN you trust); `--access password` asks \
everyone for one password you hand out (put it in a file named by --access-password-file, \
or in DUET_ACCESS_PASSWORD), then lets them pick a name; `--access members` lets in only \
people with an account (`duet user add NAME`) and people you send an invite link to \
(`duet invite`). On 127.0.0.1 or ::1 duet stays open without asking.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Anyone who reaches duet picks a name.
    Open,
    /// One password for everyone, then a name of their choice.
    Password,
    /// Accounts and invite links only.
    Members,
}

#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// Who may come in: open (anyone who reaches duet), password (one password for
    /// everyone), members (accounts and invite links). Default on a loopback address:
    /// open; on any other address duet asks you to choose.
    #[arg(long, env = "DUET_ACCESS", value_enum)]
    pub access: Option<ModeArg>,

    /// A file holding the instance password for --access password (its first line).
    /// DUET_ACCESS_PASSWORD works too; a password is never a flag, which `ps` would show.
    #[arg(long, env = "DUET_ACCESS_PASSWORD_FILE")]
    pub access_password_file: Option<PathBuf>,

    /// A page origin besides duet's own that may open its WebSocket with a visitor's
    /// session, e.g. `https://intranet.example.org` (repeat, or separate with commas).
    #[arg(long = "allowed-origin", env = "DUET_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub allowed_origins: Vec<Origin>,

    /// A host name people reach duet at (repeat, or separate with commas; `*.example.org`
    /// for every name under it). duet answers to IP addresses, localhost, this machine's
    /// name, --tls-name, --acme-domain, --turn-host, --allowed-origin's hosts and
    /// DUET_PUBLIC_URL's host by itself; a request for any other name gets HTTP 421, so a
    /// foreign page whose name resolves to duet's address (DNS rebinding) reads nothing.
    #[arg(long = "allowed-host", env = "DUET_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For and
    /// X-Forwarded-Proto headers duet believes (repeat, or separate with commas).
    #[arg(long = "trusted-proxy", env = "DUET_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// How long a sign-in lasts before the person must sign in again.
    #[arg(long, env = "DUET_SESSION_TTL", default_value = "30d", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// Password sign-in attempts one client address may make: a burst, then a rate
    /// (BURST,N/m). Past it the answer is HTTP 429 with Retry-After.
    #[arg(long, env = "DUET_LIMIT_SIGN_INS", default_value = "10,6/m")]
    pub limit_sign_ins: RateArg,

    /// Wrong passwords one account may get from addresses it has not signed in from
    /// lately: a burst, then a rate (BURST,N/h). Past it, attempts at that account wait
    /// (HTTP 429 with Retry-After) without a password being checked; its owner's cookie
    /// and the addresses it signed in from in the last 30 days still get in.
    #[arg(long, env = "DUET_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT", default_value = "10,12/h")]
    pub limit_sign_in_failures_per_account: RateArg,

    /// Wrong passwords for everyone together (BURST,N/s): past it, password attempts
    /// from addresses not known to their account wait, so strangers cannot keep the
    /// password hashing busy.
    #[arg(long, env = "DUET_LIMIT_SIGN_IN_FAILURES", default_value = "20,5/s")]
    pub limit_sign_in_failures: RateArg,

    /// Password hashes computed at once (each takes 19 MiB and tens of milliseconds);
    /// more sign-ins wait their turn. Default: one per core.
    #[arg(long, env = "DUET_LIMIT_PASSWORD_HASHES")]
    pub limit_password_hashes: Option<usize>,

    /// How many days account holders' calls stay in their Recent list (0: none are kept,
    /// and what was kept is forgotten).
    #[arg(long, env = "DUET_CALL_HISTORY_DAYS", default_value_t = 90)]
    pub call_history_days: u32,
}

fn parse_origin(text: &str) -> Result<Origin, String> {
    Origin::parse(text.trim()).map_err(|e| e.to_string())
}

/// The access options, checked.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub mode: Mode,
    /// The instance password (`password` mode only).
    pub password: Option<String>,
    pub allowed_origins: Vec<Origin>,
    /// The host names requests may be for (besides IP addresses and localhost).
    pub hosts: duet_access::Hosts,
    pub trusted_proxies: Vec<Cidr>,
    pub session_ttl: Duration,
    pub sign_ins: Rate,
    /// Wrong passwords per account (from addresses it has not signed in from lately).
    pub failures_per_account: Rate,
    /// Wrong passwords for everyone together.
    pub failures: Rate,
    pub password_hashes: usize,
    /// How long account holders' calls are kept (none when zero).
    pub call_history: Duration,
}

impl AccessConfig {
    /// Open to anyone, with the default limits.
    pub fn open() -> Self {
        Self {
            mode: Mode::Open,
            password: None,
            allowed_origins: Vec::new(),
            hosts: duet_access::Hosts::default(),
            trusted_proxies: Vec::new(),
            session_ttl: Duration::from_secs(30 * 86_400),
            sign_ins: Rate::every(10, Duration::from_secs(10)),
            failures_per_account: Rate::every(10, Duration::from_secs(300)),
            failures: Rate::per_second(20, 5),
            password_hashes: 1,
            call_history: Duration::from_secs(90 * 86_400),
        }
    }
}

impl AccessArgs {
    /// Checks the options for a server listening on `listen`. `env_password` is
    /// DUET_ACCESS_PASSWORD; `known_hosts` are the names duet knows from its other
    /// options (TLS names, ACME domains, the TURN host, the public URL).
    pub fn into_config(
        self,
        listen: IpAddr,
        env_password: Option<String>,
        known_hosts: Vec<String>,
    ) -> anyhow::Result<AccessConfig> {
        let mode = match self.access {
            Some(ModeArg::Open) => Mode::Open,
            Some(ModeArg::Password) => Mode::Password,
            Some(ModeArg::Members) => Mode::Members,
            None if listen.is_loopback() => Mode::Open,
            None => anyhow::bail!("{CHOOSE_A_MODE}"),
        };
        let from_file = match &self.access_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("--access-password-file: cannot read {}: {e}", path.display())
                })?;
                Some(text.lines().next().unwrap_or("").to_owned())
            }
            None => None,
        };
        let password = from_file.or(env_password.filter(|p| !p.is_empty()));
        match (mode, &password) {
            (Mode::Password, None) => anyhow::bail!(
                "--access password needs the password: put it in a file and pass \
                 --access-password-file FILE, or set DUET_ACCESS_PASSWORD"
            ),
            (Mode::Password, Some(password)) => duet_access::accounts::check_password(password)
                .map_err(|e| anyhow::anyhow!("the instance password is not usable: {e}"))?,
            (_, Some(_)) => anyhow::bail!(
                "an instance password is set (--access-password-file or DUET_ACCESS_PASSWORD) but \
                 --access is not password: choose --access password, or remove the password"
            ),
            (_, None) => {}
        }
        anyhow::ensure!(self.session_ttl >= Duration::from_secs(60), "--session-ttl must be at least 1m");
        anyhow::ensure!(
            self.session_ttl <= Duration::from_secs(366 * 86_400),
            "--session-ttl must be at most 366d"
        );
        let password_hashes = self
            .limit_password_hashes
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        anyhow::ensure!(password_hashes >= 1, "--limit-password-hashes must be at least 1");
        anyhow::ensure!(
            self.call_history_days <= 3660,
            "--call-history-days must be at most 3660 (ten years)"
        );
        let origin_hosts = self.allowed_origins.iter().filter_map(Origin::host);
        let hosts = duet_access::Hosts::new(
            self.allowed_hosts.into_iter().chain(origin_hosts).chain(known_hosts).chain(machine_names()),
        );
        Ok(AccessConfig {
            mode,
            password,
            hosts,
            allowed_origins: self.allowed_origins,
            trusted_proxies: self.trusted_proxies,
            session_ttl: self.session_ttl,
            sign_ins: self.limit_sign_ins.0,
            failures_per_account: self.limit_sign_in_failures_per_account.0,
            failures: self.limit_sign_in_failures.0,
            password_hashes,
            call_history: Duration::from_secs(u64::from(self.call_history_days) * 86_400),
        })
    }
}

/// This machine's own name, and its `.local` form (mDNS), as people on a LAN type them.
fn machine_names() -> Vec<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        return Vec::new();
    }
    let short = name.split('.').next().unwrap_or(name);
    vec![name.to_owned(), format!("{short}.local")]
}
