//! Names people can trust: no two look-alikes online in a room, accounts keep their
//! names, and only account holders are marked verified.

use super::*;

/// A connection admitted as `admission`, signed in asking for `asked`, inbox emptied.
pub(super) fn admitted(h: &mut Harness, admission: Admission, asked: &str) -> ConnId {
    h.tokens += 1;
    let token = format!("token-{:016}", h.tokens);
    let conn = h.hub.connect_as(RoomName::lobby(), &token, h.address, admission);
    h.drain();
    h.send(conn, json!({"type": "username", "name": asked, "ringing": true})).expect("signed in");
    h.settle();
    conn
}

pub(super) fn account(name: &str) -> Admission {
    Admission::Named { name: UserName::new(name).expect("valid"), verified: true }
}

fn granted(h: &mut Harness, conn: ConnId) -> Option<String> {
    h.take(conn)
        .into_iter()
        .find(|m| m["type"] == "rejectusername")
        .map(|m| m["name"].as_str().expect("a name").to_owned())
}

#[test]
fn a_look_alike_of_an_online_name_gets_a_suffix_instead() {
    let mut h = Harness::new();
    h.user("ann");
    for (asked, given) in [("Ann", "Ann2"), ("\u{0430}nn", "\u{0430}nn3"), ("ANN", "ANN4")] {
        let conn = h.connect();
        h.send(conn, json!({"type": "username", "name": asked})).expect("signed in");
        assert_eq!(granted(&mut h, conn).as_deref(), Some(given), "{asked:?}");
    }
    h.settle();
    assert_consistent(&h.hub);
}

#[test]
fn an_invisible_character_cannot_make_a_second_ann() {
    let mut h = Harness::new();
    h.user("ann");
    let conn = h.connect();
    let refused = h.send(conn, json!({"type": "username", "name": "a\u{200C}nn"}));
    assert_eq!(refused, Err(Rejected(ErrorCode::InvalidName)));
    assert!(h.take(conn).iter().any(|m| m["code"] == "invalid-name"));
    assert!(!h.hub.is_signed_in(conn));
}

#[test]
fn a_guest_cannot_take_an_accounts_name_or_a_look_alike_even_when_the_account_is_away() {
    let mut h = Harness::new();
    h.hub.reserve_names([UserName::new("ann").expect("valid")]);
    for asked in ["ann", "Ann", "\u{0430}nn"] {
        let conn = h.connect();
        h.send(conn, json!({"type": "username", "name": asked})).expect("signed in");
        let given = granted(&mut h, conn).expect("renamed");
        assert_ne!(
            UserName::new(&given).expect("valid").skeleton(),
            UserName::new("ann").expect("valid").skeleton()
        );
        h.close(conn);
    }
}

#[test]
fn an_account_always_gets_its_own_name_and_a_look_alike_guest_makes_way() {
    let mut h = Harness::new();
    let guest = h.ringing_user("Ann");
    let watcher = h.user("bo");
    h.hub.reserve_names([UserName::new("ann").expect("valid")]);
    let ann = admitted(&mut h, account("ann"), "anything");
    assert!(h.take(guest).iter().any(|m| m["type"] == "replaced"), "the guest is told");
    let list = h.take(watcher).into_iter().rev().find(|m| m["type"] == "userlist").expect("a list");
    assert_eq!(strings(&list["users"]), ["ann", "bo"]);
    assert_eq!(strings(&list["verified"]), ["ann"], "only the account holder is verified");
    assert!(h.take(ann).iter().all(|m| m["type"] != "rejectusername"));
    assert_consistent(&h.hub);
}

#[test]
fn the_verified_mark_cannot_be_had_by_a_name() {
    let mut h = Harness::new();
    let watcher = h.connect();
    h.send(watcher, json!({"type": "username", "name": "bo"})).expect("signed in");
    h.user("ann ✓ verified");
    h.send(watcher, json!({"type": "username", "name": "bo"})).expect("a fresh list");
    h.settle();
    let list = h.take(watcher).into_iter().rev().find(|m| m["type"] == "userlist").expect("a list");
    assert!(strings(&list["verified"]).is_empty());
}

