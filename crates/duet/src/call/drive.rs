//! One `duet call` once it has signed in: a loop over what can happen (a frame from the
//! server, a datagram, a timer), each handled by a phase of its own, then the session run
//! until it waits.
//!
//! ```text
//!  loop ─┬─ frame ────► on_frame: signaling (offer, answer, candidates, the end)
//!        ├─ datagram ─► on_datagram: to TURN or straight into the session
//!        └─ timer ────► on_timer: nobody answered? media due? time to hang up?
//!        └─► settle: the relay's offer or answer, the session's transmits and events
//! ```

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Instant;

use duet_peer::signal::{self, SignalError};
use duet_peer::str0m::{Event, IceConnectionState};
use duet_peer::{Poll, Session, TurnClient};
use futures_util::{SinkExt, StreamExt};
use tokio::net::UdpSocket;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::connect::Stream;
use super::media::Media;
use super::{CallArgs, CallError, Figures, LINGER, Relay};

/// What a phase says: go on, or the call is over (with how it went).
type Next = ControlFlow<Result<(), CallError>>;

/// A call in progress.
pub(super) struct Call {
    args: CallArgs,
    ws: WebSocketStream<Stream>,
    socket: UdpSocket,
    local: SocketAddr,
    session: Session,
    relay: Relay,
    signal: signal::Client,
    media: Media,
    stats: Figures,
    connected_at: Option<Instant>,
    /// When nobody answered (or called) for long enough; gone once connected.
    deadline: Option<Instant>,
    /// When the session wants to be woken.
    wake: Option<Instant>,
    /// Once the files have been played: when to hang up (the last packets need a moment).
    hang_up_at: Option<Instant>,
}

impl Call {
    #[allow(clippy::too_many_arguments)] // the parts `run` made, handed over once
    pub(super) fn new(
        args: CallArgs,
        ws: WebSocketStream<Stream>,
        socket: UdpSocket,
        local: SocketAddr,
        session: Session,
        signal: signal::Client,
        media: Media,
        deadline: Option<Instant>,
    ) -> Self {
        Self {
            args,
            ws,
            socket,
            local,
            session,
            relay: Relay::default(),
            signal,
            media,
            stats: Figures::default(),
            connected_at: None,
            deadline,
            wake: None,
            hang_up_at: None,
        }
    }

