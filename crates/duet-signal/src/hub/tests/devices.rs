//! One account on several devices: one person in the user list, every device rings, the
//! first to accept takes the call and the others stop at once, a decline on one declines
//! the call, and the person is busy while any device is in a call.

use super::names::{account, admitted};
use super::*;

/// ann (a guest) and bo signed in on `devices` devices, inboxes emptied.
fn ann_and_bo(h: &mut Harness, devices: usize) -> (ConnId, Vec<ConnId>) {
    let ann = h.ringing_user("ann");
    let bo = (0..devices).map(|_| admitted(h, account("bo"), "bo")).collect();
    h.settle();
    h.inbox.clear();
    (ann, bo)
}

/// ann calls bo; every device of bo is told, and the call id is returned.
fn ann_calls(h: &mut Harness, ann: ConnId, bo: &[ConnId]) -> Value {
    h.send(ann, json!({"type": "call", "target": "bo"})).expect("rings");
    let id = h.take_calls(ann)[0]["callId"].clone();
    for &device in bo {
        let incoming = json!({"type": "incoming-call", "callId": id, "name": "ann"});
        assert_eq!(h.take_calls(device), vec![incoming], "{device} rings");
    }
    id
}

fn ended(id: &Value, reason: &str) -> Value {
    json!({"type": "call-ended", "callId": id, "name": "ann", "reason": reason})
}

#[test]
fn an_account_on_three_devices_is_one_person_in_the_user_list() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 3);
    h.send(ann, json!({"type": "username", "name": "ann", "ringing": true})).expect("a fresh list");
    h.settle();
    assert_eq!(h.last_userlist(ann).expect("a list"), ["ann", "bo"]);
    assert!(bo.iter().all(|&d| h.hub.is_signed_in(d)), "no device replaced another");
    assert_consistent(&h.hub);
}

#[test]
fn every_device_rings_and_the_first_to_accept_takes_the_call_while_the_others_stop() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 3);
    let id = ann_calls(&mut h, ann, &bo);
    h.send(bo[1], json!({"type": "accept", "callId": id})).expect("accepted");
    let to_ann = h.take_calls(ann);
    assert_eq!(to_ann, vec![json!({"type": "call-accepted", "callId": id, "name": "bo", "role": "caller"})]);
    for device in [bo[0], bo[2]] {
        assert_eq!(h.take_calls(device), vec![ended(&id, "answered-elsewhere")]);
    }
    let late = h.send(bo[0], json!({"type": "accept", "callId": id}));
    assert_eq!(late, Err(Rejected(ErrorCode::NoSuchCall)), "a second accept is too late");
    h.inbox.clear();
    // The offer reaches the device that answered, and its answer reaches ann.
    h.send(ann, offer("bo")).expect("relayed");
    assert_eq!(h.take_calls(bo[1])[0]["type"], "video-offer");
    assert!(h.take_calls(bo[0]).is_empty() && h.take_calls(bo[2]).is_empty());
    h.send(bo[1], answer("ann")).expect("relayed");
    assert_eq!(h.take_calls(ann)[0]["type"], "video-answer");
    assert_consistent(&h.hub);
}

#[test]
fn a_decline_on_one_device_declines_the_call_everywhere() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 2);
    let id = ann_calls(&mut h, ann, &bo);
    h.send(bo[0], json!({"type": "decline", "callId": id})).expect("declined");
    let to_ann = h.take_calls(ann);
    assert_eq!(to_ann, vec![json!({"type": "call-ended", "callId": id, "name": "bo", "reason": "declined"})]);
    assert_eq!(h.take_calls(bo[1]), vec![ended(&id, "declined")]);
    assert!(h.take_calls(bo[0]).is_empty(), "the device that declined knows");
    assert_eq!(h.hub.call_count(), 0);
    assert_consistent(&h.hub);
}

