//! Sessions: a dropped socket keeps its name and call for the resume grace period, a
//! `resume` with the session's token takes them back, and after a server restart two
//! clients that both say they were talking get their call back.

use super::*;

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
    let mut h =
        Harness::with_config(HubConfig { resume_grace: Duration::from_secs(8), ..HubConfig::default() });
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

#[test]
fn after_a_restart_two_clients_that_say_they_were_talking_get_their_call_back() {
    // A fresh hub: everything the old process knew is gone.
    let mut h = Harness::new();
    let ann = h.connect();
    let bo = h.connect();
    let cy = h.ringing_user("cy");
    let ann_token = "ann-token-0123456789";
    h.send(ann, json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"}))
        .expect("free name");
    h.send(bo, json!({"type": "resume", "name": "bo", "token": "bo-token-0123456789", "partner": "ann"}))
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
    h.send(again, resume("ann", ann_token)).expect("resumed");
}

#[test]
fn a_call_only_one_side_remembers_is_ended_after_the_grace_period() {
    let mut h = Harness::new();
    let ann = h.connect();
    let bo = h.ringing_user("bo");
    h.send(ann, json!({"type": "resume", "name": "ann", "token": "ann-token-0123456789", "partner": "bo"}))
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
fn a_detached_session_flooded_with_messages_ends_rather_than_resume_with_gaps() {
    let mut h = Harness::new();
    let (ann, token, bo) = in_a_call(&mut h);
    h.lose(ann);
    for i in 0..HELD_MAX + 1 {
        h.send(bo, json!({"type": "message", "text": format!("line {i}")})).expect("sent");
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
