//! A browser's push subscription (`PushSubscription.toJSON()`), checked before duet keeps
//! it: sending a push is an outgoing request to an address a client chose, so only
//! `https` endpoints (or origins the operator allowed for tests and closed networks),
//! of a sane length, with keys of the sizes RFC 8291 uses. Where the endpoint's name
//! resolves to is checked again before each send ([`Endpoint::check_address`]).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use duet_turn::policy::PeerPolicy;
use http::Uri;
use serde::Deserialize;

/// The longest endpoint URL kept (browsers' are a few hundred bytes).
pub const MAX_ENDPOINT: usize = 1024;

/// What makes an endpoint acceptable.
#[derive(Debug, Clone, Default)]
pub struct EndpointRules {
    /// Origins (`http://127.0.0.1:8090`) allowed whatever their scheme and address: a
    /// push service in a test or on a closed network (`--push-dangerous-allow-endpoint`).
    pub dangerous_allowed: Vec<String>,
}

impl EndpointRules {
    fn allows_origin(&self, origin: &str) -> bool {
        self.dangerous_allowed.iter().any(|allowed| allowed.trim_end_matches('/') == origin)
    }
}

/// Where a push goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    uri: Uri,
    /// Allowed by the operator whatever its scheme and address.
    dangerous: bool,
}

impl Endpoint {
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    pub fn as_str(&self) -> String {
        self.uri.to_string()
    }

    pub fn is_https(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    /// The host name (or address) to resolve and, over TLS, to name.
    pub fn host(&self) -> &str {
        self.uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']')
    }

    pub fn port(&self) -> u16 {
        self.uri.port_u16().unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// `scheme://host[:port]`, for logs and the device list.
    pub fn origin(&self) -> String {
        let scheme = self.uri.scheme_str().unwrap_or("https");
        match self.uri.port_u16() {
            Some(port) => format!("{scheme}://{}:{port}", self.uri.host().unwrap_or_default()),
            None => format!("{scheme}://{}", self.uri.host().unwrap_or_default()),
        }
    }

    /// May a push be sent to `ip`, which the endpoint's name resolved to? Not to this
    /// server or a network behind it: the same rule as for TURN peers (loopback,
    /// private, link-local and own addresses refused), unless the operator allowed this
    /// origin.
    pub fn check_address(&self, ip: IpAddr, policy: &PeerPolicy) -> Result<(), SubscriptionError> {
        if self.dangerous || policy.allows(ip) { Ok(()) } else { Err(SubscriptionError::Address(ip)) }
    }
}

/// A subscription duet may push to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: Endpoint,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret.
    pub auth: [u8; 16],
}

/// Why a subscription is refused, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("the subscription is not the JSON a browser's PushSubscription gives: {0}")]
    Json(String),
    #[error("the push endpoint is not a URL")]
    NotAUrl,
    #[error("the push endpoint is longer than {MAX_ENDPOINT} bytes")]
    TooLong,
    #[error("the push endpoint must be an https URL")]
    NotHttps,
    #[error("the subscription's {0} key is not what a browser makes")]
    Key(&'static str),
    #[error("the push endpoint resolves to {0}, an address duet does not send to")]
    Address(IpAddr),
}

#[derive(Deserialize)]
struct Json {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

impl Subscription {
    /// Reads `PushSubscription.toJSON()` (unknown fields such as `expirationTime` are
    /// ignored) and checks it against `rules`.
    pub fn from_json(text: &str, rules: &EndpointRules) -> Result<Self, SubscriptionError> {
        let json: Json = serde_json::from_str(text).map_err(|e| SubscriptionError::Json(e.to_string()))?;
        Self::new(&json.endpoint, &json.keys.p256dh, &json.keys.auth, rules)
    }

    /// A subscription from its parts as the browser wrote them (keys base64url).
    pub fn new(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        rules: &EndpointRules,
    ) -> Result<Self, SubscriptionError> {
        if endpoint.len() > MAX_ENDPOINT {
            return Err(SubscriptionError::TooLong);
        }
        let uri: Uri = endpoint.parse().map_err(|_| SubscriptionError::NotAUrl)?;
        if uri.host().is_none_or(str::is_empty) || !matches!(uri.scheme_str(), Some("https" | "http")) {
            return Err(SubscriptionError::NotAUrl);
        }
        let mut endpoint = Endpoint { uri, dangerous: false };
        endpoint.dangerous = rules.allows_origin(&endpoint.origin());
        if !endpoint.is_https() && !endpoint.dangerous {
            return Err(SubscriptionError::NotHttps);
        }
        let p256dh = decode(p256dh).filter(|k| is_public_key(k)).ok_or(SubscriptionError::Key("p256dh"))?;
        let auth = decode(auth).and_then(|a| a.try_into().ok()).ok_or(SubscriptionError::Key("auth"))?;
        Ok(Self { endpoint, p256dh, auth })
    }

