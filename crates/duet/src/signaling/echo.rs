//! The `echo` user: a service of the hub whose every call is answered by a native WebRTC
//! peer (`duet-peer`) that sends the caller's own audio and video back, so a person alone
//! can check their camera, microphone and network.
//!
//! ```text
//!  Hub (call to "echo") ──► a service instance ConnId ──► signaling spawns run() with an inbox
//!  inbox: incoming-call ──► {accept}      video-offer ──► Echo::accept_offer ──► {video-answer}
//!         new-ice-candidate ──► Echo      call-ended / hang-up ──► stop
//!  UDP sockets (one per local address) ◄──► Echo (media reflected, feedback passed on)
//! ```
//!
//! Each call has its own sockets and state; one failing ends that call only.
//!
//! The echo sends ICE checks to whatever candidates the caller names, so those pass the
//! same peer policy as the TURN relay (no loopback, private or special addresses, never
//! this server's own, unless the operator allowed them), at most
//! [`MAX_REMOTE_CANDIDATES`] per call; the rest are ignored. The hub caps echo calls per
//! client address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use duet_peer::{Echo, EchoPoll, Session};
use std::borrow::Cow;

use duet_signal::{Candidate, ClientMessage, ConnId, Description, Payload, ServerMessage};
use duet_turn::policy::PeerPolicy;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How a participant that is not a socket (echo; next a recorder, a media server)
/// takes part in calls: it reads what the hub sends its instance as [`ServerMessage`]s
/// (`ServerMessage::parse` on its inbox's frames) and says [`ClientMessage`]s back, which
/// the hub takes as typed messages (`Hub::handle_message`), with no JSON in between.
/// Signaling implements it; a service knows nothing else of signaling.
pub trait ServiceLink: Send + Sync + 'static {
    /// The service instance `conn` says `msg`.
    fn says(&self, conn: ConnId, msg: ClientMessage<'_>);
    /// The instance `conn` is done (its call ended, or it failed): its call ends.
    fn ended(&self, conn: ConnId);
}

/// Where echo calls bind their UDP sockets: the addresses browsers can reach this server
/// at (host candidates).
#[derive(Debug, Clone)]
pub struct EchoConfig {
    pub addresses: Arc<[IpAddr]>,
    /// How long a call may take from ringing to media flowing before the echo hangs up
    /// (a caller that never offers must not hold an echo forever).
    pub setup_timeout: std::time::Duration,
    /// Which remote candidates the echo may send to: the relay's policy, with this
    /// server's own addresses added as they are when a call starts.
    pub policy: Arc<PeerPolicy>,
    /// The address listened on (the policy's own addresses are worked out for it).
    pub listen: IpAddr,
}

impl EchoConfig {
    /// The listen address, or every interface address when listening on all of them;
    /// remote candidates pass `base` with this server's own addresses added.
    pub fn for_listen(listen: IpAddr, base: &PeerPolicy) -> Self {
        let interfaces = crate::interfaces::current();
        let addresses: Vec<IpAddr> = if listen.is_unspecified() {
            interfaces
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == listen.is_ipv4() || listen.is_ipv6())
                .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
                .collect()
        } else {
            vec![listen]
        };
        Self {
            addresses: addresses.into(),
            setup_timeout: SETUP_TIMEOUT,
            policy: Arc::new(base.clone()),
            listen,
        }
    }

    /// The policy for a call starting now: this server's addresses as they are now.
    fn policy_now(&self) -> Arc<PeerPolicy> {
        let interfaces = crate::interfaces::current();
        Arc::new(crate::config::policy_for_listener(&self.policy, self.listen, None, &interfaces))
    }
}

/// Remote candidates one echo call takes (a browser offers a few dozen at most, more
/// over several ICE restarts); later ones are ignored.
pub const MAX_REMOTE_CANDIDATES: usize = 64;

/// The address of an ICE candidate line (`candidate:1 1 udp 2122 192.0.2.7 5000 typ host`,
/// with or without `a=`), if it is an IP address (mDNS `.local` names are not).
fn candidate_address(line: &str) -> Option<IpAddr> {
    let line = line.trim().strip_prefix("a=").unwrap_or(line.trim());
    line.strip_prefix("candidate:")?.split_whitespace().nth(4)?.parse().ok()
}

/// Keeps a remote candidate if its address passes `policy` and `budget` is not spent.
fn admit(line: &str, policy: &PeerPolicy, budget: &mut usize) -> bool {
    let allowed = *budget > 0 && candidate_address(line).is_some_and(|ip| policy.allows(ip));
    if allowed {
        *budget -= 1;
    }
    allowed
}

/// The offer's SDP without the candidates [`admit`] refuses.
fn admitted_sdp(sdp: &str, policy: &PeerPolicy, budget: &mut usize) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if !line.starts_with("a=candidate:") || admit(line, policy, budget) {
            out.push_str(line);
        }
    }
    out
}

/// How long an echo call may take to connect, by default.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest datagram read.
const DATAGRAM: usize = 2048;

