//! The settings, typed once: every option of `duet serve` and `duet turn` (the command
//! line itself, with its subcommands, is [`crate::cli`]).
//!
//! Every option can also come from an environment variable (`DUET_LISTEN`, ...), so a
//! service manager or a container can configure duet without a wrapper script. What is
//! parsed here is checked here: the rest of the binary receives a [`ServeConfig`] whose
//! fields are already valid, and a wrong setting stops duet at start-up with a message
//! that names the option. A leaf: nothing here imports the rest of the shell.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

mod access;
mod acme;
pub mod file;
mod limits;
mod node;
pub mod push;
mod turn;

pub use crate::clock::parse_duration;

pub use access::{AccessArgs, AccessConfig, CHOOSE_A_MODE, ModeArg};
pub use acme::{AcmeArgs, AcmeChallenge, AcmeConfig, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};
pub use limits::{LimitArgs, RateArg};
pub use node::{TURN_NODE_CREDENTIAL_TTL, TurnNodeArgs, TurnNodeConfig};
pub use turn::{EmbeddedTurn, PortRange, TurnArgs, TurnMode, TurnServerArgs, policy_for_listener};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file with any of these options (`duet config` prints one); flags and
    /// environment variables override it.
    #[arg(long, env = "DUET_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address for HTTP(S) and WebSocket. Use 0.0.0.0:8080 to accept calls from other
    /// machines (they need HTTPS: see --tls-self-signed).
    #[arg(long, env = "DUET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PEM certificate chain for HTTPS and WSS (with --tls-key).
    #[arg(long, env = "DUET_TLS_CERT", requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "DUET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for localhost, the listen address and
    /// the --tls-name names, created in --state-dir and reused afterwards (unless
    /// --acme-domain gets a real one).
    #[arg(long, env = "DUET_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// A host name or address the self-signed certificate covers besides localhost and
    /// the listen address, e.g. this machine's LAN address (repeat, or separate with commas).
    #[arg(long = "tls-name", env = "DUET_TLS_NAMES", value_delimiter = ',', requires = "tls_self_signed")]
    pub tls_names: Vec<String>,

    #[command(flatten)]
    pub acme: AcmeArgs,

    /// Also serve plain HTTP here (usually 0.0.0.0:80): it sends every request to
    /// HTTPS, and answers the CA's HTTP-01 challenges.
    #[arg(long, env = "DUET_HTTP_REDIRECT_LISTEN")]
    pub http_redirect_listen: Option<SocketAddr>,

    /// Where duet keeps what it creates (the key that signs resume tokens, so a restart
    /// does not let strangers take people's names; the self-signed certificate).
    /// Default: $XDG_STATE_HOME/duet, else ~/.local/state/duet (for root, the service's
    /// /var/lib/duet when it exists).
    #[arg(long, env = "DUET_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Run as one node of several that share this Redis (or Valkey), e.g.
    /// redis://10.0.0.5:6379/0: people on different nodes see and call each other. Every
    /// node needs the same state directory contents (keys, accounts); put a load
    /// balancer in front. Without it nothing of the cluster runs.
    #[arg(long, env = "DUET_REDIS", value_name = "URL", hide_env_values = true)]
    pub redis: Option<String>,

    /// How long shutdown waits for connections to close after telling them.
    #[arg(long, env = "DUET_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Address of the Prometheus endpoint (GET /metrics). Default: 127.0.0.1:9464,
    /// loopback only, so a public server's figures stay private.
    #[arg(long, env = "DUET_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// No metrics endpoint.
    #[arg(long, env = "DUET_NO_METRICS", conflicts_with = "metrics_listen")]
    pub no_metrics: bool,

    /// How often each WebSocket is pinged, so proxies with an idle timeout (often 60 s)
    /// do not cut it.
    #[arg(long, env = "DUET_KEEPALIVE", default_value = "25s", value_parser = parse_duration)]
    pub keepalive: Duration,

    /// Do not offer the `echo` user (a lone person calls it to see and hear themselves).
    #[arg(long, env = "DUET_NO_ECHO")]
    pub no_echo: bool,

    /// How long a call rings before it ends as missed.
    #[arg(long, env = "DUET_RING_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub ring_timeout: Duration,

    /// How long someone whose connection dropped keeps their name and call while their
    /// browser reconnects.
    #[arg(long, env = "DUET_RESUME_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub resume_grace: Duration,

    #[command(flatten)]
    pub turn: TurnArgs,

    /// How log lines are written: `text` for people, `json` (one object a line) for a
    /// log collector.
    #[arg(long, env = "DUET_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Which log lines are written: error, warn, info, debug or trace, for all of duet
    /// or per part (`info,duet::acme=debug`). SIGHUP applies a changed one.
    #[arg(long, env = "DUET_LOG", default_value = "info", value_parser = parse_log_level)]
    pub log_level: String,

    #[command(flatten)]
    pub access: AccessArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub push: push::PushArgs,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A log level as `tracing` filters take it.
