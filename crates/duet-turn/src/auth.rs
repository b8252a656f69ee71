//! Long-term credentials (RFC 8489 section 9.2), ephemeral "TURN REST" credentials, and
//! nonces the server can check without remembering them.
//!
//! ```text
//!  signaling hands out:  username = "<unix expiry>:<user>"
//!                        password = base64(HMAC-SHA1(shared secret, username))
//!  TURN checks:          expiry > now, recomputes the password, key = MD5(user:realm:pass)
//!
//!  nonce = hex(issued unix seconds) ++ hex(HMAC-SHA1(nonce secret, issued ++ client IP)[..8])
//! ```
//!
//! A nonce is bound to the client's IP address and expires; a server restart (new nonce
//! secret) turns every outstanding nonce stale, and clients simply retry. Nothing is stored
//! for a client before it proves it holds a password.

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// MD5(username ":" realm ":" password): the HMAC key for MESSAGE-INTEGRITY.
pub type Key = [u8; 16];

/// RFC 8489 section 9.2.2. (SASLprep is not applied: duet's passwords are base64 or
/// configured ASCII.)
pub fn long_term_key(username: &str, realm: &str, password: &str) -> Key {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// The password of an ephemeral username, as coturn's `use-auth-secret` computes it.
pub fn ephemeral_password(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// An ephemeral username valid until `expires_unix`.
pub fn ephemeral_username(expires_unix: u64, user: &str) -> String {
    format!("{expires_unix}:{user}")
}

/// Who a username stands for, for quotas and revocation: an ephemeral username
/// `<expiry>:<user>` stands for `<user>` whatever its expiry (each renewal of a
/// session's credentials is the same user); anything else stands for itself.
pub fn user_of(username: &str) -> &str {
    match username.split_once(':') {
        Some((expiry, user)) if !expiry.is_empty() && expiry.bytes().all(|b| b.is_ascii_digit()) => user,
        _ => username,
    }
}

/// Why a username has no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// An ephemeral username whose expiry has passed.
    Expired,
    /// Neither a known static user nor a well-formed ephemeral username.
    UnknownUser,
    /// An ephemeral username the server's own issuer made in an earlier run (see
    /// [`Issuer`]).
    EarlierRun,
}

/// The users a server's own signaling names: `<family><run>-…`. Usernames of that family
/// from another run (issued before a restart) are refused, so a session that ended
/// before the restart (its revocation forgotten with the process) cannot come back with
/// credentials that have not expired yet. Usernames outside the family (minted by other
/// software with the shared secret) are judged as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// What every user the issuer names starts with, e.g. `duet-`.
    pub family: String,
    /// What the users of this run start with, e.g. `duet-1f2e3d4c-`.
    pub run: String,
}

/// Where keys come from.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The shared secret of ephemeral credentials, if they are on.
    pub shared_secret: Option<Vec<u8>>,
    /// Static users: name and password, from configuration.
    pub static_users: HashMap<String, String>,
    /// The server's own issuer of ephemeral usernames, when it has one in-process.
    pub issuer: Option<Issuer>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("shared_secret", &self.shared_secret.as_ref().map(|_| "<secret>"))
            .field("static_users", &self.static_users.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Credentials {
    /// The key for `username` even if its expiry has passed: used for requests about an
    /// allocation that `username` created while it was valid, so that a call outlives
    /// the short life of the credentials that started it.
    pub fn key_ignoring_expiry(&self, username: &str, realm: &str) -> Result<Key, CredentialError> {
        self.key(username, realm, 0)
    }

    /// The MESSAGE-INTEGRITY key for `username`, or why there is none.
    pub fn key(&self, username: &str, realm: &str, unix_now: u64) -> Result<Key, CredentialError> {
        if let Some(password) = self.static_users.get(username) {
            return Ok(long_term_key(username, realm, password));
        }
        let secret = self.shared_secret.as_deref().ok_or(CredentialError::UnknownUser)?;
        // coturn accepts "<expiry>" and "<expiry>:<user>" (and the reverse order with a
        // configurable separator); browsers just pass on what they are given.
        let expiry = username.split(':').next().and_then(|e| e.parse::<u64>().ok());
        if let Some(issuer) = &self.issuer {
            let user = user_of(username);
            if user.starts_with(&issuer.family) && !user.starts_with(&issuer.run) {
                return Err(CredentialError::EarlierRun);
            }
        }
        match expiry {
            None => Err(CredentialError::UnknownUser),
            Some(expiry) if expiry <= unix_now => Err(CredentialError::Expired),
            Some(_) => Ok(long_term_key(username, realm, &ephemeral_password(secret, username))),
        }
    }
}

/// Issues and checks stateless nonces.
#[derive(Clone)]
pub struct Nonces {
    secret: [u8; 32],
    lifetime_secs: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces").field("lifetime_secs", &self.lifetime_secs).finish_non_exhaustive()
    }
}

/// What a presented nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Well-formed and ours, but too old: 438 Stale Nonce.
    Stale,
    /// Not one we issued to this address (or garbage): also answered with 438 and a
    /// fresh nonce, which is what a client after a server restart needs.
    Invalid,
}

