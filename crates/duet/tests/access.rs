//! Who may come in, against the real server: sessions, the Origin check, sign-in
//! limits, accounts, invites, and TURN only for admitted sessions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::turn_probe::{Answer, TurnProbe};
use common::{Client, TestServer, http_request};
use duet::access::Access;
use duet::config::AccessConfig;
use duet_access::Mode;
use duet_signal::limit::Rate;
use serde_json::{Value, json};

const SECRET: &str = "access-test-secret";

use common::accounts::{PASSWORD, join, options, options_with, sign_in, state_dir};

#[tokio::test]
async fn without_a_session_a_password_server_answers_401_and_never_hands_out_turn() {
    let dir = state_dir("password", &[]);
    let server = TestServer::start_with_turn_and(SECRET, options(Mode::Password, &dir)).await;
    assert_eq!(Client::connect_with(&server.url("/ws"), &[]).await.err(), Some(401));
    assert_eq!(
        Client::connect_with(&server.url("/"), &[("Cookie", "duet_session=forged.token")]).await.err(),
        Some(401)
    );
    let (status, answer, cookie) = sign_in(&server, json!({"password": "a guess at it"})).await;
    assert_eq!((status, answer["error"].as_str(), cookie), (401, Some("wrong-password"), None));
    let (status, answer, cookie) = sign_in(&server, json!({"password": PASSWORD})).await;
    assert_eq!((status, answer["signedIn"].as_bool()), (200, Some(true)));
    let (mut ann, name) = join(&server, "/ws", &cookie.expect("a cookie"), "ann").await;
    assert_eq!(name, "ann", "a password guest picks a name");
    let ice = ann.expect_type("ice-servers").await;
    assert!(ice["iceServers"][1]["username"].is_string(), "an admitted session gets TURN credentials");
}

#[tokio::test]
async fn a_members_server_lets_in_accounts_under_their_own_name_only() {
    let dir = state_dir("members", &[("ann", "ann's password", false)]);
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    assert_eq!(Client::connect_with(&server.url("/ws"), &[]).await.err(), Some(401));
    let (status, answer, _) = sign_in(&server, json!({"password": PASSWORD})).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("not-offered")), "no shared password here");
    let (status, _, _) = sign_in(&server, json!({"account": "ann", "password": "wrong"})).await;
    assert_eq!(status, 401);
    let (status, answer, cookie) =
        sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    assert_eq!((status, answer["account"].as_str()), (200, Some("ann")));
    let cookie = cookie.expect("a cookie");
    let (mut ann, name) = join(&server, "/ws", &cookie, "someone else").await;
    assert_eq!(name, "ann", "an account signs in as itself, whatever it asks");
    let list = ann.expect_type("userlist").await;
    assert_eq!(list["verified"], json!(["ann"]));
}

#[tokio::test]
async fn foreign_origins_get_403_and_the_pages_own_gets_101() {
    let server = TestServer::start().await;
    let own = format!("http://{}", server.addr);
    let other_port = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    for origin in ["http://evil.example", "http://host.evil.example", other_port.as_str(), "null"] {
        let refused = Client::connect_with(&server.url("/ws"), &[("Origin", origin)]).await.err();
        assert_eq!(refused, Some(403), "{origin}");
    }
    assert!(Client::connect_with(&server.url("/ws"), &[("Origin", &own)]).await.is_ok(), "{own}");
    assert!(Client::connect_with(&server.url("/ws"), &[]).await.is_ok(), "no Origin: not a browser");
    let headers = [("Origin", "http://evil.example"), ("Content-Type", "application/json")];
    let (status, _, _) = http_request(server.addr, "POST", "/api/sign-out", &headers, "{}").await;
    assert_eq!(status, 403, "another site cannot sign a visitor out either");
}

