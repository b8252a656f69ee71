//! `duet call`: a call from a terminal. Signs in to a duet server, calls `--to` (or waits
//! to be called), plays `--play` files into the call and records what arrives into
//! `--record` files, printing the call's state and live figures once a second.
//!
//! ```text
//!  files ──► Player (paced by their timestamps) ──► Session::send_frame ─┐
//!  WebSocket ⇄ signaling (sign in, call/accept, offer/answer, candidates)├─► UDP ⇄ the other side
//!  Recorder ◄── Event::MediaData ◄── Session ◄───────────────────────────┘
//! ```
//!
//! Exit codes: 0 the call happened and ended; 1 bad arguments or files; 2 the server
//! cannot be reached or broke the protocol; 3 the call was not made (declined, busy,
//! missed, no such user); 4 no network path to the other side.

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use duet_peer::media::MediaFileError;
use duet_peer::media::ivf::{IvfHeader, IvfReader, IvfWriter};
use duet_peer::media::ogg::{OggOpusReader, OggOpusWriter, opus_packet_samples};
use duet_peer::signal;
use duet_peer::{Kind, Session, TurnClient, TurnState};
use duet_signal::IceServer;
use futures_util::SinkExt;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

mod connect;
mod drive;
mod media;

use media::Media;

/// How long the call stays up after the last frame was sent, so it arrives.
const LINGER: Duration = Duration::from_millis(500);

/// `duet call` arguments.
#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// The duet server: its page address (http://host:port, or http://host:port/r/ROOM
    /// for a room).
    /// Default: the address of --invite's link, else http://127.0.0.1:8080.
    #[arg(long, env = "DUET_SERVER")]
    pub server: Option<String>,
    /// The name to sign in with (an account, or an invite that names its guest, brings
    /// its own).
    #[arg(long)]
    pub name: Option<String>,
    /// A password: the server's (for --access password), or with --account, the account's.
    #[arg(long, env = "DUET_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Sign in with this account (its password from --password or DUET_PASSWORD).
    #[arg(long)]
    pub account: Option<String>,
    /// Sign in with an invite link (https://host/i/…); it also says where the server is.
    #[arg(long, value_name = "LINK")]
    pub invite: Option<String>,
    /// For an https:// server whose certificate no public authority signed (duet's
    /// --tls-self-signed): trust this PEM certificate, e.g. the server's
    /// ~/.local/state/duet/self-signed-cert.pem.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Whom to call. Without it, `duet call` waits to be called and answers.
    #[arg(long)]
    pub to: Option<String>,
    /// A file to send: VP8 video in IVF (.ivf) or Opus audio in Ogg (.ogg, .opus). At
    /// most one of each.
    #[arg(long = "play", value_name = "FILE")]
    pub play: Vec<PathBuf>,
    /// Where to save what arrives: .ivf for the video, .ogg/.opus for the audio.
    #[arg(long = "record", value_name = "FILE")]
    pub record: Vec<PathBuf>,
    /// Play the files again and again until the other side hangs up (without it, the
    /// call ends when the files do).
    #[arg(long = "loop")]
    pub looping: bool,
    /// Send and receive media only through the server's TURN relay (hides this machine's
    /// addresses; needs a server with TURN).
    #[arg(long)]
    pub relay_only: bool,
    /// How long to wait for the call to be answered, or for someone to call.
    #[arg(long, default_value = "60s", value_parser = crate::clock::parse_duration)]
    pub wait: Duration,
    /// Hash functions to list this end's certificate fingerprint under besides SHA-256
    /// (sha-384, sha-512; comma-separated), as many WebRTC stacks do. The safety code
    /// stays the same.
    #[arg(long, value_delimiter = ',', value_name = "HASH")]
    pub fingerprints: Vec<duet_peer::FingerprintHash>,
}

/// Why `duet call` stopped early; the message is for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: MediaFileError },
    #[error("{0}")]
    Server(String),
    #[error("{0}")]
    NotMade(String),
    #[error("{0}")]
    Network(String),
}

