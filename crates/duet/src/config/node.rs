//! `duet turn`: a TURN-only node. The same server settings as the embedded TURN server
//! (`--turn-…`), the shared secret the signaling nodes hand out credentials with, and
//! its own certificate for TURN over TLS.
//!
//! ```text
//!  signaling node: duet serve --external-turn-url turn:turn1.example.org … --external-turn-secret-file S
//!  TURN node:      duet turn  --turn-secret-file S [--tls-cert C --tls-key K]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::turn::TurnServerArgs;
use super::{DEFAULT_METRICS_LISTEN, EmbeddedTurn, LogFormat, MetricsListen, parse_log_level};

/// The options of `duet turn`.
#[derive(Debug, Clone, Args)]
pub struct TurnNodeArgs {
    #[command(flatten)]
    pub server: TurnServerArgs,

    /// Certificate chain (PEM) for TURN over TLS (turns:) on --turn-tls-port; without
    /// it the node serves UDP and TCP only.
    #[arg(long, env = "DUET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "DUET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where to serve Prometheus metrics (allocations, relayed packets and bytes).
    /// Default: 127.0.0.1:9464, so a public node's figures are not public.
    #[arg(long, env = "DUET_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// No metrics endpoint.
    #[arg(long, env = "DUET_NO_METRICS", conflicts_with = "metrics_listen")]
    pub no_metrics: bool,

    /// Which log lines are written: error, warn, info, debug or trace.
    #[arg(long, env = "DUET_LOG", default_value = "info", value_parser = parse_log_level)]
    pub log_level: String,

    /// How log lines are written.
    #[arg(long, env = "DUET_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Everything `duet turn` needs, validated.
#[derive(Debug, Clone)]
pub struct TurnNodeConfig {
    pub turn: EmbeddedTurn,
    /// Certificate and key for TURN over TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub metrics: Option<MetricsListen>,
}

/// Where a TURN node listens unless told: every address, the standard port.
pub const DEFAULT_TURN_NODE_LISTEN: &str = "0.0.0.0:3478";

/// How long a TURN node remembers a revoked user: as long as credentials live at most.
pub const TURN_NODE_CREDENTIAL_TTL: Duration = Duration::from_secs(24 * 3600);

impl TurnNodeArgs {
    pub fn into_config(self) -> anyhow::Result<TurnNodeConfig> {
        let secret = self.server.secret()?.ok_or_else(|| {
            anyhow::anyhow!(
                "duet turn needs the shared secret the signaling nodes hand out credentials with: \
                 --turn-secret-file PATH (or --turn-secret, DUET_TURN_SECRET)"
            )
        })?;
        let listen =
            self.server.turn_listen.unwrap_or_else(|| DEFAULT_TURN_NODE_LISTEN.parse().expect("literal"));
        let turn = self.server.into_embedded(listen, secret)?;
        let metrics = match (self.no_metrics, self.metrics_listen) {
            (true, _) => None,
            (false, Some(addr)) => Some(MetricsListen { addr, chosen: true }),
            (false, None) => {
                Some(MetricsListen { addr: DEFAULT_METRICS_LISTEN.parse().expect("literal"), chosen: false })
            }
        };
        Ok(TurnNodeConfig { turn, tls: self.tls_cert.zip(self.tls_key), metrics })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn node(args: &[&str]) -> anyhow::Result<super::TurnNodeConfig> {
        let cli = Cli::try_parse_from(["duet", "turn"].iter().chain(args))?;
        let Some(Command::Turn(args)) = cli.command else { panic!("the turn command") };
        args.into_config()
    }

    #[test]
    fn a_turn_node_without_the_shared_secret_says_how_to_give_it() {
        let err = node(&[]).expect_err("no secret");
        assert!(err.to_string().contains("--turn-secret-file"), "{err}");
        let err = node(&["--turn-secret", "short"]).expect_err("too short");
        assert!(err.to_string().contains("at least 16"), "{err}");
    }

    #[test]
    fn a_turn_node_reads_its_secret_from_a_file_and_listens_everywhere_by_default() {
        let dir = std::env::temp_dir().join(format!("duet-node-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let file = dir.join("secret");
        std::fs::write(&file, "a secret shared with the signaling nodes\n").expect("write");
        let config = node(&["--turn-secret-file", file.to_str().expect("utf-8"), "--turn-threads", "3"])
            .expect("valid");
        assert_eq!(config.turn.secret, b"a secret shared with the signaling nodes");
        assert_eq!(config.turn.listen, "0.0.0.0:3478".parse().expect("literal"));
        assert_eq!(config.turn.threads, 3);
        assert!(config.turn.stream_listeners && config.tls.is_none());
        std::fs::write(&file, "\n").expect("write");
        let err = node(&["--turn-secret-file", file.to_str().expect("utf-8")]).expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
