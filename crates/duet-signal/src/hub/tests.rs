//! Hub behaviour on a virtual clock: every test drives the hub exactly as the shell does
//! (feed, then drain) and reads what each connection would have received.
//!
//! This file: presence, rooms, chat, bad input, and a long random-traffic test of the
//! hub's invariants. `tests/calls.rs`: MDN-style and ringing calls. `tests/sessions.rs`:
//! dropped sockets and resuming. `tests/names.rs`: look-alike names, accounts, invites.
//! `tests/devices.rs`: one account on several devices, all ringing. `tests/quiet.rs`: do
//! not disturb. `tests/away.rs`: calling an account with no device online.
//! `tests/events.rs`: what the shell is told happened.

use super::*;
use serde_json::{Value, json};

mod away;
mod calls;
mod devices;
mod events;
mod names;
mod quiet;
mod sessions;

/// The resume key the tests' hubs keep "in their state directory".
const RESUME_KEY: [u8; 32] = [7; 32];

struct Harness {
    hub: Hub,
    now: Instant,
    inbox: HashMap<ConnId, Vec<Value>>,
    /// What the hub said happened, in order.
    events: Vec<Happened>,
    tokens: u64,
    /// Where the next connection comes from.
    address: IpAddr,
}

impl Harness {
    /// A hub configured as the shell configures it: with a resume key.
    fn new() -> Self {
        Self::with_config(HubConfig { resume_key: Some(RESUME_KEY), ..HubConfig::default() })
    }

    fn with_config(config: HubConfig) -> Self {
        let address = IpAddr::from([192, 0, 2, 1]);
        let (inbox, events) = (HashMap::new(), Vec::new());
        Self { hub: Hub::new(config), now: Instant::now(), inbox, events, tokens: 0, address }
    }

    fn drain(&mut self) {
        while let Some(out) = self.hub.poll_output() {
            let value = serde_json::from_str(&out.payload).expect("the hub sends JSON");
            self.inbox.entry(out.to).or_default().push(value);
        }
        self.events.extend(std::iter::from_fn(|| self.hub.poll_event()));
    }

    fn connect_to(&mut self, room: &str) -> ConnId {
        self.connect_as(room, Admission::Guest)
    }

    fn connect_as(&mut self, room: &str, admission: Admission) -> ConnId {
        self.tokens += 1;
        let token = format!("token-{:016}", self.tokens);
        let room = RoomName::new(room).expect("a valid room");
        let conn = self.hub.connect_as(room, &token, self.address, admission);
        self.drain();
        conn
    }

    fn connect(&mut self) -> ConnId {
        self.connect_to("")
    }

    /// A connection that has signed in to the lobby as `name` with MDN's messages only,
    /// with its inbox emptied.
    fn user(&mut self, name: &str) -> ConnId {
        self.user_in("", name, false)
    }

    /// A connection that has signed in as `name` and speaks ringing, inbox emptied.
    fn ringing_user(&mut self, name: &str) -> ConnId {
        self.user_in("", name, true)
    }

    fn user_in(&mut self, room: &str, name: &str, ringing: bool) -> ConnId {
        let conn = self.connect_to(room);
        let msg = json!({"type": "username", "name": name, "id": 0, "date": 1, "ringing": ringing});
        self.send(conn, msg).expect("a valid name");
        self.settle();
        self.inbox.clear();
        conn
    }

    fn send(&mut self, conn: ConnId, msg: Value) -> Result<(), Rejected> {
        let result = self.hub.handle_text(self.now, conn, &msg.to_string());
        self.drain();
        result
    }

    fn send_raw(&mut self, conn: ConnId, text: &str) -> Result<(), Rejected> {
        let result = self.hub.handle_text(self.now, conn, text);
        self.drain();
        result
    }

    fn close(&mut self, conn: ConnId) {
        self.hub.disconnect(self.now, conn);
        self.drain();
    }

    fn lose(&mut self, conn: ConnId) {
        self.hub.connection_lost(self.now, conn);
        self.drain();
    }

    /// Lets time pass until no user list is pending (ring and grace timers that fall in
    /// that span fire too).
    fn settle(&mut self) {
        let until = self.now + self.hub.config.userlist_interval;
        self.advance_to(until);
    }

