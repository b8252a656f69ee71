//! Sealed tokens: a payload and a MAC, so that what the server hands out (a session
//! cookie, an invite link) comes back unchanged or not at all.
//!
//! ```text
//!  seal(key, purpose, payload) = base64url(payload) "." base64url(HMAC-SHA256(key, label(purpose) 0 payload)[..16])
//!  open(key, purpose, token)  ──► too long, no ".", bad base64, wrong MAC ──► TokenError
//! ```
//!
//! The purpose is part of what is signed, so a session cookie is no invite and an invite
//! no session, even under one key. Payloads are not secret (anyone holding a token can
//! read it); they are only unforgeable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in a token: 128 bits.
const MAC_BYTES: usize = 16;
/// The longest token accepted, so a hostile cookie or link costs little to refuse.
pub const MAX_TOKEN_CHARS: usize = 1024;

/// The server's signing key (kept in its state directory).
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A MAC under this key over `parts`, each followed by a zero byte.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)") // never in a log
    }
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Session,
    Invite,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Session => b"duet session v1",
            Self::Invite => b"duet invite v1",
        }
    }
}

/// Why a token was refused. One variant is enough for anything a stranger could send:
/// telling them which part was wrong helps nobody but a forger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is damaged or was not made by this server")]
    Tampered,
}

/// `payload`, signed for `purpose`.
pub fn seal(key: &Key, purpose: Purpose, payload: &[u8]) -> String {
    let mac = key.mac(&[purpose.label(), payload]);
    let mut token = URL_SAFE_NO_PAD.encode(payload);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(&mac[..MAC_BYTES]));
    token
}

/// The payload of a token [`seal`]ed under `key` for `purpose`.
pub fn open(key: &Key, purpose: Purpose, token: &str) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Tampered);
    }
    let (payload, shown) = token.split_once('.').ok_or(TokenError::Tampered)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Tampered)?;
    let shown = URL_SAFE_NO_PAD.decode(shown).map_err(|_| TokenError::Tampered)?;
    let mac = key.mac(&[purpose.label(), &payload]);
    if !same_bytes(&shown, &mac[..MAC_BYTES]) {
        return Err(TokenError::Tampered);
    }
    Ok(payload)
}

/// Compares in time that depends on the lengths only.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new([3; 32])
    }

    #[test]
    fn a_sealed_payload_opens_unchanged() {
        let token = seal(&key(), Purpose::Session, b"{\"a\":1}");
        assert_eq!(open(&key(), Purpose::Session, &token), Ok(b"{\"a\":1}".to_vec()));
    }

    #[test]
    fn every_byte_of_a_token_flipped_is_refused() {
        let token = seal(&key(), Purpose::Invite, b"room=team;uses=1");
        for i in 0..token.len() {
            for flip in [1u8, 0x20, 0x80] {
                let mut bytes = token.clone().into_bytes();
                bytes[i] ^= flip;
                let Ok(changed) = String::from_utf8(bytes) else { continue };
                assert!(open(&key(), Purpose::Invite, &changed).is_err(), "byte {i} ^ {flip:#x}: {changed}");
            }
        }
    }

    #[test]
    fn a_token_for_one_purpose_or_key_is_no_good_for_another() {
        let token = seal(&key(), Purpose::Invite, b"x");
        assert_eq!(open(&key(), Purpose::Session, &token), Err(TokenError::Tampered));
        assert_eq!(open(&Key::new([4; 32]), Purpose::Invite, &token), Err(TokenError::Tampered));
    }

    #[test]
    fn garbage_and_giants_are_refused() {
        for bad in ["", ".", "abc", "a.b.c", "!!!.???", &"A".repeat(MAX_TOKEN_CHARS + 1)] {
            assert_eq!(open(&key(), Purpose::Session, bad), Err(TokenError::Tampered), "{bad:.20}");
        }
    }
}
