//! Calls: MDN's offer-first calls, and ringing (call, accept, decline, cancel, timeout,
//! busy, glare), with messages in unexpected orders.

use super::*;

fn call(target: &str) -> Value {
    json!({"type": "call", "target": target})
}

fn accept(id: &Value) -> Value {
    json!({"type": "accept", "callId": id})
}

/// ann rings bo (both ringing-aware); returns the call id after checking what each saw.
fn ann_rings_bo(h: &mut Harness, ann: ConnId, bo: ConnId) -> Value {
    h.send(ann, call("bo")).expect("rings");
    let to_ann = h.take_calls(ann);
    let to_bo = h.take_calls(bo);
    assert_eq!(to_ann.len(), 1, "{to_ann:?}");
    assert_eq!(to_ann[0]["type"], "ringing");
    assert_eq!(to_ann[0]["target"], "bo");
    let id = to_ann[0]["callId"].clone();
    assert_eq!(to_bo, vec![json!({"type": "incoming-call", "callId": id, "name": "ann"})]);
    id
}

// ---- MDN's messages only ------------------------------------------------------------

#[test]
fn an_mdn_offer_reaches_only_the_target_with_the_senders_real_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    h.send(ann, offer("bo")).expect("relayed");
    let got = h.take_calls(bo);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "video-offer");
    assert_eq!(got[0]["name"], "ann", "the spoofed name is overwritten");
    assert_eq!(got[0]["sdp"], json!({"type": "offer", "sdp": "v=0\r\n"}));
    assert!(h.take_calls(cy).is_empty());
    assert!(h.take_calls(ann).is_empty());
}

#[test]
fn answers_and_candidates_in_an_mdn_call_are_stamped_with_the_sender() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.send(bo, candidate("ann")).expect("relayed");
    let got = h.take_calls(ann);
    assert_eq!(got.iter().map(|m| m["name"].clone()).collect::<Vec<_>>(), [json!("bo"), json!("bo")]);
    assert_eq!(got[1]["candidate"], json!({"candidate": "x"}));
}

#[test]
fn call_messages_for_someone_outside_your_call_are_refused() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    assert_eq!(h.send(cy, answer("ann")), Err(Rejected(ErrorCode::NotInCall)));
    assert_eq!(h.send(cy, candidate("ann")), Err(Rejected(ErrorCode::NotInCall)));
    h.send(ann, offer("bo")).expect("relayed");
    assert_eq!(h.send(cy, candidate("bo")), Err(Rejected(ErrorCode::NotInCall)));
    let media = json!({"type": "media-state", "target": "bo", "audio": false, "video": true});
    assert_eq!(h.send(cy, media), Err(Rejected(ErrorCode::NotInCall)));
    assert_eq!(h.send(ann, offer("cy")), Err(Rejected(ErrorCode::AlreadyInCall)));
    assert!(h.take_calls(bo).iter().all(|m| m["name"] == "ann"), "bo heard from ann only");
}

#[test]
fn media_state_reaches_only_the_partner_with_the_senders_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    h.send(ann, offer("bo")).expect("relayed");
    h.take(bo);
    h.send(ann, json!({"type": "media-state", "name": "eve", "target": "bo", "audio": false, "video": true}))
        .expect("relayed");
    assert_eq!(
        h.take_calls(bo),
        vec![json!({"type": "media-state", "name": "ann", "target": "bo", "audio": false, "video": true})]
    );
    assert!(h.take_calls(cy).is_empty());
    assert_eq!(
        h.send(ann, json!({"type": "media-state", "target": "bo", "audio": "no", "video": true})),
        Err(Rejected(ErrorCode::InvalidField))
    );
    assert_eq!(
        h.send(ann, json!({"type": "media-state", "target": "bo", "audio": true})),
        Err(Rejected(ErrorCode::MissingField))
    );
}

#[test]
fn hang_up_without_target_reaches_the_call_partner() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.take(ann);
    h.send(bo, json!({"type": "hang-up", "name": "bo", "target": null})).expect("relayed");
    assert_eq!(h.take_calls(ann), vec![json!({"type": "hang-up", "name": "bo", "target": "ann"})]);
    // The call is over: another targetless hang-up has nobody to go to.
    assert_eq!(h.send(bo, json!({"type": "hang-up"})), Err(Rejected(ErrorCode::NotInCall)));
}

#[test]
fn closing_during_a_call_sends_hang_up_to_the_partner_and_updates_the_list() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.take(bo);
    h.close(ann);
    h.settle();
    let got = h.take(bo);
    assert_eq!(got[0], json!({"type": "hang-up", "name": "ann", "target": "bo"}));
    assert_eq!(got.last().expect("a user list")["users"], json!(["bo"]));
    assert_eq!(h.hub.connection_count(), 1);
}

