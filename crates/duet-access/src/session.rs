//! Sessions: what a signed-in browser holds in its cookie, and the check every
//! WebSocket upgrade and API call makes of it.
//!
//! ```text
//!  sign-in ok ──► Session{id, who, issued, expires} ──seal──► cookie (HttpOnly, SameSite=Lax)
//!  request ──► Gate::check(cookie, now):
//!      open (MAC) ─► parse ─► expired? ─► signed out (its id listed)? ─► who still valid?
//!        account: exists, signed in after its sessions_after
//!        password: signed in with today's instance password
//!        invite: the invite is still known and not revoked
//!      ──► Admitted{admission for the hub, admin, room it is bound to}
//! ```
//!
//! Nothing is stored for a live session. What revocation needs is small and bounded:
//! the ids of sessions signed out before they expired ([`SignedOut`]), one instant per
//! account, and the invite book.

use duet_signal::{Admission, RoomName, UserName};
use serde::{Deserialize, Serialize};

use crate::accounts::Accounts;
use crate::invite::InviteBook;
use crate::seal::{self, Key, Purpose};

/// One signed-in browser (or `duet call`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Random, 32 hex digits: what signing out lists.
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "w")]
    pub who: Who,
    /// When it was issued (ms since the epoch).
    #[serde(rename = "t")]
    pub issued: u64,
    /// When it ends (ms since the epoch).
    #[serde(rename = "e")]
    pub expires: u64,
}

