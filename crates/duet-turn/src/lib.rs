//! duet's STUN/TURN server as a state machine (RFC 8489 STUN, RFC 8656 TURN).
//!
//! No sockets, no clock, no threads: the `duet` binary reads packets, feeds them in
//! with the time, and sends what comes out.

mod allocation;
pub mod auth;
pub mod framing;
pub mod ledger;
pub mod policy;
mod ratelimit;
pub mod server;

pub use allocation::ChannelNumber;
pub use ledger::Ledger;
pub use server::{
    BoundRelay, Config, Event, Family, FiveTuple, HEADROOM, Lifetimes, Quotas, RelayRequest, Server, Stats,
    TAILROOM, ToClient, ToPeer, Transmit, Transport,
};
pub mod stun;
