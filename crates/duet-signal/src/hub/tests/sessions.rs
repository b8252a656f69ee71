//! Sessions: a dropped socket keeps its name and call for the resume grace period, a
//! `resume` with the session's token takes them back, and after a server restart two
//! clients that both say they were talking get their call back.

use super::*;
use crate::limit::Rate;

/// A ringing-aware user's resume token, from the `session` message it got at sign-in.
fn signed_in_with_token(h: &mut Harness, name: &str) -> (ConnId, String) {
    let conn = h.connect();
    h.send(conn, json!({"type": "username", "name": name, "ringing": true})).expect("signed in");
    let session = h.take(conn).into_iter().find(|m| m["type"] == "session").expect("a session message");
    assert_eq!(session["name"], name);
    h.settle();
    h.inbox.clear();
    (conn, session["token"].as_str().expect("a token").to_owned())
}

fn resume(name: &str, token: &str) -> Value {
    json!({"type": "resume", "name": name, "token": token})
}

/// ann (caller) and bo in an accepted call.
fn in_a_call(h: &mut Harness) -> (ConnId, String, ConnId) {
    let (ann, token) = signed_in_with_token(h, "ann");
    let bo = h.ringing_user("bo");
    h.send(ann, json!({"type": "call", "target": "bo"})).expect("rings");
    let id = h.take_calls(bo)[0]["callId"].clone();
    h.send(bo, json!({"type": "accept", "callId": id})).expect("accepted");
    h.inbox.clear();
    (ann, token, bo)
}

#[test]
fn a_dropped_socket_keeps_its_name_and_call_and_resume_takes_them_back_with_what_was_missed() {
    let mut h = Harness::new();
    let (ann, token, bo) = in_a_call(&mut h);
    h.lose(ann);
    h.advance(Duration::from_secs(10));
    assert!(h.take_calls(bo).is_empty(), "bo is not told anything yet");
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann", "bo"]);
    h.send(bo, offer("ann")).expect("held for ann (an ICE restart, say)");
    h.send(bo, json!({"type": "message", "text": "you there?"})).expect("held too");

    let again = h.connect();
    h.take(again);
    h.send(again, resume("ann", &token)).expect("resumed");
    let got = h.take(again);
    let kinds: Vec<_> = got.iter().map(|m| m["type"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, ["resumed", "video-offer", "message", "userlist"]);
    assert_eq!(got[0], json!({"type": "resumed", "name": "ann", "token": token, "partner": "bo"}));
    assert_eq!(got[1]["name"], "bo");
    // The call goes on from the new socket.
    h.send(again, answer("bo")).expect("relayed");
    assert!(h.take_calls(bo).iter().any(|m| m["type"] == "video-answer" && m["name"] == "ann"));
    h.advance(Duration::from_secs(60));
    assert_eq!(h.hub.call_count(), 1, "the grace timer was cancelled");
    assert_eq!(
        h.send(ann, json!({"type": "message", "text": "ghost"})),
        Ok(()),
        "the old socket is not heard"
    );
}

#[test]
fn a_session_not_resumed_in_time_ends_its_call_and_frees_its_name() {
    let mut h = Harness::with_config(HubConfig {
        resume_grace: Duration::from_secs(8),
        resume_key: Some(RESUME_KEY),
        ..HubConfig::default()
    });
    let (ann, token, bo) = in_a_call(&mut h);
    h.lose(ann);
    h.advance(Duration::from_millis(7_999));
    assert!(h.take_calls(bo).is_empty());
    h.advance(Duration::from_millis(1));
    let got = h.take_calls(bo);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "call-ended");
    assert_eq!(got[0]["reason"], "disconnected");
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["bo"]);
    // The token still takes the free name, but the call is gone.
    let again = h.connect();
    h.send(again, resume("ann", &token)).expect("the name is free");
    assert_eq!(h.take(again)[1]["partner"], Value::Null);
}