    /// Moves the clock forward by `by`, firing every timer due on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        self.advance_to(until);
    }

    fn advance_to(&mut self, until: Instant) {
        while let Some(due) = self.hub.poll_timeout().filter(|&due| due <= until) {
            self.now = self.now.max(due);
            self.hub.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// The messages `conn` received, without user lists.
    fn take_calls(&mut self, conn: ConnId) -> Vec<Value> {
        self.take(conn).into_iter().filter(|m| m["type"] != "userlist").collect()
    }

    fn last_userlist(&mut self, conn: ConnId) -> Option<Vec<String>> {
        self.take(conn).into_iter().rev().find(|m| m["type"] == "userlist").map(|m| strings(&m["users"]))
    }
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().expect("an array").iter().map(|u| u.as_str().expect("a string").to_owned()).collect()
}

fn offer(target: &str) -> Value {
    json!({"type": "video-offer", "name": "mallory", "target": target, "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
}

fn answer(target: &str) -> Value {
    json!({"type": "video-answer", "name": "mallory", "target": target, "sdp": {"type": "answer", "sdp": "v=0\r\n"}})
}

fn candidate(target: &str) -> Value {
    json!({"type": "new-ice-candidate", "name": "eve", "target": target, "candidate": {"candidate": "x"}})
}

#[test]
fn a_new_connection_is_told_its_id_first() {
    let mut h = Harness::new();
    let conn = h.connect();
    assert_eq!(h.take(conn), vec![json!({"type": "id", "id": conn.get()})]);
}

#[test]
fn signing_in_puts_the_name_in_everyones_user_list() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.connect();
    h.send(bo, json!({"type": "username", "name": "bo"})).expect("accepted");
    h.settle();
    assert_eq!(h.last_userlist(ann), Some(vec!["ann".into(), "bo".into()]));
    assert_eq!(h.last_userlist(bo), Some(vec!["ann".into(), "bo".into()]));
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann", "bo"]);
}

#[test]
fn a_taken_name_is_replaced_by_a_free_one_and_the_client_is_told() {
    let mut h = Harness::new();
    h.user("ann");
    h.user("ann2");
    let third = h.connect();
    h.send(third, json!({"type": "username", "name": "ann"})).expect("accepted");
    let msgs = h.take(third);
    assert_eq!(msgs[0]["type"], "id");
    assert_eq!(msgs[1], json!({"type": "rejectusername", "id": third.get(), "name": "ann3"}));
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann", "ann2", "ann3"]);
}

#[test]
fn renaming_frees_the_old_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    h.send(ann, json!({"type": "username", "name": "anna"})).expect("accepted");
    h.settle();
    h.settle();
    assert_eq!(h.last_userlist(ann), Some(vec!["anna".into()]));
    let other = h.connect();
    h.send(other, json!({"type": "username", "name": "ann"})).expect("accepted");
    assert!(h.take(other).iter().all(|m| m["type"] != "rejectusername"), "ann is free again");
}

#[test]
fn a_burst_of_sign_ins_is_coalesced_into_few_user_lists_that_end_correct() {
    let mut h = Harness::new();
    let first = h.user("u0");
    for i in 1..100 {
        let conn = h.connect();
        h.send(conn, json!({"type": "username", "name": format!("u{i}")})).expect("accepted");
    }
    h.settle();
    let lists: Vec<_> = h.take(first).into_iter().filter(|m| m["type"] == "userlist").collect();
    assert!(lists.len() <= 2, "{} lists sent for one burst", lists.len());
    assert_eq!(lists.last().expect("a final list")["users"].as_array().map(Vec::len), Some(100));
}

#[test]
fn connections_that_have_not_signed_in_get_no_user_list() {
    let mut h = Harness::new();
    let lurker = h.connect();
    h.take(lurker);
    h.user("ann");
    h.settle();
    assert!(h.take(lurker).is_empty());
}

#[test]
fn rooms_keep_their_user_lists_chat_and_names_apart() {
    let mut h = Harness::new();
    let lobby = h.user("ann");
    let team_ann = h.user_in("team", "ann", true);
    let team_bo = h.user_in("team", "bo", true);
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann"]);
    assert_eq!(
        h.hub.users_in(&RoomName::new("team").expect("valid")),
        ["ann", "bo"],
        "ann is free in another room"
    );
    h.send(team_bo, json!({"type": "message", "text": "standup?"})).expect("sent");
    assert_eq!(h.take(team_ann).len(), 1);
    assert!(h.take(lobby).is_empty(), "the lobby hears nothing of the room");
    h.user("cy");
    assert!(h.take(team_ann).is_empty(), "the room hears nothing of the lobby");
    assert_eq!(h.send(lobby, offer("bo")), Err(Rejected(ErrorCode::NoSuchUser)), "no calls across rooms");
    assert_eq!(
        h.send(team_bo, json!({"type": "call", "target": "cy"})),
        Err(Rejected(ErrorCode::NoSuchUser))
    );
}

#[test]
fn an_emptied_room_is_forgotten() {
    let mut h = Harness::new();
    let ann = h.user_in("r1", "ann", true);
    let bo = h.user_in("r1", "bo", true);
    h.close(ann);
    h.close(bo);
    h.settle();
    assert!(h.hub.rooms.is_empty());
    assert_eq!(h.hub.poll_timeout(), None, "no timer is left behind for it");
}

#[test]
fn chat_goes_to_everyone_signed_in_with_the_senders_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let date = 1_764_460_800_000.0; // 2025-11-30
    h.send(ann, json!({"type": "message", "name": "eve", "text": "<b>hi</b>", "date": date})).expect("sent");
    let expected =
        json!({"type": "message", "id": ann.get(), "name": "ann", "text": "<b>hi</b>", "date": date});
    assert_eq!(h.take(bo), vec![expected.clone()]);
    assert_eq!(h.take(ann), vec![expected]);
}

