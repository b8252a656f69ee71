//! Plain HTTP/1.1 requests to the server under test (one connection each, as a browser
//! that opens many tabs would), and accounts made as an operator makes them.

use std::io::Write;
use std::process::{Command, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `duet user add <name>`, as an operator would.
pub fn add_account(state: &std::path::Path, name: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["user", "add", name, "--state-dir", state.to_str().expect("UTF-8")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("duet user add");
    child.stdin.take().expect("piped").write_all(format!("{password}\n").as_bytes()).expect("write");
    assert!(child.wait().expect("ran").success(), "duet user add");
}

/// Sends `request` on a connection of its own; the whole answer.
pub async fn exchange(addr: &str, request: String) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

pub fn post(addr: &str, body: &str) -> String {
    format!(
        "POST /api/sign-in HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The session cookie a sign-in with `body` gets.
pub async fn cookie(addr: &str, body: &str) -> String {
    let response = exchange(addr, post(addr, body)).await.expect("signed in");
    let line =
        response.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a cookie");
    line.split_once(':').expect("a header").1.trim().split(';').next().expect("name=value").to_owned()
}
