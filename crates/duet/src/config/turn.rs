//! The STUN/TURN options: the embedded server, an external one, or none, and which peers
//! a relay (or the echo user) may reach.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use clap::Args;
use duet_turn::policy::{Cidr, PeerPolicy};

use crate::clock::parse_duration;

/// The STUN/TURN choices of `duet serve`: the embedded server (its settings), an external
/// one (or several TURN nodes), or none.
/// The UDP ports relay sockets may use (`--turn-relay-ports 49152-65535`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange(pub RangeInclusive<u16>);

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (low, high) =
            s.split_once('-').ok_or_else(|| format!("\"{s}\" is not a range like 49152-65535"))?;
        let low: u16 = low.trim().parse().map_err(|_| format!("\"{low}\" is not a port"))?;
        let high: u16 = high.trim().parse().map_err(|_| format!("\"{high}\" is not a port"))?;
        if low == 0 || low > high {
            return Err(format!("\"{s}\": the range must be low-high with 0 < low <= high"));
        }
        Ok(Self(low..=high))
    }
}

#[derive(Debug, Clone, Args)]
pub struct TurnArgs {
    /// Do not run the embedded STUN/TURN server (calls then work only where direct
    /// connections do, unless --external-turn-url is given).
    #[arg(long, env = "DUET_NO_TURN")]
    pub no_turn: bool,

    /// Serve TURN over TCP and TLS only on the web port (--listen): no TCP listener on
    /// 3478 and none on --turn-tls-port. STUN and TURN over UDP stay on 3478.
    #[arg(long, env = "DUET_TURN_WEB_PORT_ONLY")]
    pub turn_web_port_only: bool,

    /// Host name or address browsers should use for TURN. Default: the host the page was
    /// loaded from.
    #[arg(long, env = "DUET_TURN_HOST")]
    pub turn_host: Option<String>,

    /// Use this STUN/TURN server instead of the embedded one (repeat for several URLs,
    /// e.g. turn:turn.example.com:3478?transport=udp). URLs of several hosts are several
    /// TURN nodes: each session is handed the URLs of one, in turn, so relayed media
    /// spreads over them.
    #[arg(long = "external-turn-url", env = "DUET_EXTERNAL_TURN_URLS", value_delimiter = ',')]
    pub external_turn_urls: Vec<String>,

    /// The external TURN servers' shared secret (coturn's static-auth-secret, or `duet
    /// turn`'s --turn-secret).
    #[arg(
        long,
        env = "DUET_EXTERNAL_TURN_SECRET",
        requires = "external_turn_urls",
        conflicts_with = "external_turn_secret_file",
        hide_env_values = true
    )]
    pub external_turn_secret: Option<String>,

    /// A file holding the external TURN servers' shared secret (its first line).
    #[arg(long, env = "DUET_EXTERNAL_TURN_SECRET_FILE", requires = "external_turn_urls")]
    pub external_turn_secret_file: Option<PathBuf>,

    /// How long the TURN credentials handed to each signed-in user are valid; they are
    /// renewed at half this while the user is signed in, and revoked when they leave.
    #[arg(long, env = "DUET_ICE_CREDENTIAL_TTL", default_value = "10m", value_parser = parse_duration)]
    pub ice_credential_ttl: std::time::Duration,

    #[command(flatten)]
    pub server: TurnServerArgs,
}

/// The settings of a TURN server: duet's embedded one, or a TURN-only node (`duet turn`).
#[derive(Debug, Clone, Args)]
pub struct TurnServerArgs {
    /// UDP and TCP address of the TURN server. Default: the --listen IP, port 3478
    /// (`duet turn`: 0.0.0.0:3478).
    #[arg(long, env = "DUET_TURN_LISTEN")]
    pub turn_listen: Option<SocketAddr>,

    /// Port of TURN over TLS (turns:), served with the web port's certificate (`duet
    /// serve` with HTTPS) or --tls-cert (`duet turn`).
    #[arg(long, env = "DUET_TURN_TLS_PORT", default_value_t = 5349)]
    pub turn_tls_port: u16,

    /// UDP ports for relayed media, one per allocation; open them in the firewall.
    #[arg(long, env = "DUET_TURN_RELAY_PORTS", default_value = "49152-65535")]
    pub turn_relay_ports: PortRange,

