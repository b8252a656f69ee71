//! The ICE servers each signed-in browser is given: duet's own STUN and TURN (or an
//! external server), with ephemeral TURN credentials bound to that connection.
//!
//! ```text
//!  sign-in ──► {type:"ice-servers", ttl, iceServers:[{urls:[stun:H:3478]},
//!                {urls:[turn:H:3478?transport=udp, ...tcp, turns:H:5349?transport=tcp],
//!                 username:"<expiry>:<user>", credential: base64(HMAC-SHA1(secret, username))}]}
//!  every ttl/2 ──► the same with fresh credentials
//! ```
//!
//! `H` is the host the browser loaded the page from (it reached duet there, so it can
//! reach TURN there too), unless `--turn-host` says otherwise.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use duet_signal::{IceServer, ServerMessage};

use crate::config::{IceSettings, TurnMode};
use crate::turn::issued::Run;

/// TURN on the web port (see `serve::demux`): the port the browser loaded the page from.
#[derive(Debug, Clone, Copy)]
struct WebPort {
    /// The page is HTTPS: TURN there is `turns:` (plain TURN would stand out to a
    /// firewall that inspects port 443).
    tls: bool,
}

/// Builds `ice-servers` messages.
#[derive(Debug, Clone)]
pub struct IceServers {
    kind: Kind,
    host: Option<String>,
    ttl: Duration,
    /// Names each session's TURN user.
    run: Run,
}

#[derive(Debug, Clone)]
enum Kind {
    Embedded {
        port: u16,
        tcp: bool,
        tls_port: Option<u16>,
        secret: Vec<u8>,
        web: Option<WebPort>,
    },
    /// Someone else's servers: the URLs grouped by host, one group per TURN node.
    External {
        nodes: Vec<Vec<String>>,
        secret: Option<String>,
    },
    Off,
}

impl IceServers {
    /// For the embedded server listening on `port` (UDP, and TCP when `tcp`) and `tls_port`.
    pub fn embedded(
        settings: &IceSettings,
        port: u16,
        tcp: bool,
        tls_port: Option<u16>,
        secret: Vec<u8>,
        run: Run,
    ) -> Self {
        Self {
            kind: Kind::Embedded { port, tcp, tls_port, secret, web: None },
            host: settings.host.clone(),
            ttl: settings.ttl,
            run,
        }
    }

    /// For an external server or none, as configured.
    pub fn from_mode(settings: &IceSettings, mode: &TurnMode) -> Self {
        let kind = match mode {
            TurnMode::External { urls, secret } => {
                Kind::External { nodes: nodes(urls), secret: secret.clone() }
            }
            TurnMode::Embedded(_) | TurnMode::Off => Kind::Off,
        };
        Self { kind, host: settings.host.clone(), ttl: settings.ttl, run: Run::new() }
    }

    /// The embedded server is also reachable on the web port (over TLS when `tls`).
    pub fn with_web_port(mut self, tls: bool) -> Self {
        if let Kind::Embedded { web, .. } = &mut self.kind {
            *web = Some(WebPort { tls });
        }
        self
    }

    pub fn none() -> Self {
        Self { kind: Kind::Off, host: None, ttl: Duration::from_secs(3600), run: Run::new() }
    }

    /// The TURN user of hub session `session` (unique to this run of this server).
    pub fn session_user(&self, session: u64) -> String {
        self.run.session_user(session)
    }

