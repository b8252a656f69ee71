//! duet's native WebRTC peer, on [str0m]: what answers a browser when it calls a service
//! user such as `echo`, and (later) what `duet call` runs in a terminal.
//!
//! Sans-IO like the rest of duet's cores: a [`Session`] is fed the signaling messages and
//! datagrams that arrive and the time, and says what to send and when to wake it. It
//! owns no socket and reads no clock; the `duet` binary does.
//!
//! ```text
//!   video-offer ──► Session::accept_offer ──► video-answer
//!   new-ice-candidate ──► Session::add_remote_candidate
//!   UDP datagram ──► Session::handle_datagram ─┐
//!   timer ──► Session::handle_timeout ─────────┤
//!                                              ▼
//!                       Session::poll ──► Transmit (send it) | Timeout (sleep) | Event
//!   Echo: Event::MediaData ──► written back on the same media; keyframe requests
//!         from the browser ──► passed on to the browser's own sender
//! ```

mod echo;
pub mod media;
mod safety;
mod session;
pub mod signal;
mod turn_client;

pub use echo::{Echo, EchoPoll, EchoStats};
pub use safety::{FingerprintHash, fingerprint_in, safety_code};
pub use session::{Kind, PeerError, Poll, Session, Transmit};
pub use str0m;
pub use turn_client::{TurnClient, TurnState};