impl CallError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::File { .. } => 1,
            Self::Server(_) => 2,
            Self::NotMade(_) => 3,
            Self::Network(_) => 4,
        }
    }
}

/// Runs one call to its end. Prints progress on stdout.
pub async fn run(args: CallArgs) -> Result<(), CallError> {
    let media = Media::open(&args)?;
    let signed_in = connect::sign_in(&args).await?;
    let (mut ws, local_ip) = connect::websocket(&args, &signed_in).await?;
    let Some(name) = signed_in.name.clone().or_else(|| args.name.clone()) else {
        return Err(CallError::Usage(
            "--name is needed (only an account or a named invite brings one)".into(),
        ));
    };
    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .map_err(|e| CallError::Network(format!("cannot open a UDP socket on {local_ip}: {e}")))?;
    let local = socket.local_addr().map_err(|e| CallError::Network(e.to_string()))?;
    let hosts: &[SocketAddr] = if args.relay_only { &[] } else { &[local] };
    let mut session = Session::new(Instant::now(), hosts).map_err(|e| CallError::Network(e.to_string()))?;
    session.list_fingerprints(&args.fingerprints);
    let (signal, hello) =
        signal::Client::new(&name, args.to.clone()).map_err(|e| CallError::Usage(e.to_string()))?;
    ws.send(Message::text(hello))
        .await
        .map_err(|e| CallError::Server(format!("the server closed the connection: {e}")))?;
    let deadline = Some(Instant::now() + args.wait);
    drive::Call::new(args, ws, socket, local, session, signal, media, deadline).run().await
}

/// How long an offer or answer waits for the TURN allocation, so the relay candidate
/// goes in it rather than trickling after.
const RELAY_WAIT: Duration = Duration::from_secs(3);

/// The TURN side of the call: the allocation, and the offer or answer that waits for it.
#[derive(Default)]
struct Relay {
    turn: Option<TurnClient>,
    started: Option<Instant>,
    /// The relayed candidate is in the session.
    added: bool,
    negotiation: Negotiation,
    /// An offer or answer has gone out: candidates found later trickle.
    negotiated: bool,
}

#[derive(Default)]
struct Negotiation {
    offer: bool,
    answer: Option<String>,
}

impl Relay {
    /// Starts an allocation at the first `turn:...?transport=udp` of an `ice-servers`
    /// message, with its credentials.
    async fn start(&mut self, servers: &[IceServer], now: Instant) {
        for server in servers {
            let (Some(username), Some(credential)) = (&server.username, &server.credential) else {
                continue;
            };
            for url in &server.urls {
                let Some(host_port) =
                    url.strip_prefix("turn:").and_then(|u| u.strip_suffix("?transport=udp"))
                else {
                    continue;
                };
                let Ok(mut addrs) = tokio::net::lookup_host(host_port).await else { continue };
                let Some(addr) = addrs.find(SocketAddr::is_ipv4).or_else(|| addrs.next()) else { continue };
                let seed = crate::random::bytes::<12>().unwrap_or([0x5a; 12]);
                self.turn = Some(TurnClient::new(now, addr, username, credential, seed));
                self.started = Some(now);
                return;
            }
        }
    }

