//! The command line, typed once.
//!
//! Every option can also come from an environment variable (`DUET_LISTEN`, ...), so a
//! service manager or a container can configure duet without a wrapper script. What is
//! parsed here is checked here: the rest of the binary receives a [`ServeConfig`] whose
//! fields are already valid, and a wrong setting stops duet at start-up with a message
//! that names the option.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

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
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
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

    /// Serve HTTPS with a self-signed certificate for localhost and this machine's
    /// addresses, created on first use in --state-dir and reused afterwards.
    #[arg(long, env = "DUET_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Where duet keeps what it creates (the self-signed certificate).
    /// Default: $XDG_STATE_HOME/duet, else ~/.local/state/duet.
    #[arg(long, env = "DUET_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long shutdown waits for connections to close after telling them.
    #[arg(long, env = "DUET_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// How HTTPS is set up, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Plain HTTP: fine on localhost, which browsers treat as a secure context.
    None,
    /// Certificate and key files the operator provides.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate kept in this directory.
    SelfSigned { dir: PathBuf },
}

/// Everything `duet serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub shutdown_grace: Duration,
}

impl ServeArgs {
    /// Checks the arguments against each other and fills in defaults that depend on the
    /// environment.
    pub fn into_config(self) -> anyhow::Result<ServeConfig> {
        let tls = match (self.tls_cert, self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), false) => TlsSource::Files { cert, key },
            (None, None, true) => TlsSource::SelfSigned {
                dir: match self.state_dir {
                    Some(dir) => dir,
                    None => default_state_dir()?,
                },
            },
            (None, None, false) => TlsSource::None,
            // clap's `requires` and `conflicts_with` make the other cases unreachable from
            // the command line; say so plainly if a caller builds ServeArgs by hand.
            _ => anyhow::bail!("use either --tls-cert with --tls-key, or --tls-self-signed"),
        };
        Ok(ServeConfig { listen: self.listen, tls, shutdown_grace: self.shutdown_grace })
    }
}

fn default_state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("duet"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/duet")),
        None => anyhow::bail!("neither XDG_STATE_HOME nor HOME is set: pass --state-dir"),
    }
}

/// Parses `500ms`, `5s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 =
        digits.parse().map_err(|_| format!("\"{text}\" is not a duration like 500ms, 5s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        _ => Err(format!("\"{text}\" needs a unit: ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn serve_subcommand_takes_the_same_options() {
        let cli = parse(&["serve", "--listen", "[::1]:9000"]).expect("valid");
        let Some(Command::Serve(args)) = cli.command else { panic!("serve expected") };
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
        assert_eq!(config.tls, TlsSource::SelfSigned { dir: "/tmp/x".into() });
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
    }
}
