//! Which peer addresses a relay may talk to.
//!
//! A TURN server relays to whatever address a client names, so an open one is a way into
//! the host's own network (coturn CVE-2020-26262, CVE-2026-27624). duet refuses, by
//! default, every address that is not a public unicast address, after reducing the
//! IPv6 forms that embed an IPv4 address to that address, so `::ffff:127.0.0.1` is
//! loopback like `127.0.0.1`.
//!
//! ```text
//!  peer IP ──canonical()──► IPv4 (mapped, compatible) or IPv6
//!          ──► the server's own addresses, the unspecified address: never
//!          ──► denied ranges (operator's): never
//!          ──► allowed ranges (operator's, dangerous): yes
//!          ──► loopback?  (dangerous_allow_loopback_peers)
//!              private?   (dangerous_allow_private_peers)
//!              other special ranges: never; public unicast: yes
//! ```
//!
//! The same policy guards every place duet sends packets where a client says: the TURN
//! relay, and the echo user's ICE checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The peer-address rules of one server.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// Lets peers be 127.0.0.0/8 and ::1: for tests on one machine only.
    pub dangerous_allow_loopback_peers: bool,
    /// Lets peers be RFC 1918, CGNAT, link-local and ULA addresses: for an install that
    /// only ever relays inside one LAN.
    pub dangerous_allow_private_peers: bool,
    /// Addresses of this server itself (every interface's, and the public one behind
    /// NAT); never relayed to, whatever else allows them.
    pub own_addresses: Vec<IpAddr>,
    /// Ranges never relayed to, besides the built-in ones (coturn's `denied-peer-ip`).
    pub denied: Vec<Cidr>,
    /// Ranges relayed to although they are private or special (coturn's
    /// `allowed-peer-ip`): one LAN subnet rather than every private range.
    pub dangerous_allowed: Vec<Cidr>,
}

/// An address range: an address and a prefix length (`10.1.0.0/16`, `fd00::/8`). A bare
/// address is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` (in any spelling, `::ffff:a.b.c.d` included) is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (canonical(ip), self.network) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => masked(&ip.octets(), self.prefix) == net.octets(),
            (IpAddr::V6(ip), IpAddr::V6(net)) => masked(&ip.octets(), self.prefix) == net.octets(),
            _ => false,
        }
    }
}

