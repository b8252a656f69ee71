//! Do not disturb: a person who wants quiet is rung nowhere and the caller hears
//! "unavailable"; an account's setting is one for all its devices; calls from guests can
//! be silenced alone; a setting with an end runs out by itself.

use super::names::{account, admitted};
use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn quiet(on: bool, seconds: Option<u32>, guests: bool) -> Value {
    let mut msg = json!({"type": "quiet", "on": on, "guests": guests});
    if let Some(s) = seconds {
        msg["for"] = json!(s);
    }
    msg
}

fn call(h: &mut Harness, from: ConnId, target: &str) -> Vec<Value> {
    h.send(from, json!({"type": "call", "target": target})).expect("answered");
    h.take_calls(from)
}

fn unavailable(name: &str) -> Vec<Value> {
    vec![json!({"type": "call-ended", "name": name, "reason": "unavailable"})]
}

#[test]
fn do_not_disturb_for_an_hour_rings_nowhere_then_runs_out_by_itself() {
    let mut h = Harness::new();
    let ann = admitted(&mut h, account("ann"), "ann");
    let bo = [admitted(&mut h, account("bo"), "bo"), admitted(&mut h, account("bo"), "bo")];
    h.inbox.clear();
    h.send(bo[0], quiet(true, Some(3600), false)).expect("set");
    for device in bo {
        let told = h.take_calls(device);
        assert_eq!(told, vec![json!({"type": "quiet", "on": true, "for": 3600})], "every device knows");
    }
    assert_eq!(call(&mut h, ann, "bo"), unavailable("bo"));
    for device in bo {
        assert_eq!(h.take_calls(device), unavailable("ann"), "nothing rang; the call is told for Recent");
    }
    assert_eq!(h.hub.call_count(), 0);
    h.advance(HOUR);
    assert_eq!(call(&mut h, ann, "bo")[0]["type"], "ringing", "an hour later it rings again");
    assert_consistent(&h.hub);
}

#[test]
fn silencing_guests_refuses_a_guest_and_rings_for_an_account() {
    let mut h = Harness::new();
    let guest = h.ringing_user("zed");
    let ann = admitted(&mut h, account("ann"), "ann");
    let bo = admitted(&mut h, account("bo"), "bo");
    h.send(bo, quiet(false, None, true)).expect("set");
    h.inbox.clear();
    assert_eq!(call(&mut h, guest, "bo"), unavailable("bo"));
    assert_eq!(h.take_calls(bo), unavailable("zed"));
    assert_eq!(call(&mut h, ann, "bo")[0]["type"], "ringing");
    assert_eq!(h.take_calls(bo)[0]["type"], "incoming-call");
}

#[test]
fn until_turned_off_holds_for_a_device_that_signs_in_later_and_off_rings_again() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let phone = admitted(&mut h, account("bo"), "bo");
    h.send(phone, quiet(true, None, false)).expect("set");
    let laptop = {
        h.tokens += 1;
        let token = format!("token-{:016}", h.tokens);
        let conn = h.hub.connect_as(RoomName::lobby(), &token, h.address, account("bo"));
        h.send(conn, json!({"type": "username", "name": "bo", "ringing": true})).expect("signed in");
        conn
    };
    let told: Vec<Value> = h.take(laptop).into_iter().filter(|m| m["type"] == "quiet").collect();
    assert_eq!(told, vec![json!({"type": "quiet", "on": true})], "the new device is told");
    h.inbox.clear();
    assert_eq!(call(&mut h, ann, "bo"), unavailable("bo"));
    h.send(laptop, quiet(false, None, false)).expect("off");
    assert_eq!(call(&mut h, ann, "bo")[0]["type"], "ringing");
    assert_consistent(&h.hub);
}

#[test]
fn an_accounts_kept_setting_given_back_by_the_shell_holds_before_any_device_is_online() {
    let mut h = Harness::new();
    let quiet = Quiet { dnd: DoNotDisturb::On, guests: false };
    h.hub.set_quiet(UserName::new("bo").expect("valid"), quiet);
    let ann = h.ringing_user("ann");
    let bo = admitted(&mut h, account("bo"), "bo");
    let _ = bo;
    h.inbox.clear();
    assert_eq!(call(&mut h, ann, "bo"), unavailable("bo"));
    let unavailable_event = h.events.iter().any(|e| {
        matches!(&e.event, Event::CallUnavailable { caller, callee, .. }
            if caller.name.as_str() == "ann" && callee.name.as_str() == "bo")
    });
    assert!(unavailable_event, "the shell hears it, for Recent");
}

#[test]
fn a_guests_quiet_is_its_tabs_own_and_the_shell_hears_every_change() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let zed = h.ringing_user("zed");
    h.send(zed, quiet(true, Some(60), false)).expect("set");
    assert_eq!(call(&mut h, ann, "zed"), unavailable("zed"));
    let changed = h.events.iter().filter(|e| matches!(&e.event, Event::QuietChanged { .. })).count();
    assert_eq!(changed, 1);
    h.close(zed);
    let zed = h.ringing_user("zed");
    let _ = zed;
    assert_eq!(call(&mut h, ann, "zed")[0]["type"], "ringing", "a new tab is not quiet");
}

#[test]
fn a_quiet_message_out_of_range_or_without_on_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    let ann = h.ringing_user("ann");
    let bo = h.ringing_user("bo");
    for bad in [quiet(true, Some(0), false), quiet(true, Some(700_000), false), json!({"type": "quiet"})] {
        assert!(h.send(bo, bad).is_err());
    }
    assert_eq!(call(&mut h, ann, "bo")[0]["type"], "ringing");
}
