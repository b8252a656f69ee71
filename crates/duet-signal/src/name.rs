//! User names: what a person is called in the user list, and when two names are too
//! alike to be online side by side.
//!
//! A [`UserName`] can only be built through [`UserName::new`], so every name the hub
//! holds is already NFC-normalised, trimmed, non-empty, at most [`UserName::MAX_CHARS`]
//! characters and free of what would let one person pass for another in a list:
//!
//! ```text
//!  raw ──► NFC ──► trim ──► control, invisible or direction-changing character? ──► refused
//!                              lone combining mark, or more than 4 stacked? ──────► refused
//!                                          │ ok
//!                                          ▼
//!                     UserName ──► skeleton(): UTS #39 skeleton of the lower-cased name
//! ```
//!
//! Two names with the same [`Skeleton`] ("ann", "Ann", "аnn" with a Cyrillic а) look the
//! same to a person; the hub lets only one of them be online in a room, and a guest
//! cannot take one that looks like an account's. Zero-width joiners and variation
//! selectors are allowed only where emoji need them (between and after pictographs).

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A validated user name (sent as the plain string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct UserName(Box<str>);

/// What a name looks like to a person: names with equal skeletons are confusable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Skeleton(Box<str>);

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
    /// The name holds a character that shows nothing (a zero-width space or joiner, a
    /// soft hyphen, a variation selector that no emoji needs, a line separator).
    #[error("the name contains an invisible character")]
    Invisible,
    /// The name holds a character that changes the direction of the text around it
    /// (bidi overrides, embeddings, isolates and marks), which can make it read as
    /// another name.
    #[error("the name contains a character that changes the text direction")]
    DirectionControl,
    /// A combining mark with no letter to sit on (at the start, after a space), or more
    /// than four stacked on one letter.
    #[error("the name contains a combining mark without a letter to go with")]
    LoneCombiningMark,
}

/// Combining marks one letter may carry: enough for Vietnamese, Thai or Devanagari,
/// too few to paint over the names around it.
const MAX_STACKED_MARKS: usize = 4;

/// Explicit bidi formatting characters (UAX #9): embeddings, overrides, isolates and
/// the implicit marks (ALM, LRM, RLM).
fn changes_direction(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show no glyph, so a name holding them looks like one without: Unicode's
/// Default_Ignorable_Code_Point (DerivedCoreProperties), the line and paragraph
/// separators, and the blank-looking characters that are neither: the Braille blank
/// (U+2800), the Hangul fillers, the musical null notehead (U+1D159), interlinear
/// annotation marks and Egyptian hieroglyph format controls.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2028}'..='\u{2029}'
            | '\u{2060}'..='\u{2065}'
            | '\u{206A}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{16FE4}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D159}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Pictographs that take an emoji presentation selector or join into sequences
/// (👨‍👩‍👧, ❤️): the blocks of Extended_Pictographic, roughly.
fn pictograph(c: char) -> bool {
    matches!(c, '\u{2190}'..='\u{21FF}' | '\u{2300}'..='\u{27BF}' | '\u{2B00}'..='\u{2BFF}' | '\u{1F000}'..='\u{1FAFF}')
}

/// Whether the invisible character at `i` is one an emoji sequence needs: a zero-width
/// joiner between two pictographs (or a pictograph and its selector), or VS15/VS16
/// right after a pictograph.
fn emoji_part(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| chars[j]);
    let after = chars.get(i + 1).copied();
    match chars[i] {
        '\u{FE0E}' | '\u{FE0F}' => before.is_some_and(pictograph),
        '\u{200D}' => {
            before.is_some_and(|c| pictograph(c) || c == '\u{FE0F}') && after.is_some_and(pictograph)
        }
        _ => false,
    }
}

/// `chars` with every run of white space (controls and line separators aside: those are
/// refused later) as
/// one U+0020.
fn fold_spaces(chars: impl Iterator<Item = char>) -> String {
    let mut folded = String::new();
    let mut in_space = false;
    for c in chars {
        let space = c.is_whitespace() && !c.is_control() && !invisible(c);
        if !(space && in_space) {
            folded.push(if space { ' ' } else { c });
        }
        in_space = space;
    }
    folded
}

impl UserName {
    /// The longest name, in Unicode scalar values. Long enough for a full name, short
    /// enough that a user list of a few hundred people stays small.
    pub const MAX_CHARS: usize = 32;

    /// Validates `raw` and returns it NFC-normalised, every run of white space (any of
    /// Unicode's spaces) folded to one U+0020, and trimmed: "Dr  Kim" and "Dr\u{3000}Kim"
    /// are the name "Dr Kim".
    pub fn new(raw: &str) -> Result<Self, NameError> {
        let normal = fold_spaces(raw.nfc());
        let trimmed = normal.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        let chars: Vec<char> = trimmed.chars().collect();
        if chars.len() > Self::MAX_CHARS {
            return Err(NameError::TooLong);
        }
        let mut stacked = 0;
        for (i, &c) in chars.iter().enumerate() {
            if changes_direction(c) {
                return Err(NameError::DirectionControl);
            }
            if invisible(c) && !emoji_part(&chars, i) {
                return Err(NameError::Invisible);
            }
            if is_combining_mark(c) {
                stacked += 1;
                let base = i.checked_sub(stacked).map(|j| chars[j]);
                if stacked > MAX_STACKED_MARKS || base.is_none_or(char::is_whitespace) {
                    return Err(NameError::LoneCombiningMark);
                }
            } else {
                stacked = 0;
            }
        }
        Ok(Self(trimmed.into()))
    }