    /// Threads relaying UDP, each with a listener on the TURN port (SO_REUSEPORT) and the
    /// allocations of the clients the kernel gives it. Default: one per core.
    #[arg(long, env = "DUET_TURN_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub turn_threads: Option<u16>,

    /// The public IP of this machine when it sits behind 1:1 NAT (a cloud VM): relay
    /// addresses are announced with it.
    #[arg(long, env = "DUET_TURN_EXTERNAL_IP")]
    pub turn_external_ip: Option<IpAddr>,

    /// Shared secret of the ephemeral TURN credentials (at least 16 characters). Default
    /// for `duet serve`: random at every start; `duet turn` needs the signaling nodes' one.
    #[arg(long, env = "DUET_TURN_SECRET", hide_env_values = true, conflicts_with = "turn_secret_file")]
    pub turn_secret: Option<String>,

    /// A file holding the shared secret (its first line), readable by duet only.
    #[arg(long, env = "DUET_TURN_SECRET_FILE")]
    pub turn_secret_file: Option<PathBuf>,

    /// A static TURN user, NAME:PASSWORD, for clients outside duet's web page (repeat,
    /// or separate with commas in DUET_TURN_USERS).
    #[arg(long = "turn-user", env = "DUET_TURN_USERS", value_delimiter = ',', hide_env_values = true)]
    pub turn_users: Vec<String>,

    /// The TURN realm.
    #[arg(long, env = "DUET_TURN_REALM", default_value = "duet")]
    pub turn_realm: String,

    /// DANGEROUS: relay to loopback addresses (127.0.0.0/8, ::1). On by itself when TURN
    /// listens on loopback only, where only this machine can use it.
    #[arg(long, env = "DUET_TURN_DANGEROUS_ALLOW_LOOPBACK_PEERS")]
    pub turn_dangerous_allow_loopback_peers: bool,

    /// DANGEROUS: relay to private addresses (10/8, 172.16/12, 192.168/16, fc00::/7, ...).
    /// Lets anyone with credentials reach your LAN; for LAN-only installs.
    #[arg(long, env = "DUET_TURN_DANGEROUS_ALLOW_PRIVATE_PEERS")]
    pub turn_dangerous_allow_private_peers: bool,

    /// DANGEROUS: relay to this range although it is private or special (repeat, or
    /// separate with commas), e.g. one LAN subnet 192.168.1.0/24 rather than every
    /// private range. Never reaches this server's own addresses.
    #[arg(
        long = "turn-dangerous-allow-peer",
        env = "DUET_TURN_DANGEROUS_ALLOW_PEERS",
        value_delimiter = ','
    )]
    pub turn_dangerous_allow_peers: Vec<Cidr>,

    /// Never relay to this range (repeat, or separate with commas), besides the private
    /// and special ranges duet refuses anyway: coturn's denied-peer-ip.
    #[arg(long = "turn-denied-peer", env = "DUET_TURN_DENIED_PEERS", value_delimiter = ',')]
    pub turn_denied_peers: Vec<Cidr>,

    /// Relay allocations one client address may hold at once, whatever credentials it
    /// has (an IPv6 /64 counts as one address). At most a quarter of the relay ports.
    #[arg(long, env = "DUET_TURN_ALLOCATIONS_PER_ADDRESS", default_value_t = 32)]
    pub turn_allocations_per_address: usize,
}

/// Which STUN/TURN server browsers are told about.
#[derive(Debug, Clone)]
pub enum TurnMode {
    /// duet's own.
    Embedded(Box<EmbeddedTurn>),
    /// Someone else's: URLs, and the shared secret for ephemeral credentials.
    External { urls: Vec<String>, secret: Option<String> },
    /// None: direct connections only.
    Off,
}

