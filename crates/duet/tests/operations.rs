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
        let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
        command.env("DUET_LOG", "info");
        Self::start_command(command, args)
    }

    /// `duet serve` on a free loopback port with `args`, as `command` sets it up.
    fn start_command(mut command: Command, args: &[&str]) -> Self {
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-metrics", "--no-echo"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start duet");
        let web = common::printed_address(&mut child);
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
    assert!(line.contains("read the store again: 2 accounts"), "{line}");
    assert!(duet.child.try_wait().expect("a status").is_none(), "SIGHUP does not stop duet");
    bo.send(json!({"type": "message", "text": "still here"})).await;
    assert_eq!(bo.expect_type("message").await["text"], "still here", "bo's connection went on");
    let body = json!({"account": "cy", "password": "a long password"}).to_string();
    let (status, _, _) =
        http_request(duet.web, "POST", "/api/sign-in", &[("Content-Type", "application/json")], &body).await;
    assert_eq!(status, 200, "the new account signs in");
    std::fs::remove_dir_all(&state).ok();
}

#[tokio::test]
async fn sighup_applies_a_changed_log_level_and_origin_list_and_names_what_needs_a_restart() {
    let path = config_file(
        "reload",
        "allowed-origin = [\"https://a.example\"]\nring-timeout = \"30s\"\n[log]\nlevel = \"info\"\n",
    );
    let file = path.to_str().expect("UTF-8");
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    command.env_remove("DUET_LOG"); // the file's level, not the environment's
    let mut duet = Duet::start_command(command, &["--config", file]);
    let url = format!("ws://{}/ws", duet.web);
    let from = |origin: &'static str| {
        let url = url.clone();
        async move { Client::connect_with(&url, &[("Origin", origin)]).await.map(|_| ()) }
    };
    assert!(from("https://a.example").await.is_ok());
    assert_eq!(from("https://b.example").await, Err(403));
    let mut ann = Client::connect(&url, None).await;
    ann.expect_type("id").await;
    ann.send(json!({"type": "username", "name": "ann"})).await;
    ann.expect_type("userlist").await;

    std::fs::write(
        &path,
        "allowed-origin = [\"https://b.example\"]\nring-timeout = \"45s\"\n[log]\nlevel = \"debug\"\n",
    )
    .expect("rewrite the file");
    let hup = |pid: u32| {
        assert!(Command::new("kill").args(["-HUP", &pid.to_string()]).status().expect("kill").success())
    };
    hup(duet.child.id());
    let line = duet.log_line("reloaded the configuration");
    assert!(
        line.contains("log level: debug") && line.contains("allowed origins: https://b.example"),
        "{line}"
    );
    let line = duet.log_line("take effect only after a restart");
    assert!(line.contains("ring-timeout") && !line.contains("allowed-origin"), "{line}");
    assert!(from("https://b.example").await.is_ok(), "the new origin is let in");
    assert_eq!(from("https://a.example").await, Err(403), "the old one no longer");
    duet.log_line("WebSocket refused"); // a debug line: the new level is in force
    ann.send(json!({"type": "message", "text": "still here"})).await;
    assert_eq!(ann.expect_type("message").await["text"], "still here", "ann's connection went on");

    // A mistake in the file changes nothing.
    std::fs::write(&path, "allowed-origin = [\"https://c.example\"]\nring-timeout = \"soon\"\n")
        .expect("write");
    hup(duet.child.id());
    let line = duet.log_line("SIGHUP: the configuration has an error");
    assert!(line.contains("ring-timeout") && line.contains("nothing in it changed"), "{line}");
    assert!(from("https://b.example").await.is_ok());
    assert!(duet.child.try_wait().expect("a status").is_none(), "SIGHUP does not stop duet");
    std::fs::remove_file(path).ok();
}

/// `duet <args>` with `env`, to its end: exit code, stdout, stderr.
fn run_duet(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_duet")).args(args).envs(env.iter().copied()).output().expect("ran");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn config_file(test: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("duet-{test}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the config");
    path
}

