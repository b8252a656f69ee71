//! The duet binary's library half: everything that touches a socket, a file or the
//! clock. The protocol and its rules live in `duet-signal`, TURN's in `duet-turn`, a
//! WebRTC peer in `duet-peer`; this crate drives them. Grouped by role:
//!
//! ```text
//!  config ──► serve::run ──► serve::http (accept, per-address limits, TLS)
//!                       │         └─► serve::web (routes, embedded files)
//!                       │               └─► serve::signaling (WebSocket ⇄ duet_signal::Hub)
//!                       │                     └─► serve::echo (the echo user: duet_peer per call)
//!                       ├─► turn (STUN/TURN sockets ⇄ duet_turn::Server)
//!                       └─► acme (certificates from a CA, renewed; the TLS resolver)
//!  access (who comes in, wired to HTTP) ──► store (accounts, invites, sign-outs: SQLite)
//!  call: `duet call`, calling from a terminal (a client of the above)
//!  limits: pure policy per client address; clock and random: the shell's time and chance;
//!  interfaces: this machine's addresses, kept fresh for the peer policy
//! ```

pub mod accept;
pub mod access;
pub mod acme;
pub mod admin;
pub mod call;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod interfaces;
pub mod limits;
pub mod random;
pub mod serve;
pub mod state;
pub mod store;
pub mod turn;

pub use serve::{RunOptions, run};
