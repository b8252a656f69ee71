//! Web Push for duet, as pure code: what a browser's subscription is and whether duet
//! may send to it, the server's VAPID identity (RFC 8292), the encrypted request for one
//! push (RFC 8291, `aes128gcm`; RFC 8030's `TTL`, `Urgency` and `Topic`), and what to do
//! with each answer of a push service (delivered, gone, try again when, give up).
//!
//! ```text
//!  PushSubscription JSON ──► Subscription::from_json (https; keys of the right sizes)
//!  resolved address ──► Endpoint::check_address (not loopback, private, own: as TURN peers)
//!  Push{payload, ttl, urgency, topic} + Subscription + Vapid ──► http::Request (encrypted)
//!  answer (status, Retry-After) ──► Delivery ──► Delivered | Gone | RetryAt(t) | GiveUp
//! ```
//!
//! No sockets, no clock, no files: the shell resolves, connects, reads the clock and
//! hands the random bytes in (the encryption draws its own ephemeral keys, as RFC 8291
//! requires one per message).

pub mod delivery;
pub mod message;
pub mod subscription;
pub mod vapid;

pub use delivery::{Delivery, Next};
pub use message::{Push, PushError, Urgency};
pub use subscription::{Endpoint, EndpointRules, Subscription, SubscriptionError};
pub use vapid::Vapid;