/// Settings of the embedded TURN server.
#[derive(Debug, Clone)]
pub struct EmbeddedTurn {
    pub listen: SocketAddr,
    /// Whether the operator chose `listen` (`--turn-listen`). A default address that is
    /// taken (another TURN server on 3478) only turns duet's TURN off, with a warning;
    /// a chosen one that is taken stops duet.
    pub listen_chosen: bool,
    pub tls_port: u16,
    /// TURN over TCP on the TURN port and over TLS on `tls_port`; when off, only the web
    /// port carries TURN streams.
    pub stream_listeners: bool,
    pub relay_ports: PortRange,
    pub external_ip: Option<IpAddr>,
    pub realm: String,
    pub secret: Vec<u8>,
    pub static_users: HashMap<String, String>,
    /// Which peers the relay may reach, as the operator chose (the server's own
    /// addresses are added at start).
    pub peer_policy: PeerPolicy,
    /// Allocations one client address may hold at once, and in all.
    pub allocations_per_address: usize,
    pub allocations_total: usize,
    /// TCP and TLS connections one client address may hold, and in all.
    pub streams_per_address: usize,
    pub streams_total: usize,
    /// UDP threads (shards of the server).
    pub threads: usize,
}

/// The policy for something listening on `listen` (TURN, or the echo user on the web
/// address), with the server's own addresses never allowed: every address of
/// `interfaces`, `listen` and `external` (the public address behind NAT). When `base`
/// allows loopback peers, loopback addresses are not counted as the server's own.
pub fn policy_for_listener(
    base: &PeerPolicy,
    listen: IpAddr,
    external: Option<IpAddr>,
    interfaces: &[IpAddr],
) -> PeerPolicy {
    let mut policy = base.clone();
    let mut own: Vec<IpAddr> = interfaces.iter().copied().chain([listen]).chain(external).collect();
    let loopback_is_a_peer = policy.dangerous_allow_loopback_peers;
    own.retain(|ip| !(ip.is_unspecified() || loopback_is_a_peer && ip.is_loopback()));
    own.sort_unstable();
    own.dedup();
    policy.own_addresses = own;
    policy
}

impl TurnArgs {
    /// Which peers something listening on `listen` (the relay, the echo user) may reach.
    pub(super) fn peer_policy(&self, listen: IpAddr) -> PeerPolicy {
        self.server.peer_policy(listen)
    }

    pub(super) fn into_mode(self, http_listen: SocketAddr) -> anyhow::Result<TurnMode> {
        if !self.external_turn_urls.is_empty() {
            for url in &self.external_turn_urls {
                anyhow::ensure!(
                    ["stun:", "turn:", "turns:"].iter().any(|p| url.starts_with(p)),
                    "--external-turn-url {url}: a STUN or TURN URL starts with stun:, turn: or turns:"
                );
            }
            let secret = match (self.external_turn_secret, &self.external_turn_secret_file) {
                (Some(secret), _) => Some(secret),
                (None, Some(path)) => Some(read_secret(path, "--external-turn-secret-file")?),
                (None, None) => None,
            };
            return Ok(TurnMode::External { urls: self.external_turn_urls, secret });
        }
        if self.no_turn {
            return Ok(TurnMode::Off);
        }
        let listen = self.server.turn_listen.unwrap_or(SocketAddr::new(http_listen.ip(), 3478));
        let secret = match self.server.secret()? {
            Some(secret) => secret,
            None => crate::random::bytes::<32>().context("read random bytes from /dev/urandom")?.to_vec(),
        };
        let mut turn = self.server.into_embedded(listen, secret)?;
        turn.stream_listeners = !self.turn_web_port_only;
        Ok(TurnMode::Embedded(Box::new(turn)))
    }
}

impl TurnServerArgs {
    /// Which peers something listening on `listen` (the relay, the echo user) may
    /// reach, as the operator chose; see [`policy_for_listener`] for the rest. Loopback
    /// peers are allowed when `listen` is loopback: only this machine can use such a
    /// server, and it can reach its own loopback services anyway.
    pub(super) fn peer_policy(&self, listen: IpAddr) -> PeerPolicy {
        PeerPolicy {
            dangerous_allow_loopback_peers: self.turn_dangerous_allow_loopback_peers || listen.is_loopback(),
            dangerous_allow_private_peers: self.turn_dangerous_allow_private_peers,
            own_addresses: Vec::new(),
            denied: self.turn_denied_peers.clone(),
            dangerous_allowed: self.turn_dangerous_allow_peers.clone(),
        }
    }

    /// The shared secret, from --turn-secret or --turn-secret-file, if one was given.
    pub(super) fn secret(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let secret = match (&self.turn_secret, &self.turn_secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => read_secret(path, "--turn-secret-file")?,
            (None, None) => return Ok(None),
        };
        anyhow::ensure!(secret.len() >= 16, "the TURN secret must be at least 16 characters");
        Ok(Some(secret.into_bytes()))
    }