#[test]
fn closing_outside_a_call_sends_no_hang_up() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("relayed");
    h.take(bo);
    h.close(ann);
    h.settle();
    assert!(h.take_calls(bo).is_empty());
}

#[test]
fn an_mdn_caller_to_someone_in_a_call_hears_hang_up_at_once_and_the_call_goes_on() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.take(ann);
    h.take(bo);
    h.send(cy, offer("bo")).expect("answered busy");
    assert_eq!(h.take_calls(cy), vec![json!({"type": "hang-up", "name": "bo", "target": "cy"})]);
    assert!(h.take_calls(bo).is_empty(), "bo is not disturbed");
    h.close(cy);
    h.send(bo, json!({"type": "hang-up", "target": null})).expect("relayed");
    assert!(h.take_calls(ann).iter().any(|m| m["type"] == "hang-up" && m["name"] == "bo"));
}

#[test]
fn the_user_list_says_who_is_in_a_call() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let cy = h.user("cy");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.settle();
    let list = h.take(cy).into_iter().rev().find(|m| m["type"] == "userlist").expect("a list");
    assert_eq!(list["inCall"], json!(["ann", "bo"]), "ringing counts as busy");
    assert_eq!(list["users"], json!(["ann", "bo", "cy"]));
    h.send(bo, json!({"type": "decline", "callId": id})).expect("declined");
    h.settle();
    let list = h.take(cy).into_iter().rev().find(|m| m["type"] == "userlist").expect("a list");
    assert_eq!(list["inCall"], json!([]));
}

// ---- ringing --------------------------------------------------------------------------

#[test]
fn accepting_tells_the_caller_to_offer_and_the_call_then_carries_sdp_both_ways() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.send(bo, accept(&id)).expect("accepted");
    assert_eq!(
        h.take_calls(ann),
        vec![json!({"type": "call-accepted", "callId": id, "name": "bo", "role": "caller"})]
    );
    assert!(h.take_calls(bo).is_empty());
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.send(bo, candidate("ann")).expect("relayed");
    assert_eq!(h.take_calls(bo)[0]["type"], "video-offer");
    assert_eq!(h.take_calls(ann).len(), 2);
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("hung up");
    assert_eq!(
        h.take_calls(bo),
        vec![json!({"type": "call-ended", "callId": id, "name": "ann", "reason": "hung-up"})]
    );
}

#[test]
fn nothing_passes_before_the_callee_accepts() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    ann_rings_bo(&mut h, ann, bo);
    assert_eq!(h.send(ann, offer("bo")), Err(Rejected(ErrorCode::CallNotAccepted)));
    assert_eq!(h.send(ann, candidate("bo")), Err(Rejected(ErrorCode::CallNotAccepted)));
    assert_eq!(h.send(bo, answer("ann")), Err(Rejected(ErrorCode::CallNotAccepted)));
    assert!(h.take_calls(bo).iter().all(|m| m["type"] == "error"));
    assert!(h.take_calls(ann).iter().all(|m| m["type"] == "error"));
}

#[test]
fn declining_tells_the_caller() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.send(bo, json!({"type": "decline", "callId": id})).expect("declined");
    assert_eq!(
        h.take_calls(ann),
        vec![json!({"type": "call-ended", "callId": id, "name": "bo", "reason": "declined"})]
    );
    assert_eq!(h.send(bo, accept(&id)), Err(Rejected(ErrorCode::NoSuchCall)), "too late to accept");
}

#[test]
fn the_caller_can_cancel_while_it_rings() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("cancelled");
    assert_eq!(
        h.take_calls(bo),
        vec![json!({"type": "call-ended", "callId": id, "name": "ann", "reason": "cancelled"})]
    );
    assert_eq!(h.send(bo, accept(&id)), Err(Rejected(ErrorCode::NoSuchCall)));
}

#[test]
fn an_unanswered_call_ends_as_missed_on_both_sides_at_the_timeout() {
    let mut h =
        Harness::with_config(HubConfig { ring_timeout: Duration::from_secs(5), ..HubConfig::default() });
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.advance(Duration::from_millis(4_990));
    assert!(h.take_calls(ann).is_empty() && h.take_calls(bo).is_empty(), "still ringing");
    h.advance(Duration::from_millis(10));
    assert_eq!(
        h.take_calls(ann),
        vec![json!({"type": "call-ended", "callId": id, "name": "bo", "reason": "missed"})]
    );
    assert_eq!(
        h.take_calls(bo),
        vec![json!({"type": "call-ended", "callId": id, "name": "ann", "reason": "missed"})]
    );
    assert_eq!(h.hub.call_count(), 0);
}