#[tokio::test]
async fn password_attempts_past_the_limit_get_429_with_retry_after() {
    let dir = state_dir("attempts", &[("ann", "ann's password", false)]);
    let rate = Rate::every(3, Duration::from_secs(60));
    let server = TestServer::start_with(options_with(Mode::Members, &dir, rate)).await;
    for _ in 0..3 {
        let (status, _, _) = sign_in(&server, json!({"account": "ann", "password": "guess"})).await;
        assert_eq!(status, 401);
    }
    let body = json!({"account": "ann", "password": "ann's password"}).to_string();
    let (status, headers, answer) =
        http_request(server.addr, "POST", "/api/sign-in", &[("Content-Type", "application/json")], &body)
            .await;
    assert_eq!(status, 429, "even the right password waits: {answer}");
    let retry: u64 = headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .map(|(_, v)| v.parse().expect("seconds"))
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn a_signed_out_session_loses_its_socket_and_its_relay_credentials() {
    let dir = state_dir("sign-out", &[]);
    let server = TestServer::start_with_turn_and(SECRET, options(Mode::Password, &dir)).await;
    let (_, _, cookie) = sign_in(&server, json!({"password": PASSWORD})).await;
    let cookie = cookie.expect("a cookie");
    let (mut ann, _) = join(&server, "/ws", &cookie, "ann").await;
    let ice = ann.expect_type("ice-servers").await;
    let (relay, username, password) = common::turn_probe::credentials_of(&ice);
    let (username, password) = (username.as_str(), password.as_str());
    let mut probe = TurnProbe::with_credentials("127.0.0.1:0", relay, username, password).await;
    assert!(matches!(probe.allocate().await, Answer::Success(Some(_))));

    let (status, headers, _) =
        http_request(server.addr, "POST", "/api/sign-out", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    assert!(
        headers.iter().any(|(n, v)| n == "set-cookie" && v.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    let close = ann.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4001, "the page is told it was signed out");
    assert_eq!(probe.refresh().await, Answer::Error(401), "its relay is gone");
    let mut again = TurnProbe::with_credentials("127.0.0.1:0", relay, username, password).await;
    assert_eq!(again.allocate().await, Answer::Error(401), "its credentials no longer work");
    assert_eq!(
        Client::connect_with(&server.url("/ws"), &[("Cookie", &cookie)]).await.err(),
        Some(401),
        "nor its cookie"
    );
}

#[tokio::test]
async fn a_guest_cannot_take_an_accounts_name_or_a_look_alike() {
    let dir = state_dir("look-alike", &[("ann", "ann's password", false)]);
    let server = TestServer::start_with(options(Mode::Open, &dir)).await;
    for asked in ["ann", "Ann", "\u{0430}nn"] {
        let mut guest = Client::connect_with(&server.url("/ws"), &[]).await.expect("open");
        guest.expect_type("id").await;
        guest.send(json!({"type": "username", "name": asked})).await;
        let given = guest.expect_type("rejectusername").await;
        assert_ne!(given["name"], json!("ann"), "{asked}");
        assert!(given["name"].as_str().expect("a name").ends_with('2'), "{asked} → {given}");
    }
    let mut sneaky = Client::connect_with(&server.url("/ws"), &[]).await.expect("open");
    sneaky.expect_type("id").await;
    sneaky.send(json!({"type": "username", "name": "a\u{200C}nn"})).await;
    assert_eq!(sneaky.expect_type("error").await["code"], "invalid-name");
}

#[tokio::test]
async fn an_invite_lets_one_person_into_its_room_under_its_name_and_then_says_it_was_used() {
    let dir = state_dir("invite", &[("ann", "ann's password", true)]);
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let (_, _, admin) = sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    let admin = admin.expect("a cookie");
    let headers = [("Cookie", admin.as_str()), ("Content-Type", "application/json")];
    let request = json!({"room": "clinic", "name": "Kim", "ttl": "1h"}).to_string();
    let (status, _, made) = http_request(server.addr, "POST", "/api/invites", &headers, &request).await;
    assert_eq!(status, 200, "{made}");
    let made: Value = serde_json::from_str(&made).expect("JSON");
    let token = made["path"].as_str().expect("a path").trim_start_matches("/i/").to_owned();
    let (status, answer, guest) = sign_in(&server, json!({"invite": token})).await;
    assert_eq!(
        (status, answer["room"].as_str(), answer["name"].as_str()),
        (200, Some("clinic"), Some("Kim"))
    );
    let guest = guest.expect("a cookie");
    assert_eq!(
        Client::connect_with(&server.url("/ws?room=other"), &[("Cookie", &guest)]).await.err(),
        Some(403)
    );
    assert_eq!(Client::connect_with(&server.url("/ws"), &[("Cookie", &guest)]).await.err(), Some(403));
    let (_, name) = join(&server, "/ws?room=clinic", &guest, "anything").await;
    assert_eq!(name, "Kim");
    let (status, answer, _) = sign_in(&server, json!({"invite": token})).await;
    assert_eq!((status, answer["error"].as_str()), (410, Some("used")));
    let mut tampered = token.clone().into_bytes();
    tampered[5] ^= 1;
    let (status, answer, _) =
        sign_in(&server, json!({"invite": String::from_utf8(tampered).expect("ascii")})).await;
    assert_eq!((status, answer["error"].as_str()), (410, Some("tampered")));
    // Only an admin makes invites.
    let headers = [("Cookie", guest.as_str()), ("Content-Type", "application/json")];
    let (status, _, _) = http_request(server.addr, "POST", "/api/invites", &headers, "{}").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn removing_an_account_closes_its_open_sockets_within_seconds() {
    let dir = state_dir("remove", &[("ann", "ann's password", false), ("bo", "bo's password", false)]);
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let (_, _, ann_cookie) = sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    let (_, _, bo_cookie) = sign_in(&server, json!({"account": "bo", "password": "bo's password"})).await;
    let (mut ann, _) = join(&server, "/ws", &ann_cookie.expect("cookie"), "ann").await;
    let (mut bo, _) = join(&server, "/ws", &bo_cookie.expect("cookie"), "bo").await;
    // What `duet user remove ann` does, from another process.
    common::accounts::remove(&dir, "ann");
    let close =
        tokio::time::timeout(Duration::from_secs(6), ann.closed()).await.expect("closed within seconds");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4001));
    let list = bo.wait_for_userlist(|users| !users.iter().any(|u| u == "ann")).await;
    assert!(list.contains(&"bo".to_owned()), "bo stays");
}

#[tokio::test]
async fn a_removed_account_s_cookie_never_works_for_a_new_account_of_the_same_name() {
    let dir = state_dir("readded", &[("bo", "the first bo's password", true)]);
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let (status, _, cookie) =
        sign_in(&server, json!({"account": "bo", "password": "the first bo's password"})).await;
    assert_eq!(status, 200);
    let old = cookie.expect("a cookie");
    common::accounts::remove(&dir, "bo");
    common::accounts::add(&dir, "bo", "the second bo's password", true);
    tokio::time::sleep(Duration::from_millis(2500)).await; // the server's copy catches up
    assert_eq!(Client::connect_with(&server.url("/ws"), &[("Cookie", &old)]).await.err(), Some(401));
    let headers = [("Cookie", old.as_str()), ("Content-Type", "application/json")];
    let (status, _, _) = http_request(server.addr, "POST", "/api/invites", &headers, "{}").await;
    assert_eq!(status, 401, "the first bo's cookie makes no invites");
    let (_, _, access) = http_request(server.addr, "GET", "/api/access", &[("Cookie", &old)], "").await;
    assert_eq!(serde_json::from_str::<Value>(&access).expect("json")["signedIn"], false);
    let (status, _, cookie) =
        sign_in(&server, json!({"account": "bo", "password": "the second bo's password"})).await;
    assert_eq!(status, 200);
    let (_, name) = join(&server, "/ws", &cookie.expect("a cookie"), "bo").await;
    assert_eq!(name, "bo", "the new bo signs in as themselves");
}

#[tokio::test]
async fn invite_links_made_by_a_removed_admin_stop_working() {
    let dir = state_dir("admin-removed", &[("ann", "ann's password", true)]);
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let (_, _, cookie) = sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    let headers = [("Cookie", cookie.as_deref().expect("a cookie")), ("Content-Type", "application/json")];
    let (status, _, body) =
        http_request(server.addr, "POST", "/api/invites", &headers, r#"{"uses": 5}"#).await;
    assert_eq!(status, 200, "{body}");
    let path =
        serde_json::from_str::<Value>(&body).expect("json")["path"].as_str().expect("a path").to_owned();
    let token = path.trim_start_matches("/i/");
    let (status, _, guest) = sign_in(&server, json!({"invite": token})).await;
    assert_eq!(status, 200);
    let (mut guest_socket, _) = join(&server, "/ws", &guest.expect("a cookie"), "Kim").await;
    common::accounts::remove(&dir, "ann");
    let close = tokio::time::timeout(Duration::from_secs(6), guest_socket.closed()).await.expect("closed");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4001), "the guest ann let in is signed out");
    let (status, answer, _) = sign_in(&server, json!({"invite": token})).await;
    assert_eq!((status, answer["error"].as_str()), (410, Some("revoked")));
}

#[tokio::test]
async fn an_account_guessed_from_many_addresses_waits_while_its_owner_still_gets_in() {
    let dir = state_dir("guessed", &[("ann", "ann's password", false)]);
    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let (status, _, _) = sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    assert_eq!(status, 200, "ann signs in from home (127.0.0.1)");
    let budget = AccessConfig::open().failures_per_account.burst;
    for n in 0..budget {
        let guess = json!({"account": "ann", "password": format!("guess number {n}")});
        assert_eq!(
            common::post_from(&format!("127.0.4.{n}"), server.addr, "/api/sign-in", &guess).await,
            401
        );
    }
    let guess = json!({"account": "ann", "password": "one more guess"});
    assert_eq!(common::post_from("127.0.4.200", server.addr, "/api/sign-in", &guess).await, 429);
    let headers = [("Content-Type", "application/json")];
    let body = json!({"account": "ann", "password": "one more guess"}).to_string();
    let (status, headers, answer) = http_request(server.addr, "POST", "/api/sign-in", &headers, &body).await;
    assert_eq!(status, 401, "home still gets an answer: {answer}");
    assert!(!headers.iter().any(|(n, _)| n == "retry-after"));
    let (status, _, _) = sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    assert_eq!(status, 200, "and the real ann gets in");
    let ann_elsewhere = json!({"account": "ann", "password": "ann's password"});
    assert_eq!(
        common::post_from("127.0.4.201", server.addr, "/api/sign-in", &ann_elsewhere).await,
        429,
        "from a new address even the right password waits: a guess is not checked"
    );
}

#[tokio::test]
async fn a_request_for_a_name_duet_does_not_answer_to_gets_421_on_every_route() {
    let config =
        AccessConfig { hosts: duet_access::Hosts::new(["call.example.org"]), ..AccessConfig::open() };
    let access = Arc::new(Access::new(config, None).expect("access"));
    let server = TestServer::start_with(duet::RunOptions { access, ..duet::RunOptions::plain() }).await;
    let port = server.addr.port();
    for path in ["/", "/ws", "/api/access", "/js/main.js", "/healthz", "/r/team"] {
        let foreign = format!("evil.test:{port}");
        let (status, _, body) = http_request(server.addr, "GET", path, &[("Host", &foreign)], "").await;
        assert_eq!(status, 421, "{path}");
        assert!(body.contains("does not answer to the name evil.test"), "{body}");
        for own in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "call.example.org".into()] {
            let (status, _, _) = http_request(server.addr, "GET", path, &[("Host", &own)], "").await;
            assert_ne!(status, 421, "{path} as {own}");
        }
    }
    let foreign = format!("evil.test:{port}");
    let headers =
        [("Host", foreign.as_str()), ("Origin", "http://evil.test"), ("Content-Type", "application/json")];
    let (status, _, _) =
        http_request(server.addr, "POST", "/api/sign-in", &headers, r#"{"password":"x"}"#).await;
    assert_eq!(status, 421);
    let refused = Client::connect_with(
        &server.url("/ws"),
        &[("Host", &foreign), ("Origin", &format!("http://{foreign}"))],
    )
    .await;
    assert_eq!(refused.err(), Some(421), "a rebinding page's WebSocket, Host and Origin alike, is refused");
}

#[tokio::test]
async fn a_state_directory_of_the_file_days_is_imported_and_everything_in_it_still_holds() {
    use duet_access::{InviteBook, InviteSpec, Key, Session, Who};
    let dir = std::env::temp_dir().join(format!("duet-access-imported-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("made");
    let key = [9u8; 32];
    std::fs::write(dir.join("access.key"), key).expect("the key");
    let key = Key::new(key);
    let hash = duet_access::accounts::hash_password("ann's password", &[1; 16]);
    let accounts = format!(r#"{{"accounts":{{"ann":{{"hash":"{hash}","admin":true,"created":1000}}}}}}"#);
    std::fs::write(dir.join("accounts.json"), accounts).expect("accounts");
    let now = duet::clock::now_ms();
    let mut book = InviteBook::default();
    let spec = |uses| InviteSpec { room: None, name: None, ttl_ms: 3_600_000, uses };
    let (_, used_token) = book.mint(&key, spec(1), [1; 8], "ann", now);
    book.redeem(&key, &used_token, now).expect("used once, then");
    let (_, fresh_token) = book.mint(&key, spec(1), [2; 8], "ann", now);
    std::fs::write(dir.join("invites.json"), serde_json::to_string(&book).expect("json")).expect("invites");
    // Two sessions ann had then: one she signed out of, one she did not.
    let session = |id| Session::new(id, Who::Account { name: "ann".into(), id: None }, now, 3_600_000);
    let (kept, ended) = (session([1; 16]), session([2; 16]));
    let signed_out = format!(r#"{{"sessions":{{"{}":{}}}}}"#, ended.id, ended.expires);
    std::fs::write(dir.join("signed-out.json"), signed_out).expect("sign-outs");

    let server = TestServer::start_with(options(Mode::Members, &dir)).await;
    let cookie = |s: &Session| format!("duet_session={}", s.seal(&key));
    let (mut ann, name) = join(&server, "/ws", &cookie(&kept), "ann").await;
    assert_eq!(name, "ann", "a session from before is still ann's");
    assert_eq!(
        Client::connect_with(&server.url("/ws"), &[("Cookie", &cookie(&ended))]).await.err(),
        Some(401)
    );
    let (status, answer, _) = sign_in(&server, json!({"invite": used_token})).await;
    assert_eq!((status, answer["error"].as_str()), (410, Some("used")), "a used link stays used");
    let (status, _, _) = sign_in(&server, json!({"invite": fresh_token})).await;
    assert_eq!(status, 200, "a fresh link works once");
    let (status, _, _) = sign_in(&server, json!({"account": "ann", "password": "ann's password"})).await;
    assert_eq!(status, 200, "and ann's password");
    assert!(dir.join("accounts.json.imported").exists(), "the old files are kept aside");
    ann.send(json!({"type": "message", "text": "still here"})).await;
    assert_eq!(ann.expect_type("message").await["text"], "still here");
}
