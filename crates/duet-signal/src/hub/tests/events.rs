//! What the hub tells the shell happened: for every way a call can go, exactly the
//! events a call history needs, in order, with the times they happened; sessions from
//! sign-in to every way they end.

use super::*;
use std::collections::HashSet;

/// The events since the last call, as lines a person reads (durations in whole seconds
/// of the virtual clock: how long a call rang, how long it was talked).
fn story(h: &mut Harness) -> Vec<String> {
    let mut rang_at: HashMap<u64, Instant> = HashMap::new();
    let secs = |from: Instant, to: Instant| to.duration_since(from).as_secs();
    let mut lines = Vec::new();
    for Happened { at, event } in std::mem::take(&mut h.events) {
        lines.push(match event {
            Event::SessionStarted { who, admission, .. } => {
                format!("{} signed in{}", who.name, if admission.is_verified() { " (account)" } else { "" })
            }
            Event::SessionResumed { who, .. } => format!("{} resumed", who.name),
            Event::SessionEnded { who, why, .. } => format!("{} gone: {why:?}", who.name),
            Event::CallRinging { call, caller, callee, .. } => {
                rang_at.insert(call, at);
                format!("{} rings {}", caller.name, callee.name)
            }
            Event::CallAnswered { call, caller, callee, .. } => {
                let rang = rang_at.get(&call).map_or(0, |&from| secs(from, at));
                format!("{} answers {} after {rang} s", callee.name, caller.name)
            }
            Event::CallRestored { caller, callee, .. } => {
                format!("{} and {} talk again", caller.name, callee.name)
            }
            Event::CallEnded { caller, callee, reason, by, began, answered, .. } => {
                let by = by.map_or("nobody".to_owned(), |side| format!("{side:?}").to_lowercase());
                let talked = answered.map_or(format!("unanswered after {} s", secs(began, at)), |from| {
                    format!("talked {} s", secs(from, at))
                });
                format!("{} → {}: {reason:?} by {by}, {talked}", caller.name, callee.name)
            }
            Event::CallBusy { caller, callee, .. } => format!("{} finds {} busy", caller.name, callee.name),
            Event::CallUnavailable { caller, callee, .. } => {
                format!("{} finds {} not taking calls", caller.name, callee.name)
            }
            Event::QuietChanged { who, quiet } => format!("{} wants quiet: {quiet:?}", who.name),
            Event::ServiceCallStarted { service, caller, .. } => format!("{} calls {service}", caller.name),
            Event::ServiceCallEnded { service, caller, reason, .. } => {
                format!("{} leaves {service}: {reason:?}", caller.name)
            }
            Event::ServiceBusy { service, caller, .. } => format!("{service} is busy for {}", caller.name),
        });
    }
    lines
}

/// ann and bo, ringing-aware and signed in, the events of their sign-ins read.
fn ann_and_bo(h: &mut Harness) -> (ConnId, ConnId) {
    let (ann, bo) = (h.ringing_user("ann"), h.ringing_user("bo"));
    assert_eq!(story(h), ["ann signed in", "bo signed in"]);
    (ann, bo)
}

fn ring(h: &mut Harness, from: ConnId, to: &str) -> Value {
    h.send(from, json!({"type": "call", "target": to})).expect("rings");
    h.inbox
        .values()
        .flatten()
        .find(|m| m["type"] == "incoming-call")
        .map(|m| m["callId"].clone())
        .unwrap_or_default()
}

#[test]
fn an_answered_call_rings_is_answered_and_ends_with_who_hung_up_and_how_long_it_lasted() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h);
    let id = ring(&mut h, ann, "bo");
    h.advance(Duration::from_secs(4));
    h.send(bo, json!({"type": "accept", "callId": id})).expect("accepted");
    h.advance(Duration::from_secs(95));
    h.send(bo, json!({"type": "hang-up", "target": "ann"})).expect("hung up");
    assert_eq!(
        story(&mut h),
        ["ann rings bo", "bo answers ann after 4 s", "ann → bo: HungUp by callee, talked 95 s"]
    );
}

