//! User names: what a person is called in the user list.
//!
//! A [`UserName`] can only be built through [`UserName::new`], so every name the hub
//! holds is already trimmed, non-empty, at most [`UserName::MAX_CHARS`] characters and
//! free of control characters. The hub never has to re-check.

use std::fmt;

/// A validated user name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(Box<str>);

/// Why a requested name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty, or only white space.
    #[error("the name is empty")]
    Empty,
    /// The name has more than [`UserName::MAX_CHARS`] characters after trimming.
    #[error("the name is longer than {} characters", UserName::MAX_CHARS)]
    TooLong,
    /// The name holds a control character (a newline, a tab, an escape, ...).
    #[error("the name contains a control character")]
    ControlCharacter,
}

impl UserName {
    /// The longest name, in Unicode scalar values. Long enough for a full name, short
    /// enough that a user list of a few hundred people stays small.
    pub const MAX_CHARS: usize = 32;

    /// Validates `raw` and returns it trimmed of surrounding white space.
    pub fn new(raw: &str) -> Result<Self, NameError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(NameError::TooLong);
        }
        Ok(Self(trimmed.into()))
    }

    /// The name with `suffix` appended, shortening the name itself if needed so the
    /// result still fits in [`UserName::MAX_CHARS`]. Used to find a free name when the
    /// requested one is taken ("ann" becomes "ann2").
    pub fn with_suffix(&self, suffix: u32) -> Self {
        let suffix = suffix.to_string();
        let room = Self::MAX_CHARS - suffix.len();
        let mut name: String = self.0.chars().take(room).collect();
        // Trimming may have left the cut name ending in white space: keep it readable.
        name.truncate(name.trim_end().len());
        name.push_str(&suffix);
        Self(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by name be searched with a plain `&str` (a message's `target`).
/// Sound because the derived `Eq`, `Ord` and `Hash` are those of the inner `str`.
impl std::borrow::Borrow<str> for UserName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_space_is_trimmed() {
        assert_eq!(UserName::new("  ann ").map(|n| n.to_string()), Ok("ann".into()));
    }

    #[test]
    fn empty_and_blank_names_are_refused() {
        assert_eq!(UserName::new(""), Err(NameError::Empty));
        assert_eq!(UserName::new(" \u{3000} "), Err(NameError::Empty));
    }

    #[test]
    fn names_over_32_characters_are_refused_but_32_multibyte_ones_fit() {
        assert_eq!(UserName::new(&"a".repeat(33)), Err(NameError::TooLong));
        assert!(UserName::new(&"한".repeat(32)).is_ok());
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in ["a\nb", "a\tb", "a\u{1b}[31mb", "a\u{0}b", "a\u{85}b"] {
            assert_eq!(UserName::new(bad), Err(NameError::ControlCharacter), "{bad:?}");
        }
    }

    #[test]
    fn suffixed_names_still_fit() {
        let long = UserName::new(&"b".repeat(32)).expect("valid");
        let suffixed = long.with_suffix(12);
        assert_eq!(suffixed.as_str().chars().count(), 32);
        assert!(suffixed.as_str().ends_with("12"));
        assert!(UserName::new(suffixed.as_str()).is_ok());
        let spaced = UserName::new(&format!("{} x", "c".repeat(30))).expect("valid");
        assert_eq!(spaced.with_suffix(7).as_str(), format!("{}7", "c".repeat(30)));
    }
}