#[test]
fn an_accepted_call_does_not_time_out() {
    let mut h =
        Harness::with_config(HubConfig { ring_timeout: Duration::from_secs(5), ..HubConfig::default() });
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.send(bo, accept(&id)).expect("accepted");
    h.advance(Duration::from_secs(60));
    assert!(h.take_calls(bo).is_empty());
    assert_eq!(h.hub.call_count(), 1);
}

#[test]
fn calling_someone_in_a_call_answers_busy_at_once_and_leaves_their_call_alone() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let cy = h.ringing_user("cy");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.send(cy, call("bo")).expect("answered");
    assert_eq!(h.take_calls(cy), vec![json!({"type": "call-ended", "name": "bo", "reason": "busy"})]);
    h.send(cy, call("ann")).expect("answered");
    assert_eq!(h.take_calls(cy), vec![json!({"type": "call-ended", "name": "ann", "reason": "busy"})]);
    assert!(h.take_calls(ann).is_empty() && h.take_calls(bo).is_empty(), "nobody in the call heard");
    h.send(bo, accept(&id)).expect("the first call still rings");
    assert_eq!(h.take_calls(ann)[0]["type"], "call-accepted");
}

#[test]
fn glare_two_users_calling_each_other_at_once_make_exactly_one_call() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    // Both press call; ann's arrives first.
    let id = ann_rings_bo(&mut h, ann, bo);
    h.send(bo, call("ann")).expect("answers ann's call");
    assert_eq!(
        h.take_calls(ann),
        vec![json!({"type": "call-accepted", "callId": id, "name": "bo", "role": "caller"})]
    );
    assert_eq!(
        h.take_calls(bo),
        vec![json!({"type": "call-accepted", "callId": id, "name": "ann", "role": "callee"})]
    );
    assert_eq!(h.hub.call_count(), 1);
    h.send(ann, offer("bo")).expect("the caller offers");
    h.send(bo, answer("ann")).expect("the callee answers");
}

#[test]
fn accept_and_decline_only_work_for_the_callee_of_a_ringing_call() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let cy = h.ringing_user("cy");
    let id = ann_rings_bo(&mut h, ann, bo);
    assert_eq!(h.send(ann, accept(&id)), Err(Rejected(ErrorCode::NoSuchCall)), "not the caller");
    assert_eq!(h.send(cy, accept(&id)), Err(Rejected(ErrorCode::NoSuchCall)), "not a stranger");
    assert_eq!(h.send(cy, json!({"type": "decline", "callId": id})), Err(Rejected(ErrorCode::NoSuchCall)));
    h.send(bo, accept(&id)).expect("accepted");
    assert_eq!(h.send(bo, accept(&id)), Err(Rejected(ErrorCode::NoSuchCall)), "not twice");
    assert_eq!(h.send(ann, call("cy")), Err(Rejected(ErrorCode::AlreadyInCall)));
}

#[test]
fn a_ringing_caller_reaches_an_mdn_callee_without_ringing() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.user("bo");
    h.send(ann, call("bo")).expect("connected");
    let got = h.take_calls(ann);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "call-accepted");
    assert_eq!(got[0]["role"], "caller");
    assert!(h.take_calls(bo).is_empty(), "MDN's client hears nothing until the offer");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.send(bo, json!({"type": "hang-up", "target": "ann"})).expect("hung up");
    assert_eq!(h.take_calls(ann).last().expect("an ending")["reason"], "hung-up");
}

#[test]
fn an_mdn_caller_rings_a_ringing_callee_whose_client_holds_the_offer_until_accepted() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.ringing_user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(ann, candidate("bo")).expect("relayed while ringing");
    let got = h.take_calls(bo);
    assert_eq!(
        got.iter().map(|m| m["type"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["incoming-call", "video-offer", "new-ice-candidate"]
    );
    let id = got[0]["callId"].clone();
    assert_eq!(h.send(bo, answer("ann")), Err(Rejected(ErrorCode::CallNotAccepted)));
    h.send(bo, accept(&id)).expect("accepted");
    assert!(h.take_calls(ann).is_empty(), "MDN's client made its offer already");
    h.send(bo, answer("ann")).expect("relayed");
    assert_eq!(h.take_calls(ann)[0]["type"], "video-answer");
}

#[test]
fn an_mdn_caller_hears_hang_up_when_a_ringing_callee_declines_or_does_not_answer() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.ringing_user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    let id = h.take_calls(bo)[0]["callId"].clone();
    h.send(bo, json!({"type": "decline", "callId": id})).expect("declined");
    assert_eq!(h.take_calls(ann), vec![json!({"type": "hang-up", "name": "bo", "target": "ann"})]);
    h.send(ann, offer("bo")).expect("rings again");
    h.advance(HubConfig::default().ring_timeout);
    assert_eq!(h.take_calls(ann), vec![json!({"type": "hang-up", "name": "bo", "target": "ann"})]);
}