#[test]
fn a_call_that_is_not_answered_ends_as_declined_cancelled_missed_or_disconnected() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h);
    let id = ring(&mut h, ann, "bo");
    h.send(bo, json!({"type": "decline", "callId": id})).expect("declined");
    ring(&mut h, ann, "bo");
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("cancelled");
    ring(&mut h, ann, "bo");
    h.advance(HubConfig::default().ring_timeout);
    ring(&mut h, ann, "bo");
    h.close(ann);
    assert_eq!(
        story(&mut h),
        [
            "ann rings bo",
            "ann → bo: Declined by callee, unanswered after 0 s",
            "ann rings bo",
            "ann → bo: Cancelled by caller, unanswered after 0 s",
            "ann rings bo",
            "ann → bo: Missed by nobody, unanswered after 30 s",
            "ann rings bo",
            "ann → bo: Disconnected by caller, unanswered after 0 s",
            "ann gone: Left",
        ]
    );
}

#[test]
fn a_busy_callee_a_callee_that_cannot_ring_and_glare_each_say_what_happened_once() {
    let mut h = Harness::new();
    let (ann, bo) = ann_and_bo(&mut h);
    let cy = h.ringing_user("cy");
    let mdn = h.user("dee");
    // ann and bo call each other at the same moment: one call, answered.
    ring(&mut h, ann, "bo");
    h.send(bo, json!({"type": "call", "target": "ann"})).expect("glare");
    h.send(cy, json!({"type": "call", "target": "bo"})).expect("busy");
    h.advance(Duration::from_secs(3));
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("hung up");
    // dee's page speaks only MDN's messages: an offer to it is a call talked at once.
    h.send(cy, offer("dee")).expect("offered");
    h.close(mdn);
    assert_eq!(
        story(&mut h),
        [
            "cy signed in",
            "dee signed in",
            "ann rings bo",
            "bo answers ann after 0 s",
            "cy finds bo busy",
            "ann → bo: HungUp by caller, talked 3 s",
            "dee answers cy after 0 s",
            "cy → dee: Disconnected by callee, talked 0 s",
            "dee gone: Left",
        ]
    );
}

#[test]
fn a_service_call_starts_and_ends_as_a_service_call_and_a_third_at_once_is_busy() {
    let echo = UserName::new("echo").expect("valid");
    let mut h = Harness::with_config(HubConfig { services: vec![echo], ..HubConfig::default() });
    let (ann, bo) = ann_and_bo(&mut h);
    let cy = h.ringing_user("cy");
    for caller in [ann, bo, cy] {
        h.send(caller, json!({"type": "call", "target": "echo"})).expect("answered");
    }
    h.send(ann, json!({"type": "hang-up", "target": "echo"})).expect("hung up");
    let story = story(&mut h);
    assert_eq!(
        story,
        [
            "cy signed in",
            "ann calls echo",
            "bo calls echo",
            "echo is busy for cy",
            "ann leaves echo: Cancelled"
        ]
    );
}

/// A ringing-aware sign-in as `name` with `admission`; returns the connection and its
/// session's token.
fn signed_in(h: &mut Harness, name: &str, admission: Admission) -> (ConnId, String) {
    let conn = h.connect_as("", admission);
    h.send(conn, json!({"type": "username", "name": name, "ringing": true})).expect("signed in");
    let session = h.take(conn).into_iter().find(|m| m["type"] == "session").expect("a session message");
    (conn, session["token"].as_str().expect("a token").to_owned())
}

#[test]
fn a_session_starts_resumes_and_ends_as_left_lost_replaced_or_moved() {
    let config = HubConfig { resume_key: Some(RESUME_KEY), devices_per_account: 1, ..HubConfig::default() };
    let mut h = Harness::with_config(config);
    let (ann, token) = signed_in(&mut h, "ann", Admission::Guest);
    h.lose(ann);
    let again = h.connect();
    h.send(again, json!({"type": "resume", "name": "ann", "token": token})).expect("resumed");
    h.lose(again);
    h.advance(HubConfig::default().resume_grace);
    let cy = Admission::Named { name: UserName::new("cy").expect("valid"), verified: true };
    let (first, _) = signed_in(&mut h, "cy", cy.clone());
    signed_in(&mut h, "cy", cy); // the same account in another browser, one too many
    h.close(first); // the replaced socket closing ends nothing more
    let dee = h.user_in("family", "dee", true);
    let _ = h.hub.evict_room(h.now, &RoomName::new("family").expect("a room"));
    h.close(dee);
    assert_eq!(
        story(&mut h),
        [
            "ann signed in",
            "ann resumed",
            "ann gone: Lost",
            "cy signed in (account)",
            "cy gone: Replaced",
            "cy signed in (account)",
            "dee signed in",
            "dee gone: Moved",
        ]
    );
}

