//! The Origin check on WebSocket upgrades and sign-in requests: a browser says which
//! page opened the connection, and only duet's own pages (or ones the operator lists)
//! may use a visitor's session cookie. Without it any site could open a WebSocket to
//! duet with the visitor's cookie attached (cross-site WebSocket hijacking).
//!
//! ```text
//!  Origin absent ──► Absent (not a browser: judged by its session alone)
//!  Origin == scheme://Host of this request ──► Own
//!  Origin in --allowed-origin ──► Listed
//!  anything else, "null" included ──► Foreign (HTTP 403)
//! ```
//!
//! Origins compare as RFC 6454 serializations: scheme and host lower-cased, the
//! scheme's default port left out.

/// A serialized origin, `scheme://host[:port]`, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// Why an `--allowed-origin` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin: write scheme://host or scheme://host:port, e.g. https://call.example.org")]
pub struct OriginError(String);

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Origin {
    /// Parses `scheme://host[:port]` (nothing after it; `http` and `https` only).
    pub fn parse(raw: &str) -> Result<Self, OriginError> {
        let bad = || OriginError(raw.to_owned());
        let (scheme, rest) = raw.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        Self::from_parts(&scheme, rest).ok_or_else(bad)
    }

    /// The origin of a request to this server: its scheme and `Host` header.
    pub fn of_request(scheme: &str, host: &str) -> Option<Self> {
        Self::from_parts(&scheme.to_ascii_lowercase(), host)
    }

    fn from_parts(scheme: &str, authority: &str) -> Option<Self> {
        if authority.is_empty()
            || !authority.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        {
            return None;
        }
        let authority = authority.to_ascii_lowercase();
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority.as_str(), None),
        };
        if host.is_empty() {
            return None;
        }
        let default = if scheme == "https" { "443" } else { "80" };
        Some(match port {
            Some(port) if port.parse::<u16>().is_err() => return None,
            Some(port) if port != default => Self(format!("{scheme}://{host}:{port}")),
            _ => Self(format!("{scheme}://{host}")),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host name (or address) of the origin, without scheme and port.
    pub fn host(&self) -> Option<String> {
        crate::host::host_name(self.0.split_once("://").map_or("", |(_, rest)| rest))
    }
}

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header: not a browser (`duet call`, MDN's Node clients).
    Absent,
    /// The page's own origin.
    Own,
    /// One the operator allowed.
    Listed,
    /// Any other page: refuse.
    Foreign,
}

impl OriginCheck {
    pub fn allowed(self) -> bool {
        self != Self::Foreign
    }
}

/// Judges a request's `Origin` header against its own origin (`scheme` and `Host`) and
/// the operator's list.
pub fn check(origin: Option<&str>, scheme: &str, host: Option<&str>, allowed: &[Origin]) -> OriginCheck {
    let Some(origin) = origin else { return OriginCheck::Absent };
    let Ok(origin) = Origin::parse(origin.trim()) else { return OriginCheck::Foreign };
    if host.and_then(|h| Origin::of_request(scheme, h)).is_some_and(|own| own == origin) {
        return OriginCheck::Own;
    }
    if allowed.contains(&origin) { OriginCheck::Listed } else { OriginCheck::Foreign }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_own_origin_passes_and_foreign_ones_do_not() {
        let own = |origin| check(Some(origin), "https", Some("call.example.org"), &[]);
        assert_eq!(own("https://call.example.org"), OriginCheck::Own);
        assert_eq!(own("https://CALL.example.org:443"), OriginCheck::Own, "case and default port");
        for foreign in [
            "https://evil.example",
            "https://call.example.org.evil.example",
            "https://host.evil.example",
            "https://call.example.org:8443",
            "http://call.example.org",
            "null",
            "",
            "https://call.example.org/path",
        ] {
            assert_eq!(own(foreign), OriginCheck::Foreign, "{foreign:?}");
        }
    }

    #[test]
    fn the_same_host_on_another_port_is_another_origin() {
        assert_eq!(
            check(Some("http://127.0.0.1:8080"), "http", Some("127.0.0.1:8080"), &[]),
            OriginCheck::Own
        );
        assert_eq!(
            check(Some("http://127.0.0.1:9999"), "http", Some("127.0.0.1:8080"), &[]),
            OriginCheck::Foreign
        );
        assert_eq!(check(Some("http://[::1]:8080"), "http", Some("[::1]:8080"), &[]), OriginCheck::Own);
    }

    #[test]
    fn listed_origins_pass_and_no_origin_is_left_to_the_session() {
        let listed = [Origin::parse("https://app.example.org").expect("valid")];
        assert_eq!(
            check(Some("https://app.example.org"), "https", Some("duet.example.org"), &listed),
            OriginCheck::Listed
        );
        assert_eq!(check(None, "https", Some("duet.example.org"), &listed), OriginCheck::Absent);
        assert!(OriginCheck::Absent.allowed());
    }

    #[test]
    fn allowed_origins_are_checked_when_configured() {
        assert!(Origin::parse("https://ok.example:8443").is_ok());
        for bad in ["ok.example", "ftp://ok.example", "https://", "https://a b", "https://ok.example:99999"] {
            assert!(Origin::parse(bad).is_err(), "{bad:?}");
        }
    }
}