    /// Adds the relayed candidate once allocated, and makes the offer or answer once the
    /// allocation is settled (or waited for long enough). Returns messages to send.
    fn settle(
        &mut self,
        session: &mut Session,
        local: SocketAddr,
        signal: &signal::Client,
        relay_only: bool,
    ) -> Result<Vec<String>, CallError> {
        let network = |e: duet_peer::PeerError| CallError::Network(e.to_string());
        let mut out = Vec::new();
        if let Some(TurnState::Failed(why)) = self.turn.as_ref().map(TurnClient::state)
            && relay_only
        {
            return Err(CallError::Network(format!("--relay-only, but {why}")));
        }
        if !self.added
            && let Some(turn) = self.turn.as_ref()
            && let Some(relayed) = turn.relayed()
        {
            self.added = true;
            let mut found = vec![session.add_relayed_candidate(relayed, local).map_err(network)?];
            // Behind a NAT, the address the server saw is worth a try before the relay.
            if !relay_only && let Some(mapped) = turn.mapped() {
                found.extend(session.add_reflexive_candidate(mapped, local).map_err(network)?);
            }
            if self.negotiated {
                out.extend(found.into_iter().map(|candidate| signal.candidate(candidate)));
            }
        }
        let allocating = matches!(self.turn.as_ref().map(TurnClient::state), Some(TurnState::Allocating))
            && self.started.is_some_and(|at| at.elapsed() < RELAY_WAIT);
        if allocating {
            return Ok(out);
        }
        if std::mem::take(&mut self.negotiation.offer) {
            out.push(signal.offer(session.create_offer().map_err(network)?));
            self.negotiated = true;
        }
        if let Some(offer) = self.negotiation.answer.take() {
            out.push(signal.answer(session.accept_offer(&offer).map_err(network)?));
            self.negotiated = true;
        }
        Ok(out)
    }
}

/// Once-a-second figures from str0m's peer statistics.
#[derive(Default)]
struct Figures {
    last: Option<(Instant, u64, u64)>,
}

impl Figures {
    /// The line for `stats`, with the frames (sent, received) so far.
    fn line(&mut self, stats: &duet_peer::str0m::stats::PeerStats, frames: (u64, u64)) -> Option<String> {
        let now = stats.timestamp;
        let previous = self.last.replace((now, stats.peer_bytes_tx, stats.peer_bytes_rx))?;
        let seconds = now.saturating_duration_since(previous.0).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let kbit = |bytes: u64| (bytes as f64) * 8.0 / 1000.0 / seconds;
        let rtt =
            stats.rtt.map(|r| format!("{:.1} ms", r.as_secs_f64() * 1000.0)).unwrap_or_else(|| "-".into());
        // str0m measures loss from transport-cc feedback; a peer that sends none leaves
        // it unknown, which is not the same as none lost.
        let loss = stats
            .ingress_loss_fraction
            .map(|l| format!("{:.1}%", l * 100.0))
            .unwrap_or_else(|| "unknown".into());
        Some(format!(
            "sent {:.0} kbit/s ({} frames) · received {:.0} kbit/s ({} frames) · round trip {rtt} · loss {loss}",
            kbit(stats.peer_bytes_tx.saturating_sub(previous.1)),
            frames.0,
            kbit(stats.peer_bytes_rx.saturating_sub(previous.2)),
            frames.1,
        ))
    }
}

#[cfg(test)]
mod tests {
    use duet_peer::str0m::stats::PeerStats;

    use super::*;

    fn stats(at: Instant, bytes: u64, loss: Option<f32>) -> PeerStats {
        PeerStats {
            peer_bytes_rx: bytes,
            peer_bytes_tx: bytes,
            bytes_rx: bytes,
            bytes_tx: bytes,
            timestamp: at,
            bwe_tx: None,
            egress_loss_fraction: None,
            ingress_loss_fraction: loss,
            rtt: None,
            selected_candidate_pair: None,
        }
    }

    #[test]
    fn loss_that_cannot_be_measured_is_said_to_be_unknown_not_zero() {
        let t0 = Instant::now();
        let mut figures = Figures::default();
        assert_eq!(figures.line(&stats(t0, 0, None), (0, 0)), None, "one sample is no rate");
        let line =
            figures.line(&stats(t0 + Duration::from_secs(1), 125_000, None), (30, 29)).expect("a line");
        assert!(line.ends_with("loss unknown"), "{line}");
        assert!(line.starts_with("sent 1000 kbit/s (30 frames)"), "{line}");
        let line = figures
            .line(&stats(t0 + Duration::from_secs(2), 250_000, Some(0.025)), (60, 58))
            .expect("a line");
        assert!(line.ends_with("loss 2.5%"), "{line}");
    }
}