#[test]
fn a_chat_date_no_browser_could_show_is_dropped_and_the_line_still_goes_out() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    for date in [json!(5), json!(1e20), json!(-1e15), json!(8.64e15 + 1.0), json!("soon")] {
        h.advance(Duration::from_secs(1));
        h.send(ann, json!({"type": "message", "text": "hi", "date": date})).expect("sent");
        let got = h.take(bo);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["text"], "hi");
        assert!(got[0].get("date").is_none(), "{date} was passed on");
    }
}

#[test]
fn a_chat_line_over_4_kib_is_refused_and_reaches_nobody() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let long = "é".repeat(2049); // 4098 bytes
    assert_eq!(h.send(ann, json!({"type": "message", "text": long})), Err(Rejected(ErrorCode::TooLong)));
    assert!(h.take(bo).is_empty());
    h.send(ann, json!({"type": "message", "text": "é".repeat(2048)})).expect("4096 bytes is fine");
    assert_eq!(h.take(bo).len(), 1);
}

#[test]
fn a_chat_flood_reaches_others_only_up_to_the_burst_and_calls_keep_flowing() {
    let mut h = Harness::new();
    let mallory = h.user("mallory");
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("a call");
    h.take(bo);
    let burst = Limits::default().chat.burst as usize;
    let refused = (0..1000)
        .map(|i| h.send(mallory, json!({"type": "message", "text": format!("spam {i}")})))
        .filter(|r| *r == Err(Rejected(ErrorCode::RateLimited)))
        .count();
    assert_eq!(refused, 1000 - burst);
    assert_eq!(h.take(bo).len(), burst, "bo received the burst and nothing more");
    assert!(h.take(mallory).iter().any(|m| m["code"] == "rate-limited"), "the flooder is told");
    // Others are not limited by mallory's flood.
    h.send(ann, candidate("bo")).expect("relayed");
    assert_eq!(h.take(bo)[0]["type"], "new-ice-candidate");
    // The pace comes back: one line a second.
    h.advance(Duration::from_secs(1));
    h.send(mallory, json!({"type": "message", "text": "one more"})).expect("allowed again");
    assert_eq!(
        h.send(mallory, json!({"type": "message", "text": "too soon"})),
        Err(Rejected(ErrorCode::RateLimited))
    );
}

