//! The safety code: a short number both ends of a call see, made from the two DTLS
//! certificate fingerprints, so that two people can check nobody sits between them.
//!
//! ```text
//!  a, b = "sha-256 AB:CD:…" (ours and theirs, as in SDP), sorted
//!  code = (first 64 bits, big-endian, of SHA-256("duet safety code v1\n" a "\n" b)) mod 10^12,
//!         12 digits in groups of four
//! ```
//!
//! Whoever replaced a fingerprint to read the media (the signaling server included)
//! holds a different certificate on each side, so the two codes differ. The web client
//! (`web/js/safety.js`) computes the same; `docs/protocol.md` is the reference.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// A hash function a certificate's fingerprint is listed under (RFC 8122 §5). Browsers
/// list one (SHA-256); other WebRTC stacks often list several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintHash {
    Sha256,
    Sha384,
    Sha512,
}

impl FingerprintHash {
    /// The name SDP uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// `der`'s fingerprint as an SDP line's value: "sha-384 AB:CD:…".
    pub fn fingerprint(self, der: &[u8]) -> String {
        let digest = match self {
            Self::Sha256 => Sha256::digest(der).to_vec(),
            Self::Sha384 => Sha384::digest(der).to_vec(),
            Self::Sha512 => Sha512::digest(der).to_vec(),
        };
        let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        format!("{} {}", self.name(), hex.join(":"))
    }
}

impl std::str::FromStr for FingerprintHash {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sha-256" => Ok(Self::Sha256),
            "sha-384" => Ok(Self::Sha384),
            "sha-512" => Ok(Self::Sha512),
            other => Err(format!("{other:?} is not sha-256, sha-384 or sha-512")),
        }
    }
}

/// The fingerprint the safety code is made from in an SDP text, as docs/protocol.md says:
/// the first `a=fingerprint:` line, a SHA-256 one preferred, as "sha-256 AB:CD:…"
/// (algorithm lower case, hex upper case).
pub fn fingerprint_in(sdp: &str) -> Option<String> {
    let listed: Vec<String> = sdp
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .filter_map(|value| {
            let (algorithm, hex) = value.split_once(' ')?;
            let hex = hex.trim();
            let valid = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
            valid.then(|| format!("{} {}", algorithm.to_ascii_lowercase(), hex.to_ascii_uppercase()))
        })
        .collect();
    listed.iter().find(|f| f.starts_with("sha-256 ")).or(listed.first()).cloned()
}

/// The safety code for two fingerprints in SDP form ("sha-256 AB:CD:…"), e.g.
/// "0421 9983 1207"; the order of the arguments does not matter.
pub fn safety_code(mine: &str, theirs: &str) -> String {
    let (first, second) = if mine <= theirs { (mine, theirs) } else { (theirs, mine) };
    let digest = Sha256::digest(format!("duet safety code v1\n{first}\n{second}"));
    let top = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
    let digits = format!("{:012}", top % 1_000_000_000_000);
    format!("{} {} {}", &digits[..4], &digits[4..8], &digits[8..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_s_fingerprint_is_the_sha_256_one_wherever_it_is_listed() {
        let sdp = "v=0\r\na=fingerprint:SHA-512 aa:bb\r\na=fingerprint:sha-256 0a:0b\r\na=fingerprint:sha-384 cc\r\n";
        assert_eq!(fingerprint_in(sdp).as_deref(), Some("sha-256 0A:0B"));
        assert_eq!(fingerprint_in("a=fingerprint:sha-384 cc:dd\r\n").as_deref(), Some("sha-384 CC:DD"));
        assert_eq!(fingerprint_in("a=fingerprint:sha-256 not hex\r\na=setup:actpass"), None);
    }

    #[test]
    fn fingerprints_are_listed_as_sdp_writes_them() {
        assert_eq!(FingerprintHash::Sha256.fingerprint(b"abc").len(), "sha-256 ".len() + 32 * 3 - 1);
        assert!(FingerprintHash::Sha384.fingerprint(b"abc").starts_with("sha-384 CB:00:75:3F:"));
        assert_eq!("SHA-512".parse(), Ok(FingerprintHash::Sha512));
        assert!("md5".parse::<FingerprintHash>().is_err());
    }

    #[test]
    fn both_ends_get_the_code_the_web_client_computes() {
        // Computed with the web client's formula (Node's crypto, as the browser test does).
        assert_eq!(safety_code("sha-256 AA:BB:CC", "sha-256 01:02:03"), "1915 5086 2499");
        assert_eq!(safety_code("sha-256 01:02:03", "sha-256 AA:BB:CC"), "1915 5086 2499");
    }

    #[test]
    fn a_replaced_fingerprint_changes_the_code() {
        let honest = safety_code("sha-256 AA:BB:CC", "sha-256 01:02:03");
        assert_ne!(safety_code("sha-256 AA:BB:CC", "sha-256 01:02:04"), honest);
    }
}
