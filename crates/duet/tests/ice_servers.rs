//! Signaling hands every signed-in user duet's STUN/TURN servers with credentials that
//! the TURN server accepts, and nobody else gets them.

mod common;

use common::TestServer;
use duet_turn::auth::ephemeral_password;

const SECRET: &str = "the secret shared with TURN";

#[tokio::test]
async fn a_signed_in_user_gets_turn_urls_and_valid_ephemeral_credentials() {
    let server = TestServer::start_with_turn(SECRET).await;
    let mut ann = server.user("ann").await;
    let msg = ann.expect_type("ice-servers").await;
    let servers = msg["iceServers"].as_array().expect("a list");
    let stun = servers[0]["urls"][0].as_str().expect("a URL");
    assert!(stun.starts_with("stun:127.0.0.1:"), "{stun}");
    let turn = &servers[1];
    let urls: Vec<&str> = turn["urls"].as_array().expect("urls").iter().filter_map(|u| u.as_str()).collect();
    assert!(
        urls.iter().any(|u| u.ends_with("?transport=udp"))
            && urls.iter().any(|u| u.ends_with("?transport=tcp"))
    );
    let username = turn["username"].as_str().expect("a username");
    let (expiry, user) = username.split_once(':').expect("expiry:user");
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let expiry: u64 = expiry.parse().expect("a number");
    assert!((now + 100..=now + 121).contains(&expiry), "expires with the configured ttl");
    assert!(user.starts_with("duet-"));
    assert_eq!(turn["credential"].as_str(), Some(ephemeral_password(SECRET.as_bytes(), username).as_str()));
    assert_eq!(msg["ttl"], 120);
}

#[tokio::test]
async fn nobody_gets_credentials_before_signing_in() {
    let server = TestServer::start_with_turn(SECRET).await;
    let mut lurker = server.client().await;
    lurker.expect_type("id").await;
    lurker.assert_quiet().await;
}

#[tokio::test]
async fn without_turn_no_ice_servers_message_is_sent() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    ann.send(serde_json::json!({"type": "message", "text": "ping"})).await;
    let next = ann.recv_not_userlist().await;
    assert_eq!(next["type"], "message", "MDN clients see only MDN messages");
}

#[tokio::test]
async fn a_taken_default_turn_port_turns_turn_off_but_a_chosen_one_stops_duet() {
    use common::embedded_turn;
    use duet::config::{EmbeddedTurn, IceSettings, TurnMode};
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("bound");
    let settings = |listen_chosen| {
        TurnMode::Embedded(Box::new(EmbeddedTurn { listen_chosen, ..embedded_turn(listen, SECRET) }))
    };
    let ice = IceSettings { host: None, ttl: std::time::Duration::from_secs(120) };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (turn, servers) = duet::serve::start_ice(&settings(false), &ice, None, shutdown.clone())
        .await
        .expect("duet still starts");
    assert!(turn.is_none());
    assert_eq!(servers.message(Some("localhost"), "u"), None, "browsers are told of no TURN server");
    let err = duet::serve::start_ice(&settings(true), &ice, None, shutdown).await.expect_err("a chosen port");
    assert!(format!("{err:#}").contains("bind TURN UDP"), "{err:#}");
}

/// The user part of the TURN username in `ice`, and the whole username and password.
fn turn_user(ice: &serde_json::Value) -> (String, String, String) {
    let (_, username, password) = common::turn_probe::credentials_of(ice);
    let user = username.split_once(':').expect("expiry:user").1.to_owned();
    (user, username, password)
}

#[tokio::test]
async fn two_servers_never_hand_out_the_same_turn_user() {
    let (one, two) = (TestServer::start_with_turn(SECRET).await, TestServer::start_with_turn(SECRET).await);
    let mut users = Vec::new();
    for server in [&one, &two] {
        for name in ["ann", "bo"] {
            let mut client = server.user(name).await;
            users.push(turn_user(&client.expect_type("ice-servers").await).0);
        }
    }
    let mut distinct = users.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        users.len(),
        "the first session of each server is not the same user: {users:?}"
    );
}

#[tokio::test]
async fn credentials_of_a_session_that_ended_stay_dead_after_a_restart() {
    use common::turn_probe::{Answer, TurnProbe};
    let before = TestServer::start_with_turn(SECRET).await;
    let mut ann = before.user("ann").await;
    let (_, username, password) = turn_user(&ann.expect_type("ice-servers").await);
    ann.ws.close(None).await.expect("ann leaves: her session ends, her credentials are revoked");
    before.shutdown.cancel();
    // The same secret after a restart: a new process has forgotten the revocation.
    let after = TestServer::start_with_turn(SECRET).await;
    let mut bo = after.user("bo").await;
    let (relay, bo_username, bo_password) =
        common::turn_probe::credentials_of(&bo.expect_type("ice-servers").await);
    let mut probe = TurnProbe::with_credentials("127.0.0.1:0", relay, &bo_username, &bo_password).await;
    assert!(matches!(probe.allocate().await, Answer::Success(Some(_))), "this run's credentials work");
    let mut stale = TurnProbe::with_credentials("127.0.0.2:0", relay, &username, &password).await;
    assert_eq!(stale.allocate().await, Answer::Error(401), "the ended session's credentials do not");
}
