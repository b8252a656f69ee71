//! One suite for every backend: each test takes a fresh `&dyn Backend`. Today that is
//! SQLite in a temporary directory; a PostgreSQL backend runs the same functions.

use std::path::PathBuf;

use duet_access::{AccountError, InviteError, InviteRecord, InviteSpec};
use duet_signal::UserName;

use super::*;

const HOUR: u64 = 3_600_000;

/// A temporary state directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("duet-store-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `suite_test` against each backend.
fn each_backend(test: &str, suite_test: impl Fn(&dyn Backend)) {
    let dir = TempDir::new(test);
    let store = Store::open(&dir.0).expect("a store");
    suite_test(store.backend());
}

fn new_account(name: &str, id: u8, now_ms: u64) -> NewAccount {
    NewAccount { name: name.into(), hash: format!("hash of {name}"), admin: false, id: [id; 16], now_ms }
}

fn invite(id: u8, uses: u32, by_account: Option<&str>) -> InviteRecord {
    let spec = InviteSpec { room: None, name: None, ttl_ms: HOUR, uses };
    InviteRecord::new(spec, [id; 8], ("ann", by_account), 0)
}

#[test]
fn accounts_are_added_once_and_never_look_alike() {
    each_backend("accounts", |db| {
        assert_eq!(
            db.add_account(new_account("ann", 1, 5)).expect("store"),
            Ok(UserName::new("ann").expect("valid"))
        );
        assert_eq!(
            db.add_account(new_account("ann", 2, 6)).expect("store"),
            Err(AccountError::Exists("ann".into()))
        );
        assert!(matches!(
            db.add_account(new_account("\u{0430}nn", 3, 6)).expect("store"),
            Err(AccountError::LooksLike(..))
        ));
        let accounts = db.accounts().expect("store");
        let ann = accounts.get("ann").expect("kept");
        assert_eq!(
            (ann.id.as_str(), ann.created, ann.hash.as_str()),
            ("01".repeat(16).as_str(), 5, "hash of ann")
        );
        assert_eq!(accounts.len(), 1);
    });
}

#[test]
fn account_changes_land_and_an_unknown_account_says_so() {
    each_backend("changes", |db| {
        db.add_account(new_account("ann", 1, 5)).expect("store").expect("added");
        let change = AccountChange::Password { hash: "new".into(), now_ms: 9 };
        db.change_account("ann", change).expect("store").expect("known");
        db.change_account("ann", AccountChange::Admin(true)).expect("store").expect("known");
        let ann = db.accounts().expect("store").get("ann").cloned().expect("kept");
        assert_eq!((ann.hash.as_str(), ann.sessions_after, ann.admin), ("new", 9, true));
        db.change_account("ann", AccountChange::SignOutEverywhere { now_ms: 12 })
            .expect("store")
            .expect("known");
        assert_eq!(db.accounts().expect("store").get("ann").map(|a| a.sessions_after), Some(12));
        assert_eq!(
            db.change_account("bo", AccountChange::Remove).expect("store"),
            Err(AccountError::NoSuchAccount("bo".into()))
        );
    });
}

#[test]
fn removing_an_account_revokes_its_invites_and_a_new_one_of_that_name_is_someone_else() {
    each_backend("remove", |db| {
        db.add_account(new_account("bo", 1, 5)).expect("store").expect("added");
        let bo = db.accounts().expect("store").get("bo").map(|a| a.id.clone()).expect("kept");
        db.add_invite(&invite(1, 5, Some(&bo))).expect("store");
        db.add_invite(&invite(2, 5, None)).expect("store");
        db.change_account("bo", AccountChange::Remove).expect("store").expect("known");
        let book = db.invites().expect("store");
        assert!(!book.is_live(&invite(1, 5, None).id), "bo's invite is revoked");
        assert!(book.is_live(&invite(2, 5, None).id), "the operator's is not");
        db.add_account(new_account("bo", 2, 9)).expect("store").expect("added again");
        let new_bo = db.accounts().expect("store").get("bo").map(|a| a.id.clone()).expect("kept");
        assert_ne!(new_bo, bo);
    });
}

