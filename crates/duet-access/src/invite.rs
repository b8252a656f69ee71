//! Invite links: a signed token saying who may come in, where and until when, and the
//! book that counts its uses.
//!
//! ```text
//!  mint(spec) ──► record in the book + token = seal(Invite, {id, room?, name?, expires, uses})
//!  redeem(token, now):
//!      MAC and shape ──► Tampered
//!      not in the book ─► Unknown   (forgotten, or from another server)
//!      revoked ─────────► Revoked
//!      expired ─────────► Expired
//!      used up ─────────► UsedUp
//!      ok: used += 1 ──► the record (room, name) for a session
//! ```
//!
//! The token is a signed reference (the invite's id, nothing readable about room or
//! name): the book holds what it means, how often it was used and whether it was
//! revoked. Tokens of older versions also carried the room, name, expiry and uses; they
//! still work while the book says the same. A record is kept until its sessions could have
//! expired ([`InviteBook::prune`]), so a one-time link stays used and a revoked one's
//! sessions stay ended, across restarts (the shell keeps the book in its store, and uses
//! an invite there in one transaction after [`InviteBook::peek`] found it would let
//! someone in: a refused token costs the store nothing).

use std::collections::BTreeMap;

use duet_signal::{RoomName, UserName};
use serde::{Deserialize, Serialize};

use crate::seal::{self, Key, Purpose};
/// What an invite allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteSpec {
    /// The only room the guest may join; `None` for any.
    pub room: Option<RoomName>,
    /// The name the guest will have; `None` to let them pick.
    pub name: Option<UserName>,
    /// How long the link works (ms).
    pub ttl_ms: u64,
    /// How many people may use it.
    pub uses: u32,
}

/// Longest an invite link may work.
pub const MAX_INVITE_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// Most people one invite link may let in.
pub const MAX_INVITE_USES: u32 = 1000;

/// Why an invite cannot be made as asked; each names the option at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteSpecError {
    #[error("room: {0}")]
    Room(#[from] duet_signal::RoomError),
    #[error("name: {0}")]
    Name(#[from] duet_signal::NameError),
    #[error("name: {name} looks like the account {account}; an invite cannot carry it")]
    LooksLikeAccount { name: String, account: String },
    #[error("ttl: an invite works for at least a minute and at most 30 days")]
    Ttl,
    #[error("uses: between 1 and {MAX_INVITE_USES}")]
    Uses,
}

impl InviteSpec {
    /// What an admin asked for (from the page or `duet invite`), checked: a valid room
    /// and name (empty means none), a name that looks like none of `accounts`, a
    /// lifetime of a minute to [`MAX_INVITE_TTL`] and 1 to [`MAX_INVITE_USES`] uses.
    pub fn checked(
        room: Option<&str>,
        name: Option<&str>,
        ttl: std::time::Duration,
        uses: u32,
        accounts: &[UserName],
    ) -> Result<Self, InviteSpecError> {
        let room = room.filter(|r| !r.is_empty()).map(RoomName::new).transpose()?;
        let name = name.filter(|n| !n.trim().is_empty()).map(UserName::new).transpose()?;
        if let Some(name) = &name
            && let Some(account) = accounts.iter().find(|a| a.looks_like(name))
        {
            return Err(InviteSpecError::LooksLikeAccount {
                name: name.to_string(),
                account: account.to_string(),
            });
        }
        if ttl < std::time::Duration::from_secs(60) || ttl > MAX_INVITE_TTL {
            return Err(InviteSpecError::Ttl);
        }
        if uses == 0 || uses > MAX_INVITE_USES {
            return Err(InviteSpecError::Uses);
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Ok(Self { room, name, ttl_ms, uses })
    }
}

/// What the book knows of one invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRecord {
    /// 16 hex digits, shown by `duet invite list` and taken by `duet invite revoke`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ms since the epoch.
    pub created: u64,
    /// ms since the epoch; the link stops working then.
    pub expires: u64,
    pub uses: u32,
    #[serde(default)]
    pub used: u32,
    #[serde(default)]
    pub revoked: bool,
    /// Who made it (an account's name, or "cli").
    pub by: String,
    /// The id of the account that made it: removing that account revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_account: Option<String>,
}

impl InviteRecord {
    /// A new invite as `spec` asks, made at `now_ms` by `by` (an account's name and id,
    /// or "cli" and none). `id` comes from the shell's random source.
    pub fn new(spec: InviteSpec, id: [u8; 8], by: (&str, Option<&str>), now_ms: u64) -> Self {
        Self {
            id: seal::hex(&id),
            room: spec.room.map(|r| r.as_str().to_owned()).filter(|r| !r.is_empty()),
            name: spec.name.map(|n| n.as_str().to_owned()),
            created: now_ms,
            expires: now_ms.saturating_add(spec.ttl_ms),
            uses: spec.uses.max(1),
            used: 0,
            revoked: false,
            by: by.0.to_owned(),
            by_account: by.1.map(str::to_owned),
        }
    }

    /// Whether the invite would let one more person in at `now_ms`.
    pub fn usable(&self, now_ms: u64) -> Result<(), InviteError> {
        if self.revoked {
            return Err(InviteError::Revoked);
        }
        if self.expires <= now_ms {
            return Err(InviteError::Expired);
        }
        if self.used >= self.uses {
            return Err(InviteError::UsedUp);
        }
        Ok(())
    }

    /// The link's token: everything the invite means, signed.
    pub fn token(&self, key: &Key) -> String {
        // A reference: the room and name stay in the book, not in a link that travels
        // through chat apps and mail.
        let claims = Claims { i: self.id.clone(), r: None, n: None, e: None, u: None };
        seal::seal(key, Purpose::Invite, &serde_json::to_vec(&claims).expect("serializes"))
    }
}

/// The token's payload.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    i: String,
    /// Links made before tokens became references carry what the invite means too
    /// (readable by anyone holding the link); they still work while the book agrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<u32>,
}

