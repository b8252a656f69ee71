//! The names duet answers to: every HTTP request's `Host` must be one of them, so a page
//! on a foreign name that resolves to duet's address (DNS rebinding) is refused before it
//! reads anything, and the Origin check (which takes the page's own origin from `Host`)
//! stands on a name duet knows.
//!
//! ```text
//!  Host: 192.168.1.5:8080 ─► an IP address: allowed (a rebinding page has a name, not one)
//!  Host: localhost, *.localhost ─► allowed
//!  Host: call.example.org ─► one of the names duet was given (TLS names, ACME domains,
//!                            the public URL, allowed origins, --allowed-host)? allowed
//!  Host: evil.test:8080 ─► refused (HTTP 421)
//! ```
//!
//! Ports are not compared: what matters is whose name it is, and a proxy in front may
//! use another port. A name given as `*.example.org` allows every name under it.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The host names a server answers to, besides IP addresses and `localhost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    names: BTreeSet<String>,
}

/// A host name as compared: lower case, without a trailing dot.
fn normal(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Hosts {
    /// These names (and `*.` wildcards), with anything that is no name left out.
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let names = names
            .into_iter()
            .map(|n| normal(n.as_ref()))
            .filter(|n| !n.is_empty() && n.parse::<IpAddr>().is_err())
            .collect();
        Self { names }
    }

    /// The names, for the log and the refusal's words.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Whether a request with this `Host` header is for this server. A request without
    /// one (HTTP/1.0) comes from no browser and is let through.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let Some(name) = host_name(host) else { return false };
        if name.parse::<IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        self.names.contains(&name)
            || self.names.iter().filter_map(|n| n.strip_prefix("*.")).any(|parent| {
                name.strip_suffix(parent).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
            })
    }
}

/// The name in a `Host` header (without its port), or `None` when it is malformed.
pub fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (address, port) = rest.split_once(']')?;
        let port_ok =
            port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        return (port_ok && address.parse::<std::net::Ipv6Addr>().is_ok())
            .then(|| address.to_ascii_lowercase());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let name = normal(name);
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_are_always_this_server() {
        let hosts = Hosts::default();
        for host in [
            "127.0.0.1:8080",
            "192.168.1.5",
            "[::1]:443",
            "[fe80::1]",
            "localhost:8080",
            "app.localhost",
            "LOCALHOST.",
        ] {
            assert!(hosts.allows(Some(host)), "{host}");
        }
        assert!(hosts.allows(None), "no Host: no browser");
    }

    #[test]
    fn a_foreign_name_is_refused_whatever_its_port() {
        let hosts = Hosts::new(["call.example.org", "192.0.2.1", " "]);
        assert_eq!(hosts.names().collect::<Vec<_>>(), ["call.example.org"]);
        assert!(hosts.allows(Some("call.example.org:8443")));
        assert!(hosts.allows(Some("Call.Example.Org.")));
        for host in [
            "evil.test:8080",
            "example.org",
            "call.example.org.evil.test",
            "evil.test:80:80",
            "[::1",
            "a b",
            "",
            "localhost.evil.test",
        ] {
            assert!(!hosts.allows(Some(host)), "{host}");
        }
    }

    #[test]
    fn a_wildcard_allows_the_names_under_it_only() {
        let hosts = Hosts::new(["*.example.org"]);
        assert!(hosts.allows(Some("call.example.org")));
        assert!(hosts.allows(Some("a.b.example.org:443")));
        assert!(!hosts.allows(Some("example.org")));
        assert!(!hosts.allows(Some("badexample.org")));
    }
}