#[test]
fn renames_count_as_chat_but_signing_in_and_call_messages_do_not() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("a call");
    let burst = Limits::default().chat.burst as usize;
    for i in 0..burst {
        h.send(bo, json!({"type": "message", "text": format!("{i}")})).expect("within the burst");
    }
    // bo's chat budget is spent, his call messages still go through.
    for _ in 0..50 {
        h.send(bo, candidate("ann")).expect("call messages have their own, larger budget");
    }
    let mut cy = h.connect();
    h.send(cy, json!({"type": "username", "name": "cy"})).expect("signing in");
    for i in 0..burst {
        h.send(cy, json!({"type": "username", "name": format!("cy{i}")})).expect("a rename");
    }
    assert_eq!(h.send(cy, json!({"type": "username", "name": "cyz"})), Err(Rejected(ErrorCode::RateLimited)));
    cy = bo;
    let frames = Limits::default().frames.burst as usize;
    let refused = (0..frames).filter(|_| h.send(cy, candidate("ann")).is_err()).count();
    assert!(refused > 0, "every frame counts against the frame budget");
}

#[test]
fn a_service_instance_ending_mid_call_or_twice_panics_nothing_and_tells_the_caller() {
    let echo = UserName::new("echo").expect("valid");
    let mut h = Harness::with_config(HubConfig { services: vec![echo], ..HubConfig::default() });
    let ann = h.ringing_user("ann");
    h.send(ann, json!({"type": "call", "target": "echo"})).expect("rings echo");
    let instance = h.hub.conns.keys().copied().find(|&c| h.hub.is_service(c)).expect("an instance");
    h.take(instance);
    h.send(instance, json!({"type": "accept", "callId": 1})).expect("echo picks up");
    h.send(ann, offer("echo")).expect("offered");
    // The shell gives up on the instance (its inbox overflowed, say), then again.
    h.close(instance);
    h.close(instance);
    h.hub.connection_lost(h.now, instance);
    let ended = h.take_calls(ann);
    assert_eq!(ended.iter().filter(|m| m["type"] == "call-ended").count(), 1, "{ended:?}");
    assert_eq!(h.hub.call_count(), 0);
    h.send(ann, json!({"type": "call", "target": "echo"})).expect("echo can be called again");
}

#[test]
fn one_address_gets_two_echo_calls_at_once_and_the_third_is_busy() {
    let echo = UserName::new("echo").expect("valid");
    let mut h = Harness::with_config(HubConfig { services: vec![echo], ..HubConfig::default() });
    let callers: Vec<ConnId> = ["ann", "bo", "cy"].iter().map(|n| h.ringing_user(n)).collect();
    for &caller in &callers {
        h.send(caller, json!({"type": "call", "target": "echo"})).expect("answered");
    }
    assert_eq!(h.hub.call_count(), 2);
    let third = h.take_calls(callers[2]);
    assert_eq!(third.last().expect("an answer")["reason"], "busy");
    h.address = IpAddr::from([198, 51, 100, 7]);
    let elsewhere = h.ringing_user("dee");
    h.send(elsewhere, json!({"type": "call", "target": "echo"})).expect("rings");
    assert_eq!(h.hub.call_count(), 3, "another address has its own share");
}

#[test]
fn a_message_for_an_absent_user_gets_an_error_reply() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    assert_eq!(h.send(ann, offer("ghost")), Err(Rejected(ErrorCode::NoSuchUser)));
    let got = h.take(ann);
    assert_eq!(got[0]["type"], "error");
    assert_eq!(got[0]["code"], "no-such-user");
    assert_eq!(got[0]["target"], "ghost");
}

#[test]
fn calling_yourself_is_refused() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    assert_eq!(h.send(ann, offer("ann")), Err(Rejected(ErrorCode::CannotCallSelf)));
    assert_eq!(
        h.send(ann, json!({"type": "call", "target": "ann"})),
        Err(Rejected(ErrorCode::CannotCallSelf))
    );
}

#[test]
fn nothing_but_username_is_accepted_before_signing_in() {
    let mut h = Harness::new();
    h.user("bo");
    let anon = h.connect();
    h.take(anon);
    for msg in
        [offer("bo"), json!({"type": "message", "text": "hi"}), json!({"type": "hang-up", "target": "bo"})]
    {
        assert_eq!(h.send(anon, msg), Err(Rejected(ErrorCode::NotSignedIn)));
    }
    assert!(h.inbox.keys().all(|&c| c == anon), "nobody else heard anything");
}