#[test]
fn a_clean_close_ends_the_session_at_once() {
    let mut h = Harness::new();
    let (ann, _, bo) = in_a_call(&mut h);
    h.close(ann);
    assert_eq!(h.take_calls(bo)[0]["reason"], "disconnected");
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["bo"]);
}

#[test]
fn an_mdn_client_that_drops_is_gone_at_once() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.take(bo);
    h.lose(ann);
    assert_eq!(h.take_calls(bo), vec![json!({"type": "hang-up", "name": "ann", "target": "bo"})]);
}

#[test]
fn resume_with_a_wrong_token_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    let (ann, _, bo) = in_a_call(&mut h);
    h.lose(ann);
    let thief = h.connect();
    h.take(thief);
    assert_eq!(
        h.send(thief, resume("ann", "not-the-right-token-at-all")),
        Err(Rejected(ErrorCode::CannotResume))
    );
    assert!(!h.hub.is_signed_in(thief));
    assert!(h.take_calls(bo).is_empty());
    // ann's own client can still come back.
    assert_eq!(h.hub.call_count(), 1);
}

#[test]
fn resuming_from_a_second_socket_replaces_the_first() {
    let mut h = Harness::new();
    let (ann, token, bo) = in_a_call(&mut h);
    // The network changed; the old socket looks alive to the server (half open).
    let again = h.connect();
    h.take(again);
    h.send(again, resume("ann", &token)).expect("taken over");
    assert_eq!(h.take(ann), vec![json!({"type": "replaced"})]);
    h.send(bo, candidate("ann")).expect("relayed");
    assert_eq!(h.take_calls(again).last().expect("the candidate")["type"], "new-ice-candidate");
    assert!(h.take(ann).is_empty());
    // When the old socket finally closes, nothing happens to the session.
    h.close(ann);
    assert!(h.take_calls(bo).is_empty());
    assert_eq!(h.hub.call_count(), 1);
}

/// `token` with its first character changed.
fn tampered(token: &str) -> String {
    let first = if token.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &token[1..])
}

/// The token a hub with the same resume key issued to `name` in the lobby before it
/// restarted (another `Hub`, as a restarted process is).
fn token_from_before_the_restart(name: &str) -> String {
    let mut before = Harness::new();
    before.tokens = 1000; // another process's nonces
    signed_in_with_token(&mut before, name).1
}