    /// The server's settings, listening on `listen` with `secret`.
    pub(super) fn into_embedded(self, listen: SocketAddr, secret: Vec<u8>) -> anyhow::Result<EmbeddedTurn> {
        let peer_policy = self.peer_policy(listen.ip());
        let mut static_users = HashMap::new();
        for entry in self.turn_users {
            let (name, password) = entry
                .split_once(':')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--turn-user {entry:?}: expected NAME:PASSWORD"))?;
            static_users.insert(name.to_owned(), password.to_owned());
        }
        anyhow::ensure!(
            self.turn_allocations_per_address >= 1,
            "--turn-allocations-per-address must be at least 1"
        );
        let ports = usize::from(*self.turn_relay_ports.0.end() - *self.turn_relay_ports.0.start()) + 1;
        let allocations_per_address = self.turn_allocations_per_address.min((ports / 4).max(1));
        if allocations_per_address < self.turn_allocations_per_address {
            tracing::info!(
                "TURN allocations per address: {allocations_per_address} (a quarter of the {ports} relay ports)"
            );
        }
        Ok(EmbeddedTurn {
            listen,
            listen_chosen: self.turn_listen.is_some(),
            tls_port: self.turn_tls_port,
            stream_listeners: true,
            relay_ports: self.turn_relay_ports,
            external_ip: self.turn_external_ip,
            realm: self.turn_realm,
            secret,
            static_users,
            peer_policy,
            allocations_per_address,
            // Sized from the open-file limit at start (ServeConfig::size_for_open_files).
            allocations_total: 10_000,
            streams_per_address: 16,
            streams_total: 10_000,
            threads: self
                .turn_threads
                .map(usize::from)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        })
    }
}

/// A secret kept in a file: its first line, which must not be empty.
fn read_secret(path: &Path, option: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path).with_context(|| format!("{option} {}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_owned();
    anyhow::ensure!(!secret.is_empty(), "{option} {}: the file is empty", path.display());
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0);
    if others_may_read(mode) {
        tracing::warn!(
            "{option} {}: other users of this machine can read the secret; chmod 600 it",
            path.display()
        );
    }
    Ok(secret)
}

/// Whether a file of this mode is readable by its group or by everyone.
fn others_may_read(mode: u32) -> bool {
    mode & 0o044 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_refuse_nonsense() {
        assert_eq!("49152-65535".parse(), Ok(PortRange(49152..=65535)));
        assert_eq!("5000 - 5000".parse(), Ok(PortRange(5000..=5000)));
        for bad in ["", "5000", "0-10", "10-5", "a-b", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_file_others_can_read_is_noticed() {
        assert!(others_may_read(0o100644) && others_may_read(0o100640));
        assert!(!others_may_read(0o100600) && !others_may_read(0o100400));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    #[test]
    fn a_server_on_every_interface_never_relays_to_any_of_its_own_addresses() {
        let base = PeerPolicy { dangerous_allow_private_peers: true, ..Default::default() };
        let interfaces = [ip("127.0.0.1"), ip("192.168.1.5"), ip("10.8.0.1"), ip("::1"), ip("fe80::1")];
        let policy = policy_for_listener(&base, ip("0.0.0.0"), Some(ip("203.0.113.7")), &interfaces);
        for own in ["192.168.1.5", "10.8.0.1", "::ffff:192.168.1.5", "203.0.113.7", "127.0.0.1", "fe80::1"] {
            assert!(!policy.allows(ip(own)), "{own} is the server itself");
        }
        assert!(policy.allows(ip("192.168.1.20")), "the rest of the LAN, as the operator chose");
    }

    #[test]
    fn a_server_on_loopback_reaches_loopback_peers_but_not_its_lan_address() {
        let interfaces = [ip("127.0.0.1"), ip("192.168.1.5")];
        let base = PeerPolicy { dangerous_allow_loopback_peers: true, ..Default::default() };
        let policy = policy_for_listener(&base, ip("127.0.0.1"), None, &interfaces);
        assert!(policy.allows(ip("127.0.0.1")));
        assert!(!policy.allows(ip("192.168.1.5")));
    }
}
