//! Who may come into a duet server, as pure policy: no sockets, no clock, no files.
//! The shell reads cookies, files and the time, and asks this crate.
//!
//! ```text
//!  sign-in ──► accounts (argon2id) / instance password / invite (invite::InviteBook)
//!                 │ ok
//!                 ▼
//!          session::Session ──seal (HMAC-SHA256)──► cookie
//!  WebSocket upgrade ──► origin::check ──► session::Gate::check ──► duet_signal::Admission
//! ```
//!
//! Time is a parameter (`now_ms`, milliseconds since the Unix epoch: sessions and
//! invites outlive the process, so their clock is the wall clock). Random bytes (ids,
//! salts) are parameters too.

pub mod accounts;
pub mod failures;
pub mod host;
pub mod invite;
pub mod origin;
pub mod seal;
pub mod session;

pub use accounts::{Account, AccountError, Accounts, SignInError};
pub use host::Hosts;
pub use invite::{InviteBook, InviteError, InviteRecord, InviteSpec, InviteSpecError};
pub use origin::{Origin, OriginCheck};
pub use seal::{Key, TokenError};
pub use session::{Admitted, Gate, Session, SessionError, SignedOut, Who};

/// Who may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Anyone who reaches the server picks a name (a LAN, a laptop).
    Open,
    /// Anyone who knows the instance password; then they pick a name.
    Password,
    /// Only accounts and people holding an invite link.
    Members,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Password => "password",
            Self::Members => "members",
        }
    }

    /// Whether a WebSocket needs a session.
    pub fn needs_session(self) -> bool {
        self != Self::Open
    }
}