/// Why a link does not let someone in; each is said in words on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("this invite link is damaged or was not made by this server")]
    Tampered,
    #[error("this invite link is not known here (it may be from another server, or long expired)")]
    Unknown,
    #[error("this invite link has been revoked")]
    Revoked,
    #[error("this invite link has expired")]
    Expired,
    #[error("this invite link has already been used")]
    UsedUp,
}

impl InviteError {
    /// A stable word for the page and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::UsedUp => "used",
        }
    }
}

/// Every invite not yet forgotten, by id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBook {
    #[serde(default)]
    invites: BTreeMap<String, InviteRecord>,
}

impl InviteBook {
    /// Records a new invite and returns it with its token. `id` comes from the shell's
    /// random source.
    pub fn mint(
        &mut self,
        key: &Key,
        spec: InviteSpec,
        id: [u8; 8],
        by: &str,
        now_ms: u64,
    ) -> (InviteRecord, String) {
        let record = InviteRecord::new(spec, id, (by, None), now_ms);
        let token = record.token(key);
        self.invites.insert(record.id.clone(), record.clone());
        (record, token)
    }

    /// The invite `token` stands for, if it would let someone in now; nothing counted.
    pub fn peek(&self, key: &Key, token: &str, now_ms: u64) -> Result<&InviteRecord, InviteError> {
        let json = seal::open(key, Purpose::Invite, token).map_err(|_| InviteError::Tampered)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| InviteError::Tampered)?;
        let record = self.invites.get(&claims.i).ok_or(InviteError::Unknown)?;
        let described = claims.e.is_some() || claims.u.is_some() || claims.r.is_some() || claims.n.is_some();
        if described
            && (&record.room, &record.name, Some(record.expires), Some(record.uses))
                != (&claims.r, &claims.n, claims.e, claims.u)
        {
            return Err(InviteError::Tampered); // signed, but not what the book says it made
        }
        record.usable(now_ms)?;
        Ok(record)
    }

    /// Uses the invite `token` once.
    pub fn redeem(&mut self, key: &Key, token: &str, now_ms: u64) -> Result<InviteRecord, InviteError> {
        let id = self.peek(key, token, now_ms)?.id.clone();
        let record = self.invites.get_mut(&id).expect("found by peek");
        record.used += 1;
        Ok(record.clone())
    }

    /// Revokes the invite `id`: its link stops working and its sessions end.
    pub fn revoke(&mut self, id: &str) -> Result<(), InviteError> {
        let record = self.invites.get_mut(id).ok_or(InviteError::Unknown)?;
        record.revoked = true;
        Ok(())
    }

    /// Whether sessions made from invite `id` may go on.
    pub fn is_live(&self, id: &str) -> bool {
        self.invites.get(id).is_some_and(|r| !r.revoked)
    }

    /// Forgets invites whose sessions have all expired: expired more than `session_ttl_ms` ago.
    pub fn prune(&mut self, now_ms: u64, session_ttl_ms: u64) {
        self.invites.retain(|_, r| r.expires.saturating_add(session_ttl_ms) > now_ms);
    }

    pub fn iter(&self) -> impl Iterator<Item = &InviteRecord> {
        self.invites.values()
    }

    pub fn get(&self, id: &str) -> Option<&InviteRecord> {
        self.invites.get(id)
    }

    pub fn len(&self) -> usize {
        self.invites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.invites.is_empty()
    }
}