pub(crate) fn parse_log_level(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("\"{text}\" is not a log level like info, debug or info,duet::acme=debug: {e}"))
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen {
    pub addr: SocketAddr,
    /// Chosen with --metrics-listen (a taken port then stops duet) or the default (a
    /// taken port then only turns metrics off).
    pub chosen: bool,
}

/// OpenTelemetry's Prometheus exporter port: free of clashes with Prometheus itself (9090).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// What signaling hands to browsers.
#[derive(Debug, Clone)]
pub struct IceSettings {
    pub host: Option<String>,
    pub ttl: Duration,
}

/// How HTTPS is set up, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Plain HTTP: fine on localhost, which browsers treat as a secure context.
    None,
    /// Certificate and key files the operator provides.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate for these names, kept in this directory.
    SelfSigned { dir: PathBuf, names: std::collections::BTreeSet<String> },
    /// Certificates from an ACME CA, obtained and renewed by duet.
    Acme(AcmeConfig),
}

/// Everything `duet serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    /// Plain HTTP that redirects to HTTPS (and answers HTTP-01 challenges).
    pub http_redirect: Option<SocketAddr>,
    /// Where duet keeps what must survive a restart (the resume key, the self-signed
    /// certificate); `None` when no home directory is known and none was given.
    pub state_dir: Option<PathBuf>,
    /// Which peers the TURN relay and the echo user may reach (the server's own
    /// addresses are added at start, see [`policy_for_listener`]).
    pub peer_policy: duet_turn::policy::PeerPolicy,
    pub limits: limits::Limits,
    pub shutdown_grace: Duration,
    pub turn: TurnMode,
    pub ice: IceSettings,
    pub metrics: Option<MetricsListen>,
    pub keepalive: Duration,
    pub hub: duet_signal::HubConfig,
    pub echo: bool,
    pub access: AccessConfig,
    /// What the log filter lets through (SIGHUP can change it).
    pub log_level: String,
    /// The Redis of a cluster of nodes.
    pub redis: Option<String>,
    /// How account holders' devices are rung by push.
    pub push: push::PushConfig,
}

impl ServeConfig {
    /// Sizes every total from the open-file limit (see `limits::Limits::size_for`).
    pub fn size_for_open_files(&mut self, open_files: u64) {
        self.limits.size_for(open_files, matches!(self.turn, TurnMode::Embedded(_)));
        if let TurnMode::Embedded(turn) = &mut self.turn {
            turn.allocations_total = self.limits.turn_allocations_total;
            turn.streams_per_address = self.limits.turn_streams_per_address;
            turn.streams_total = self.limits.turn_streams_total;
        }
    }
}

impl ServeArgs {
    /// The host names the other options say duet is reached at: TLS names, ACME domains,
    /// the TURN host, DUET_PUBLIC_URL's host (the address `duet invite` puts in links).
    fn known_hosts(tls_names: &[String], acme: Option<&AcmeConfig>, turn_host: Option<&str>) -> Vec<String> {
        let mut names = tls_names.to_vec();
        names.extend(acme.iter().flat_map(|acme| acme.domains.iter().cloned()));
        names.extend(turn_host.map(str::to_owned));
        let public = std::env::var("DUET_PUBLIC_URL").unwrap_or_default();
        let authority = public.split_once("://").map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        names.extend(duet_access::host::host_name(authority));
        names
    }