    /// The keys as the browser wrote them (base64url), for the store.
    pub fn keys(&self) -> (String, String) {
        (URL_SAFE_NO_PAD.encode(&self.p256dh), URL_SAFE_NO_PAD.encode(self.auth))
    }
}

/// Base64url with or without padding (browsers write it without).
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

fn is_public_key(bytes: &[u8]) -> bool {
    bytes.len() == 65 && web_push_native::p256::PublicKey::from_sec1_bytes(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A public key a browser could have made (RFC 8291's example's).
    pub(crate) const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    pub(crate) const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn json(endpoint: &str) -> String {
        format!(
            r#"{{"endpoint":"{endpoint}","expirationTime":null,"keys":{{"p256dh":"{P256DH}","auth":"{AUTH}"}}}}"#
        )
    }

    #[test]
    fn a_browsers_https_subscription_is_kept_with_its_keys() {
        let sub = Subscription::from_json(
            &json("https://fcm.googleapis.com/fcm/send/abc:def"),
            &EndpointRules::default(),
        )
        .expect("a browser's subscription");
        assert_eq!(sub.endpoint.host(), "fcm.googleapis.com");
        assert_eq!(sub.endpoint.port(), 443);
        assert_eq!(sub.endpoint.origin(), "https://fcm.googleapis.com");
        assert_eq!(sub.p256dh.len(), 65);
        assert_eq!(sub.keys(), (P256DH.to_owned(), AUTH.to_owned()));
    }

    #[test]
    fn plain_http_bad_urls_long_urls_and_wrong_keys_are_refused_in_words() {
        let rules = EndpointRules::default();
        let refused = |text: &str| Subscription::from_json(text, &rules).expect_err("refused");
        assert_eq!(refused(&json("http://127.0.0.1:8090/notify/x")), SubscriptionError::NotHttps);
        assert_eq!(refused(&json("not a url")), SubscriptionError::NotAUrl);
        assert_eq!(refused(&json("ftp://push.example/x")), SubscriptionError::NotAUrl);
        let long = format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT));
        assert_eq!(refused(&json(&long)), SubscriptionError::TooLong);
        let short_key = json("https://push.example/x").replace(P256DH, "AAAA");
        assert_eq!(refused(&short_key), SubscriptionError::Key("p256dh"));
        let bad_auth = json("https://push.example/x").replace(AUTH, "BTBZ");
        assert_eq!(refused(&bad_auth), SubscriptionError::Key("auth"));
        assert!(matches!(refused("{}"), SubscriptionError::Json(_)));
    }

    #[test]
    fn an_origin_the_operator_allowed_may_be_plain_http_and_on_loopback() {
        let rules = EndpointRules { dangerous_allowed: vec!["http://127.0.0.1:8090".into()] };
        let sub = Subscription::from_json(&json("http://127.0.0.1:8090/notify/x"), &rules).expect("allowed");
        let policy = PeerPolicy::default();
        assert_eq!(sub.endpoint.check_address("127.0.0.1".parse().expect("an address"), &policy), Ok(()));
        let other = Subscription::from_json(&json("http://127.0.0.1:8091/notify/x"), &rules);
        assert_eq!(other, Err(SubscriptionError::NotHttps), "only the allowed origin");
    }

    #[test]
    fn an_endpoint_resolving_to_loopback_private_link_local_or_own_addresses_is_not_sent_to() {
        let sub = Subscription::from_json(&json("https://push.example/x"), &EndpointRules::default())
            .expect("https");
        let own: IpAddr = "203.0.113.7".parse().expect("an address");
        let policy = PeerPolicy { own_addresses: vec![own], ..PeerPolicy::default() };
        for refused in
            ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.1", "169.254.0.1", "fe80::1", "203.0.113.7"]
        {
            let ip: IpAddr = refused.parse().expect("an address");
            assert_eq!(
                sub.endpoint.check_address(ip, &policy),
                Err(SubscriptionError::Address(ip)),
                "{refused}"
            );
        }
        assert_eq!(sub.endpoint.check_address("142.250.74.10".parse().expect("an address"), &policy), Ok(()));
    }
}
