//! The `echo` user: a service of the hub whose every call is answered by a native WebRTC
//! peer (`duet-peer`) that sends the caller's own audio and video back, so a person alone
//! can check their camera, microphone and network.
//!
//! ```text
//!  Hub (call to "echo") ──► a service instance ConnId ──► Signaling spawns run() with an inbox
//!  inbox: incoming-call ──► {accept}      video-offer ──► Echo::accept_offer ──► {video-answer}
//!         new-ice-candidate ──► Echo      call-ended / hang-up ──► stop
//!  UDP sockets (one per local address) ◄──► Echo (media reflected, feedback passed on)
//! ```
//!
//! Each call has its own sockets and state; one failing ends that call only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use duet_peer::{Echo, EchoPoll, Session};
use duet_signal::{ConnId, Payload};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::signaling::Signaling;

/// Where echo calls bind their UDP sockets: the addresses browsers can reach this server
/// at (host candidates).
#[derive(Debug, Clone)]
pub struct EchoConfig {
    pub addresses: Arc<[IpAddr]>,
    /// How long a call may take from ringing to media flowing before the echo hangs up
    /// (a caller that never offers must not hold an echo forever).
    pub setup_timeout: std::time::Duration,
}

impl EchoConfig {
    /// The listen address, or every interface address when listening on all of them.
    pub fn for_listen(listen: IpAddr) -> Self {
        let addresses: Vec<IpAddr> = if listen.is_unspecified() {
            let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
            interfaces
                .into_iter()
                .map(|i| i.ip())
                .filter(|ip| ip.is_ipv4() == listen.is_ipv4() || listen.is_ipv6())
                .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
                .collect()
        } else {
            vec![listen]
        };
        Self { addresses: addresses.into(), setup_timeout: SETUP_TIMEOUT }
    }
}

/// How long an echo call may take to connect, by default.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest datagram read.
const DATAGRAM: usize = 2048;

/// Answers one call to `echo` (the hub's service instance `conn`) until it ends.
pub async fn run(
    signaling: Arc<Signaling>,
    conn: ConnId,
    mut inbox: mpsc::Receiver<Payload>,
    config: EchoConfig,
) {
    let mut call = EchoCall { signaling: Arc::clone(&signaling), conn, peer: String::new(), echo: None };
    let (sockets, mut datagrams) = match bind(&config.addresses).await {
        Ok(bound) => bound,
        Err(e) => {
            tracing::warn!(%conn, "echo cannot bind a UDP socket: {e}");
            signaling.service_ended(conn);
            return;
        }
    };
    let local: Vec<SocketAddr> = sockets.iter().map(|(addr, _)| *addr).collect();
    let mut deadline: Option<Instant> = None;
    let give_up = Instant::now() + config.setup_timeout;
    loop {
        let connected = call.echo.as_ref().is_some_and(Echo::is_connected);
        if !connected && Instant::now() >= give_up {
            tracing::debug!(%conn, "echo call did not connect in {:?}; hanging up", config.setup_timeout);
            call.hang_up();
            break;
        }
        let wake = if connected { deadline } else { Some(deadline.map_or(give_up, |d| d.min(give_up))) };
        let sleep = crate::clock::sleep_until(wake);
        tokio::select! {
            payload = inbox.recv() => {
                let Some(payload) = payload else { break };
                match call.handle_signal(&payload, &local) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::debug!(%conn, "echo call ends: {e}");
                        call.hang_up();
                        break;
                    }
                }
            }
            Some((source, destination, data)) = datagrams.recv() => {
                if let Some(echo) = call.echo.as_mut()
                    && let Err(e) = echo.session().handle_datagram(Instant::now(), source, destination, &data)
                {
                    tracing::debug!(%conn, "echo call ends: {e}");
                    call.hang_up();
                    break;
                }
            }
            () = sleep => {
                if let Some(echo) = call.echo.as_mut()
                    && let Err(e) = echo.session().handle_timeout(Instant::now())
                {
                    tracing::debug!(%conn, "echo call ends: {e}");
                    call.hang_up();
                    break;
                }
            }
        }
        match call.drive(&sockets).await {
            Ok(Some(next)) => deadline = Some(next),
            Ok(None) => deadline = None,
            Err(()) => {
                call.hang_up();
                break;
            }
        }
    }
    if let Some(echo) = &call.echo {
        tracing::debug!(%conn, stats = ?echo.stats(), "echo call over");
    }
    signaling.service_ended(conn);
}