    /// Checks the arguments against each other and fills in defaults that depend on the
    /// environment.
    pub fn into_config(self) -> anyhow::Result<ServeConfig> {
        let state_dir = match self.state_dir {
            Some(dir) => Some(dir),
            None => default_state_dir().ok(),
        };
        let acme = self.acme.into_config(state_dir.as_deref(), self.listen, self.http_redirect_listen)?;
        let known_hosts = Self::known_hosts(&self.tls_names, acme.as_ref(), self.turn.turn_host.as_deref());
        let tls = match (self.tls_cert, self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), false) => TlsSource::Files { cert, key },
            // A domain for the CA takes the place of the self-signed stand-in.
            (None, None, _) if let Some(acme) = acme => TlsSource::Acme(acme),
            (None, None, true) => {
                let mut names: std::collections::BTreeSet<String> =
                    ["localhost", "127.0.0.1", "::1"].map(String::from).into();
                if !self.listen.ip().is_unspecified() {
                    names.insert(self.listen.ip().to_string());
                }
                names.extend(self.tls_names.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()));
                let dir = match &state_dir {
                    Some(dir) => dir.clone(),
                    None => default_state_dir()?,
                };
                TlsSource::SelfSigned { dir, names }
            }
            (None, None, false) => TlsSource::None,
            // clap's `requires` and `conflicts_with` make the other cases unreachable from
            // the command line; say so plainly if a caller builds ServeArgs by hand.
            _ => anyhow::bail!("use either --tls-cert with --tls-key, or --tls-self-signed"),
        };
        anyhow::ensure!(
            self.http_redirect_listen.is_none() || tls != TlsSource::None,
            "--http-redirect-listen redirects to HTTPS: turn HTTPS on (--acme-domain, --tls-cert or --tls-self-signed)"
        );
        let ice = IceSettings { host: self.turn.turn_host.clone(), ttl: self.turn.ice_credential_ttl };
        anyhow::ensure!(ice.ttl >= Duration::from_secs(60), "--ice-credential-ttl must be at least 1m");
        let access = self.access.into_config(
            self.listen.ip(),
            std::env::var("DUET_ACCESS_PASSWORD").ok(),
            known_hosts,
        )?;
        let peer_policy = self.turn.peer_policy(self.listen.ip());
        let turn = self.turn.into_mode(self.listen)?;
        let mut limits = self.limits.into_limits()?;
        limits.http.trusted_proxies = access.trusted_proxies.clone();
        let metrics = match (self.no_metrics, self.metrics_listen) {
            (true, _) => None,
            (false, Some(addr)) => Some(MetricsListen { addr, chosen: true }),
            (false, None) => Some(MetricsListen {
                addr: DEFAULT_METRICS_LISTEN.parse().expect("a literal address"),
                chosen: false,
            }),
        };
        anyhow::ensure!(self.keepalive >= Duration::from_secs(1), "--keepalive must be at least 1s");
        anyhow::ensure!(self.ring_timeout >= Duration::from_secs(1), "--ring-timeout must be at least 1s");
        anyhow::ensure!(self.ring_timeout <= Duration::from_secs(600), "--ring-timeout must be at most 10m");
        anyhow::ensure!(self.resume_grace <= Duration::from_secs(600), "--resume-grace must be at most 10m");
        let hub = duet_signal::HubConfig {
            ring_timeout: self.ring_timeout,
            resume_grace: self.resume_grace,
            limits: limits.hub,
            service_calls_per_address: limits.echo_calls_per_address,
            devices_per_account: limits.devices_per_account,
            ..duet_signal::HubConfig::default()
        };
        let mut config = ServeConfig {
            listen: self.listen,
            tls,
            http_redirect: self.http_redirect_listen,
            state_dir,
            peer_policy,
            limits,
            shutdown_grace: self.shutdown_grace,
            turn,
            ice,
            metrics,
            keepalive: self.keepalive,
            hub,
            echo: !self.no_echo,
            access,
            log_level: self.log_level,
            redis: self.redis,
            push: self.push.into_config()?,
        };
        config.size_for_open_files(1024);
        Ok(config)
    }
}

