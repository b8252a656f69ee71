//! Accounts: names that belong to someone, with an argon2id password each.
//!
//! ```text
//!  duet user add ann ──► Accounts::add (name valid, no look-alike of another account,
//!                        password long enough) ──► PHC string $argon2id$v=19$m=19456,t=2,p=1$...
//!  sign-in(ann, pw) ──► Accounts::verify ──► the account, or WrongPassword (an unknown
//!                       name costs one hash too, so timing does not tell which)
//!  passwd / "sign out everywhere" ──► sessions_after = now: older sessions are refused
//! ```
//!
//! Salts and ids come from the caller (the shell's random source), so this module does no
//! I/O. The shell keeps accounts in its store (a table, readable by its owner only) and
//! holds a copy of them in [`Accounts`] to check sessions against.
//!
//! An account is one person: its `id` is random, made when it is created and never
//! reused, and every session names it. Removing `bo` and adding another `bo` makes a new
//! id, so nothing issued to the first works for the second.

use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use duet_signal::UserName;
use serde::{Deserialize, Serialize};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: hashing cost grows with it.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Every account of a server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    #[serde(default)]
    accounts: BTreeMap<String, Account>,
}

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Random, 32 hex digits, made when the account is created and never reused: what
    /// its sessions name, so a later account of the same name is someone else.
    #[serde(default)]
    pub id: String,
    /// The password's argon2id hash as a PHC string (parameters and salt included).
    pub hash: String,
    /// May make invite links from the page.
    #[serde(default)]
    pub admin: bool,
    /// When the account was made (ms since the epoch).
    pub created: u64,
    /// Sessions issued before this instant (ms since the epoch) are refused: set by a
    /// password change and by "sign out everywhere".
    #[serde(default)]
    pub sessions_after: u64,
}

/// Why an account could not be made or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("there is already an account named {0}")]
    Exists(String),
    #[error("{0} looks too much like the account {1}: people could not tell them apart")]
    LooksLike(String, String),
    #[error("there is no account named {0}")]
    NoSuchAccount(String),
    #[error("{0}")]
    BadName(#[from] duet_signal::NameError),
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
}

/// Why a sign-in failed. Deliberately one answer for "no such account" and "wrong
/// password", so a stranger cannot list account names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("wrong name or password")]
    WrongPassword,
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    Ok(())
}

/// The argon2id hash of `password` with `salt`, as a PHC string (OWASP's parameters:
/// 19 MiB, two passes, one lane).
pub fn hash_password(password: &str, salt: &[u8; 16]) -> String {
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt)
        .expect("a 16-byte salt and default parameters are valid")
        .to_string()
}

/// Whether `password` matches the PHC string `hash`. A damaged hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES
        && argon2::Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A hash no password matches, checked when the name is unknown so that a wrong name
/// takes as long as a wrong password.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZHVldCBkZWNveSBzYWx0$3sr5ZJhZIY8H1d8VGXBkDbEKqz8Y5NtO4Ie3LXbVvJI";

impl Accounts {
    /// `name` as a new account's name: valid, free, and like no other account's.
    pub fn check_new_name(&self, name: &str) -> Result<UserName, AccountError> {
        let name = UserName::new(name)?;
        if self.accounts.contains_key(name.as_str()) {
            return Err(AccountError::Exists(name.to_string()));
        }
        if let Some(other) = self.names().find(|other| other.looks_like(&name)) {
            return Err(AccountError::LooksLike(name.to_string(), other.to_string()));
        }
        Ok(name)
    }

    /// Adds an account whose name passes [`Accounts::check_new_name`]. `id` comes from the
    /// shell's random source.
    pub fn add(
        &mut self,
        name: &str,
        hash: String,
        admin: bool,
        id: [u8; 16],
        now_ms: u64,
    ) -> Result<UserName, AccountError> {
        let name = self.check_new_name(name)?;
        let account = Account { id: crate::seal::hex(&id), hash, admin, created: now_ms, sessions_after: 0 };
        self.accounts.insert(name.to_string(), account);
        Ok(name)
    }

    pub fn remove(&mut self, name: &str) -> Result<(), AccountError> {
        self.accounts.remove(name).map(|_| ()).ok_or_else(|| AccountError::NoSuchAccount(name.to_owned()))
    }

    /// A new password; every session signed in with the old one ends.
    pub fn set_password(&mut self, name: &str, hash: String, now_ms: u64) -> Result<(), AccountError> {
        let account = self.get_mut(name)?;
        account.hash = hash;
        account.sessions_after = now_ms;
        Ok(())
    }

