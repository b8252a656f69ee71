//! The duet binary's library half: everything that touches a socket, a file or the
//! clock. The protocol and its rules live in `duet-signal`, TURN's in `duet-turn`, who
//! may come in in `duet-access`, a WebRTC peer in `duet-peer`; this crate drives them.
//!
//! ```text
//!  cli ──► config (settings, a leaf) ──► serve::run ──► net::http (accept, limits, TLS,
//!                                               │       one-port demux)
//!                                               │   └─► serve::web (routes, files)
//!                                               │         └─► signaling (WebSocket ⇄ Hub)
//!                                               │               └─► signaling::echo
//!                                               ├─► turn (STUN/TURN sockets ⇄ Server)
//!                                               └─► acme (certificates, the resolver)
//!  access (who comes in, wired to HTTP) ──► store (accounts, invites, sign-outs: SQLite)
//!  cluster (several nodes on Redis) ◄── signaling::nodes, signaling::relayed
//!  turn_node: `duet turn`; call: `duet call`; admin: `duet user`, `duet invite`
//! ```
//!
//! # Layout
//!
//! Each room holds one role; a module never imports one that imports it back, and
//! `tests/layout.rs` fails the test command when one does.
//!
//! | room | what it holds |
//! |---|---|
//! | `cli`, `config` | the command line; the settings it fills (imports nothing of the shell) |
//! | `net` | taking connections within limits, the HTTP(S) loop, one-port demux, TLS |
//! | `serve` | `duet serve`: starting everything, the routes (`web`), metrics, SIGHUP |
//! | `signaling` | the WebSocket driver around the hub: sockets, upkeep, ICE servers, services (echo), its side of several nodes (`nodes`, `relayed`) |
//! | `access`, `store` | who may come in (HTTP side); what outlives a process |
//! | `push` | Web Push's I/O: the HTTP request to a push service, retries, forgetting gone subscriptions |
//! | `cluster` | Redis: messages between nodes, liveness, room ownership (knows nothing of signaling) |
//! | `turn`, `turn_node` | TURN sockets and threads; `duet turn` |
//! | `acme`, `call`, `admin` | certificates; `duet call`; `duet user` and `duet invite` |
//! | `limits`, `clock`, `random`, `interfaces`, `state` | small shared pieces |
//!
//! Where features hang, with the next ones:
//! - **Call history** (built this way): `signaling::history` is a
//!   [`signaling::events::Listener`] (`Signaling::listen`) that turns the hub's
//!   `CallEnded` and `CallBusy` into rows queued for a writer task; the rows live in
//!   `store` (migration 2, `store/history.rs`); `access::calls` serves `/api/calls`.
//! - **Push ringing** (built this way): subscriptions and the VAPID key in `store`
//!   (migration 5); the pure part in the `duet-push` crate; the HTTP side in `push`;
//!   `/api/push` in `access::push`; `signaling::ringer`, a listener, hands `push` each call
//!   to an account holder (the hub rings an account with no page open through a stand-in,
//!   `hub/away.rs`); nothing in `push` knows the hub.
//! - **A recorder** (or any participant that is not a socket): a service beside
//!   `signaling::echo`, joining the hub through the same extension point (`ServiceLink`:
//!   typed messages both ways).
//! - **Several devices per account** (built this way): in the hub (`hub/names.rs`,
//!   `hub/calls.rs`): one name held by several sessions, a call ringing all of them.
//! - **Do not disturb** (built this way): the policy in the hub (`hub/quiet.rs`); an
//!   account's setting kept by `signaling::quiet` (a listener and a writer task, like
//!   history) in `store` (migration 3, `store/quiet.rs`), given back to the hub at start.
//!
//! # Panics, errors and unwraps
//!
//! - Input never panics: what a client, a peer, a node or a file sends is parsed into a
//!   precise error (one enum per boundary) that is answered or counted and dropped.
//! - No `unwrap` outside tests; an `expect` says why it cannot fail (a literal that
//!   parses, a serializer that cannot refuse its own types).
//! - `anyhow` only where a program starts or a command runs, with the context a person
//!   needs ("bind TURN UDP 0.0.0.0:3478").
//! - A lock whose holder panicked is taken over (`unwrap_or_else(PoisonError::into_inner)`),
//!   never propagated: every critical section here is a short in-memory step that leaves
//!   the data whole (a counter moved, an entry put or taken, a value swapped), so what a
//!   panic interrupted is at worst one request's work, and taking the lock over keeps
//!   everyone else served. A section that could leave data half changed would need
//!   another policy; none does, and a new one must say so where it takes the lock.

pub mod access;
pub mod acme;
pub mod admin;
pub mod call;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod interfaces;
pub mod limits;
pub mod net;
pub mod push;
pub mod random;
pub mod serve;
pub mod signaling;
pub mod state;
pub mod store;
pub mod turn;
pub mod turn_node;

pub use serve::{RunOptions, run};