/// The duet service's state directory (the package's unit makes it).
const SERVICE_STATE_DIR: &str = "/var/lib/duet";

/// `$XDG_STATE_HOME/duet`, else `~/.local/state/duet`; for root, the service's
/// `/var/lib/duet` when it exists, so `sudo duet user add` reaches the service's accounts.
pub fn default_state_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root && std::path::Path::new(SERVICE_STATE_DIR).is_dir() {
        return Ok(PathBuf::from(SERVICE_STATE_DIR));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("duet"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/duet")),
        None => anyhow::bail!("neither XDG_STATE_HOME nor HOME is set: pass --state-dir"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("duet").chain(args.iter().copied()))
    }

    #[test]
    fn plain_duet_serves_on_localhost_8080() {
        let cli = parse(&[]).expect("valid");
        assert!(cli.command.is_none());
        let config = cli.serve.into_config().expect("valid");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().expect("literal"));
        assert_eq!(config.tls, TlsSource::None);
    }

    #[test]
    fn metrics_listen_on_loopback_unless_told_otherwise() {
        let config = parse(&[]).expect("valid").serve.into_config().expect("valid");
        let metrics = config.metrics.expect("on by default");
        assert!(metrics.addr.ip().is_loopback() && !metrics.chosen);
        let off = parse(&["--no-metrics"]).expect("valid").serve.into_config().expect("valid");
        assert_eq!(off.metrics, None);
        assert!(parse(&["--no-metrics", "--metrics-listen", "0.0.0.0:9464"]).is_err());
    }

    #[test]
    fn serve_subcommand_takes_the_same_options() {
        let cli = parse(&["serve", "--listen", "[::1]:9000"]).expect("valid");
        let Some(Command::Serve(args)) = cli.command else { panic!("serve expected") };
        let args = *args;
        assert_eq!(args.listen, "[::1]:9000".parse().expect("literal"));
    }

    #[test]
    fn a_wrong_listen_address_is_refused_with_the_option_named() {
        let err = parse(&["--listen", "localhost"]).expect_err("not a socket address");
        assert!(err.to_string().contains("--listen"), "{err}");
    }

    #[test]
    fn a_certificate_without_key_is_refused() {
        assert!(parse(&["--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-self-signed"]).is_err());
    }

    #[test]
    fn self_signed_uses_the_given_state_dir() {
        let cli = parse(&["--tls-self-signed", "--state-dir", "/tmp/x"]).expect("valid");
        let config = cli.serve.into_config().expect("valid");
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        assert_eq!(config.tls, TlsSource::SelfSigned { dir: "/tmp/x".into(), names });
    }

    #[test]
    fn a_domain_for_the_ca_takes_the_place_of_the_self_signed_certificate() {
        let cli = parse(&["--tls-self-signed", "--acme-domain", "Call.Example.org", "--state-dir", "/tmp/x"])
            .expect("valid");
        let TlsSource::Acme(acme) = cli.serve.into_config().expect("valid").tls else { panic!("ACME") };
        assert_eq!(acme.domains, ["call.example.org"]);
        assert_eq!(acme.directory, LETS_ENCRYPT);
        assert_eq!(acme.challenge, AcmeChallenge::TlsAlpn01);
        let cli = parse(&["--acme-domain", "a.example.org", "--acme-staging", "--state-dir", "/tmp/x"])
            .expect("ok");
        let TlsSource::Acme(acme) = cli.serve.into_config().expect("valid").tls else { panic!("ACME") };
        assert_eq!(acme.directory, LETS_ENCRYPT_STAGING);
    }

    #[test]
    fn one_address_may_hold_at_most_a_quarter_of_a_small_relay_range() {
        let config =
            parse(&["--turn-relay-ports", "50000-50099"]).expect("valid").serve.into_config().expect("valid");
        let TurnMode::Embedded(turn) = config.turn else { panic!("embedded TURN") };
        assert_eq!(turn.allocations_per_address, 25, "ten sign-ins cannot take a 100-port range");
        let config = parse(&[]).expect("valid").serve.into_config().expect("valid");
        let TurnMode::Embedded(turn) = config.turn else { panic!("embedded TURN") };
        assert_eq!(turn.allocations_per_address, 32);
    }

    #[test]
    fn limits_are_flags_with_sane_defaults_and_wrong_ones_are_refused() {
        let config = parse(&[]).expect("valid").serve.into_config().expect("valid");
        assert_eq!(config.limits.signaling.sockets_per_address, 32);
        assert_eq!(config.hub.limits, duet_signal::Limits::default());
        let config = parse(&["--limit-chat", "3,2/m", "--limit-websockets-per-address", "500"])
            .expect("valid")
            .serve
            .into_config()
            .expect("valid");
        assert_eq!(config.hub.limits.chat, duet_signal::limit::Rate::every(3, Duration::from_secs(30)));
        assert_eq!(config.limits.signaling.sockets_per_address, 500);
        let err = parse(&["--limit-chat", "lots"]).expect_err("not a rate");
        assert!(err.to_string().contains("--limit-chat"), "{err}");
        assert!(
            parse(&["--limit-websockets-per-address", "0"]).expect("parses").serve.into_config().is_err()
        );
        let err = parse(&["--turn-denied-peer", "10.0.0.0/40"]).expect_err("not a range");
        assert!(err.to_string().contains("--turn-denied-peer"), "{err}");
    }

    #[test]
    fn beyond_loopback_duet_asks_who_may_come_in_and_open_is_a_valid_answer() {
        let err =
            parse(&["--listen", "0.0.0.0:8080"]).expect("parses").serve.into_config().expect_err("a choice");
        let text = err.to_string();
        for words in
            ["--access open", "--access password", "--access members", "duet user add", "duet invite"]
        {
            assert!(text.contains(words), "the paragraph explains {words}: {text}");
        }
        let open = parse(&["--listen", "0.0.0.0:8080", "--access", "open"]).expect("parses");
        assert_eq!(open.serve.into_config().expect("valid").access.mode, duet_access::Mode::Open);
        let local = parse(&[]).expect("parses").serve.into_config().expect("valid");
        assert_eq!(local.access.mode, duet_access::Mode::Open, "loopback stays open");
    }

    #[test]
    fn a_password_server_needs_a_usable_password_and_only_it_takes_one() {
        let dir = std::env::temp_dir().join(format!("duet-config-password-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let short = dir.join("short");
        std::fs::write(&short, "abc\n").expect("write");
        let good = dir.join("good");
        std::fs::write(&good, "a long enough password\nignored second line\n").expect("write");
        let with = |args: &[&str]| parse(args).expect("parses").serve.into_config();
        let err = with(&["--access", "password"]).expect_err("no password");
        assert!(err.to_string().contains("--access-password-file"), "{err}");
        let err = with(&["--access", "password", "--access-password-file", short.to_str().expect("utf-8")])
            .expect_err("too short");
        assert!(err.to_string().contains("at least 8"), "{err}");
        let config = with(&["--access", "password", "--access-password-file", good.to_str().expect("utf-8")])
            .expect("valid");
        assert_eq!(config.access.password.as_deref(), Some("a long enough password"));
        let err = with(&["--access", "members", "--access-password-file", good.to_str().expect("utf-8")])
            .expect_err("a password for another mode");
        assert!(err.to_string().contains("not password"), "{err}");
        let err = parse(&["--allowed-origin", "evil.example"]).expect_err("not an origin");
        assert!(err.to_string().contains("--allowed-origin"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
    }
}