#[test]
fn an_invite_is_used_exactly_as_often_as_it_allows() {
    each_backend("invites", |db| {
        let record = invite(1, 2, None);
        db.add_invite(&record).expect("store");
        assert_eq!(db.use_invite(&record.id, 1).expect("store").map(|r| r.used), Ok(1));
        assert_eq!(db.use_invite(&record.id, 1).expect("store").map(|r| r.used), Ok(2));
        assert_eq!(db.use_invite(&record.id, 1).expect("store"), Err(InviteError::UsedUp));
        assert_eq!(db.use_invite("0000000000000000", 1).expect("store"), Err(InviteError::Unknown));
        let other = invite(2, 2, None);
        db.add_invite(&other).expect("store");
        assert_eq!(db.use_invite(&other.id, HOUR).expect("store"), Err(InviteError::Expired));
        assert!(db.revoke_invite(&other.id).expect("store"));
        assert!(!db.revoke_invite("0000000000000000").expect("store"));
        assert_eq!(db.use_invite(&other.id, 1).expect("store"), Err(InviteError::Revoked));
        assert_eq!(db.invites().expect("store").get(&record.id).map(|r| r.used), Some(2));
    });
}

#[test]
fn versions_move_with_every_change_to_their_part_only() {
    each_backend("versions", |db| {
        let start = db.versions().expect("store");
        db.add_account(new_account("ann", 1, 5)).expect("store").expect("added");
        let after_account = db.versions().expect("store");
        assert!(after_account.accounts > start.accounts);
        assert_eq!((after_account.invites, after_account.sign_outs), (start.invites, start.sign_outs));
        db.add_invite(&invite(1, 1, None)).expect("store");
        assert!(db.versions().expect("store").invites > after_account.invites);
        db.sign_out(&"ab".repeat(16), HOUR).expect("store");
        db.sign_out(&"ab".repeat(16), HOUR).expect("store");
        db.sign_out(&"cd".repeat(16), HOUR).expect("store");
        let seen = db.versions().expect("store").sign_outs;
        let all = db.sign_outs_after(0, 100).expect("store");
        assert_eq!(
            all.iter().map(|s| s.session.as_str()).collect::<Vec<_>>(),
            ["ab".repeat(16), "cd".repeat(16)]
        );
        assert_eq!(all.last().map(|s| s.seq), Some(seen));
        assert_eq!(db.sign_outs_after(all[0].seq, 100).expect("store").len(), 1);
        assert_eq!(db.sign_outs_after(0, 1).expect("store").len(), 1, "the limit holds");
    });
}

#[test]
fn pruning_forgets_what_can_no_longer_matter_and_only_that() {
    each_backend("prune", |db| {
        db.sign_out(&"ab".repeat(16), 100).expect("store");
        db.sign_out(&"cd".repeat(16), 300).expect("store");
        let record = invite(1, 1, None); // expires at HOUR
        db.add_invite(&record).expect("store");
        let seen = db.versions().expect("store").sign_outs;
        assert_eq!(db.prune(200, 10).expect("store"), Pruned { invites: 0, sign_outs: 1 });
        assert_eq!(db.prune(HOUR + 9, 10).expect("store"), Pruned { invites: 0, sign_outs: 1 });
        assert_eq!(db.prune(HOUR + 10, 10).expect("store"), Pruned { invites: 1, sign_outs: 0 });
        db.sign_out(&"ef".repeat(16), HOUR * 2).expect("store");
        assert!(db.versions().expect("store").sign_outs > seen, "a sequence number is never reused");
    });
}