    /// What the name looks like: the UTS #39 skeleton of its lower-cased form, so that
    /// case, look-alike letters of other scripts and invisible characters make no
    /// difference.
    pub fn skeleton(&self) -> Skeleton {
        let lower = self.0.to_lowercase();
        let once: String = unicode_security::confusable_detection::skeleton(&lower).collect();
        // A prototype may be upper case ("I" for "l"): fold again so both meet.
        let folded = once.to_lowercase();
        Skeleton(unicode_security::confusable_detection::skeleton(&folded).collect::<String>().into())
    }

    /// Whether a person could mistake this name for `other`.
    pub fn looks_like(&self, other: &UserName) -> bool {
        self.skeleton() == other.skeleton()
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

    fn name(raw: &str) -> UserName {
        UserName::new(raw).expect("a valid name")
    }

    #[test]
    fn names_that_look_the_same_share_a_skeleton() {
        let ann = name("ann");
        for alike in ["Ann", "ANN", "\u{0430}nn", "\u{0410}nn", "a\u{0578}n"] {
            assert!(ann.looks_like(&name(alike)), "{alike:?} looks like ann");
        }
        assert!(name("paypal").looks_like(&name("PAYPAl")), "l and I and l");
        assert!(!ann.looks_like(&name("anna")));
        assert!(!ann.looks_like(&name("bob")));
        assert!(!name("한결").looks_like(&name("한걸")), "different Hangul syllables differ");
    }

    #[test]
    fn names_are_nfc_normalised_so_composed_and_decomposed_are_one_name() {
        assert_eq!(name("Jose\u{0301}"), name("Jos\u{00e9}"));
        assert_eq!(name("Jose\u{0301}").as_str(), "Jos\u{00e9}");
        assert_eq!(name("\u{1100}\u{1161}").as_str(), "\u{AC00}", "Hangul jamo compose to 가");
    }

    #[test]
    fn glyphless_characters_are_invisible_even_where_unicode_calls_them_visible() {
        for bad in [
            "ann\u{2800}",
            "\u{2800}\u{2800}\u{2800}",
            "echo\u{1D159}",
            "ann\u{3164}",
            "\u{115F}ann",
            "a\u{FFA0}b",
            "a\u{FFF9}b",
            "a\u{13430}b",
        ] {
            assert_eq!(UserName::new(bad), Err(NameError::Invisible), "{bad:?}");
        }
    }

    #[test]
    fn every_run_of_spaces_is_one_space_so_spaced_names_are_the_same_name() {
        for spaced in ["Dr  Kim", "Dr\u{3000}Kim", "Dr\u{00A0}\u{2003} Kim", " Dr Kim\u{202F}"] {
            assert_eq!(UserName::new(spaced).map(|n| n.to_string()), Ok("Dr Kim".into()), "{spaced:?}");
        }
        assert_eq!(UserName::new("a\tb"), Err(NameError::ControlCharacter), "a tab is no space here");
    }

    #[test]
    fn invisible_characters_are_refused() {
        for bad in [
            "a\u{200C}nn",
            "a\u{200B}nn",
            "ann\u{FEFF}",
            "a\u{00AD}nn",
            "a\u{2060}nn",
            "ann\u{FE0F}",
            "a\u{2028}b",
            "\u{3164}",
        ] {
            assert_eq!(UserName::new(bad), Err(NameError::Invisible), "{bad:?}");
        }
    }

    #[test]
    fn emoji_keep_their_joiners_and_selectors() {
        for ok in [
            "ann \u{2764}\u{FE0F}",
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} family",
            "sun \u{2600}\u{FE0F}",
        ] {
            assert!(UserName::new(ok).is_ok(), "{ok:?}");
        }
        assert_eq!(UserName::new("a\u{200D}b"), Err(NameError::Invisible), "a joiner between letters");
    }

    #[test]
    fn direction_changing_characters_are_refused() {
        for bad in ["ann\u{202E}gpj.exe", "\u{202D}ann", "a\u{2067}nn\u{2069}", "ann\u{200F}", "\u{061C}ann"]
        {
            assert_eq!(UserName::new(bad), Err(NameError::DirectionControl), "{bad:?}");
        }
        assert!(
            UserName::new("\u{05D3}\u{05E0}\u{05D4}").is_ok(),
            "right-to-left letters themselves are fine"
        );
    }

    #[test]
    fn lone_or_piled_up_combining_marks_are_refused() {
        for bad in ["\u{0301}ann", "ann \u{0301}x", "a\u{0300}\u{0301}\u{0302}\u{0303}\u{0304}\u{0305}nn"] {
            assert_eq!(UserName::new(bad), Err(NameError::LoneCombiningMark), "{bad:?}");
        }
        for ok in ["Nguy\u{1EC5}n", "\u{0E01}\u{0E34}\u{0E48}", "\u{0928}\u{093F}\u{0936}\u{093E}"] {
            assert!(UserName::new(ok).is_ok(), "{ok:?}");
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