#[test]
fn a_config_file_with_every_section_is_what_duet_config_prints_back() {
    let path = config_file(
        "every-section",
        "# a comment\nlisten = \"127.0.0.1:0\"\nno-echo = true\nring-timeout = \"45s\"\nsession-ttl = \"7d\"\n\
         [tls]\nself-signed = false\n[turn]\nrelay-ports = \"50000-50999\"\ndenied-peer = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n\
         [limit]\nchat = \"4,1/s\"\nwebsockets-per-address = 100\n[access]\nmode = \"open\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[external-turn]\nurl = []\n\
         [acme]\nchallenge = \"tls-alpn-01\"\n[http]\n",
    );
    let file = path.to_str().expect("UTF-8");
    let (code, printed, err) = run_duet(&["config", "--config", file], &[]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "listen = \"127.0.0.1:0\"",
        "no-echo = true",
        "ring-timeout = \"45s\"",
        "relay-ports = \"50000-50999\"",
        "denied-peer = [\"10.0.0.0/8\", \"192.168.0.0/16\"]",
        "chat = \"4,1/s\"",
        "websockets-per-address = \"100\"",
        "format = \"json\"",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line:?} in\n{printed}");
    }
    // What it prints is a config file of its own, and duet starts from it.
    let again = config_file("printed", &printed);
    let mut duet = Duet::start(&["--config", again.to_str().expect("UTF-8")]);
    assert!(duet.log_line("access open").starts_with('{'), "the file's [log] format = json took effect");
    std::fs::remove_file(path).ok();
    std::fs::remove_file(again).ok();
}

#[test]
fn a_misspelt_key_or_a_wrong_value_names_the_file_line_and_key() {
    let path = config_file("typo", "listen = \"127.0.0.1:0\"\n\n[turn]\nrelay-prots = \"50000-50999\"\n");
    let (code, _, err) = run_duet(&["--config", path.to_str().expect("UTF-8")], &[]);
    assert_eq!(code, 2);
    assert!(err.contains(":4: turn.relay-prots: there is no such option"), "{err}");
    let path = config_file("wrong", "ring-timeout = \"soon\"\n");
    let (code, _, err) = run_duet(&["--config", path.to_str().expect("UTF-8")], &[]);
    assert_eq!(code, 2);
    assert!(err.contains(":1: ring-timeout:") && err.contains("soon"), "{err}");
    let path = config_file("flag", "no-echo = \"yes\"\n");
    let (_, _, err) = run_duet(&["--config", path.to_str().expect("UTF-8")], &[]);
    assert!(err.contains(":1: no-echo: write true or false"), "{err}");
}

#[test]
fn automatic_certificates_are_set_in_the_config_file_and_wrong_settings_are_refused_in_words() {
    let path = config_file(
        "acme",
        "listen = \"0.0.0.0:443\"\n[access]\nmode = \"members\"\n\
         [acme]\ndomain = [\"Call.Example.org\"]\nemail = \"ops@example.org\"\n[http]\nredirect-listen = \"0.0.0.0:80\"\n",
    );
    let file = path.to_str().expect("UTF-8");
    let (code, printed, err) = run_duet(&["config", "--config", file], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("would not start"), "{err}");
    assert!(printed.lines().any(|l| l == "domain = [\"Call.Example.org\"]"), "{printed}");
    assert!(printed.lines().any(|l| l == "redirect-listen = \"0.0.0.0:80\""), "{printed}");
    for (args, says) in [
        (&["--acme-domain", "192.0.2.1"][..], "--acme-domain 192.0.2.1: a CA issues for a domain name"),
        (&["--acme-domain", "*.example.org"][..], "wildcard"),
        (&["--acme-domain", "a.example.org", "--acme-challenge", "http-01"][..], "--http-redirect-listen"),
        (&["--acme-domain", "a.example.org", "--acme-email", "nobody"][..], "not an e-mail address"),
        (&["--acme-domain", "a.example.org", "--acme-directory", "http://ca.example/dir"][..], "https://"),
        (&["--http-redirect-listen", "127.0.0.1:0"][..], "turn HTTPS on"),
        (&["--acme-email", "ops@example.org"][..], "need --acme-domain"),
    ] {
        let (code, _, err) = run_duet(&[&["serve", "--no-metrics"][..], args].concat(), &[]);
        assert_ne!(code, 0, "{args:?} starts");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (code, _, err) =
        run_duet(&["--acme-domain", "a.example.org", "--tls-cert", "c.pem", "--tls-key", "k.pem"], &[]);
    assert_eq!(code, 2, "the CA's certificate or one's own, not both: {err}");
    std::fs::remove_file(path).ok();
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let path = config_file("precedence", "ring-timeout = \"40s\"\n");
    let file = path.to_str().expect("UTF-8");
    let shown = |args: &[&str], env: &[(&str, &str)]| {
        let (code, printed, err) = run_duet(&[&["config", "--config", file][..], args].concat(), env);
        assert_eq!(code, 0, "{err}");
        printed.lines().find(|l| l.starts_with("ring-timeout")).expect("set").to_owned()
    };
    assert_eq!(shown(&[], &[]), "ring-timeout = \"40s\"");
    assert_eq!(shown(&[], &[("DUET_RING_TIMEOUT", "50s")]), "ring-timeout = \"50s\"");
    assert_eq!(shown(&["--ring-timeout", "60s"], &[("DUET_RING_TIMEOUT", "50s")]), "ring-timeout = \"60s\"");
    std::fs::remove_file(path).ok();
}