#[test]
fn every_kind_of_bad_input_gets_its_own_error_and_the_connection_carries_on() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cases: &[(&str, ErrorCode)] = &[
        ("not json", ErrorCode::InvalidJson),
        (r#"{"type":"username","name":42}"#, ErrorCode::InvalidField),
        (r#"{"text":"hi"}"#, ErrorCode::MissingType),
        (r#"{"type":"teleport"}"#, ErrorCode::UnknownType),
        (r#"{"type":"video-answer","target":"bo"}"#, ErrorCode::MissingField),
        (r#"{"type":"new-ice-candidate","candidate":{}}"#, ErrorCode::MissingField),
        (r#"{"type":"username","name":""}"#, ErrorCode::InvalidName),
        (r#"{"type":"username","name":"abcdefghijklmnopqrstuvwxyz0123456"}"#, ErrorCode::InvalidName),
        (r#"{"type":"username","name":"a\u0007b"}"#, ErrorCode::InvalidName),
        (r#"{"type":"hang-up","target":null}"#, ErrorCode::NotInCall),
        (r#"{"type":"hang-up","target":"bo"}"#, ErrorCode::NotInCall),
        (r#"{"type":"new-ice-candidate","target":"bo","candidate":{}}"#, ErrorCode::NotInCall),
        (r#"{"type":"video-answer","target":"bo","sdp":{}}"#, ErrorCode::NotInCall),
        (r#"{"type":"accept","callId":77}"#, ErrorCode::NoSuchCall),
        (r#"{"type":"accept","callId":"77"}"#, ErrorCode::InvalidField),
        (r#"{"type":"decline"}"#, ErrorCode::MissingField),
        (r#"{"type":"call"}"#, ErrorCode::MissingField),
        (r#"{"type":"resume","name":"ann","token":"short"}"#, ErrorCode::CannotResume),
    ];
    for (text, code) in cases {
        assert_eq!(h.send_raw(ann, text), Err(Rejected(*code)), "{text}");
        let reply = h.take(ann);
        assert_eq!(reply.len(), 1, "{text}");
        assert_eq!(reply[0]["type"], "error");
        assert_eq!(reply[0]["code"], code.as_str());
        assert!(reply[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(h.hub.handle_binary(h.now, ann), Err(Rejected(ErrorCode::BinaryFrame)));
    h.drain();
    assert_eq!(h.take(ann)[0]["code"], "binary-frame");
    // ann is still signed in under her name and can still call.
    assert_eq!(h.hub.users_in(&RoomName::lobby()), ["ann", "bo"]);
    h.send(ann, offer("bo")).expect("relayed");
    assert_eq!(h.take_calls(bo).len(), 1);
}

#[test]
fn disconnect_is_idempotent_and_unknown_connections_are_ignored() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    h.close(ann);
    h.close(ann);
    assert_eq!(h.send(ann, json!({"type": "message", "text": "late"})), Ok(()));
    assert!(h.inbox.is_empty());
}

#[test]
fn no_timer_is_asked_for_when_nothing_is_pending() {
    let mut h = Harness::new();
    assert_eq!(h.hub.poll_timeout(), None);
    h.user("ann");
    assert_eq!(h.hub.poll_timeout(), None);
}

/// The hub's own bookkeeping agrees with itself.
fn assert_consistent(hub: &Hub) {
    for (room_name, room) in &hub.rooms {
        assert!(!room.names.is_empty(), "empty rooms are dropped");
        let looks: std::collections::HashSet<_> = room.names.keys().map(UserName::skeleton).collect();
        assert_eq!(looks.len(), room.names.len(), "no two names in {room_name} look alike");
        for (name, conns) in room.names.iter() {
            assert!(!conns.is_empty(), "a name is held by someone");
            for conn in conns {
                let state = &hub.conns[conn];
                assert_eq!(state.name.as_ref(), Some(name), "names[{name}] points at its holders");
                assert_eq!(&state.room, room_name);
            }
            if conns.len() > 1 {
                let verified = conns.iter().all(|c| hub.conns[c].admission.is_verified());
                assert!(verified, "only an account has several devices");
                assert!(conns.len() <= hub.config.devices_per_account);
            }
        }
        if room.userlist_dirty {
            let due = room.userlist_last.expect("dirty after a list") + hub.config.userlist_interval;
            assert!(hub.timers.contains(&(due, Timer::UserList(room_name.clone()))));
        }
    }
    for (conn, state) in &hub.conns {
        if state.service || state.away {
            assert!(state.call.is_some(), "a service instance or a stand-in lives for its call only");
        } else if let Some(name) = &state.name {
            assert!(
                hub.rooms[&state.room].names.get(name.as_str()).contains(conn),
                "{conn} is findable by its name"
            );
            if let Some(fixed) = state.admission.fixed_name() {
                assert_eq!(fixed, name, "{conn} holds the name its admission fixes");
            }
        }
        if let Some(id) = state.call {
            assert!(state.name.is_some(), "only signed-in users are in calls");
            let call = &hub.calls[&id];
            assert!(call.parties().any(|p| p == *conn), "calls are mutual");
        }
        if let Some(detached) = &state.detached {
            assert!(
                hub.timers.contains(&(detached.timer_at, Timer::Grace(*conn))),
                "a detached session ends"
            );
        }
        if let Some(claim) = state.claim.as_deref() {
            assert!(hub.timers.contains(&(claim.until, Timer::Claim(*conn))));
        }
    }
    for (id, call) in &hub.calls {
        assert_ne!(call.caller, call.callee);
        for party in call.parties() {
            assert_eq!(hub.conns[&party].call, Some(*id), "every party knows its call");
        }
        assert!(call.also.is_empty() || call.is_ringing(), "only a ringing call rings on other devices");
        for device in &call.also {
            let same = hub.conns[device].name == hub.conns[&call.callee].name;
            assert!(same && *device != call.callee, "other devices are the callee's own");
        }
        if let Some(until) = call.ringing_until {
            assert!(hub.timers.contains(&(until, Timer::Ring(*id))), "a ringing call times out");
        }
    }
    assert_eq!(
        hub.timers.len(),
        hub.rooms.values().filter(|r| r.userlist_dirty).count()
            + hub.calls.values().filter(|c| c.is_ringing()).count()
            + hub.conns.values().filter(|c| c.detached.is_some()).count()
            + hub.conns.values().filter(|c| c.claim.is_some()).count(),
        "no timer outlives what it guards"
    );
}

/// A tiny deterministic generator (xorshift64*), so failures replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn random_message(rng: &mut Rng, call_ids: u64, tokens: &[(String, String)]) -> String {
    const NAMES: [&str; 7] = ["ann", "bo", "cy", "ann2", " bo ", "x", "echo"];
    let name = *rng.pick(&NAMES);
    let target = *rng.pick(&NAMES);
    let call_id = rng.below(call_ids as usize + 2);
    let valid = match rng.below(13) {
        0 => json!({"type": "username", "name": name, "ringing": rng.below(2) == 0}),
        1 => json!({"type": "message", "text": "hi", "date": 1}),
        2 => offer(target),
        3 => answer(target),
        4 => candidate(target),
        5 => {
            json!({"type": "hang-up", "target": if rng.below(2) == 0 { Value::Null } else { json!(target) }})
        }
        6 => json!({"type": "call", "target": target}),
        7 | 8 => json!({"type": "accept", "callId": call_id}),
        9 => json!({"type": "decline", "callId": call_id}),
        10 => match rng.below(3) {
            // A token the hub issued, for the name it was issued for or another.
            0 | 1 if !tokens.is_empty() => {
                let (issued_to, token) = rng.pick(tokens);
                let name = if rng.below(2) == 0 { issued_to.as_str() } else { name };
                json!({"type": "resume", "name": name, "token": token, "partner": target})
            }
            _ => json!({"type": "resume", "name": name, "token": format!("token-{:016}", rng.below(30)),
                        "partner": target}),
        },
        11 => json!({"type": "media-state", "target": target, "audio": true, "video": false}),
        // Quiet now and then, for a moment: most calls still ring.
        _ => json!({"type": "quiet", "on": rng.below(3) == 0, "for": 1 + rng.below(2), "guests": rng.below(4) == 0}),
    }
    .to_string();
    if rng.below(4) > 0 {
        return valid;
    }
    // Mangle it: cut it short, drop or duplicate a character, or insert a hostile one.
    let mut chars: Vec<char> = valid.chars().collect();
    for _ in 0..=rng.below(3) {
        let at = rng.below(chars.len().max(1));
        match rng.below(4) {
            0 => chars.truncate(at),
            1 if !chars.is_empty() => {
                chars.remove(at.min(chars.len() - 1));
            }
            2 if !chars.is_empty() => chars.insert(at, chars[at.min(chars.len() - 1)]),
            _ => chars.insert(at.min(chars.len()), *rng.pick(&['\u{0}', '"', '{', '\\', 'é', '\n', ']'])),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn random_and_mangled_traffic_never_panics_and_keeps_the_hub_consistent() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut h = Harness::with_config(HubConfig {
        userlist_interval: Duration::from_millis(50),
        ring_timeout: Duration::from_millis(900),
        resume_grace: Duration::from_millis(700),
        services: vec![UserName::new("echo").expect("valid")],
        resume_key: Some(RESUME_KEY),
        ..HubConfig::default()
    });
    let mut open: Vec<ConnId> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut services = std::collections::HashSet::new();
    let mut tokens: Vec<(String, String)> = Vec::new();
    let mut story = events::Storyline::default();
    h.hub.reserve_names([UserName::new("ann").expect("valid")]);
    let account = Admission::Named { name: UserName::new("ann").expect("valid"), verified: true };
    let invited = Admission::Named { name: UserName::new("bo").expect("valid"), verified: false };
    let admissions = [account, invited, Admission::Guest, Admission::Guest];
    for _ in 0..40_000 {
        match rng.below(25) {
            0 | 1 if open.len() < 24 => {
                let room = *rng.pick(&["", "", "", "r1"]);
                let admission = rng.pick(&admissions).clone();
                open.push(h.connect_as(room, admission));
            }
            2 if !open.is_empty() => {
                let conn = open.swap_remove(rng.below(open.len()));
                h.close(conn);
            }
            3 if !open.is_empty() => {
                let conn = open.swap_remove(rng.below(open.len()));
                h.lose(conn);
            }
            // A flood: far past every budget, chat or call messages, at one instant.
            4 if !open.is_empty() => {
                let conn = *rng.pick(&open);
                let target = *rng.pick(&["ann", "bo", "echo"]);
                for i in 0..rng.below(300) {
                    let msg = match i % 3 {
                        0 => json!({"type": "message", "text": "x".repeat(rng.below(5000))}),
                        _ => candidate(target),
                    };
                    let _ = h.send(conn, msg);
                }
            }
            _ if !open.is_empty() => {
                let conn = *rng.pick(&open);
                let _ = h.send_raw(conn, &random_message(&mut rng, h.hub.next_call, &tokens));
            }
            _ => {}
        }
        if rng.below(8) == 0 {
            h.now += Duration::from_millis(40);
            h.hub.handle_timeout(h.now);
            h.drain();
        }
        assert_consistent(&h.hub);
        story.follow(std::mem::take(&mut h.events));
        services.extend(h.hub.conns.iter().filter(|(_, c)| c.service).map(|(conn, _)| *conn));
        // Play the service first: an instance answers what rings for it (and what that
        // sends is checked below with everything else).
        let mut accepts = Vec::new();
        for (conn, msgs) in h.inbox.iter().filter(|(conn, _)| services.contains(conn)) {
            let rings = msgs.iter().filter(|m| m["type"] == "incoming-call");
            accepts.extend(rings.map(|m| (*conn, json!({"type": "accept", "callId": m["callId"]}))));
        }
        for (conn, accept) in accepts {
            let _ = h.send(conn, accept);
        }
        for (conn, msgs) in h.inbox.iter().filter(|(conn, _)| !services.contains(conn)) {
            assert!(open.contains(conn), "nothing is sent to a closed connection ({conn}): {msgs:?}");
            for msg in msgs {
                if let Some(kind) = msg["type"].as_str() {
                    seen.insert(kind.to_owned());
                }
                if let (Some(name), Some(token)) = (msg["name"].as_str(), msg["token"].as_str()) {
                    tokens.push((name.to_owned(), token.to_owned()));
                }
            }
        }
        h.inbox.clear();
    }
    for kind in [
        "incoming-call",
        "call-accepted",
        "call-ended",
        "ringing",
        "resumed",
        "video-answer",
        "hang-up",
        "error",
    ] {
        assert!(seen.contains(kind), "the random traffic reached {kind}");
    }
}