    /// How often a connection's credentials are renewed, if it has any.
    pub fn refresh_every(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Embedded { .. } | Kind::External { secret: Some(_), .. } => Some(self.ttl / 2),
            _ => None,
        }
    }

    /// The message for one connection, or `None` when there are no servers to tell of
    /// (clients written for MDN's sample then see nothing new). `page_host` is the Host
    /// header the browser sent.
    pub fn message(&self, page_host: Option<&str>, user: &str) -> Option<String> {
        let servers = self.servers(page_host, user);
        if servers.is_empty() {
            return None;
        }
        Some(ServerMessage::IceServers { ice_servers: servers, ttl: self.ttl.as_secs() }.to_json())
    }

    fn servers(&self, page_host: Option<&str>, user: &str) -> Vec<IceServer> {
        let credentials = |secret: &[u8]| {
            let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let username = duet_turn::auth::ephemeral_username(unix + self.ttl.as_secs(), user);
            let credential = duet_turn::auth::ephemeral_password(secret, &username);
            (Some(username), Some(credential))
        };
        match &self.kind {
            Kind::Off => vec![],
            Kind::Embedded { port, tcp, tls_port, secret, web } => {
                let host = self.host.as_deref().map(str::to_owned).or_else(|| page_host.map(host_only));
                let Some(host) = host else { return vec![] };
                let mut turn = vec![format!("turn:{host}:{port}?transport=udp")];
                if *tcp {
                    turn.push(format!("turn:{host}:{port}?transport=tcp"));
                }
                if let Some(tls_port) = tls_port {
                    turn.push(format!("turns:{host}:{tls_port}?transport=tcp"));
                }
                if let Some(web) = web {
                    // Where the browser reached the page, so a firewall that let that
                    // through lets this through too.
                    let default = if web.tls { 443 } else { 80 };
                    let web_port = page_host.and_then(port_of).unwrap_or(default);
                    let scheme = if web.tls { "turns" } else { "turn" };
                    turn.push(format!("{scheme}:{host}:{web_port}?transport=tcp"));
                }
                let (username, credential) = credentials(secret);
                let stun = vec![format!("stun:{host}:{port}")];
                vec![
                    IceServer { urls: stun, username: None, credential: None },
                    IceServer { urls: turn, username, credential },
                ]
            }
            Kind::External { nodes, secret } => {
                let urls = node_for(nodes, user).to_vec();
                match secret {
                    Some(secret) => {
                        let (username, credential) = credentials(secret.as_bytes());
                        vec![IceServer { urls, username, credential }]
                    }
                    None => vec![IceServer { urls, username: None, credential: None }],
                }
            }
        }
    }
}

/// External URLs grouped by host, in the order given: the URLs of one TURN node (UDP,
/// TCP, TLS) stay together.
fn nodes(urls: &[String]) -> Vec<Vec<String>> {
    let mut nodes: Vec<(String, Vec<String>)> = Vec::new();
    for url in urls {
        let host = url_host(url);
        match nodes.iter_mut().find(|(h, _)| *h == host) {
            Some((_, group)) => group.push(url.clone()),
            None => nodes.push((host, vec![url.clone()])),
        }
    }
    nodes.into_iter().map(|(_, group)| group).collect()
}

/// The node a session's user is sent to: always the same one for that user (renewed
/// credentials keep working where the allocation is), and users spread evenly.
fn node_for<'a>(nodes: &'a [Vec<String>], user: &str) -> &'a [String] {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    user.hash(&mut hasher);
    nodes.get((hasher.finish() % nodes.len().max(1) as u64) as usize).map_or(&[], Vec::as_slice)
}

/// `turn:host:3478?transport=udp` → `host`; `turns:[2001:db8::1]:5349` → `[2001:db8::1]`.
fn url_host(url: &str) -> String {
    let rest = url.split_once(':').map_or(url, |(_, rest)| rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    host_only(rest)
}

/// `example.com:8443` → 8443, `[::1]:8080` → 8080, `example.com` → none.
fn port_of(host_header: &str) -> Option<u16> {
    let after_host = match host_header.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.1,
        None => host_header,
    };
    after_host.rsplit_once(':')?.1.parse().ok()
}