#[test]
fn two_people_who_resume_the_same_call_after_a_restart_talk_again_and_its_end_is_told() {
    let mut before = Harness::new();
    let (_, ann_token) = signed_in(&mut before, "ann", Admission::Guest);
    let (_, bo_token) = signed_in(&mut before, "bo", Admission::Guest);
    let mut h = Harness::new();
    let (ann, bo) = (h.connect(), h.connect());
    h.send(ann, json!({"type": "resume", "name": "ann", "token": ann_token, "partner": "bo"})).expect("free");
    h.send(bo, json!({"type": "resume", "name": "bo", "token": bo_token, "partner": "ann"})).expect("free");
    h.advance(Duration::from_secs(7));
    h.send(ann, json!({"type": "hang-up", "target": "bo"})).expect("hung up");
    assert_eq!(
        story(&mut h),
        ["ann resumed", "bo resumed", "ann and bo talk again", "ann → bo: HungUp by caller, talked 7 s"]
    );
}

/// Follows the events of a long run and checks they tell one consistent story: in time
/// order; a session ends once, after it began, and nothing happens to it after; a call
/// is answered at most once and ends once, after it began, with `answered` as it went;
/// the parties of a call are live sessions.
#[derive(Debug, Default)]
pub(super) struct Storyline {
    last: Option<Instant>,
    sessions: HashSet<u64>,
    gone: HashSet<u64>,
    /// Calls under way, and whether each was answered.
    calls: HashMap<u64, bool>,
}

impl Storyline {
    pub(super) fn follow(&mut self, events: Vec<Happened>) {
        for Happened { at, event } in events {
            assert!(self.last.is_none_or(|last| at >= last), "in time order: {event:?}");
            self.last = Some(at);
            match event {
                Event::SessionStarted { who, .. } => {
                    assert!(self.sessions.insert(who.session), "{who:?} twice")
                }
                Event::SessionResumed { who, .. } => {
                    assert!(!self.gone.contains(&who.session), "{who:?} came back after its end");
                    self.sessions.insert(who.session);
                }
                Event::SessionEnded { who, .. } => {
                    assert!(self.sessions.remove(&who.session), "{who:?} ended without beginning");
                    self.gone.insert(who.session);
                }
                Event::CallRinging { call, caller, callee, .. } => self.began(call, &[caller, callee], false),
                Event::CallAnswered { call, caller, callee, .. } => match self.calls.get_mut(&call) {
                    Some(answered) => {
                        assert!(!*answered, "call {call} answered twice");
                        *answered = true;
                    }
                    None => self.began(call, &[caller, callee], true),
                },
                Event::CallRestored { call, caller, callee, .. } => self.began(call, &[caller, callee], true),
                Event::ServiceCallStarted { call, caller, .. } => self.began(call, &[caller], true),
                Event::CallEnded { call, answered, .. } => {
                    let was = self.calls.remove(&call).unwrap_or_else(|| panic!("call {call} ended unbegun"));
                    assert_eq!(was, answered.is_some(), "call {call}: answered as it went");
                }
                Event::ServiceCallEnded { call, .. } => {
                    assert!(self.calls.remove(&call).is_some(), "service call {call} ended unbegun");
                }
                Event::CallBusy { caller, callee, .. } | Event::CallUnavailable { caller, callee, .. } => {
                    self.live(&[caller, callee])
                }
                Event::QuietChanged { who, .. } => self.live(&[who]),
                Event::ServiceBusy { caller, .. } => self.live(&[caller]),
            }
        }
    }

    fn began(&mut self, call: u64, parties: &[Party], answered: bool) {
        self.live(parties);
        assert!(self.calls.insert(call, answered).is_none(), "call {call} began twice");
    }

    fn live(&self, parties: &[Party]) {
        for party in parties {
            assert!(self.sessions.contains(&party.session), "{party:?} is not a live session");
        }
    }
}