/// Invites as a store holds them.
impl FromIterator<InviteRecord> for InviteBook {
    fn from_iter<I: IntoIterator<Item = InviteRecord>>(records: I) -> Self {
        Self { invites: records.into_iter().map(|r| (r.id.clone(), r)).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn key() -> Key {
        Key::new([8; 32])
    }

    fn spec(uses: u32) -> InviteSpec {
        InviteSpec { room: Some(RoomName::new("team").expect("valid")), name: None, ttl_ms: HOUR, uses }
    }

    #[test]
    fn an_invite_is_made_only_as_the_rules_allow() {
        let ann = [UserName::new("ann").expect("valid")];
        let day = std::time::Duration::from_secs(86_400);
        let spec = InviteSpec::checked(Some("team"), Some("Kim"), day, 3, &ann).expect("valid");
        assert_eq!((spec.room.as_ref().map(RoomName::as_str), spec.uses), (Some("team"), 3));
        assert_eq!(
            InviteSpec::checked(Some(""), Some(" "), day, 1, &ann).map(|s| (s.room, s.name)),
            Ok((None, None))
        );
        assert!(matches!(
            InviteSpec::checked(None, Some("\u{0430}nn"), day, 1, &ann),
            Err(InviteSpecError::LooksLikeAccount { .. })
        ));
        assert!(matches!(
            InviteSpec::checked(Some("a b"), None, day, 1, &ann),
            Err(InviteSpecError::Room(_))
        ));
        assert_eq!(InviteSpec::checked(None, None, day * 31, 1, &ann).err(), Some(InviteSpecError::Ttl));
        assert_eq!(InviteSpec::checked(None, None, day, 0, &ann).err(), Some(InviteSpecError::Uses));
    }

    #[test]
    fn a_one_time_link_works_once_then_says_it_was_used() {
        let mut book = InviteBook::default();
        let (record, token) = book.mint(&key(), spec(1), [1; 8], "cli", 0);
        assert_eq!(record.room.as_deref(), Some("team"));
        assert_eq!(book.redeem(&key(), &token, 10).map(|r| r.used), Ok(1));
        assert_eq!(book.redeem(&key(), &token, 11), Err(InviteError::UsedUp));
    }

    #[test]
    fn a_link_for_three_lets_three_in() {
        let mut book = InviteBook::default();
        let (_, token) = book.mint(&key(), spec(3), [1; 8], "cli", 0);
        assert_eq!((0..5).filter(|_| book.redeem(&key(), &token, 1).is_ok()).count(), 3);
    }

    #[test]
    fn expired_revoked_tampered_and_unknown_links_each_say_so() {
        let mut book = InviteBook::default();
        let (record, token) = book.mint(&key(), spec(5), [1; 8], "cli", 0);
        assert_eq!(book.peek(&key(), &token, HOUR).err(), Some(InviteError::Expired));
        let mut flipped = token.clone().into_bytes();
        flipped[3] ^= 1;
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(book.peek(&key(), &flipped, 1).err(), Some(InviteError::Tampered));
        let (_, elsewhere) = InviteBook::default().mint(&key(), spec(1), [2; 8], "cli", 0);
        assert_eq!(book.peek(&key(), &elsewhere, 1).err(), Some(InviteError::Unknown));
        book.revoke(&record.id).expect("known");
        assert_eq!(book.redeem(&key(), &token, 1), Err(InviteError::Revoked));
        assert!(!book.is_live(&record.id));
    }

    #[test]
    fn a_link_says_nothing_of_its_room_or_name_to_whoever_reads_it() {
        let mut book = InviteBook::default();
        let spec = InviteSpec { name: Some(UserName::new("Dr Kim").expect("valid")), ..spec(1) };
        let (_, token) = book.mint(&key(), spec, [1; 8], "cli", 0);
        let payload = token.split('.').next().expect("payload");
        use base64::Engine;
        let readable = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64");
        let readable = String::from_utf8_lossy(&readable);
        assert!(!readable.contains("team") && !readable.contains("Kim"), "{readable}");
        assert_eq!(book.redeem(&key(), &token, 1).map(|r| r.name), Ok(Some("Dr Kim".into())));
    }

    #[test]
    fn a_link_of_the_older_kind_still_works_while_the_book_agrees() {
        let mut book = InviteBook::default();
        let (record, _) = book.mint(&key(), spec(2), [1; 8], "cli", 0);
        let old = |room: &str| {
            let claims = format!(r#"{{"i":"{}","r":"{room}","e":{},"u":2}}"#, record.id, record.expires);
            seal::seal(&key(), Purpose::Invite, claims.as_bytes())
        };
        assert!(book.peek(&key(), &old("team"), 1).is_ok());
        assert_eq!(book.peek(&key(), &old("other"), 1).err(), Some(InviteError::Tampered));
    }

    #[test]
    fn every_byte_of_an_invite_flipped_is_refused() {
        let mut book = InviteBook::default();
        let (_, token) = book.mint(&key(), spec(100), [1; 8], "cli", 0);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else { continue };
            assert!(book.redeem(&key(), &changed, 1).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_used_link_is_remembered_until_its_sessions_could_have_expired() {
        let mut book = InviteBook::default();
        let (record, token) = book.mint(&key(), spec(1), [1; 8], "cli", 0);
        book.redeem(&key(), &token, 1).expect("fresh");
        let json = serde_json::to_string(&book).expect("serializes");
        let mut restarted: InviteBook = serde_json::from_str(&json).expect("parses");
        assert_eq!(restarted.redeem(&key(), &token, 2), Err(InviteError::UsedUp), "across a restart");
        restarted.prune(HOUR + 5, 10);
        assert!(restarted.get(&record.id).is_some(), "kept while its sessions may live");
        restarted.prune(HOUR + 10, 10);
        assert!(restarted.get(&record.id).is_none());
    }
}