#[test]
fn cancelling_or_letting_it_ring_out_stops_every_device() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 2);
    let id = ann_calls(&mut h, ann, &bo);
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("cancelled");
    for &device in &bo {
        assert_eq!(h.take_calls(device), vec![ended(&id, "cancelled")]);
    }
    let id = ann_calls(&mut h, ann, &bo);
    h.advance(HubConfig::default().ring_timeout);
    for &device in &bo {
        assert_eq!(h.take_calls(device), vec![ended(&id, "missed")]);
    }
    assert_eq!(h.take_calls(ann)[0]["reason"], "missed");
    assert_consistent(&h.hub);
}

#[test]
fn the_person_is_busy_while_any_device_is_in_a_call() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 2);
    let id = ann_calls(&mut h, ann, &bo);
    h.send(bo[0], json!({"type": "accept", "callId": id})).expect("accepted");
    let cy = h.ringing_user("cy");
    h.inbox.clear();
    h.send(cy, json!({"type": "call", "target": "bo"})).expect("answered");
    assert_eq!(h.take_calls(cy), vec![json!({"type": "call-ended", "name": "bo", "reason": "busy"})]);
    assert!(h.take_calls(bo[1]).is_empty(), "the free device does not ring either");
    h.send(cy, json!({"type": "username", "name": "cy", "ringing": true})).expect("a fresh list");
    h.settle();
    let list = h.take(cy).into_iter().rev().find(|m| m["type"] == "userlist").expect("a list");
    assert_eq!(list["inCall"], json!(["ann", "bo"]));
    assert_consistent(&h.hub);
}

#[test]
fn a_ringing_device_that_leaves_lets_the_others_ring_on_and_the_last_one_ends_the_call() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 2);
    let id = ann_calls(&mut h, ann, &bo);
    h.close(bo[0]);
    assert!(h.take_calls(ann).is_empty(), "still ringing");
    h.send(bo[1], json!({"type": "accept", "callId": id})).expect("the other device answers");
    assert_eq!(h.take_calls(ann)[0]["type"], "call-accepted");
    h.close(bo[1]);
    assert_eq!(h.take_calls(ann)[0]["reason"], "disconnected");
    assert_consistent(&h.hub);
}

#[test]
fn a_dropped_device_resumes_its_own_session_beside_the_others() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 1);
    let (phone, token) = {
        h.tokens += 1;
        let token = format!("token-{:016}", h.tokens);
        let conn = h.hub.connect_as(RoomName::lobby(), &token, h.address, account("bo"));
        h.send(conn, json!({"type": "username", "name": "bo", "ringing": true})).expect("signed in");
        let session = h.take(conn).into_iter().find(|m| m["type"] == "session").expect("a session");
        (conn, session["token"].as_str().expect("a token").to_owned())
    };
    let id = ann_calls(&mut h, ann, &[bo[0], phone]);
    h.lose(phone);
    let back = h.hub.connect_as(RoomName::lobby(), "token-0000000000000099", h.address, account("bo"));
    let resumed = h.send(back, json!({"type": "resume", "name": "bo", "token": token}));
    assert_eq!(resumed, Ok(()), "{:?}", h.take(back));
    assert!(h.take(back).iter().any(|m| m["type"] == "resumed"));
    h.send(back, json!({"type": "accept", "callId": id})).expect("the phone answers");
    assert_eq!(h.take_calls(bo[0]), vec![ended(&id, "answered-elsewhere")]);
    assert!(h.hub.is_signed_in(bo[0]), "the laptop is still signed in");
    assert_consistent(&h.hub);
}

#[test]
fn signing_in_on_one_device_too_many_ends_the_oldest() {
    let config = HubConfig { resume_key: Some(RESUME_KEY), devices_per_account: 2, ..HubConfig::default() };
    let mut h = Harness::with_config(config);
    let (_, bo) = ann_and_bo(&mut h, 2);
    let third = admitted(&mut h, account("bo"), "bo");
    assert!(h.take(bo[0]).iter().any(|m| m["type"] == "replaced"), "the oldest is told");
    assert!(!h.hub.is_signed_in(bo[0]));
    assert!(h.hub.is_signed_in(bo[1]) && h.hub.is_signed_in(third));
    assert_consistent(&h.hub);
}