/// `example.com:8443` → `example.com`, `[::1]:8080` → `[::1]`.
fn host_only(host_header: &str) -> String {
    if let Some(end) = host_header.strip_prefix('[').and_then(|rest| rest.find(']')) {
        return host_header[..end + 2].to_owned();
    }
    host_header.split(':').next().unwrap_or(host_header).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn settings() -> IceSettings {
        IceSettings { host: None, ttl: Duration::from_secs(600) }
    }

    #[test]
    fn embedded_servers_use_the_pages_host_and_fresh_credentials() {
        let ice = IceServers::embedded(
            &settings(),
            3478,
            true,
            Some(5349),
            b"0123456789abcdef".to_vec(),
            Run::new(),
        );
        let msg: Value =
            serde_json::from_str(&ice.message(Some("192.168.1.5:8443"), "conn7").expect("servers"))
                .expect("JSON");
        assert_eq!(msg["type"], "ice-servers");
        assert_eq!(msg["iceServers"][0]["urls"][0], "stun:192.168.1.5:3478");
        let turn = &msg["iceServers"][1];
        assert_eq!(turn["urls"][0], "turn:192.168.1.5:3478?transport=udp");
        assert_eq!(turn["urls"][2], "turns:192.168.1.5:5349?transport=tcp");
        let username = turn["username"].as_str().expect("a username");
        assert!(username.ends_with(":conn7"));
        assert_eq!(turn["credential"], duet_turn::auth::ephemeral_password(b"0123456789abcdef", username));
        assert_eq!(ice.refresh_every(), Some(Duration::from_secs(300)));
    }

    #[test]
    fn turn_on_the_web_port_is_offered_where_the_page_was_loaded() {
        let ice = IceServers::embedded(&settings(), 3478, true, Some(5349), b"k".to_vec(), Run::new())
            .with_web_port(true);
        let msg: Value = serde_json::from_str(&ice.message(Some("call.example.org"), "u").expect("servers"))
            .expect("JSON");
        let urls = msg["iceServers"][1]["urls"].as_array().expect("urls");
        assert_eq!(urls.last(), Some(&json!("turns:call.example.org:443?transport=tcp")));
        let msg: Value =
            serde_json::from_str(&ice.message(Some("[::1]:8443"), "u").expect("servers")).expect("JSON");
        assert_eq!(
            msg["iceServers"][1]["urls"].as_array().and_then(|u| u.last()),
            Some(&json!("turns:[::1]:8443?transport=tcp"))
        );
        let plain = IceServers::embedded(&settings(), 3478, true, None, b"k".to_vec(), Run::new())
            .with_web_port(false);
        let msg: Value = serde_json::from_str(&plain.message(Some("127.0.0.1:8080"), "u").expect("servers"))
            .expect("JSON");
        assert_eq!(
            msg["iceServers"][1]["urls"].as_array().and_then(|u| u.last()),
            Some(&json!("turn:127.0.0.1:8080?transport=tcp"))
        );
    }

    #[test]
    fn without_a_turn_server_no_message_is_sent() {
        assert_eq!(IceServers::none().message(Some("x"), "u"), None);
        assert_eq!(IceServers::none().refresh_every(), None);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(host_only("[::1]:8080"), "[::1]");
        assert_eq!(host_only("localhost:8080"), "localhost");
        assert_eq!(host_only("example.com"), "example.com");
    }

    #[test]
    fn several_turn_nodes_share_the_sessions_each_keeping_its_node() {
        let urls: Vec<String> = [
            "turn:turn1.example.org:3478?transport=udp",
            "turn:turn2.example.org:3478?transport=udp",
            "turns:turn1.example.org:5349?transport=tcp",
            "turns:[2001:db8::2]:5349?transport=tcp",
        ]
        .map(String::from)
        .into();
        let mode = TurnMode::External { urls, secret: Some("a secret shared with the nodes".into()) };
        let ice = IceServers::from_mode(&settings(), &mode);
        let node_of = |user: &str| {
            let msg: Value = serde_json::from_str(&ice.message(None, user).expect("servers")).expect("JSON");
            msg["iceServers"][0]["urls"].as_array().expect("urls").clone()
        };
        let mut seen = std::collections::HashMap::new();
        for i in 0..300 {
            let urls = node_of(&format!("session-{i}"));
            assert_eq!(urls, node_of(&format!("session-{i}")), "renewed credentials name the same node");
            *seen.entry(urls.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(" ")).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3, "three nodes: {seen:?}");
        assert!(seen.values().all(|n| *n > 60), "sessions spread over them: {seen:?}");
        assert!(
            seen.contains_key(
                "\"turn:turn1.example.org:3478?transport=udp\" \"turns:turn1.example.org:5349?transport=tcp\""
            ),
            "one node's URLs stay together: {seen:?}"
        );
    }

    #[test]
    fn an_external_server_without_secret_gets_no_credentials() {
        let mode = TurnMode::External { urls: vec!["stun:stun.example.com".into()], secret: None };
        let ice = IceServers::from_mode(&settings(), &mode);
        let msg: Value = serde_json::from_str(&ice.message(Some("x"), "u").expect("servers")).expect("JSON");
        assert_eq!(msg["iceServers"], json!([{"urls": ["stun:stun.example.com"]}]));
        assert_eq!(ice.refresh_every(), None);
    }
}