#[test]
fn a_database_from_a_newer_duet_is_refused_in_words() {
    let dir = TempDir::new("newer");
    drop(Store::open(&dir.0).expect("a store"));
    let connection = rusqlite::Connection::open(dir.0.join(DATABASE)).expect("opens");
    connection.pragma_update(None, "user_version", 99).expect("set");
    drop(connection);
    let err = Store::open(&dir.0).expect_err("too new");
    assert!(err.to_string().contains("written by a newer duet (schema 99"), "{err}");
}

#[test]
fn the_database_is_private_and_two_processes_share_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("shared");
    let server = Store::open(&dir.0).expect("a store");
    let command = Store::open(&dir.0).expect("a second handle, as `duet user` opens it");
    let mode = std::fs::metadata(dir.0.join(DATABASE)).expect("exists").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::thread::scope(|s| {
        for i in 0..8u8 {
            let db = if i % 2 == 0 { server.clone() } else { command.clone() };
            s.spawn(move || {
                db.backend().add_account(new_account(&format!("user{i}x"), i, 1)).expect("store")
            });
        }
    });
    assert_eq!(server.backend().accounts().expect("store").len(), 8, "no writer lost another's change");
}

#[test]
fn old_access_files_are_imported_once_and_kept_as_a_backup() {
    let dir = TempDir::new("import");
    std::fs::create_dir_all(&dir.0).expect("made");
    let hash = duet_access::accounts::hash_password("ann's password", &[1; 16]);
    let accounts = format!(
        r#"{{"accounts":{{"ann":{{"hash":"{hash}","admin":true,"created":5,"sessions_after":7}}}}}}"#
    );
    std::fs::write(dir.0.join("accounts.json"), accounts).expect("written");
    let mut book = duet_access::InviteBook::default();
    let spec = InviteSpec { room: None, name: None, ttl_ms: HOUR, uses: 3 };
    let (record, _) = book.mint(&duet_access::Key::new([1; 32]), spec, [4; 8], "cli", 0);
    std::fs::write(dir.0.join("invites.json"), serde_json::to_string(&book).expect("json")).expect("written");
    let signed_out = format!(r#"{{"sessions":{{"{}":{HOUR}}}}}"#, "ab".repeat(16));
    std::fs::write(dir.0.join("signed-out.json"), signed_out).expect("written");

    let store = Store::open(&dir.0).expect("imported");
    let db = store.backend();
    let ann = db.accounts().expect("store").get("ann").cloned().expect("imported");
    assert_eq!((ann.admin, ann.created, ann.sessions_after, ann.id.len()), (true, 5, 7, 32));
    assert!(duet_access::accounts::verify_password("ann's password", &ann.hash));
    assert_eq!(db.invites().expect("store").get(&record.id).map(|r| r.uses), Some(3));
    assert_eq!(db.sign_outs_after(0, 10).expect("store").len(), 1);
    for file in ["accounts.json", "invites.json", "signed-out.json"] {
        assert!(
            !dir.0.join(file).exists() && dir.0.join(format!("{file}.imported")).exists(),
            "{file} kept aside"
        );
    }
    std::fs::copy(dir.0.join("accounts.json.imported"), dir.0.join("accounts.json")).expect("copied back");
    let again = Store::open(&dir.0).expect("opens");
    assert_eq!(again.backend().accounts().expect("store").len(), 1, "never imported twice");
}

#[test]
fn a_damaged_old_file_stops_the_start_and_imports_nothing() {
    let dir = TempDir::new("damaged");
    std::fs::create_dir_all(&dir.0).expect("made");
    std::fs::write(dir.0.join("accounts.json"), r#"{"accounts":{}}"#).expect("written");
    std::fs::write(dir.0.join("invites.json"), "{\n  \"invites\": [\n").expect("written");
    let err = Store::open(&dir.0).expect_err("damaged");
    assert!(err.to_string().contains("invites.json: damaged at line 2"), "{err}");
    assert!(dir.0.join("accounts.json").exists(), "nothing moved");
}

#[test]
fn an_account_stored_under_a_name_today_s_rules_fold_is_renamed_to_its_canonical_form() {
    let dir = TempDir::new("canonical");
    drop(Store::open(&dir.0).expect("a store"));
    let connection = rusqlite::Connection::open(dir.0.join(DATABASE)).expect("opens");
    for (id, name) in [("a", "Dr  Kim"), ("b", "ann  lee"), ("c", "ann lee")] {
        connection
            .execute("INSERT INTO accounts (id, name, hash, created) VALUES (?, ?, 'h', 1)", [id, name])
            .expect("inserted");
    }
    drop(connection);
    let accounts = Store::open(&dir.0).expect("opens").backend().accounts().expect("store");
    assert!(accounts.get("Dr Kim").is_some_and(|a| a.id == "a"), "renamed");
    assert!(accounts.get("ann  lee").is_some_and(|a| a.id == "b"), "left: ann lee is taken");
}

fn call(account: &str, peer: &str, outgoing: bool, started_ms: u64, outcome: CallOutcome) -> CallRecord {
    let duration_ms = if outcome == CallOutcome::Answered { 95_000 } else { 0 };
    let voice = peer == "cy";
    let call =
        Call { peer: peer.into(), peer_verified: false, outgoing, started_ms, outcome, duration_ms, voice };
    CallRecord { account: account.into(), call }
}

#[test]
fn call_history_is_kept_per_account_read_newest_first_and_forgotten_when_asked() {
    each_backend("history", |db| {
        db.add_account(new_account("bo", 1, 0)).expect("store").expect("added");
        db.add_account(new_account("cy", 2, 0)).expect("store").expect("added");
        let records = [
            call("bo", "ann", false, 1_000, CallOutcome::Missed),
            call("bo", "ann", false, 2_000, CallOutcome::Answered),
            call("bo", "cy", true, 3_000, CallOutcome::Missed),
            call("cy", "bo", false, 3_000, CallOutcome::Missed),
            call("guest", "bo", true, 3_000, CallOutcome::Busy),
        ];
        assert_eq!(db.record_calls(&records).expect("store"), 4, "a name no account holds keeps nothing");
        let page = db.calls("bo", None, 2).expect("store");
        let read: Vec<(&str, bool, u64, CallOutcome, u64)> = page
            .iter()
            .map(|e| {
                (e.call.peer.as_str(), e.call.outgoing, e.call.started_ms, e.call.outcome, e.call.duration_ms)
            })
            .collect();
        let voice: Vec<bool> = page.iter().map(|e| e.call.voice).collect();
        assert_eq!(voice, [true, false], "a voice call reads back as one");
        assert_eq!(
            read,
            [
                ("cy", true, 3_000, CallOutcome::Missed, 0),
                ("ann", false, 2_000, CallOutcome::Answered, 95_000)
            ]
        );
        let older = db.calls("bo", Some(page[1].id), 10).expect("store");
        assert_eq!(older.iter().map(|e| e.call.started_ms).collect::<Vec<_>>(), [1_000], "the next page");
        assert_eq!(db.unseen_calls("bo").expect("store"), 1, "only a missed incoming call is news");
        assert_eq!(db.mark_calls_seen("bo").expect("store"), 1);
        assert_eq!(db.unseen_calls("bo").expect("store"), 0);
        assert_eq!(db.unseen_calls("cy").expect("store"), 1, "cy's own history is untouched");
        assert_eq!(db.forget_calls_before(2_000).expect("store"), 1, "older than the history's days");
        assert_eq!(db.clear_calls("bo").expect("store"), 2);
        assert!(db.calls("bo", None, 10).expect("store").is_empty());
        db.change_account("cy", AccountChange::Remove).expect("store").expect("removed");
        db.add_account(new_account("cy", 3, 10)).expect("store").expect("added again");
        assert!(
            db.calls("cy", None, 10).expect("store").is_empty(),
            "a removed account's history goes with it"
        );
    });
}

#[test]
fn do_not_disturb_is_kept_per_account_runs_out_and_goes_with_the_account() {
    each_backend("quiet", |db| {
        db.add_account(new_account("bo", 1, 0)).expect("store").expect("added");
        db.add_account(new_account("cy", 2, 0)).expect("store").expect("added");
        let forever = QuietSetting { dnd_until_ms: Some(QuietSetting::FOREVER), guests: false };
        let an_hour = QuietSetting { dnd_until_ms: Some(3_600_000), guests: true };
        assert!(db.set_quiet("bo", forever).expect("store"));
        assert!(db.set_quiet("cy", an_hour).expect("store"));
        assert!(!db.set_quiet("guest", forever).expect("store"), "no account, nothing kept");
        let mut kept = db.quiet_settings(1_000).expect("store");
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(kept, [("bo".to_owned(), forever), ("cy".to_owned(), an_hour)]);
        let later = db.quiet_settings(3_600_000).expect("store");
        assert_eq!(
            later,
            [
                ("bo".to_owned(), forever),
                ("cy".to_owned(), QuietSetting { dnd_until_ms: Some(3_600_000), guests: true })
            ],
            "cy's hour ran out but guests stay silenced"
        );
        assert!(db.set_quiet("cy", QuietSetting::default()).expect("store"), "turned off");
        db.change_account("bo", AccountChange::Remove).expect("store").expect("removed");
        assert!(db.quiet_settings(1_000).expect("store").is_empty(), "off, and gone with bo");
    });
}

#[test]
fn push_devices_are_kept_per_account_one_row_per_endpoint_the_least_used_going_past_the_most() {
    each_backend("push", |db| {
        db.add_account(new_account("bo", 1, 0)).expect("store").expect("added");
        db.add_account(new_account("cy", 2, 0)).expect("store").expect("added");
        let device = |n: u32| NewPushDevice {
            endpoint: format!("https://push.example/{n}"),
            p256dh: "key".into(),
            auth: "auth".into(),
            device: format!("phone {n}"),
        };
        for n in 1..=3 {
            assert!(db.add_push_device("bo", &device(n), u64::from(n) * 1_000, 2).expect("store").is_some());
        }
        let names = |account| {
            db.push_devices(account).expect("store").into_iter().map(|d| d.device).collect::<Vec<_>>()
        };
        assert_eq!(names("bo"), ["phone 3", "phone 2"], "past two, the least recently used went");
        assert_eq!(db.push_accounts().expect("store"), ["bo"], "bo can be rung by push, cy cannot");
        db.push_used("https://push.example/2", 9_000).expect("store");
        assert_eq!(names("bo"), ["phone 2", "phone 3"]);
        // The same endpoint subscribing again (under another account) is one row.
        db.add_push_device("cy", &device(2), 10_000, 2).expect("store").expect("added");
        assert_eq!((names("bo"), names("cy")), (vec!["phone 3".to_owned()], vec!["phone 2".to_owned()]));
        assert!(db.add_push_device("nobody", &device(4), 0, 2).expect("store").is_none());
        assert!(!db.remove_push_device("bo", "https://push.example/2").expect("store"), "not bo's");
        assert!(db.remove_push_device("cy", "https://push.example/2").expect("store"));
        assert!(db.forget_push_endpoint("https://push.example/3").expect("store"), "gone (410)");
        assert!(names("bo").is_empty());
        db.add_push_device("bo", &device(5), 0, 2).expect("store").expect("added");
        db.change_account("bo", AccountChange::Remove).expect("store").expect("removed");
        assert!(names("bo").is_empty(), "gone with the account");
    });
}

#[test]
fn a_shared_secret_is_decided_once_and_read_the_same_after() {
    each_backend("secret", |db| {
        let first = db.shared_secret("vapid", &[1; 32]).expect("store");
        let second = db.shared_secret("vapid", &[2; 32]).expect("store");
        assert_eq!((first.clone(), second), (vec![1; 32], vec![1; 32]));
    });
}
