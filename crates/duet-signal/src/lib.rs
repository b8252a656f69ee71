//! duet's signaling core: the wire protocol and the hub that routes it.
//!
//! This crate knows who is online, under which name, and who is in a call with whom.
//! It does not own a socket, does not read the clock and does not spawn anything: the
//! `duet` binary feeds it what arrives on each WebSocket and writes out what it returns.
//!
//! ```text
//!  WebSocket text ──► Hub::handle_text ──► (state change) ──► Hub::poll_output ──► WebSocket text
//!  connect/close  ──► Hub::connect / Hub::disconnect            Output { to, payload }
//!  timer fires    ──► Hub::handle_timeout      Hub::poll_timeout ──► when to call it next
//! ```
//!
//! # The run loop, as the I/O shell drives it
//!
//! 1. When a WebSocket is accepted, call [`Hub::connect`] and keep the [`ConnId`] with
//!    the socket.
//! 2. For every text frame, call [`Hub::handle_text`] (binary: [`Hub::handle_binary`]);
//!    when the socket ends, call [`Hub::disconnect`] (the client left) or
//!    [`Hub::connection_lost`] (it may come back and `resume`), once.
//! 3. After every call above, drain [`Hub::poll_output`] until it returns `None` and send
//!    each [`Output::payload`] to the connection named by [`Output::to`]; drain
//!    [`Hub::poll_event`] and act on what happened ([`Event`]: sessions started and
//!    ended, calls ringing, answered and ended, with why): end what was issued to an
//!    ended session (TURN credentials), count, keep history, ring elsewhere.
//! 4. Ask [`Hub::poll_timeout`] when to wake next; at that instant call
//!    [`Hub::handle_timeout`] and go back to step 3.
//!
//! Every method takes `now` from the caller, so tests run on a virtual clock.
//!
//! The protocol is a superset of MDN's "Signaling and video calling" sample; it is
//! described message by message in `docs/protocol.md`.

mod hub;
pub mod limit;
pub mod name;
pub mod protocol;
pub mod room;

pub use hub::{
    Admission, ConnId, DoNotDisturb, Event, Happened, Hub, HubConfig, Limits, Output, Party, Payload, Quiet,
    Rejected, SessionEnd, Side,
};
pub use name::{NameError, Skeleton, UserName};
pub use protocol::{
    Candidate, ClientMessage, Description, EndReason, ErrorCode, IceServer, ProtocolError, Role,
    ServerMessage, valid_token,
};
pub use room::{RoomError, RoomName};