/// `octets` with all but the first `prefix` bits cleared.
fn masked<const N: usize>(octets: &[u8; N], prefix: u8) -> [u8; N] {
    let mut out = *octets;
    for (i, byte) in out.iter_mut().enumerate() {
        let keep = usize::from(prefix).saturating_sub(i * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    out
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let ip: IpAddr =
            addr.parse().map_err(|_| format!("\"{text}\" is not an address range like 10.1.0.0/16"))?;
        let ip = canonical(ip);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{text}\": the prefix must be 0 to {max}"))?
        };
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::from(masked(&v4.octets(), prefix)),
            IpAddr::V6(v6) => IpAddr::from(masked(&v6.octets(), prefix)),
        };
        Ok(Self { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What kind of address a peer is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Loopback,
    Private,
    /// Unspecified, multicast, reserved, documentation, translation prefixes...
    Special,
}

impl PeerPolicy {
    /// May the relay exchange packets with `ip`?
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        // Sending to 0.0.0.0 or :: reaches this machine itself.
        if ip.is_unspecified() || self.own_addresses.iter().any(|own| canonical(*own) == ip) {
            return false;
        }
        if self.denied.iter().any(|range| range.contains(ip)) {
            return false;
        }
        if self.dangerous_allowed.iter().any(|range| range.contains(ip)) {
            return true;
        }
        match classify(ip) {
            Kind::Public => true,
            Kind::Loopback => self.dangerous_allow_loopback_peers,
            Kind::Private => self.dangerous_allow_private_peers,
            Kind::Special => false,
        }
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible
/// (`::a.b.c.d`) IPv6 address; anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // Deprecated IPv4-compatible form; `::` and `::1` stay IPv6.
            if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// What counts as one client for per-address limits: an IPv4 address (IPv4-mapped forms
/// reduced to it), or an IPv6 /64, which one host or home usually holds whole.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

fn classify(ip: IpAddr) -> Kind {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Kind {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (127, _, _) => Kind::Loopback,
        (10, _, _) => Kind::Private,
        (172, 16..=31, _) => Kind::Private,
        (192, 168, _) => Kind::Private,
        (100, 64..=127, _) => Kind::Private, // CGNAT, RFC 6598
        (169, 254, _) => Kind::Private,      // link-local
        (0, _, _) => Kind::Special,
        (192, 0, 0) => Kind::Special, // IETF protocol assignments
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Kind::Special, // documentation
        (198, 18..=19, _) => Kind::Special, // benchmarking
        (224..=255, _, _) => Kind::Special, // multicast, reserved, broadcast
        _ => Kind::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Kind {
    let s = ip.segments();
    if ip.is_loopback() {
        Kind::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() {
        Kind::Special
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfe80 {
        Kind::Private // unique local fc00::/7, link-local fe80::/10
    } else if s[0] == 0x0064 && s[1] == 0xff9b // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only 100::/64
        || s[0] & 0xe000 != 0x2000
    // only 2000::/3 is global unicast
    {
        Kind::Special
    } else {
        Kind::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    const DENIED_BY_DEFAULT: &[&str] = &[
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "100.64.0.1",
        "169.254.1.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "192.0.0.8",
        "224.0.0.1",
        "239.1.1.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "ff02::1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "2001::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "::ffff:0.0.0.0",
        "::ffff:192.168.0.1",
        "2001:db8::1",
    ];

    #[test]
    fn special_and_private_addresses_are_denied_by_default() {
        let policy = PeerPolicy::default();
        for addr in DENIED_BY_DEFAULT {
            assert!(!policy.allows(ip(addr)), "{addr} must be denied");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let policy = PeerPolicy::default();
        for addr in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2a00:1450:4001::1", "::ffff:8.8.8.8"]
        {
            assert!(policy.allows(ip(addr)), "{addr} must be allowed");
        }
    }

    #[test]
    fn ipv4_mapped_loopback_is_loopback() {
        assert_eq!(canonical(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
        let tests_only = PeerPolicy { dangerous_allow_loopback_peers: true, ..Default::default() };
        assert!(tests_only.allows(ip("::ffff:127.0.0.1")));
        assert!(tests_only.allows(ip("::1")));
        assert!(!tests_only.allows(ip("10.0.0.1")), "loopback only, not private");
        assert!(!tests_only.allows(ip("0.0.0.0")), "never the unspecified address");
    }

    #[test]
    fn the_lan_option_allows_private_but_not_loopback() {
        let lan = PeerPolicy { dangerous_allow_private_peers: true, ..Default::default() };
        assert!(lan.allows(ip("192.168.1.20")));
        assert!(lan.allows(ip("::ffff:10.0.0.1")));
        assert!(!lan.allows(ip("127.0.0.1")));
    }

    #[test]
    fn address_ranges_parse_and_match_every_spelling() {
        let range: Cidr = "10.1.2.3/16".parse().expect("valid");
        assert_eq!(range.to_string(), "10.1.0.0/16");
        assert!(range.contains(ip("10.1.255.9")) && range.contains(ip("::ffff:10.1.0.1")));
        assert!(!range.contains(ip("10.2.0.1")) && !range.contains(ip("fd00::1")));
        let one: Cidr = "192.0.2.7".parse().expect("a bare address");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/33".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:7fff::1")) && !v6.contains(ip("2001:db8:8000::1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn denied_ranges_win_and_allowed_ranges_never_reach_the_server_itself() {
        let policy = PeerPolicy {
            own_addresses: vec![ip("192.168.1.5")],
            denied: vec!["8.8.8.0/24".parse().expect("valid")],
            dangerous_allowed: vec![
                "192.168.1.0/24".parse().expect("valid"),
                "8.8.8.8".parse().expect("valid"),
            ],
            ..Default::default()
        };
        assert!(!policy.allows(ip("8.8.8.8")), "denied beats allowed");
        assert!(policy.allows(ip("8.8.4.4")));
        assert!(policy.allows(ip("192.168.1.20")), "an allowed LAN subnet");
        assert!(!policy.allows(ip("192.168.2.20")), "only that subnet");
        assert!(!policy.allows(ip("192.168.1.5")), "never the server's own address");
        let everything =
            PeerPolicy { dangerous_allowed: vec!["0.0.0.0/0".parse().expect("valid")], ..Default::default() };
        assert!(!everything.allows(ip("0.0.0.0")), "the unspecified address is this machine");
    }

    #[test]
    fn the_servers_own_addresses_are_never_peers() {
        let policy = PeerPolicy { own_addresses: vec![ip("203.0.114.7")], ..Default::default() };
        assert!(!policy.allows(ip("203.0.114.7")));
        assert!(!policy.allows(ip("::ffff:203.0.114.7")));
        assert!(policy.allows(ip("203.0.114.8")));
    }
}