#[test]
fn after_a_restart_two_clients_that_say_they_were_talking_get_their_call_back() {
    let (ann_token, bo_token) = (token_from_before_the_restart("ann"), token_from_before_the_restart("bo"));
    // A fresh hub: everything the old process knew is gone.
    let mut h = Harness::new();
    let ann = h.connect();
    let bo = h.connect();
    let cy = h.ringing_user("cy");
    h.send(ann, json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"}))
        .expect("free name");
    h.send(bo, json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"}))
        .expect("free name");
    assert_eq!(h.hub.call_count(), 1);
    assert!(h.take_calls(ann).iter().all(|m| m["type"] != "call-ended"));
    // The call is real again: a third caller gets busy, and hang-up reaches the partner.
    h.send(cy, json!({"type": "call", "target": "bo"})).expect("busy");
    assert_eq!(h.take_calls(cy)[0]["reason"], "busy");
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("hung up");
    assert_eq!(h.take_calls(bo).last().expect("an ending")["reason"], "hung-up");
    // And ann's token now resumes ann's session.
    h.lose(ann);
    let again = h.connect();
    h.send(again, resume("ann", &ann_token)).expect("resumed");
}

#[test]
fn after_a_restart_a_stranger_cannot_claim_a_name_and_call_without_a_token_issued_for_it() {
    let bo_token = token_from_before_the_restart("bo");
    let mut h = Harness::new();
    let bo = h.connect();
    h.send(bo, json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"}))
        .expect("bo's own");
    h.take(bo);
    let mallory = h.connect();
    h.take(mallory);
    let guesses = [
        "ann-token-0123456789".to_owned(),
        bo_token.clone(), // a real token, for another name
        tampered(&token_from_before_the_restart("ann")),
        token_from_before_the_restart("ann")[..32].to_owned(), // the MAC alone
    ];
    for token in &guesses {
        let claim = json!({"type": "resume", "name": "ann", "token": token, "partner": "bo"});
        assert_eq!(h.send(mallory, claim), Err(Rejected(ErrorCode::CannotResume)), "{token}");
    }
    assert!(!h.hub.is_signed_in(mallory));
    assert_eq!(h.hub.call_count(), 0, "bo's claim is still waiting for the real ann");
    // A token for ann under another key (another server) does not work either.
    let mut elsewhere = Harness::with_config(HubConfig { resume_key: Some([9; 32]), ..HubConfig::default() });
    let (_, foreign) = signed_in_with_token(&mut elsewhere, "ann");
    let claim = json!({"type": "resume", "name": "ann", "token": foreign, "partner": "bo"});
    assert_eq!(h.send(mallory, claim), Err(Rejected(ErrorCode::CannotResume)));
    // The real ann comes back and gets her call.
    let ann = h.connect();
    let claim = json!({"type": "resume", "name": "ann", "token": token_from_before_the_restart("ann"), "partner": "bo"});
    h.send(ann, claim).expect("ann's own token");
    assert_eq!(h.hub.call_count(), 1);
}

#[test]
fn without_a_resume_key_a_free_name_cannot_be_resumed() {
    let mut h = Harness::with_config(HubConfig::default());
    let (ann, token) = signed_in_with_token(&mut h, "ann");
    h.close(ann);
    let again = h.connect();
    assert_eq!(h.send(again, resume("ann", &token)), Err(Rejected(ErrorCode::CannotResume)));
    // A live session still resumes with its token.
    let (ann, token) = signed_in_with_token(&mut h, "ann");
    h.lose(ann);
    let again = h.connect();
    h.send(again, resume("ann", &token)).expect("resumed");
}

#[test]
fn a_service_name_cannot_be_taken_by_resuming_it() {
    let mut h = Harness::with_config(HubConfig {
        resume_key: Some(RESUME_KEY),
        services: vec![UserName::new("echo").expect("valid")],
        ..HubConfig::default()
    });
    // Even a token this hub signed for "echo" (made by hand with its key) is refused.
    let token =
        h.hub.mint_token(&RoomName::lobby(), &UserName::new("echo").expect("valid"), "0123456789abcdef");
    let mallory = h.connect();
    assert_eq!(h.send(mallory, resume("echo", &token)), Err(Rejected(ErrorCode::CannotResume)));
    assert!(!h.hub.is_signed_in(mallory));
}

#[test]
fn a_call_only_one_side_remembers_is_ended_after_the_grace_period() {
    let mut h = Harness::new();
    let ann = h.connect();
    let bo = h.ringing_user("bo");
    let token = token_from_before_the_restart("ann");
    h.send(ann, json!({"type": "resume", "name": "ann", "token": token, "partner": "bo"}))
        .expect("free name");
    h.advance(HubConfig::default().resume_grace);
    let got = h.take_calls(ann);
    assert_eq!(
        got.last().expect("an ending"),
        &json!({"type": "call-ended", "name": "bo", "reason": "disconnected"})
    );
    assert_eq!(h.hub.call_count(), 0);
    assert!(h.take_calls(bo).is_empty());
}

#[test]
fn a_detached_session_flooded_with_call_messages_ends_rather_than_resume_with_gaps() {
    let mut h = Harness::new();
    let (ann, token, bo) = in_a_call(&mut h);
    h.lose(ann);
    for _ in 0..crate::hub::sessions::HELD_MAX + 1 {
        h.send(bo, candidate("ann")).expect("sent");
    }
    h.advance(Duration::ZERO);
    assert_eq!(h.take_calls(bo).iter().filter(|m| m["type"] == "call-ended").count(), 1);
    let again = h.connect();
    h.send(again, resume("ann", &token)).expect("the name is free, the call is not back");
    assert_eq!(h.hub.call_count(), 0);
}

#[test]
fn a_signed_in_connection_cannot_resume_another_session() {
    let mut h = Harness::new();
    let (ann, token) = signed_in_with_token(&mut h, "ann");
    let bo = h.ringing_user("bo");
    h.lose(ann);
    assert_eq!(h.send(bo, resume("ann", &token)), Err(Rejected(ErrorCode::CannotResume)));
}

/// Chat is never rate-limited in these tests, so what is held is all that is tested.
fn unlimited_chat() -> HubConfig {
    let limits = Limits {
        frames: Rate::per_second(100_000, 100_000),
        chat: Rate::per_second(100_000, 100_000),
        chat_per_address: Rate::per_second(100_000, 100_000),
    };
    HubConfig { resume_key: Some(RESUME_KEY), limits, ..HubConfig::default() }
}

#[test]
fn a_detached_session_survives_a_thousand_chat_lines_and_keeps_its_call_messages() {
    let mut h = Harness::with_config(unlimited_chat());
    let (ann, token, bo) = in_a_call(&mut h);
    let mallory = h.ringing_user("mallory");
    h.lose(ann);
    h.send(bo, offer("ann")).expect("held: an ICE restart");
    for i in 0..1000 {
        h.send(mallory, json!({"type": "message", "text": format!("spam {i} {}", "x".repeat(500))}))
            .expect("sent");
        if i == 500 {
            h.send(bo, candidate("ann")).expect("held in the middle of the flood");
        }
    }
    h.advance(Duration::from_secs(1));
    assert!(h.take_calls(bo).iter().all(|m| m["type"] != "call-ended"), "bo's call goes on");
    let again = h.connect();
    h.take(again);
    h.send(again, resume("ann", &token)).expect("resumed");
    let got = h.take_calls(again);
    assert_eq!(got[0]["type"], "resumed");
    assert_eq!(got[0]["partner"], "bo");
    let kinds: Vec<&str> = got.iter().filter_map(|m| m["type"].as_str()).collect();
    assert!(kinds.contains(&"video-offer") && kinds.contains(&"new-ice-candidate"), "{kinds:?}");
    let chat: Vec<&str> =
        got.iter().filter(|m| m["type"] == "message").filter_map(|m| m["text"].as_str()).collect();
    assert!(!chat.is_empty() && chat.len() <= 32, "the newest lines are kept: {}", chat.len());
    assert!(chat.last().expect("some").starts_with("spam 999 "), "the newest line is the last held");
    assert_eq!(h.hub.call_count(), 1);
}

#[test]
fn a_session_ends_for_the_shell_when_it_is_over_not_while_it_may_come_back() {
    let mut h = Harness::new();
    let (ann, token, _bo) = in_a_call(&mut h);
    let session = h.hub.session_of(ann).expect("a session");
    let ended = |h: &mut Harness| -> Vec<(u64, SessionEnd)> {
        std::mem::take(&mut h.events)
            .into_iter()
            .filter_map(|e| match e.event {
                Event::SessionEnded { who, why, .. } => Some((who.session, why)),
                _ => None,
            })
            .collect()
    };
    ended(&mut h);
    h.lose(ann);
    assert_eq!(ended(&mut h), [], "a dropped socket may come back");
    let again = h.connect();
    h.send(again, resume("ann", &token)).expect("resumed");
    assert_eq!(h.hub.session_of(again), Some(session), "the session keeps its id across sockets");
    h.lose(again);
    h.advance(HubConfig::default().resume_grace);
    assert_eq!(ended(&mut h), [(session, SessionEnd::Lost)], "not resumed in time: over");
}

#[test]
fn a_room_moved_to_another_node_is_forgotten_silently_and_its_people_resume_there() {
    let mut h = Harness::new();
    let lobby_ann = h.ringing_user("ann");
    let ann = h.user_in("family", "ann", true);
    let bo = h.user_in("family", "bo", true);
    h.send(ann, json!({"type": "call", "target": "bo"})).expect("rings");
    h.lose(bo); // bo's session is held, waiting for a resume
    h.inbox.clear();
    let family = RoomName::new("family").expect("a room");
    assert!(h.hub.rooms_in_use().contains(&family));
    let open = h.hub.evict_room(h.now, &family);
    h.drain();
    assert_eq!(open, vec![ann], "the sockets to close; bo's had dropped already");
    assert!(h.inbox.is_empty(), "nobody is told anything: {:?}", h.inbox);
    assert_eq!(h.hub.rooms_in_use(), [RoomName::lobby()].into());
    assert_eq!(h.hub.call_count(), 0);
    assert!(h.hub.users_in(&family).is_empty());
    // No timer of the room is left to fire (ring timeout, bo's grace, user lists).
    h.advance(Duration::from_secs(120));
    assert!(h.take_calls(lobby_ann).is_empty());
    // The room's new owner (another hub with the same key) lets them resume.
    let mut owner = Harness::new();
    let token = token_from_before_the_restart("ann");
    let again = owner.connect();
    owner.send(again, resume("ann", &token)).expect("resumed");
    assert!(owner.take(again).iter().any(|m| m["type"] == "resumed"));
}

#[test]
fn after_a_restart_what_you_send_a_partner_not_back_yet_is_dropped_without_ending_your_call() {
    let (ann_token, bo_token) = (token_from_before_the_restart("ann"), token_from_before_the_restart("bo"));
    let mut h = Harness::new();
    let ann = h.connect();
    h.send(ann, json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"}))
        .expect("free name");
    h.inbox.clear();
    // ann's page sends bo a candidate before bo's page is back: no `no-such-user` (a page
    // takes that for the end of its call), nothing at all.
    let candidate = json!({"type": "new-ice-candidate", "target": "bo", "candidate": {"candidate": "x"}});
    assert_eq!(h.send(ann, candidate), Err(Rejected(ErrorCode::NotInCall)));
    assert!(h.take(ann).is_empty());
    let bo = h.connect();
    h.send(bo, json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"}))
        .expect("free name");
    assert_eq!(h.hub.call_count(), 1, "the call is known again");
}

#[test]
fn after_a_restart_hanging_up_before_the_partner_is_back_reaches_them_as_they_resume() {
    let (ann_token, bo_token) = (token_from_before_the_restart("ann"), token_from_before_the_restart("bo"));
    let mut h = Harness::new();
    let ann = h.connect();
    h.send(ann, json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"}))
        .expect("free name");
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("no error: the call is over for ann");
    h.advance(Duration::from_secs(5));
    let bo = h.connect();
    h.send(bo, json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"}))
        .expect("free name");
    assert_eq!(h.hub.call_count(), 0, "ann hung up: no call comes back");
    // bo hears it at once, not after the grace period, and as ann's hang-up.
    let ending = h.take_calls(bo).pop().expect("bo is told");
    assert_eq!((ending["reason"].as_str(), ending["name"].as_str()), (Some("hung-up"), Some("ann")));
    // Nothing is left waiting: no late ending for either, and they can call again.
    h.inbox.clear();
    h.advance(Duration::from_secs(30));
    assert!(h.take_calls(ann).is_empty() && h.take_calls(bo).is_empty());
    h.send(bo, json!({"type": "call", "target": "ann"})).expect("a new call");
    assert_eq!(h.hub.call_count(), 1);
}

#[test]
fn after_a_restart_a_hang_up_whose_partner_never_returns_ends_quietly() {
    let ann_token = token_from_before_the_restart("ann");
    let mut h = Harness::new();
    let ann = h.connect();
    h.send(ann, json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"}))
        .expect("free name");
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("no error: the call is over for ann");
    h.inbox.clear();
    h.advance(Duration::from_secs(30));
    assert!(h.take_calls(ann).is_empty(), "ann ended it herself: no 'bo disconnected' later");
}