const NONCE_MAC_LEN: usize = 8;

impl Nonces {
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> Self {
        Self { secret, lifetime_secs }
    }

    fn mac(&self, issued: u64, ip: IpAddr) -> [u8; NONCE_MAC_LEN] {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(&issued.to_be_bytes());
        match ip {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0; NONCE_MAC_LEN];
        out.copy_from_slice(&full[..NONCE_MAC_LEN]);
        out
    }

    /// A nonce for `ip`, issued now.
    pub fn issue(&self, ip: IpAddr, unix_now: u64) -> String {
        let mut nonce = format!("{unix_now:016x}");
        for byte in self.mac(unix_now, ip) {
            nonce.push_str(&format!("{byte:02x}"));
        }
        nonce
    }

    pub fn check(&self, nonce: &str, ip: IpAddr, unix_now: u64) -> NonceCheck {
        if nonce.len() != 16 + 2 * NONCE_MAC_LEN || !nonce.is_ascii() {
            return NonceCheck::Invalid;
        }
        let Ok(issued) = u64::from_str_radix(&nonce[..16], 16) else { return NonceCheck::Invalid };
        let mut given = [0u8; NONCE_MAC_LEN];
        for (i, byte) in given.iter_mut().enumerate() {
            match u8::from_str_radix(&nonce[16 + 2 * i..18 + 2 * i], 16) {
                Ok(b) => *byte = b,
                Err(_) => return NonceCheck::Invalid,
            }
        }
        let expected = self.mac(issued, ip);
        // Constant time: a nonce is not a secret, but there is no reason to leak the MAC.
        let diff = expected.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 || issued > unix_now + 60 {
            NonceCheck::Invalid
        } else if unix_now - issued.min(unix_now) >= self.lifetime_secs {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = "duet";

    #[test]
    fn ephemeral_credentials_match_coturns_formula() {
        // base64(HMAC-SHA1("secret", "1700000000:ann")), computed independently with
        // `printf %s 1700000000:ann | openssl dgst -sha1 -hmac secret -binary | base64`.
        assert_eq!(ephemeral_password(b"secret", "1700000000:ann"), "vQnWXBtsqkQms4Ddse1rYmcjgqM=");
    }

    #[test]
    fn an_ephemeral_username_works_until_it_expires() {
        let creds = Credentials { shared_secret: Some(b"s3cret".to_vec()), ..Default::default() };
        let user = ephemeral_username(1_000, "ann");
        let expected = long_term_key(&user, REALM, &ephemeral_password(b"s3cret", &user));
        assert_eq!(creds.key(&user, REALM, 999), Ok(expected));
        assert_eq!(creds.key(&user, REALM, 1_000), Err(CredentialError::Expired));
        assert_eq!(creds.key("ann", REALM, 0), Err(CredentialError::UnknownUser));
        assert_eq!(creds.key("", REALM, 0), Err(CredentialError::UnknownUser));
    }

    #[test]
    fn usernames_the_issuer_made_in_an_earlier_run_are_refused() {
        let issuer = Issuer { family: "duet-".into(), run: "duet-aaaa-".into() };
        let creds = Credentials {
            shared_secret: Some(b"s3cret".to_vec()),
            issuer: Some(issuer),
            ..Default::default()
        };
        assert!(creds.key(&ephemeral_username(1_000, "duet-aaaa-17"), REALM, 0).is_ok());
        assert_eq!(
            creds.key(&ephemeral_username(1_000, "duet-bbbb-17"), REALM, 0),
            Err(CredentialError::EarlierRun)
        );
        assert_eq!(
            creds.key(&ephemeral_username(1_000, "duet-17"), REALM, 0),
            Err(CredentialError::EarlierRun)
        );
        assert!(
            creds.key(&ephemeral_username(1_000, "app-user"), REALM, 0).is_ok(),
            "other software's users"
        );
    }

    #[test]
    fn static_users_need_no_secret() {
        let creds = Credentials {
            static_users: [("bo".into(), "pw".into())].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(creds.key("bo", REALM, 0), Ok(long_term_key("bo", REALM, "pw")));
        assert_eq!(creds.key("1:bo", REALM, 0), Err(CredentialError::UnknownUser));
    }

    #[test]
    fn nonces_are_bound_to_the_address_and_go_stale() {
        let nonces = Nonces::new([7; 32], 600);
        let ip: IpAddr = "192.0.2.1".parse().expect("literal");
        let other: IpAddr = "192.0.2.2".parse().expect("literal");
        let nonce = nonces.issue(ip, 10_000);
        assert_eq!(nonces.check(&nonce, ip, 10_599), NonceCheck::Valid);
        assert_eq!(nonces.check(&nonce, ip, 10_600), NonceCheck::Stale);
        assert_eq!(nonces.check(&nonce, other, 10_000), NonceCheck::Invalid);
        assert_eq!(Nonces::new([8; 32], 600).check(&nonce, ip, 10_000), NonceCheck::Invalid);
        for garbage in ["", "zz", "00000000000027100000000000000000", &"é".repeat(16)] {
            assert_eq!(nonces.check(garbage, ip, 10_000), NonceCheck::Invalid, "{garbage}");
        }
    }
}
