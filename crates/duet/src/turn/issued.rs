//! The TURN users duet's signaling hands credentials to: one per hub session, named
//! `duet-<run>-<id>`, where `<run>` is random per process start and `<id>` is 64 bits
//! no one can predict (a keyed hash of the session's number under a random per-run key).
//!
//! ```text
//!  session 17 ──► duet-3fa2c91b-9d0e6b7a41c85f02   (another node, or after a restart: another run)
//!  embedded TURN (same process): a duet- user of another run ──► 401 (revocations die
//!                                  with a process, so what it issued dies with them)
//! ```
//!
//! So two nodes never hand out the same user (they would share one allocation quota on a
//! shared `duet turn` node, and in the same second the same credentials), and a session
//! ended before a restart cannot use its credentials after it.

use sha2::Digest;

/// The family every user named here belongs to.
const FAMILY: &str = "duet-";

/// One run of a signaling server: names its sessions' TURN users.
#[derive(Clone)]
pub struct Run {
    /// 8 hex digits, the same for every session of this run.
    id: String,
    /// Keys the per-session ids.
    key: [u8; 16],
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Run {
    /// A new run, with random bytes from the system.
    pub fn new() -> Self {
        // /dev/urandom missing is a broken system; guessable TURN users would be worse.
        let bytes = crate::random::bytes::<20>().expect("random bytes for TURN user ids");
        let id = bytes[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self { id, key: bytes[4..].try_into().expect("16 bytes") }
    }

    /// The TURN user of hub session `session`.
    pub fn session_user(&self, session: u64) -> String {
        let mut hash = sha2::Sha256::new();
        hash.update(self.key);
        hash.update(session.to_be_bytes());
        let id: String = hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{FAMILY}{}-{id}", self.id)
    }

    /// What the embedded TURN server (in the same process) is told about the users
    /// named here.
    pub fn issuer(&self) -> duet_turn::auth::Issuer {
        duet_turn::auth::Issuer { family: FAMILY.to_owned(), run: format!("{FAMILY}{}-", self.id) }
    }
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_session_has_its_own_unguessable_user_of_this_run() {
        let run = Run::new();
        let (a, b) = (run.session_user(1), run.session_user(2));
        assert_ne!(a, b);
        assert_eq!(a, run.session_user(1), "the same session keeps its user (renewals, revocation)");
        let issuer = run.issuer();
        assert!(a.starts_with(&issuer.run) && a.starts_with(&issuer.family));
        assert_eq!(a.len(), "duet-".len() + 8 + 1 + 16);
        assert_ne!(Run::new().session_user(1), a, "another node's session 1 is another user");
    }
}
