//! Running duet as a service, against the real binary: JSON logs for a collector,
//! `/readyz` for a load balancer, SIGHUP to reload accounts without dropping anyone.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, http_request};
use serde_json::{Value, json};

/// The duet binary, started with `args`; its address and its log lines.
struct Duet {
    child: Child,
    web: SocketAddr,
    log: BufReader<ChildStderr>,
}

impl Duet {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-metrics", "--no-echo"])
            .args(args)
            .env("DUET_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start duet");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("duet prints its address");
        let web = line.trim().rsplit("http://").next().expect("an address").parse().expect("host:port");
        let log = BufReader::new(child.stderr.take().expect("piped"));
        Self { child, web, log }
    }

    /// The next log line that contains `words` (within 10 s).
    fn log_line(&mut self, words: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut line = String::new();
        while Instant::now() < deadline {
            line.clear();
            if self.log.read_line(&mut line).expect("read the log") == 0 {
                break;
            }
            if line.contains(words) {
                return line;
            }
        }
        panic!("no log line with {words:?}");
    }
}

impl Drop for Duet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn logs_can_be_json_lines_and_readyz_says_ready() {
    let mut duet = Duet::start(&["--log-format", "json"]);
    let line = duet.log_line("access open");
    let entry: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["level"], "INFO");
    assert!(entry["fields"]["message"].as_str().is_some_and(|m| m.starts_with("access open")), "{entry}");
    assert!(entry["timestamp"].is_string());
    let (status, _, body) = http_request(duet.web, "GET", "/readyz", &[], "").await;
    assert_eq!((status, body.trim()), (200, "ready"));
}

#[tokio::test]
async fn sighup_reloads_the_accounts_without_dropping_anyone() {
    let state = std::env::temp_dir().join(format!("duet-sighup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let state_arg = state.to_str().expect("UTF-8");
    let add = |name: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
            .args(["user", "add", name, "--state-dir", state_arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("duet user add");
        std::io::Write::write_all(&mut child.stdin.take().expect("piped"), b"a long password\n")
            .expect("write");
        assert!(child.wait().expect("ran").success());
    };
    add("bo");
    let mut duet = Duet::start(&["--access", "members", "--state-dir", state_arg]);
    let body = json!({"account": "bo", "password": "a long password"}).to_string();
    let (status, headers, _) =
        http_request(duet.web, "POST", "/api/sign-in", &[("Content-Type", "application/json")], &body).await;
    assert_eq!(status, 200);
    let cookie = headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .expect("a cookie")
        .1
        .split(';')
        .next()
        .expect("a value")
        .to_owned();
    let mut bo =
        Client::connect_with(&format!("ws://{}/ws", duet.web), &[("Cookie", &cookie)]).await.expect("in");
    bo.expect_type("id").await;
    bo.send(json!({"type": "username", "name": "bo"})).await;
    bo.expect_type("userlist").await;

    add("cy");
    let pid = duet.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    let line = duet.log_line("SIGHUP");
    assert!(line.contains("reloaded the access files: 2 accounts"), "{line}");
    assert!(duet.child.try_wait().expect("a status").is_none(), "SIGHUP does not stop duet");
    bo.send(json!({"type": "message", "text": "still here"})).await;
    assert_eq!(bo.expect_type("message").await["text"], "still here", "bo's connection went on");
    let body = json!({"account": "cy", "password": "a long password"}).to_string();
    let (status, _, _) =
        http_request(duet.web, "POST", "/api/sign-in", &[("Content-Type", "application/json")], &body).await;
    assert_eq!(status, 200, "the new account signs in");
    std::fs::remove_dir_all(&state).ok();
}
