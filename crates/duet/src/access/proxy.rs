//! Whose address a request comes from, behind a reverse proxy the operator trusts
//! (`--trusted-proxy`): limits per address and failed sign-in logs must name the
//! client, not the proxy.
//!
//! ```text
//!  peer not a trusted proxy ──► peer (X-Forwarded-For is anyone's to write)
//!  peer trusted ──► X-Forwarded-For, right to left, skipping trusted proxies:
//!                   the first address that is not one is the client
//! ```
//!
//! Only the part of the header the trusted proxies appended is believed: a client may
//! send its own `X-Forwarded-For: 1.2.3.4`, which sits to the left of what the proxy
//! adds and is never reached while an untrusted address comes first.

use std::net::IpAddr;

use duet_turn::policy::Cidr;

/// The client's address and whether it came over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// HTTPS to duet, or to a trusted proxy that said so in `X-Forwarded-Proto`.
    pub https: bool,
}

/// Who sent a request that arrived from `peer`, with these forwarding headers.
pub fn client(
    peer: IpAddr,
    tls: bool,
    forwarded_for: Option<&str>,
    forwarded_proto: Option<&str>,
    trusted: &[Cidr],
) -> Client {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|cidr| cidr.contains(ip));
    if !is_trusted(peer) {
        return Client { ip: peer, https: tls };
    }
    let mut ip = peer;
    for hop in forwarded_for.unwrap_or("").rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
        let Ok(hop) = hop.parse::<IpAddr>() else { break };
        ip = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    let https = match forwarded_proto.map(|p| p.split(',').next().unwrap_or("").trim().to_ascii_lowercase()) {
        Some(proto) => proto == "https",
        None => tls,
    };
    Client { ip, https }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    fn trusted() -> Vec<Cidr> {
        vec!["10.0.0.0/8".parse().expect("literal")]
    }

    #[test]
    fn without_a_trusted_proxy_the_header_is_ignored() {
        let c = client(ip("198.51.100.7"), false, Some("192.0.2.1"), Some("https"), &trusted());
        assert_eq!(c, Client { ip: ip("198.51.100.7"), https: false });
    }

    #[test]
    fn behind_a_trusted_proxy_the_client_is_the_first_untrusted_hop_from_the_right() {
        let c = client(
            ip("10.0.0.2"),
            false,
            Some("203.0.113.9, 192.0.2.1, 10.0.0.5"),
            Some("https"),
            &trusted(),
        );
        assert_eq!(c, Client { ip: ip("192.0.2.1"), https: true }, "a spoofed leftmost entry is not reached");
    }

    #[test]
    fn a_garbled_or_missing_header_leaves_the_last_good_hop() {
        assert_eq!(client(ip("10.0.0.2"), true, Some("junk"), None, &trusted()).ip, ip("10.0.0.2"));
        assert_eq!(
            client(ip("10.0.0.2"), true, None, None, &trusted()),
            Client { ip: ip("10.0.0.2"), https: true }
        );
        assert_eq!(
            client(ip("10.0.0.2"), false, Some("junk, 192.0.2.4"), None, &trusted()).ip,
            ip("192.0.2.4")
        );
    }
}
