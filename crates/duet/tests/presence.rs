//! Presence under concurrency, and a clean goodbye at shutdown.

mod common;

use std::time::Duration;

use common::TestServer;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_joining_and_leaving_at_once_all_end_with_the_right_list() {
    // A hundred people behind one address (an office NAT): the operator raised the limits.
    let options = duet::RunOptions {
        http: duet::limits::HttpLimits { per_address: 200, ..Default::default() },
        signaling: duet::limits::SignalingLimits { sockets_per_address: 200, ..Default::default() },
        ..duet::RunOptions::plain()
    };
    let server = TestServer::start_with(options).await;
    let mut observer = server.user("observer").await;
    // 100 clients join concurrently; the odd ones leave again at once.
    let joins: Vec<_> = (0..100)
        .map(|i| {
            let server_url = server.url("/ws");
            tokio::spawn(async move {
                let mut client = common::Client::connect(&server_url, None).await;
                client.expect_type("id").await;
                let name = format!("user{i:03}");
                client.send(serde_json::json!({"type": "username", "name": name})).await;
                let seen = client.wait_for_userlist(|users| users.contains(&name)).await;
                if i % 2 == 1 {
                    drop(client);
                    None
                } else {
                    Some((client, seen))
                }
            })
        })
        .collect();
    let mut stayers = Vec::new();
    for join in joins {
        if let Some(client) = join.await.expect("client task") {
            stayers.push(client);
        }
    }
    let mut expected: Vec<String> = (0..100).step_by(2).map(|i| format!("user{i:03}")).collect();
    expected.push("observer".into());
    expected.sort();
    let seen = observer.wait_for_userlist(|users| users == expected.as_slice()).await;
    assert_eq!(seen.len(), 51);
    // Every remaining client converges on the same final list. One that joined last may
    // have seen it already while waiting for its own name: nothing changes after it.
    for (client, seen) in &mut stayers {
        if *seen != expected {
            client.wait_for_userlist(|users| users == expected.as_slice()).await;
        }
    }
}

#[tokio::test]
async fn shutdown_tells_every_client_and_returns() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut lurker = server.client().await;
    lurker.expect_type("id").await;
    server.shutdown.cancel();
    assert_eq!(ann.closed().await.map(|f| f.code), Some(CloseCode::Away));
    assert_eq!(lurker.closed().await.map(|f| f.code), Some(CloseCode::Away));
    let result =
        tokio::time::timeout(Duration::from_secs(5), server.task).await.expect("run returns promptly");
    result.expect("no panic").expect("no error");
}

#[tokio::test]
async fn idle_connections_are_pinged_so_proxies_keep_them_open() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let options = duet::RunOptions { keepalive: Duration::from_millis(100), ..duet::RunOptions::plain() };
    let server = TestServer::start_with(options).await;
    let mut idle = server.client().await;
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while pings < 2 {
        let frame = tokio::time::timeout_at(deadline, idle.ws.next()).await.expect("pings within 2 s");
        if let Some(Ok(Message::Ping(_))) = frame {
            pings += 1;
        }
    }
    // The pings are invisible to the protocol: the next message is still JSON.
    let mut ann = server.user("ann").await;
    ann.send(serde_json::json!({"type": "message", "text": "hi"})).await;
    assert_eq!(ann.recv_not_userlist().await["text"], "hi");
}