/// Answers one call to `echo` (the hub's service instance `conn`) until it ends.
pub async fn run(
    signaling: Arc<dyn ServiceLink>,
    conn: ConnId,
    mut inbox: mpsc::Receiver<Payload>,
    config: EchoConfig,
) {
    let mut call = EchoCall {
        signaling: Arc::clone(&signaling),
        conn,
        peer: String::new(),
        echo: None,
        policy: config.policy_now(),
        candidates_left: MAX_REMOTE_CANDIDATES,
    };
    let (sockets, mut datagrams) = match bind(&config.addresses).await {
        Ok(bound) => bound,
        Err(e) => {
            tracing::warn!(%conn, "echo cannot bind a UDP socket: {e}");
            signaling.ended(conn);
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
                // What the hub sends is well-formed; a frame of a type echo does not know
                // is none of its business.
                let Ok(msg) = ServerMessage::parse(&payload) else { continue };
                match call.handle_signal(msg, &local) {
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
    signaling.ended(conn);
}

struct EchoCall {
    signaling: Arc<dyn ServiceLink>,
    conn: ConnId,
    /// Who called.
    peer: String,
    echo: Option<Echo>,
    policy: Arc<PeerPolicy>,
    /// Remote candidates this call may still take.
    candidates_left: usize,
}

impl EchoCall {
    /// Handles one message the hub sent this instance; `false` when the call is over.
    fn handle_signal(
        &mut self,
        msg: ServerMessage<'_>,
        local: &[SocketAddr],
    ) -> Result<bool, duet_peer::PeerError> {
        match msg {
            ServerMessage::IncomingCall { call_id, name, .. } => {
                self.peer = name.into_owned();
                self.send(ClientMessage::Accept { call_id });
            }
            ServerMessage::VideoOffer { name, sdp, .. } => {
                self.peer = name.into_owned();
                let echo = match self.echo.as_mut() {
                    Some(echo) => echo,
                    None => self.echo.insert(Echo::new(Session::new(Instant::now(), local)?)),
                };
                let mut offer =
                    Description::read(&sdp).map_err(|e| duet_peer::PeerError::Offer(e.to_string()))?;
                offer.sdp = admitted_sdp(&offer.sdp, &self.policy, &mut self.candidates_left);
                let answer = echo.session().accept_offer(offer.to_raw().get())?;
                let answer = serde_json::value::RawValue::from_string(answer).expect("the answer is JSON");
                self.send(ClientMessage::VideoAnswer {
                    target: Cow::Borrowed(&self.peer),
                    sdp: Cow::Owned(answer),
                });
            }
            ServerMessage::NewIceCandidate { candidate, .. } => {
                let line = Candidate::read(&candidate).map(|c| c.candidate).unwrap_or_default();
                if let Some(echo) = self.echo.as_mut()
                    && admit(&line, &self.policy, &mut self.candidates_left)
                {
                    echo.session().add_remote_candidate(candidate.get())?;
                }
            }
            ServerMessage::CallEnded { .. } | ServerMessage::HangUp { .. } => return Ok(false),
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
            self.send(ClientMessage::HangUp { target: Some(Cow::Borrowed(&self.peer)), failed: false });
        }
    }

    fn send(&self, msg: ClientMessage<'_>) {
        self.signaling.says(self.conn, msg);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_the_relay_would_refuse_are_never_checked() {
        let policy = PeerPolicy::default();
        let mut budget = 10;
        for line in [
            "candidate:1 1 udp 2122260223 169.254.169.254 80 typ host",
            "a=candidate:1 1 udp 2122260223 10.0.0.1 161 typ host",
            "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
            "candidate:1 1 udp 2122260223 ::ffff:127.0.0.1 5000 typ host",
            "candidate:1 1 udp 2122260223 0.0.0.0 5000 typ host",
            "candidate:1 1 udp 2122260223 3f1e6b2c-8c1a.local 5000 typ host",
            "candidate:1 1 udp",
            "nonsense",
        ] {
            assert!(!admit(line, &policy, &mut budget), "{line}");
        }
        assert_eq!(budget, 10, "refused candidates cost nothing");
        assert!(admit("candidate:2 1 udp 1686052607 8.8.8.8 40000 typ srflx", &policy, &mut budget));
    }

    #[test]
    fn a_call_takes_only_so_many_candidates() {
        let policy = PeerPolicy::default();
        let mut budget = 3;
        let line = "candidate:2 1 udp 1686052607 8.8.8.8 40000 typ srflx";
        assert_eq!((0..10).filter(|_| admit(line, &policy, &mut budget)).count(), 3);
    }

    #[test]
    fn an_offer_keeps_its_lines_but_loses_refused_candidates() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 2122260223 10.0.0.1 161 typ host\r\n\
                   a=candidate:2 1 udp 1686052607 8.8.8.8 40000 typ srflx\r\na=mid:0\r\n";
        let mut budget = 64;
        let kept = admitted_sdp(sdp, &PeerPolicy::default(), &mut budget);
        assert_eq!(
            kept,
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:2 1 udp 1686052607 8.8.8.8 40000 typ srflx\r\na=mid:0\r\n"
        );
    }
}
