//! One push: its payload encrypted for the browser (RFC 8291, `aes128gcm`: the push
//! service sees nothing but a blob), signed for the push service (VAPID), with RFC 8030's
//! `TTL` (how long the service may hold it: a call's ring time), `Urgency` (`high` wakes
//! a phone for a ringing call) and `Topic` (a later push with the same topic replaces
//! this one while it waits: "missed call" replaces "Ann is calling").

use std::time::Duration;

use http::{HeaderValue, Request};
use web_push_native::{Auth, WebPushBuilder, p256};

use crate::{Subscription, Vapid};

/// How long the VAPID token is good for (RFC 8292: at most 24 hours).
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// What push services accept in one push, after encryption adds its header and tag.
pub const MAX_PAYLOAD: usize = 3000;

/// RFC 8030's urgencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VeryLow => "very-low",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub payload: Vec<u8>,
    pub ttl: Duration,
    pub urgency: Urgency,
    /// At most 32 characters of the URL-safe base64 alphabet.
    pub topic: Option<String>,
}

/// Why a push could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the payload is {0} bytes; a push holds at most {MAX_PAYLOAD}")]
    TooBig(usize),
    #[error("a push topic is 1 to 32 characters of A-Z, a-z, 0-9, - and _")]
    Topic,
    #[error("the push could not be encrypted or signed: {0}")]
    Crypto(String),
}

impl Push {
    pub fn new(payload: Vec<u8>, ttl: Duration, urgency: Urgency, topic: Option<String>) -> Self {
        Self { payload, ttl, urgency, topic }
    }

    /// The HTTP request that delivers this push to `subscription`, signed by `vapid`.
    pub fn request(&self, subscription: &Subscription, vapid: &Vapid) -> Result<Request<Vec<u8>>, PushError> {
        if self.payload.len() > MAX_PAYLOAD {
            return Err(PushError::TooBig(self.payload.len()));
        }
        let topic = self.topic.as_deref().map(topic_header).transpose()?;
        let key = p256::PublicKey::from_sec1_bytes(&subscription.p256dh)
            .map_err(|e| PushError::Crypto(e.to_string()))?;
        let builder = WebPushBuilder::new(
            subscription.endpoint.uri().clone(),
            key,
            Auth::clone_from_slice(&subscription.auth),
        )
        .with_valid_duration(TOKEN_LIFETIME)
        .with_vapid(vapid.key(), vapid.contact());
        let mut request =
            builder.build(self.payload.clone()).map_err(|e| PushError::Crypto(e.to_string()))?;
        let headers = request.headers_mut();
        // The builder gives the token's lifetime as TTL; the push's own is shorter.
        headers.insert("ttl", HeaderValue::from(self.ttl.as_secs()));
        headers.insert("urgency", HeaderValue::from_static(self.urgency.as_str()));
        if let Some(topic) = topic {
            headers.insert("topic", topic);
        }
        Ok(request)
    }
}

fn topic_header(topic: &str) -> Result<HeaderValue, PushError> {
    let fine = (1..=32).contains(&topic.len())
        && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !fine {
        return Err(PushError::Topic);
    }
    HeaderValue::from_str(topic).map_err(|_| PushError::Topic)
}

#[cfg(test)]
pub(crate) mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use web_push_native::decrypt;

    use super::*;
    use crate::EndpointRules;

    /// A browser's key pair, as its subscription holds it.
    pub(crate) fn ua_key() -> p256::SecretKey {
        p256::SecretKey::from_slice(&[3; 32]).expect("a scalar")
    }

    /// A subscription of `key`'s browser at `endpoint`, and its auth secret.
    pub(crate) fn subscription(endpoint: &str, key: &p256::SecretKey) -> ([u8; 16], Subscription) {
        use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
        let auth = [5u8; 16];
        let public = key.public_key().to_encoded_point(false);
        let sub = Subscription::new(
            endpoint,
            &URL_SAFE_NO_PAD.encode(public.as_bytes()),
            &URL_SAFE_NO_PAD.encode(auth),
            &EndpointRules::default(),
        )
        .expect("a browser's subscription");
        (auth, sub)
    }

    #[test]
    fn rfc_8291s_own_example_decrypts_to_its_watermelon() {
        let b64 = |text: &str| URL_SAFE_NO_PAD.decode(text).expect("base64url");
        let ciphertext = b64(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8w\
             EqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
        );
        let ua_private =
            p256::SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).expect("key");
        let auth = Auth::clone_from_slice(&b64("BTBZMqHH6r4Tts7J_aSIgg"));
        let plain = decrypt(ciphertext, &ua_private, &auth).expect("the RFC's example decrypts");
        assert_eq!(plain, b"When I grow up, I want to be a watermelon");
    }

    #[test]
    fn a_push_is_encrypted_for_the_browser_alone_with_its_ttl_urgency_and_topic() {
        let vapid = Vapid::from_secret(&[9; 32], "mailto:ops@example.org").expect("a scalar");
        let (auth, sub) = subscription("https://push.example/send/abc", &ua_key());
        let payload = br#"{"type":"call","from":"ann"}"#.to_vec();
        let push = Push::new(payload.clone(), Duration::from_secs(30), Urgency::High, Some("call-7".into()));
        let request = push.request(&sub, &vapid).expect("built");
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "https://push.example/send/abc");
        let header = |name: &str| request.headers()[name].to_str().expect("ascii").to_owned();
        assert_eq!(header("ttl"), "30");
        assert_eq!(header("urgency"), "high");
        assert_eq!(header("topic"), "call-7");
        assert_eq!(header("content-encoding"), "aes128gcm");
        assert!(
            !request.body().windows(payload.len()).any(|w| w == payload.as_slice()),
            "a blob to the service"
        );
        let opened = decrypt(request.body().clone(), &ua_key(), &Auth::clone_from_slice(&auth))
            .expect("the browser opens it");
        assert_eq!(opened, payload);
        let stranger = p256::SecretKey::from_slice(&[4; 32]).expect("a scalar");
        assert!(decrypt(request.body().clone(), &stranger, &Auth::clone_from_slice(&auth)).is_err());
    }

    #[test]
    fn an_oversized_payload_or_a_topic_push_services_refuse_is_refused_here() {
        let vapid = Vapid::from_secret(&[9; 32], "mailto:ops@example.org").expect("a scalar");
        let (_, sub) = subscription("https://push.example/send/abc", &ua_key());
        let big = Push::new(vec![b'x'; MAX_PAYLOAD + 1], Duration::from_secs(30), Urgency::High, None);
        assert_eq!(big.request(&sub, &vapid).err(), Some(PushError::TooBig(MAX_PAYLOAD + 1)));
        for topic in ["", "call 7", "a-topic-that-is-longer-than-32-chars"] {
            let push = Push::new(b"{}".to_vec(), Duration::from_secs(30), Urgency::High, Some(topic.into()));
            assert_eq!(push.request(&sub, &vapid).err(), Some(PushError::Topic), "{topic:?}");
        }
    }
}
