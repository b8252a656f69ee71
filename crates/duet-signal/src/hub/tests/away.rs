//! Calling an account none of whose devices is online, but which can be rung by push:
//! the call rings for the ring time (the shell hears CallRinging and pushes), a device
//! that comes online rings and can take it, and otherwise it ends as missed; quiet,
//! busy and decline work as for any call.

use super::names::{account, admitted};
use super::*;

fn bo() -> UserName {
    UserName::new("bo").expect("valid")
}

/// ann online, bo reachable by push but with no device online.
fn ann_and_away_bo() -> (Harness, ConnId) {
    let mut h = Harness::new();
    h.hub.set_reachable([bo()]);
    let ann = h.ringing_user("ann");
    h.inbox.clear();
    (h, ann)
}

fn call_bo(h: &mut Harness, ann: ConnId) -> Vec<Value> {
    h.send(ann, json!({"type": "call", "target": "bo"})).expect("answered");
    h.take_calls(ann)
}

#[test]
fn an_account_with_no_device_online_rings_away_and_the_shell_hears_it_rung() {
    let (mut h, ann) = ann_and_away_bo();
    let told = call_bo(&mut h, ann);
    assert_eq!(
        told,
        vec![json!({"type": "ringing", "callId": told[0]["callId"], "target": "bo", "away": true})]
    );
    let rung = h.events.iter().any(
        |e| matches!(&e.event, Event::CallRinging { callee, .. } if callee.name == bo() && callee.verified),
    );
    assert!(rung, "the shell hears it and pushes to bo's devices");
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann"], "bo is not listed as online");
    h.advance(HubConfig::default().ring_timeout);
    assert_eq!(h.take_calls(ann)[0]["reason"], "missed");
    assert_eq!(h.hub.call_count(), 0);
    assert_consistent(&h.hub);
}

#[test]
fn a_device_that_comes_online_inside_the_ring_time_rings_and_takes_the_call() {
    let (mut h, ann) = ann_and_away_bo();
    let id = call_bo(&mut h, ann)[0]["callId"].clone();
    let phone = admitted(&mut h, account("bo"), "bo");
    let incoming = json!({"type": "incoming-call", "callId": id, "name": "ann"});
    assert!(h.take(phone).contains(&incoming), "the phone rings");
    assert_eq!(
        h.take_calls(ann),
        vec![json!({"type": "ringing", "callId": id, "target": "bo"})],
        "now it rings"
    );
    h.send(phone, json!({"type": "accept", "callId": id})).expect("accepted");
    assert_eq!(h.take_calls(ann)[0]["type"], "call-accepted");
    h.send(ann, offer("bo")).expect("relayed to the phone");
    assert_eq!(h.take_calls(phone)[0]["type"], "video-offer");
    assert_consistent(&h.hub);
}

#[test]
fn cancelled_or_declined_from_a_notification_it_ends_and_nothing_is_left_behind() {
    let (mut h, ann) = ann_and_away_bo();
    call_bo(&mut h, ann);
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("cancelled");
    assert_eq!(h.hub.call_count(), 0);
    assert_consistent(&h.hub);
    let id = call_bo(&mut h, ann)[0]["callId"].as_u64().expect("an id");
    assert!(h.hub.decline_for_account(h.now, &bo(), id));
    h.drain();
    assert_eq!(h.take_calls(ann)[0]["reason"], "declined");
    assert_eq!(h.hub.connection_count(), 1, "only ann's socket");
    assert_consistent(&h.hub);
}

#[test]
fn a_second_caller_finds_an_away_account_busy_and_quiet_is_kept_while_away() {
    let (mut h, ann) = ann_and_away_bo();
    call_bo(&mut h, ann);
    let cy = h.ringing_user("cy");
    h.inbox.clear();
    h.send(cy, json!({"type": "call", "target": "bo"})).expect("answered");
    assert_eq!(h.take_calls(cy), vec![json!({"type": "call-ended", "name": "bo", "reason": "busy"})]);
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("cancelled");
    h.hub.set_quiet(bo(), Quiet { dnd: DoNotDisturb::On, guests: false });
    h.inbox.clear();
    h.send(cy, json!({"type": "call", "target": "bo"})).expect("answered");
    assert_eq!(h.take_calls(cy), vec![json!({"type": "call-ended", "name": "bo", "reason": "unavailable"})]);
    assert_eq!(h.hub.call_count(), 0);
    assert_consistent(&h.hub);
}

#[test]
fn an_account_nobody_can_reach_is_still_no_such_user() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let refused = h.send(ann, json!({"type": "call", "target": "bo"}));
    assert_eq!(refused, Err(Rejected(ErrorCode::NoSuchUser)));
}
