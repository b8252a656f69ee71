//! Rooms: who sees whom. Everyone on a connection opened for `/r/<room>` shares that
//! room's user list, chat and name space; nobody outside it can see or call them. The
//! lobby (the empty room) is where a connection without a room goes, MDN's client
//! included.
//!
//! A [`RoomName`] is validated once, where the connection is accepted, so the hub never
//! re-checks: 1 to [`RoomName::MAX_CHARS`] ASCII letters, digits, `-` and `_`, so that a
//! room name can sit in a URL path unescaped.

use std::fmt;
use std::sync::Arc;

/// A validated room name; the empty name is the lobby.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RoomName(Arc<str>);

/// Why a room name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// Longer than [`RoomName::MAX_CHARS`].
    #[error("a room name has at most {} characters", RoomName::MAX_CHARS)]
    TooLong,
    /// Something other than letters, digits, `-` and `_`.
    #[error("a room name holds only letters, digits, - and _")]
    BadCharacter,
}

impl RoomName {
    /// The longest room name.
    pub const MAX_CHARS: usize = 64;

    /// The lobby: the room of every connection that names none.
    pub fn lobby() -> Self {
        Self::default()
    }

    /// Validates `raw`; the empty string is the lobby.
    pub fn new(raw: &str) -> Result<Self, RoomError> {
        if raw.len() > Self::MAX_CHARS {
            return Err(RoomError::TooLong);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(RoomError::BadCharacter);
        }
        Ok(Self(raw.into()))
    }

    /// Whether this is the lobby.
    pub fn is_lobby(&self) -> bool {
        self.0.is_empty()
    }

    /// The name as text (empty for the lobby).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_lobby() { f.write_str("(lobby)") } else { f.write_str(&self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_safe_names_are_rooms_and_the_empty_name_is_the_lobby() {
        assert_eq!(RoomName::new("team-standup_2").map(|r| r.to_string()), Ok("team-standup_2".into()));
        assert!(RoomName::new("").is_ok_and(|r| r.is_lobby()));
        assert_eq!(RoomName::new(&"r".repeat(64)).map(|r| r.as_str().len()), Ok(64));
    }

    #[test]
    fn anything_that_would_need_escaping_in_a_url_is_refused() {
        for bad in ["a b", "a/b", "..", "a%20", "ünïcode", "a?b", "<script>"] {
            assert_eq!(RoomName::new(bad), Err(RoomError::BadCharacter), "{bad:?}");
        }
        assert_eq!(RoomName::new(&"r".repeat(65)), Err(RoomError::TooLong));
    }
}