    /// Makes or unmakes an admin.
    pub fn set_admin(&mut self, name: &str, admin: bool) -> Result<(), AccountError> {
        self.get_mut(name)?.admin = admin;
        Ok(())
    }

    /// Ends every session of the account signed in before `now_ms`.
    pub fn revoke_sessions(&mut self, name: &str, now_ms: u64) -> Result<(), AccountError> {
        self.get_mut(name)?.sessions_after = now_ms;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut Account, AccountError> {
        self.accounts.get_mut(name).ok_or_else(|| AccountError::NoSuchAccount(name.to_owned()))
    }

    /// The account `name` if `password` is its password. Costs one hash either way.
    pub fn verify(&self, name: &str, password: &str) -> Result<&Account, SignInError> {
        let account = UserName::new(name).ok().and_then(|name| self.accounts.get(name.as_str()));
        let hash = account.map_or(DECOY_HASH, |a| a.hash.as_str());
        match (verify_password(password, hash), account) {
            (true, Some(account)) => Ok(account),
            _ => Err(SignInError::WrongPassword),
        }
    }

    /// Every account's name (valid by construction; a hand-edited bad one is skipped).
    pub fn names(&self) -> impl Iterator<Item = UserName> + '_ {
        self.accounts.keys().filter_map(|name| UserName::new(name).ok())
    }

    /// Accounts by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Account)> {
        self.accounts.iter().map(|(name, account)| (name.as_str(), account))
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }
}

/// Accounts as a store holds them, by name.
impl FromIterator<(String, Account)> for Accounts {
    fn from_iter<I: IntoIterator<Item = (String, Account)>>(rows: I) -> Self {
        Self { accounts: rows.into_iter().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(password: &str) -> String {
        hash_password(password, &[9; 16])
    }

    #[test]
    fn a_password_hashes_to_argon2id_and_only_it_verifies() {
        let phc = hash("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(!verify_password("anything", DECOY_HASH));
        assert!(
            argon2::password_hash::phc::PasswordHash::new(DECOY_HASH).is_ok(),
            "the decoy parses, so checking it costs a whole hash"
        );
    }

    #[test]
    fn sign_in_needs_the_right_name_and_password_and_says_nothing_more() {
        let mut accounts = Accounts::default();
        accounts.add("ann", hash("ann's password"), false, [1; 16], 1).expect("added");
        assert!(accounts.verify("ann", "ann's password").is_ok());
        assert_eq!(accounts.verify("ann", "wrong one").err(), Some(SignInError::WrongPassword));
        assert_eq!(accounts.verify("bob", "ann's password").err(), Some(SignInError::WrongPassword));
        assert_eq!(
            accounts.verify(" ann ", "ann's password").map(|a| a.created),
            Ok(1),
            "trimmed as names are"
        );
    }

    #[test]
    fn an_account_cannot_look_like_another() {
        let mut accounts = Accounts::default();
        accounts.add("ann", hash("password1"), false, [1; 16], 1).expect("added");
        assert_eq!(
            accounts.add("ann", hash("password1"), false, [1; 16], 1),
            Err(AccountError::Exists("ann".into()))
        );
        assert!(matches!(
            accounts.add("\u{0410}nn", hash("password1"), false, [1; 16], 1),
            Err(AccountError::LooksLike(..))
        ));
        assert!(matches!(
            accounts.add("a\u{200B}nn", hash("password1"), false, [1; 16], 1),
            Err(AccountError::BadName(_))
        ));
    }

    #[test]
    fn passwords_must_be_long_enough_and_not_huge() {
        assert_eq!(check_password("short"), Err(AccountError::PasswordTooShort));
        assert_eq!(check_password("long enough"), Ok(()));
        assert_eq!(check_password(&"x".repeat(2000)), Err(AccountError::PasswordTooLong));
    }

    #[test]
    fn the_account_file_round_trips_and_refuses_unknown_fields() {
        let mut accounts = Accounts::default();
        accounts.add("ann", hash("password1"), true, [1; 16], 5).expect("added");
        let json = serde_json::to_string(&accounts).expect("serializes");
        let back: Accounts = serde_json::from_str(&json).expect("parses");
        assert!(back.get("ann").is_some_and(|a| a.admin));
        assert!(serde_json::from_str::<Accounts>(r#"{"accounts":{},"extra":1}"#).is_err());
    }
}