struct EchoCall {
    signaling: Arc<Signaling>,
    conn: ConnId,
    /// Who called.
    peer: String,
    echo: Option<Echo>,
}

impl EchoCall {
    /// Handles one message the hub sent this instance; `false` when the call is over.
    fn handle_signal(&mut self, payload: &str, local: &[SocketAddr]) -> Result<bool, duet_peer::PeerError> {
        let Ok(msg) = serde_json::from_str::<Value>(payload) else { return Ok(true) };
        match msg["type"].as_str() {
            Some("incoming-call") => {
                self.peer = msg["name"].as_str().unwrap_or_default().to_owned();
                self.send(serde_json::json!({"type": "accept", "callId": msg["callId"]}));
            }
            Some("video-offer") => {
                self.peer = msg["name"].as_str().unwrap_or_default().to_owned();
                let echo = match self.echo.as_mut() {
                    Some(echo) => echo,
                    None => self.echo.insert(Echo::new(Session::new(Instant::now(), local)?)),
                };
                let answer = echo.session().accept_offer(&msg["sdp"].to_string())?;
                let answer: Value = serde_json::from_str(&answer).expect("the answer is JSON");
                self.send(serde_json::json!({"type": "video-answer", "target": self.peer, "sdp": answer}));
            }
            Some("new-ice-candidate") => {
                if let Some(echo) = self.echo.as_mut() {
                    echo.session().add_remote_candidate(&msg["candidate"].to_string())?;
                }
            }
            Some("call-ended" | "hang-up") => return Ok(false),
            _ => {}
        }
        Ok(true)
    }

    /// Sends what the session has to send; returns when it wants the next timeout.
    async fn drive(&mut self, sockets: &[(SocketAddr, Arc<UdpSocket>)]) -> Result<Option<Instant>, ()> {
        let Some(echo) = self.echo.as_mut() else { return Ok(None) };
        loop {
            match echo.poll() {
                Ok(EchoPoll::Transmit(t)) => {
                    let socket = sockets.iter().find(|(addr, _)| *addr == t.source).map(|(_, s)| s);
                    if let Some(socket) = socket {
                        // A full socket buffer or an unreachable peer loses this datagram only.
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                }
                Ok(EchoPoll::Timeout(at)) => return Ok(Some(at)),
                Ok(EchoPoll::Ended) => return Err(()),
                Err(e) => {
                    tracing::debug!(conn = %self.conn, "echo call ends: {e}");
                    return Err(());
                }
            }
        }
    }

    fn hang_up(&self) {
        if !self.peer.is_empty() {
            self.send(serde_json::json!({"type": "hang-up", "target": self.peer}));
        }
    }

    fn send(&self, msg: Value) {
        self.signaling.service_says(self.conn, &msg.to_string());
    }
}

type Datagram = (SocketAddr, SocketAddr, Vec<u8>);

/// One UDP socket per address, each read by a task that forwards into one channel.
async fn bind(
    addresses: &[IpAddr],
) -> std::io::Result<(Vec<(SocketAddr, Arc<UdpSocket>)>, mpsc::Receiver<Datagram>)> {
    let (tx, rx) = mpsc::channel(256);
    let mut sockets = Vec::new();
    for &ip in addresses {
        let socket = match UdpSocket::bind(SocketAddr::new(ip, 0)).await {
            Ok(socket) => Arc::new(socket),
            Err(e) => {
                tracing::debug!("echo cannot bind {ip}: {e}");
                continue;
            }
        };
        let local = socket.local_addr()?;
        let reader = Arc::clone(&socket);
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; DATAGRAM];
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    received = reader.recv_from(&mut buf) => match received {
                        Ok((n, source)) => {
                            if tx.send((source, local, buf[..n].to_vec())).await.is_err() {
                                return;
                            }
                        }
                        // ICMP errors (a closed port on the other side) surface here.
                        Err(_) => continue,
                    },
                }
            }
        });
        sockets.push((local, socket));
    }
    if sockets.is_empty() {
        return Err(std::io::Error::other("no address to bind"));
    }
    Ok((sockets, rx))
}
