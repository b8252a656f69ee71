//! Debian's coturn tools as independent TURN clients: `turnutils_uclient` relaying to a
//! `turnutils_peer` echo, with the output kept for assertions.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

pub fn tool(name: &str) -> Command {
    let path = format!("/usr/bin/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: install Debian's coturn package (./test.sh does)"
    );
    let mut command = Command::new(path);
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    command
}

pub fn free_udp_port(host: &str) -> u16 {
    let socket = std::net::UdpSocket::bind((host, 0)).expect("bind");
    socket.local_addr().expect("bound").port()
}

pub struct Run {
    pub success: bool,
    pub output: String,
}

/// Runs turnutils_uclient against `server` with `flags`, relaying to `peer`.
pub async fn uclient(server: SocketAddr, secret: &str, peer: &str, peer_port: u16, flags: &[&str]) -> Run {
    let port = server.port().to_string();
    let peer_port = peer_port.to_string();
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["-W", secret, "-e", peer, "-r", &peer_port, "-n", "20", "-m", "2", "-l", "160", "-z", "5"]);
    let host = server.ip().to_string();
    args.extend(["-p", &port, &host]);
    let child = tool("turnutils_uclient").args(&args).spawn().expect("start turnutils_uclient");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("uclient finishes within a minute")
        .expect("uclient runs");
    let output = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Run { success: out.status.success(), output }
}

pub fn assert_all_echoed(run: &Run, what: &str) {
    assert!(run.success, "{what}: uclient failed:\n{}", tail(&run.output));
    assert!(
        run.output.contains("Total lost packets 0 (0.000000%)"),
        "{what}: packets lost:\n{}",
        tail(&run.output)
    );
}

pub fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
