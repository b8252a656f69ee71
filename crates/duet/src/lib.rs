//! The duet binary's library half: everything that touches a socket, a file or the
//! clock. The protocol and its rules live in `duet-signal`; this crate drives it.
//!
//! ```text
//!  config ──► tls ──► server::run ──► web::app (HTTP, static files)
//!                                 └─► signaling (WebSocket ⇄ duet_signal::Hub)
//!                                        └─► echo (the echo user: duet_peer per call)
//! ```

pub mod call;
pub mod clock;
pub mod config;
pub mod echo;
pub mod http;
pub mod limits;
pub mod server;
pub mod signaling;
pub mod state;
pub mod tls;
pub mod web;

pub use server::{RunOptions, run};
pub mod ice;
pub mod metrics;
pub mod turn;