    /// Runs the call until it ends.
    pub(super) async fn run(mut self) -> Result<(), CallError> {
        let mut buf = vec![0u8; 2048];
        loop {
            let turn_due = self.relay.turn.as_ref().and_then(TurnClient::poll_timeout);
            let due = self.media.next_due(self.connected_at);
            let next = [self.wake, self.deadline, self.hang_up_at, turn_due, due].into_iter().flatten().min();
            let sleep = crate::clock::sleep_until(next);
            let step = tokio::select! {
                frame = self.ws.next() => self.on_frame(frame).await?,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.on_datagram(source, &buf[..n])?,
                    Err(_) => ControlFlow::Continue(()),
                },
                () = sleep => self.on_timer().await?,
            };
            if let ControlFlow::Break(ended) = step {
                return ended;
            }
            if let ControlFlow::Break(ended) = self.settle().await? {
                return ended;
            }
        }
    }

    async fn send(&mut self, frame: String) -> Result<(), CallError> {
        self.ws
            .send(Message::text(frame))
            .await
            .map_err(|e| CallError::Server(format!("the server closed the connection: {e}")))
    }

    /// A frame from the server.
    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<Next, CallError> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                return Err(CallError::Server("the duet server closed the connection".into()));
            }
            Some(Ok(_)) => return Ok(ControlFlow::Continue(())),
            Some(Err(e)) => {
                return Err(CallError::Server(format!("the connection to the server broke: {e}")));
            }
        };
        let mut outcome = self.signal.handle(&text).map_err(|e| match e {
            SignalError::NotMade(why) => CallError::NotMade(why),
            SignalError::BadName(why) => CallError::Usage(why),
            SignalError::Refused(why) => CallError::Server(why),
        })?;
        if let Some(servers) = outcome.ice_servers.take()
            && self.relay.turn.is_none()
        {
            self.relay.start(&servers, Instant::now()).await;
            if self.args.relay_only && self.relay.turn.is_none() {
                return Err(CallError::Network("--relay-only, but the server offers no TURN relay".into()));
            }
        }
        if let Some(answer) = outcome.remote_answer.take() {
            self.session.accept_answer(&answer).map_err(|e| CallError::Network(e.to_string()))?;
        }
        if let Some(candidate) = outcome.candidate.take() {
            // A candidate we cannot use is the other side's problem, not the call's.
            let _ = self.session.add_remote_candidate(&candidate);
        }
        self.relay.negotiation.offer |= outcome.offer;
        if let Some(offer) = outcome.answer.take() {
            self.relay.negotiation.answer = Some(offer);
        }
        for reply in std::mem::take(&mut outcome.send) {
            self.send(reply).await?;
        }
        if let Some(line) = outcome.say.take() {
            println!("{line}");
        }
        if !outcome.ended {
            return Ok(ControlFlow::Continue(()));
        }
        self.media.finish()?;
        Ok(ControlFlow::Break(match self.connected_at {
            Some(_) => Ok(()),
            None => Err(CallError::NotMade("the call ended before it connected".into())),
        }))
    }

    /// A datagram from `source`: the TURN server's (a peer's data inside), or the peer's.
    fn on_datagram(&mut self, source: SocketAddr, data: &[u8]) -> Result<Next, CallError> {
        let now = Instant::now();
        let from_turn = self.relay.turn.as_mut().filter(|t| t.server() == source);
        let input = match from_turn {
            Some(turn) => turn.handle_datagram(now, data).zip(turn.relayed()),
            None => {
                self.session
                    .handle_datagram(now, source, self.local, data)
                    .map_err(|e| CallError::Network(e.to_string()))?;
                None
            }
        };
        if let Some(((peer, data), relayed)) = input {
            self.session
                .handle_datagram(now, peer, relayed, &data)
                .map_err(|e| CallError::Network(e.to_string()))?;
        }
        Ok(ControlFlow::Continue(()))
    }

    /// A timer: nobody answered, media is due, or the files have been played.
    async fn on_timer(&mut self) -> Result<Next, CallError> {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            let what = match &self.args.to {
                Some(to) => format!("{to} did not answer within {:?}", self.args.wait),
                None => format!("nobody called within {:?}", self.args.wait),
            };
            return Err(CallError::NotMade(what));
        }
        self.session.handle_timeout(now).map_err(|e| CallError::Network(e.to_string()))?;
        if let Some(turn) = self.relay.turn.as_mut() {
            turn.handle_timeout(now);
        }
        if self.hang_up_at.is_some_and(|at| now >= at) {
            println!("the files have been played; hanging up");
            let _ = self.send(self.signal.hang_up()).await;
            self.media.finish()?;
            return Ok(ControlFlow::Break(Ok(())));
        }
        if let Some(started) = self.connected_at
            && self.hang_up_at.is_none()
            && !self.media.send_due(&mut self.session, started, now, self.args.looping)?
        {
            self.hang_up_at = Some(now + LINGER);
        }
        Ok(ControlFlow::Continue(()))
    }

    /// After anything happened: the relay's offer or answer when ready, the session run
    /// until it waits, and TURN's own datagrams sent.
    async fn settle(&mut self) -> Result<Next, CallError> {
        for frame in self.relay.settle(&mut self.session, self.local, &self.signal, self.args.relay_only)? {
            self.send(frame).await?;
        }
        loop {
            match self.session.poll().map_err(|e| CallError::Network(e.to_string()))? {
                Poll::Transmit(t) => {
                    match self.relay.turn.as_mut().filter(|turn| turn.relayed() == Some(t.source)) {
                        Some(turn) => turn.send_to(Instant::now(), t.destination, &t.contents),
                        None => {
                            let _ = self.socket.send_to(&t.contents, t.destination).await;
                        }
                    }
                }
                Poll::Timeout(at) => {
                    self.wake = Some(at);
                    break;
                }
                Poll::Event(event) => {
                    if let ControlFlow::Break(ended) = self.on_event(*event).await? {
                        return Ok(ControlFlow::Break(ended));
                    }
                }
            }
        }
        if let Some(turn) = self.relay.turn.as_mut() {
            while let Some(datagram) = turn.poll_transmit() {
                let _ = self.socket.send_to(&datagram, turn.server()).await;
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// What the session reports: connected, lost, media arrived, figures.
    async fn on_event(&mut self, event: Event) -> Result<Next, CallError> {
        match event {
            Event::Connected => {
                self.connected_at = Some(Instant::now());
                self.deadline = None;
                let via = if self.args.relay_only { " through the TURN relay" } else { "" };
                println!("connected to {}{via}", self.signal.peer());
                if let Some(code) = self.session.safety_code() {
                    println!(
                        "safety code {code}: read it to each other; if both see the same, nobody is listening in between"
                    );
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.media.finish()?;
                let _ = self.send(self.signal.hang_up()).await;
                return Err(CallError::Network(format!("the connection to {} was lost", self.signal.peer())));
            }
            Event::MediaData(data) => {
                if let Some(kind) = self.session.kind_of(data.mid) {
                    self.media.record(kind, data.time.numer(), &data.data)?;
                }
            }
            Event::PeerStats(peer_stats) => {
                let frames = (self.media.sent_frames, self.media.received_frames);
                if let Some(line) = self.stats.line(&peer_stats, frames) {
                    println!("{line}");
                }
            }
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }
}