#[test]
fn leaving_while_it_rings_ends_the_call_for_the_other_side() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let id = ann_rings_bo(&mut h, ann, bo);
    h.close(ann);
    assert_eq!(
        h.take_calls(bo),
        vec![json!({"type": "call-ended", "callId": id, "name": "ann", "reason": "disconnected"})]
    );
    assert_eq!(h.hub.poll_timeout(), h.hub.timers.first().map(|(at, _)| *at));
    h.settle();
    assert_eq!(h.hub.poll_timeout(), None, "the ring timer went with the call");
}

#[test]
fn a_name_cannot_change_during_a_call() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    ann_rings_bo(&mut h, ann, bo);
    assert_eq!(
        h.send(ann, json!({"type": "username", "name": "anna"})),
        Err(Rejected(ErrorCode::AlreadyInCall))
    );
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann", "bo"]);
}

// ---- service users (echo) ---------------------------------------------------------------

fn with_echo() -> Harness {
    Harness::with_config(HubConfig {
        services: vec![UserName::new("echo").expect("valid")],
        ..HubConfig::default()
    })
}

/// `caller` rings echo; returns the instance that rings and the call id.
fn ring_echo(h: &mut Harness, caller: ConnId) -> (ConnId, Value) {
    h.send(caller, call("echo")).expect("rings");
    let instance = *h.inbox.keys().find(|c| h.hub.is_service(**c)).expect("an instance was told");
    let incoming = h.take(instance);
    assert_eq!(incoming[0]["type"], "incoming-call");
    assert_eq!(h.take_calls(caller)[0]["type"], "ringing");
    (instance, incoming[0]["callId"].clone())
}

#[test]
fn a_service_is_listed_in_every_room_and_its_name_cannot_be_taken() {
    let mut h = with_echo();
    let ann = h.user_in("club", "ann", true);
    h.send(ann, json!({"type": "username", "name": "bob"})).expect("renamed");
    h.settle();
    assert_eq!(h.last_userlist(ann), Some(vec!["bob".into(), "echo".into()]));
    let fake = h.connect();
    h.send(fake, json!({"type": "username", "name": "echo"})).expect("signed in as another name");
    assert_eq!(h.take(fake)[1], json!({"type": "rejectusername", "id": fake.get(), "name": "echo2"}));
}

#[test]
fn every_call_to_a_service_gets_its_own_instance_which_ends_with_the_call() {
    let mut h = with_echo();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    let (for_ann, ann_call) = ring_echo(&mut h, ann);
    let (for_bo, _) = ring_echo(&mut h, bo);
    assert_ne!(for_ann, for_bo, "echo is never busy");
    assert_eq!(h.hub.service_name(for_ann), Some("echo"));
    assert_eq!(h.hub.connection_count(), 2, "instances are not connections");

    h.send(for_ann, json!({"type": "accept", "callId": ann_call})).expect("the service picks up");
    assert_eq!(h.take_calls(ann)[0]["type"], "call-accepted");
    h.send(ann, offer("echo")).expect("relayed to ann's instance only");
    assert_eq!(h.take(for_ann)[0]["name"], "ann");
    assert!(h.take(for_bo).is_empty());
    h.send(for_ann, answer("ann")).expect("the instance answers");
    assert_eq!(h.take_calls(ann)[0]["name"], "echo");

    h.send(ann, json!({"type": "hang-up", "target": "echo"})).expect("hung up");
    assert_eq!(h.take(for_ann)[0]["type"], "call-ended", "the instance hears the end");
    assert!(!h.hub.is_service(for_ann), "and is gone with its call");
    assert!(h.hub.is_service(for_bo), "bo's call is untouched");
}

#[test]
fn an_mdn_client_can_call_a_service_with_an_offer() {
    let mut h = with_echo();
    let ann = h.user("ann");
    h.send(ann, offer("echo")).expect("rings an instance");
    let instance = *h.inbox.keys().find(|c| h.hub.is_service(**c)).expect("an instance");
    let got = h.take(instance);
    assert_eq!(
        got.iter().map(|m| m["type"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["incoming-call", "video-offer"]
    );
    h.send(instance, accept(&got[0]["callId"])).expect("accepted");
    h.send(instance, answer("ann")).expect("answered");
    assert_eq!(h.take_calls(ann)[0]["type"], "video-answer");
}
