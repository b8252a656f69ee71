//! Hub behaviour on a virtual clock: every test drives the hub exactly as the shell does
//! (feed, then drain) and reads what each connection would have received.

use super::*;
use serde_json::{Value, json};

struct Harness {
    hub: Hub,
    now: Instant,
    inbox: HashMap<ConnId, Vec<Value>>,
}

impl Harness {
    fn new() -> Self {
        Self { hub: Hub::new(HubConfig::default()), now: Instant::now(), inbox: HashMap::new() }
    }

    fn drain(&mut self) {
        while let Some(out) = self.hub.poll_output() {
            let value = serde_json::from_str(&out.payload).expect("the hub sends JSON");
            self.inbox.entry(out.to).or_default().push(value);
        }
    }

    fn connect(&mut self) -> ConnId {
        let conn = self.hub.connect();
        self.drain();
        conn
    }

    /// A connection that has signed in as `name`, with its inbox emptied.
    fn user(&mut self, name: &str) -> ConnId {
        let conn = self.connect();
        self.send(conn, json!({"type": "username", "name": name, "id": 0, "date": 1})).expect("a valid name");
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

    /// Lets time pass until no user list is pending.
    fn settle(&mut self) {
        while let Some(due) = self.hub.poll_timeout() {
            self.now = self.now.max(due);
            self.hub.handle_timeout(self.now);
            self.drain();
        }
        self.now += self.hub.config.userlist_interval;
    }

    fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    fn last_userlist(&mut self, conn: ConnId) -> Option<Vec<String>> {
        self.take(conn).into_iter().rev().find(|m| m["type"] == "userlist").map(|m| {
            m["users"]
                .as_array()
                .expect("users is an array")
                .iter()
                .map(|u| u.as_str().expect("a name").to_owned())
                .collect()
        })
    }
}

fn offer(target: &str) -> Value {
    json!({"type": "video-offer", "name": "mallory", "target": target, "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
}

fn answer(target: &str) -> Value {
    json!({"type": "video-answer", "name": "mallory", "target": target, "sdp": {"type": "answer", "sdp": "v=0\r\n"}})
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
    assert_eq!(h.hub.users().collect::<Vec<_>>(), ["ann", "bo"]);
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
    assert_eq!(h.hub.users().collect::<Vec<_>>(), ["ann", "ann2", "ann3"]);
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
fn offers_reach_only_the_target_with_the_senders_real_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    h.send(ann, offer("bo")).expect("relayed");
    let got = h.take(bo);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["name"], "ann", "the spoofed name is overwritten");
    assert_eq!(got[0]["sdp"], json!({"type": "offer", "sdp": "v=0\r\n"}));
    assert!(h.take(cy).is_empty());
    assert!(h.take(ann).is_empty());
}

#[test]
fn candidates_and_answers_are_stamped_with_the_sender() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(bo, answer("ann")).expect("relayed");
    h.send(
        bo,
        json!({"type": "new-ice-candidate", "name": "eve", "target": "ann", "candidate": {"candidate": "x"}}),
    )
    .expect("relayed");
    let got = h.take(ann);
    assert_eq!(got.iter().map(|m| m["name"].clone()).collect::<Vec<_>>(), [json!("bo"), json!("bo")]);
    assert_eq!(got[1]["candidate"], json!({"candidate": "x"}));
}

#[test]
fn media_state_reaches_only_the_target_with_the_senders_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    h.send(ann, json!({"type": "media-state", "name": "eve", "target": "bo", "audio": false, "video": true}))
        .expect("relayed");
    assert_eq!(
        h.take(bo),
        vec![json!({"type": "media-state", "name": "ann", "target": "bo", "audio": false, "video": true})]
    );
    assert!(h.take(cy).is_empty());
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
fn chat_goes_to_everyone_signed_in_with_the_senders_name() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, json!({"type": "message", "name": "eve", "text": "<b>hi</b>", "date": 5})).expect("sent");
    let expected =
        json!({"type": "message", "id": ann.get(), "name": "ann", "text": "<b>hi</b>", "date": 5.0});
    assert_eq!(h.take(bo), vec![expected.clone()]);
    assert_eq!(h.take(ann), vec![expected]);
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
    ];
    for (text, code) in cases {
        assert_eq!(h.send_raw(ann, text), Err(Rejected(*code)), "{text}");
        let reply = h.take(ann);
        assert_eq!(reply.len(), 1, "{text}");
        assert_eq!(reply[0]["type"], "error");
        assert_eq!(reply[0]["code"], code.as_str());
        assert!(reply[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(h.hub.handle_binary(ann), Rejected(ErrorCode::BinaryFrame));
    h.drain();
    assert_eq!(h.take(ann)[0]["code"], "binary-frame");
    // ann is still signed in under her name and can still call.
    assert_eq!(h.hub.users().collect::<Vec<_>>(), ["ann", "bo"]);
    h.send(ann, offer("bo")).expect("relayed");
    assert_eq!(h.take(bo).len(), 1);
}

#[test]
fn hang_up_without_target_reaches_the_call_partner() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.take(ann);
    h.take(bo);
    h.send(bo, json!({"type": "hang-up", "name": "bo", "target": null})).expect("relayed");
    assert_eq!(h.take(ann), vec![json!({"type": "hang-up", "name": "bo", "target": "ann"})]);
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
    assert!(h.take(bo).iter().all(|m| m["type"] == "userlist"));
}

#[test]
fn a_second_caller_does_not_take_over_an_existing_call() {
    let mut h = Harness::new();
    let ann = h.user("ann");
    let bo = h.user("bo");
    let cy = h.user("cy");
    h.send(ann, offer("bo")).expect("relayed");
    h.send(bo, answer("ann")).expect("relayed");
    h.send(cy, offer("bo")).expect("relayed to bo, who decides");
    h.take(ann);
    h.take(bo);
    // When cy gives up, ann and bo are still paired: bo's targetless hang-up reaches ann.
    h.close(cy);
    h.send(bo, json!({"type": "hang-up", "target": null})).expect("relayed");
    assert!(h.take(ann).iter().any(|m| m["type"] == "hang-up" && m["name"] == "bo"));
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
    for (name, conn) in &hub.names {
        assert_eq!(hub.conns[conn].name.as_ref(), Some(name), "names[{name}] points at its holder");
    }
    for (conn, state) in &hub.conns {
        if let Some(name) = &state.name {
            assert_eq!(hub.names.get(name), Some(conn), "{conn} is findable by its name");
        }
        if let Some(partner) = state.partner {
            assert!(state.name.is_some(), "only signed-in users are in calls");
            assert_eq!(hub.conns[&partner].partner, Some(*conn), "call pairs are mutual");
        }
    }
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

fn random_message(rng: &mut Rng) -> String {
    const NAMES: [&str; 6] = ["ann", "bo", "cy", "ann2", " bo ", "x"];
    let name = *rng.pick(&NAMES);
    let target = *rng.pick(&NAMES);
    let valid = match rng.below(7) {
        0 => json!({"type": "username", "name": name}),
        1 => json!({"type": "message", "text": "hi", "date": 1}),
        2 => offer(target),
        3 => answer(target),
        4 => json!({"type": "new-ice-candidate", "target": target, "candidate": {"candidate": "c"}}),
        5 => {
            json!({"type": "hang-up", "target": if rng.below(2) == 0 { Value::Null } else { json!(target) }})
        }
        _ => json!({"type": "hang-up"}),
    }
    .to_string();
    if rng.below(3) > 0 {
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
    let mut h = Harness::new();
    let mut open: Vec<ConnId> = Vec::new();
    for _ in 0..30_000 {
        match rng.below(20) {
            0 | 1 if open.len() < 24 => open.push(h.connect()),
            2 if !open.is_empty() => {
                let conn = open.swap_remove(rng.below(open.len()));
                h.close(conn);
            }
            _ if !open.is_empty() => {
                let conn = *rng.pick(&open);
                let _ = h.send_raw(conn, &random_message(&mut rng));
            }
            _ => {}
        }
        if rng.below(10) == 0 {
            h.now += Duration::from_millis(20);
            h.hub.handle_timeout(h.now);
            h.drain();
        }
        assert_consistent(&h.hub);
        for conn in h.inbox.keys() {
            assert!(open.contains(conn), "nothing is sent to a closed connection ({conn})");
        }
        h.inbox.clear();
    }
    assert_eq!(h.hub.connection_count(), open.len());
}
