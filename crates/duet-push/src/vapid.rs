//! The server's VAPID identity (RFC 8292): one P-256 key pair, kept in duet's store and
//! shared by every node, whose public key is the `applicationServerKey` pages subscribe
//! with; every push carries a token signed with it (`Authorization: vapid t=…, k=…`),
//! for the push service's audience (the endpoint's origin), naming the operator's contact
//! (`--push-contact mailto:…`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};

/// The key pair and the contact it is sent with.
pub struct Vapid {
    key: ES256KeyPair,
    contact: String,
}

impl fmt::Debug for Vapid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key())
            .field("contact", &self.contact)
            .finish()
    }
}

/// The stored secret is not a P-256 private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored VAPID key is not a P-256 private key")]
pub struct BadKey;

impl Vapid {
    /// The key pair whose private scalar is `secret` (as kept in the store, or 32 fresh
    /// random bytes for a new one; the few byte strings that are no P-256 scalar are
    /// refused, and the shell draws again).
    pub fn from_secret(secret: &[u8], contact: &str) -> Result<Self, BadKey> {
        if secret.len() != 32 {
            return Err(BadKey); // (the crate below asserts the length)
        }
        let key = ES256KeyPair::from_bytes(secret).map_err(|_| BadKey)?;
        Ok(Self { key, contact: contact.to_owned() })
    }

    /// The private scalar, for the store.
    pub fn secret(&self) -> Vec<u8> {
        self.key.to_bytes()
    }

    /// The public key, uncompressed and base64url: the page's `applicationServerKey`.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.public_key().public_key().to_bytes_uncompressed())
    }

    pub fn contact(&self) -> &str {
        &self.contact
    }

    pub(crate) fn key(&self) -> &ES256KeyPair {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use web_push_native::jwt_simple::claims::NoCustomClaims;
    use web_push_native::jwt_simple::common::VerificationOptions;

    use super::*;
    use crate::message::tests::{subscription, ua_key};
    use crate::{Push, Urgency};

    #[test]
    fn a_stored_key_gives_back_the_same_public_key_and_a_bad_one_is_refused() {
        let vapid = Vapid::from_secret(&[7; 32], "mailto:ops@example.org").expect("a scalar");
        let again = Vapid::from_secret(&vapid.secret(), "mailto:ops@example.org").expect("kept");
        assert_eq!(again.public_key(), vapid.public_key());
        assert_eq!(URL_SAFE_NO_PAD.decode(vapid.public_key()).expect("base64url").len(), 65);
        assert_eq!(
            Vapid::from_secret(&[0; 32], "mailto:x@example.org").err(),
            Some(BadKey),
            "zero is no scalar"
        );
        assert_eq!(Vapid::from_secret(&[1; 5], "mailto:x@example.org").err(), Some(BadKey));
    }

    #[test]
    fn a_push_carries_a_token_that_verifies_with_the_public_key_for_the_endpoints_origin_and_expires() {
        let vapid = Vapid::from_secret(&[9; 32], "mailto:ops@example.org").expect("a scalar");
        let (_, sub) = subscription("https://push.example:8443/send/abc", &ua_key());
        let push = Push::new(b"{}".to_vec(), Duration::from_secs(30), Urgency::High, Some("call-7".into()));
        let request = push.request(&sub, &vapid).expect("built");
        let header = request.headers()["authorization"].to_str().expect("ascii").to_owned();
        let (token, key) =
            header.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")).expect("vapid t=…, k=…");
        assert_eq!(key, vapid.public_key(), "the key the page subscribed with");
        let claims = vapid
            .key()
            .public_key()
            .verify_token::<NoCustomClaims>(token, Some(VerificationOptions::default()))
            .expect("signed by this key");
        assert_eq!(claims.subject.as_deref(), Some("mailto:ops@example.org"));
        let audience = claims.audiences.expect("an audience").into_string().expect("one");
        assert!(audience.starts_with("https://push.example"), "{audience}");
        let (issued, expires) = (claims.issued_at.expect("iat"), claims.expires_at.expect("exp"));
        let lifetime = expires.as_secs() - issued.as_secs();
        assert!(lifetime > 0 && lifetime <= 24 * 3600, "expires within a day (RFC 8292): {lifetime} s");
        let other = Vapid::from_secret(&[8; 32], "mailto:ops@example.org").expect("a scalar");
        assert!(
            other.key().public_key().verify_token::<NoCustomClaims>(token, None).is_err(),
            "not another key's"
        );
    }
}
