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

use sha2::{Digest, Sha256};

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