/// How the session was earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", deny_unknown_fields)]
pub enum Who {
    /// The instance password; `tag` names which one, so changing it ends these sessions.
    #[serde(rename = "p")]
    Password {
        #[serde(rename = "p")]
        tag: String,
    },
    /// An account's name and password.
    #[serde(rename = "a")]
    Account {
        #[serde(rename = "n")]
        name: String,
        /// The account's id ([`crate::Account::id`]): the session works for that account
        /// only, never for a later one of the same name. Sessions issued before ids
        /// existed carry none and work only for an account made before them.
        #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// An invite link: maybe bound to a room, maybe with a fixed name.
    #[serde(rename = "i")]
    Invite {
        #[serde(rename = "i")]
        id: String,
        #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

/// Why a session cookie was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session is damaged or was not made by this server")]
    Tampered,
    #[error("the session has expired: sign in again")]
    Expired,
    #[error("this session was signed out")]
    SignedOut,
    #[error("the account was removed, its password changed, or all its sessions were ended")]
    AccountRevoked,
    #[error("the server's password has changed: sign in again")]
    PasswordChanged,
    #[error("the invite this session came from was revoked")]
    InviteRevoked,
}

impl Who {
    /// What a session earned with the invite `record` is.
    pub fn invited(record: &crate::invite::InviteRecord) -> Self {
        Self::Invite { id: record.id.clone(), room: record.room.clone(), name: record.name.clone() }
    }
}

impl Session {
    /// A session for `who` from `now_ms`, lasting `ttl_ms`. `id` comes from the shell's
    /// random source.
    pub fn new(id: [u8; 16], who: Who, now_ms: u64, ttl_ms: u64) -> Self {
        Self { id: seal::hex(&id), who, issued: now_ms, expires: now_ms.saturating_add(ttl_ms) }
    }

    /// The cookie value.
    pub fn seal(&self, key: &Key) -> String {
        let json = serde_json::to_vec(self).expect("a session serializes");
        seal::seal(key, Purpose::Session, &json)
    }

    /// The session in a cookie value, if this server made it (expiry not checked).
    pub fn open(key: &Key, cookie: &str) -> Result<Self, SessionError> {
        let json = seal::open(key, Purpose::Session, cookie).map_err(|_| SessionError::Tampered)?;
        serde_json::from_slice(&json).map_err(|_| SessionError::Tampered)
    }
}

/// Sessions signed out before they expired, by id, with their expiry (after which the
/// entry can go). Ids are kept as the 128-bit numbers they spell, so a long list (a busy
/// server's month of sign-outs) costs tens of bytes an entry.
#[derive(Debug, Clone, Default)]
pub struct SignedOut {
    sessions: std::collections::HashMap<u128, u64>,
}

impl SignedOut {
    pub fn sign_out(&mut self, session: &Session) {
        self.insert(&session.id, session.expires);
    }

    /// Lists the session `id` (32 hex digits) as signed out until `expires`; an id no
    /// session could have is ignored.
    pub fn insert(&mut self, id: &str, expires: u64) {
        if let Some(id) = Self::number(id) {
            self.sessions.insert(id, expires);
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        Self::number(id).is_some_and(|id| self.sessions.contains_key(&id))
    }

    fn number(id: &str) -> Option<u128> {
        (id.len() == 32).then(|| u128::from_str_radix(id, 16).ok()).flatten()
    }

    /// Forgets sessions that have expired anyway.
    pub fn prune(&mut self, now_ms: u64) {
        self.sessions.retain(|_, expires| *expires > now_ms);
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// A session that passed every check, ready for the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub session: Session,
    /// What the hub should let this connection be.
    pub admission: Admission,
    /// May make invite links.
    pub admin: bool,
    /// The only room it may join (an invite for one room).
    pub room: Option<RoomName>,
}

impl Admitted {
    /// What the page shows as "signed in as ...": an account's or fixed name.
    pub fn name(&self) -> Option<&UserName> {
        self.admission.fixed_name()
    }

    /// Whether this session may join `room` (an invite for one room allows no other).
    pub fn may_join(&self, room: &RoomName) -> bool {
        self.room.as_ref().is_none_or(|own| own == room)
    }

    /// The account it signed in with.
    pub fn account(&self) -> Option<&str> {
        match &self.session.who {
            Who::Account { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The id of the account it signed in with (none for a session older than ids).
    pub fn account_id(&self) -> Option<&str> {
        match &self.session.who {
            Who::Account { id, .. } => id.as_deref(),
            _ => None,
        }
    }
}

/// Everything a session is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    pub key: &'a Key,
    pub accounts: &'a Accounts,
    pub invites: &'a InviteBook,
    pub signed_out: &'a SignedOut,
    /// The instance password, when there is one.
    pub password: Option<&'a str>,
}

impl Gate<'_> {
    /// The tag a password session carries: which instance password it was earned with,
    /// without the password itself.
    pub fn password_tag(key: &Key, password: &str) -> String {
        seal::hex(&key.mac(&[b"duet instance password", password.as_bytes()])[..8])
    }

    /// Whether the cookie value `cookie` is a live session at `now_ms`.
    pub fn check(&self, cookie: &str, now_ms: u64) -> Result<Admitted, SessionError> {
        self.check_session(Session::open(self.key, cookie)?, now_ms)
    }

    /// Whether `session` (from a cookie checked earlier) is still live at `now_ms`: the
    /// shell asks again while its connections last, so a sign-out, a removed account or
    /// a revoked invite ends them.
    pub fn check_session(&self, session: Session, now_ms: u64) -> Result<Admitted, SessionError> {
        let (admission, admin, room) = self.grant(&session, now_ms)?;
        Ok(Admitted { session, admission, admin, room })
    }

    /// Whether `session` still holds at `now_ms`, without building what it admits.
    pub fn holds(&self, session: &Session, now_ms: u64) -> bool {
        self.grant(session, now_ms).is_ok()
    }

    /// What `session` is let in as at `now_ms`: its admission, whether it may make
    /// invites, and the only room it may join.
    fn grant(
        &self,
        session: &Session,
        now_ms: u64,
    ) -> Result<(Admission, bool, Option<RoomName>), SessionError> {
        if session.expires <= now_ms {
            return Err(SessionError::Expired);
        }
        if self.signed_out.contains(&session.id) {
            return Err(SessionError::SignedOut);
        }
        let (admission, admin, room) = match &session.who {
            Who::Account { name, id } => {
                let account = self.accounts.get(name).ok_or(SessionError::AccountRevoked)?;
                let same_account = match id {
                    Some(id) => *id == account.id,
                    None => session.issued > account.created,
                };
                if !same_account || session.issued <= account.sessions_after {
                    return Err(SessionError::AccountRevoked);
                }
                let name = UserName::new(name).map_err(|_| SessionError::AccountRevoked)?;
                (Admission::Named { name, verified: true }, account.admin, None)
            }
            Who::Password { tag } => {
                let current = self.password.map(|p| Self::password_tag(self.key, p));
                if current.as_deref() != Some(tag.as_str()) {
                    return Err(SessionError::PasswordChanged);
                }
                (Admission::Guest, false, None)
            }
            Who::Invite { id, room, name } => {
                if !self.invites.is_live(id) {
                    return Err(SessionError::InviteRevoked);
                }
                let room =
                    room.as_deref().map(RoomName::new).transpose().map_err(|_| SessionError::Tampered)?;
                let admission = match name.as_deref().map(UserName::new).transpose() {
                    Ok(Some(name)) => Admission::Named { name, verified: false },
                    Ok(None) => Admission::Guest,
                    Err(_) => return Err(SessionError::Tampered),
                };
                (admission, false, room)
            }
        };
        Ok((admission, admin, room))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::hash_password;
    use crate::invite::InviteSpec;

    const HOUR: u64 = 3_600_000;

    struct World {
        key: Key,
        accounts: Accounts,
        invites: InviteBook,
        signed_out: SignedOut,
        password: Option<String>,
    }

    impl World {
        fn new() -> Self {
            let mut accounts = Accounts::default();
            accounts.add("ann", hash_password("ann's password", &[1; 16]), true, [1; 16], 0).expect("added");
            Self {
                key: Key::new([5; 32]),
                accounts,
                invites: InviteBook::default(),
                signed_out: SignedOut::default(),
                password: Some("instance password".into()),
            }
        }

        fn gate(&self) -> Gate<'_> {
            Gate {
                key: &self.key,
                accounts: &self.accounts,
                invites: &self.invites,
                signed_out: &self.signed_out,
                password: self.password.as_deref(),
            }
        }

        fn account_session(&self, now: u64) -> Session {
            let id = self.accounts.get("ann").map(|a| a.id.clone());
            Session::new([1; 16], Who::Account { name: "ann".into(), id }, now, HOUR)
        }
    }

    #[test]
    fn an_account_session_admits_its_verified_name_until_it_expires() {
        let world = World::new();
        let cookie = world.account_session(10).seal(&world.key);
        let admitted = world.gate().check(&cookie, 20).expect("admitted");
        assert_eq!(
            admitted.admission,
            Admission::Named { name: UserName::new("ann").expect("valid"), verified: true }
        );
        assert!(admitted.admin);
        assert_eq!(world.gate().check(&cookie, 10 + HOUR), Err(SessionError::Expired));
    }

    #[test]
    fn a_tampered_cookie_is_refused_byte_by_byte() {
        let world = World::new();
        let cookie = world.account_session(10).seal(&world.key);
        for i in 0..cookie.len() {
            let mut bytes = cookie.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else { continue };
            assert!(world.gate().check(&changed, 20).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_signed_out_session_stays_out_and_the_list_forgets_it_after_expiry() {
        let mut world = World::new();
        let session = world.account_session(10);
        world.signed_out.sign_out(&session);
        assert_eq!(world.gate().check(&session.seal(&world.key), 20), Err(SessionError::SignedOut));
        world.signed_out.prune(20);
        assert_eq!(world.signed_out.len(), 1);
        world.signed_out.prune(10 + HOUR);
        assert!(world.signed_out.is_empty());
    }

    #[test]
    fn all_sessions_of_an_account_end_with_a_new_password_or_its_removal() {
        let mut world = World::new();
        let before = world.account_session(10).seal(&world.key);
        world.accounts.revoke_sessions("ann", 15).expect("exists");
        assert_eq!(world.gate().check(&before, 20), Err(SessionError::AccountRevoked));
        let after = world.account_session(16).seal(&world.key);
        assert!(world.gate().check(&after, 20).is_ok(), "signing in again works");
        world.accounts.remove("ann").expect("exists");
        assert_eq!(world.gate().check(&after, 20), Err(SessionError::AccountRevoked));
    }

    #[test]
    fn a_removed_account_s_sessions_never_work_for_a_new_account_of_the_same_name() {
        let mut world = World::new();
        let old = world.account_session(10);
        let legacy = Session::new([2; 16], Who::Account { name: "ann".into(), id: None }, 10, HOUR);
        assert!(world.gate().check(&legacy.seal(&world.key), 20).is_ok(), "older than ids, older account");
        world.accounts.remove("ann").expect("exists");
        let hash = hash_password("another ann", &[2; 16]);
        world.accounts.add("ann", hash, true, [2; 16], 15).expect("added again");
        assert_eq!(world.gate().check(&old.seal(&world.key), 20), Err(SessionError::AccountRevoked));
        let mut old_made_later = old.clone();
        old_made_later.issued = 30;
        assert_eq!(
            world.gate().check(&old_made_later.seal(&world.key), 40),
            Err(SessionError::AccountRevoked),
            "the id decides, not the time"
        );
        assert_eq!(
            world.gate().check(&legacy.seal(&world.key), 20),
            Err(SessionError::AccountRevoked),
            "a session without an id is older than the new account"
        );
        assert!(world.gate().check(&world.account_session(30).seal(&world.key), 40).is_ok());
    }

    #[test]
    fn a_signed_out_list_keeps_only_what_a_session_id_can_be() {
        let mut list = SignedOut::default();
        let id = "0123456789abcdef0123456789abcdef";
        list.insert(id, 5);
        list.insert("not hex", 5);
        list.insert("0123", 5);
        assert!(list.contains(id) && !list.contains("not hex"));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn a_password_session_ends_when_the_instance_password_changes() {
        let mut world = World::new();
        let tag = Gate::password_tag(&world.key, "instance password");
        let cookie = Session::new([2; 16], Who::Password { tag }, 0, HOUR).seal(&world.key);
        let admitted = world.gate().check(&cookie, 1).expect("admitted");
        assert_eq!(admitted.admission, Admission::Guest);
        world.password = Some("another password".into());
        assert_eq!(world.gate().check(&cookie, 1), Err(SessionError::PasswordChanged));
        world.password = None;
        assert_eq!(world.gate().check(&cookie, 1), Err(SessionError::PasswordChanged));
    }

    #[test]
    fn an_invite_session_is_bound_to_its_room_and_name_and_ends_with_the_invite() {
        let mut world = World::new();
        let spec = InviteSpec {
            room: Some(RoomName::new("clinic").expect("valid")),
            name: Some(UserName::new("Dr Kim").expect("valid")),
            ttl_ms: HOUR,
            uses: 1,
        };
        let (record, token) = world.invites.mint(&world.key, spec, [4; 8], "ann", 0);
        let redeemed = world.invites.redeem(&world.key, &token, 1).expect("fresh");
        let who = Who::invited(&redeemed);
        let cookie = Session::new([3; 16], who, 1, HOUR).seal(&world.key);
        let admitted = world.gate().check(&cookie, 2).expect("admitted");
        assert!(admitted.may_join(&RoomName::new("clinic").expect("valid")));
        assert!(!admitted.may_join(&RoomName::new("other").expect("valid")), "a wrong room fails");
        assert!(!admitted.may_join(&RoomName::lobby()));
        assert_eq!(admitted.name().map(UserName::as_str), Some("Dr Kim"));
        assert!(!admitted.admission.is_verified(), "an invite's name is not an account");
        world.invites.revoke(&record.id).expect("known");
        assert_eq!(world.gate().check(&cookie, 2), Err(SessionError::InviteRevoked));
    }

    #[test]
    fn a_session_cookie_is_no_invite_and_an_invite_no_session() {
        let mut world = World::new();
        let cookie = world.account_session(10).seal(&world.key);
        assert!(world.invites.redeem(&world.key, &cookie, 20).is_err());
        let spec = InviteSpec { room: None, name: None, ttl_ms: HOUR, uses: 1 };
        let (_, token) = world.invites.mint(&world.key, spec, [4; 8], "ann", 0);
        assert_eq!(world.gate().check(&token, 20), Err(SessionError::Tampered));
    }
}