#[test]
fn a_guest_with_an_accounts_session_name_never_becomes_one_of_its_devices() {
    let mut h = Harness::new();
    let guest = h.ringing_user("bo");
    let account = admitted(&mut h, account("bo"), "bo");
    assert!(h.take(guest).iter().any(|m| m["type"] == "replaced"), "the guest makes way");
    assert!(!h.hub.is_signed_in(guest) && h.hub.is_signed_in(account));
    assert_consistent(&h.hub);
}

#[test]
fn a_voice_call_rings_every_device_as_a_voice_call_and_is_told_as_one() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 2);
    h.send(ann, json!({"type": "call", "target": "bo", "voice": true})).expect("rings");
    let id = h.take_calls(ann)[0]["callId"].clone();
    for &device in &bo {
        let incoming = json!({"type": "incoming-call", "callId": id, "name": "ann", "voice": true});
        assert_eq!(h.take_calls(device), vec![incoming]);
    }
    h.send(bo[0], json!({"type": "decline", "callId": id})).expect("declined");
    let voice = |e: &Happened| match &e.event {
        Event::CallRinging { voice, .. } | Event::CallEnded { voice, .. } => Some(*voice),
        _ => None,
    };
    assert_eq!(h.events.iter().filter_map(voice).collect::<Vec<_>>(), [true, true], "rung and ended as one");
}

#[test]
fn a_device_that_signs_in_while_the_account_is_rung_rings_too_and_can_take_the_call() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 1);
    h.send(ann, json!({"type": "call", "target": "bo", "voice": true})).expect("rings");
    let id = h.take_calls(ann)[0]["callId"].clone();
    h.inbox.clear();
    // bo's phone opens duet (from the ringing notification, say) while it rings.
    let phone = admitted(&mut h, account("bo"), "bo");
    let incoming = json!({"type": "incoming-call", "callId": id, "name": "ann", "voice": true});
    assert!(h.take(phone).contains(&incoming), "the phone rings too");
    h.send(phone, json!({"type": "accept", "callId": id})).expect("the phone answers");
    assert_eq!(h.take_calls(ann)[0]["type"], "call-accepted");
    assert_eq!(h.take_calls(bo[0]), vec![ended(&id, "answered-elsewhere")]);
    // Someone else's device, or a guest named like no account, is not rung.
    let cy = h.ringing_user("cy");
    assert!(h.take(cy).iter().all(|m| m["type"] != "incoming-call"));
    assert_consistent(&h.hub);
}

#[test]
fn an_account_declines_a_ringing_call_from_a_notification_and_only_its_own() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 2);
    let id = ann_calls(&mut h, ann, &bo);
    let number = id.as_u64().expect("a call id");
    let cy = UserName::new("cy").expect("valid");
    assert!(!h.hub.decline_for_account(h.now, &cy, number), "not cy's call");
    assert!(h.hub.decline_for_account(h.now, &UserName::new("bo").expect("valid"), number));
    h.drain();
    assert_eq!(h.take_calls(ann)[0]["reason"], "declined");
    for &device in &bo {
        assert_eq!(h.take_calls(device), vec![ended(&id, "declined")], "every device stops");
    }
    assert!(!h.hub.decline_for_account(h.now, &UserName::new("bo").expect("valid"), number), "once");
    assert_consistent(&h.hub);
}

#[test]
fn a_call_taken_whose_media_never_connected_ends_as_failed_for_both_and_for_the_shell() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h, 1);
    let id = ann_calls(&mut h, ann, &bo);
    h.send(bo[0], json!({"type": "accept", "callId": id})).expect("accepted");
    h.inbox.clear();
    h.send(ann, json!({"type": "hang-up", "target": "bo", "failed": true})).expect("ended");
    let told = json!({"type": "call-ended", "callId": id, "name": "ann", "reason": "failed"});
    assert_eq!(h.take_calls(bo[0]), vec![told]);
    let ended =
        h.events.iter().any(|e| matches!(&e.event, Event::CallEnded { reason: EndReason::Failed, .. }));
    assert!(ended, "the shell hears it failed (Recent says so)");
}
