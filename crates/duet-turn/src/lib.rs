//! duet's STUN/TURN server as a state machine (RFC 8489 STUN, RFC 8656 TURN).
//!
//! No sockets, no clock, no threads: the `duet` binary reads packets, feeds them in
//! with the time, and sends what comes out.

pub mod auth;
pub mod policy;
pub mod stun;