#[test]
fn a_fixed_name_cannot_be_changed_by_renaming() {
    let mut h = Harness::new();
    let ann = admitted(&mut h, account("ann"), "ann");
    h.inbox.clear();
    let refused = h.send(ann, json!({"type": "username", "name": "zed"}));
    assert_eq!(refused, Err(Rejected(ErrorCode::InvalidName)));
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann"]);
}

#[test]
fn a_named_invite_cannot_carry_an_accounts_name() {
    let mut h = Harness::new();
    h.hub.reserve_names([UserName::new("ann").expect("valid")]);
    let conn = h.hub.connect_as(
        RoomName::lobby(),
        "token-0000000000000099",
        h.address,
        Admission::Named { name: UserName::new("ANN").expect("valid"), verified: false },
    );
    let refused = h.send(conn, json!({"type": "username", "name": "ANN"}));
    assert_eq!(refused, Err(Rejected(ErrorCode::InvalidName)));
    assert!(h.hub.users_in(&RoomName::lobby()).is_empty());
}

/// The resume token `Ann` got from a server that has since restarted.
fn token_from_before_a_restart() -> Value {
    let mut h = Harness::new();
    let conn = h.connect();
    h.send(conn, json!({"type": "username", "name": "Ann", "ringing": true})).expect("signed in");
    h.take(conn).into_iter().find(|m| m["type"] == "session").expect("a session")["token"].clone()
}

#[test]
fn after_a_restart_a_guest_cannot_resume_a_name_that_now_belongs_to_an_account() {
    let token = token_from_before_a_restart();
    let mut restarted = Harness::new();
    restarted.hub.reserve_names([UserName::new("ann").expect("valid")]);
    let again = restarted.connect();
    let refused = restarted.send(again, json!({"type": "resume", "name": "Ann", "token": token}));
    assert_eq!(refused, Err(Rejected(ErrorCode::CannotResume)));
}

#[test]
fn resuming_a_look_alike_of_someone_online_is_refused() {
    let token = token_from_before_a_restart();
    let mut restarted = Harness::new();
    restarted.user("ann");
    let again = restarted.connect();
    let refused = restarted.send(again, json!({"type": "resume", "name": "Ann", "token": token}));
    assert_eq!(refused, Err(Rejected(ErrorCode::CannotResume)));
    assert_consistent(&restarted.hub);
}

#[test]
fn an_account_session_is_resumed_only_by_a_socket_admitted_as_that_account() {
    let mut h = Harness::new();
    h.hub.reserve_names([UserName::new("ann").expect("valid")]);
    let ann = h.hub.connect_as(RoomName::lobby(), "token-0000000000000042", h.address, account("ann"));
    h.send(ann, json!({"type": "username", "name": "ann", "ringing": true})).expect("signed in");
    let token = h.take(ann).into_iter().find(|m| m["type"] == "session").expect("a session")["token"].clone();
    h.lose(ann);
    let guest = h.connect();
    let refused = h.send(guest, json!({"type": "resume", "name": "ann", "token": token}));
    assert_eq!(
        refused,
        Err(Rejected(ErrorCode::CannotResume)),
        "a guest socket cannot carry the verified session"
    );
    let again = h.hub.connect_as(RoomName::lobby(), "token-0000000000000043", h.address, account("ann"));
    assert_eq!(h.send(again, json!({"type": "resume", "name": "ann", "token": token})), Ok(()));
    h.settle();
    let list = h.take(again).into_iter().rev().find(|m| m["type"] == "userlist").expect("a list");
    assert_eq!(strings(&list["verified"]), ["ann"]);
    assert_consistent(&h.hub);
}
