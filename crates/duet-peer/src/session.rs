//! One WebRTC session (one call) around a str0m [`Rtc`], speaking duet's signaling
//! formats: SDP as `{type, sdp}` JSON, candidates as `RTCIceCandidate.toJSON()`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// What went wrong in a session. Each is the remote side's or the network's doing, and
/// ends only this session.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The offer is not `{type:"offer", sdp}` with an SDP str0m can use.
    #[error("the offer is not usable: {0}")]
    Offer(String),
    /// A remote candidate could not be read.
    #[error("the ICE candidate is not usable: {0}")]
    Candidate(String),
    /// One of our own addresses cannot be a host candidate.
    #[error("cannot offer {0} as a candidate: {1}")]
    LocalAddress(SocketAddr, String),
    /// str0m refused input (a corrupt packet it could not skip, a broken state).
    #[error("the WebRTC session failed: {0}")]
    Rtc(#[from] str0m::RtcError),
}

/// A datagram to send.
#[derive(Debug)]
pub struct Transmit {
    /// From which of our addresses (one of those given to [`Session::new`]).
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// What the session wants next.
#[derive(Debug)]
pub enum Poll {
    /// Send this, then poll again.
    Transmit(Transmit),
    /// Something happened (media arrived, ICE state changed...); poll again.
    Event(Box<Event>),
    /// Nothing to do until this instant (or until input arrives).
    Timeout(Instant),
}

/// One call's WebRTC state.
#[derive(Debug)]
pub struct Session {
    rtc: Rtc,
}

impl Session {
    /// A session that offers `local` (bound UDP sockets' addresses) as host candidates.
    pub fn new(now: Instant, local: &[SocketAddr]) -> Result<Self, PeerError> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let mut rtc = RtcConfig::new().set_crypto_provider(crypto).build(now);
        for &addr in local {
            let candidate =
                Candidate::host(addr, "udp").map_err(|e| PeerError::LocalAddress(addr, e.to_string()))?;
            rtc.add_local_candidate(candidate);
        }
        Ok(Self { rtc })
    }

    /// Applies the remote offer (`{type:"offer", sdp}`, as relayed by duet) and returns
    /// the answer in the same form. Our candidates are in the answer; none trickle.
    pub fn accept_offer(&mut self, offer: &str) -> Result<String, PeerError> {
        let offer: SdpOffer = serde_json::from_str(offer).map_err(|e| PeerError::Offer(e.to_string()))?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        Ok(serde_json::to_string(&answer).expect("an SDP answer serializes"))
    }

    /// A trickled remote candidate (`{candidate, sdpMid, sdpMLineIndex}`). The empty
    /// end-of-candidates marker is accepted and ignored.
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), PeerError> {
        #[derive(serde::Deserialize)]
        struct Json<'a> {
            #[serde(borrow)]
            candidate: Option<&'a str>,
        }
        let json: Json<'_> =
            serde_json::from_str(candidate).map_err(|e| PeerError::Candidate(e.to_string()))?;
        let Some(line) = json.candidate.filter(|c| !c.is_empty()) else { return Ok(()) };
        let line = line.strip_prefix("a=").unwrap_or(line);
        let candidate = Candidate::from_sdp_string(line).map_err(|e| PeerError::Candidate(e.to_string()))?;
        self.rtc.add_remote_candidate(candidate);
        Ok(())
    }

    /// A datagram arrived on our socket `destination` from `source`. Datagrams that are
    /// not STUN, DTLS, RTP or RTCP are dropped.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Result<(), PeerError> {
        let Ok(contents) = data.try_into() else {
            return Ok(()); // not a WebRTC packet: someone else's traffic, or garbage
        };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination, contents });
        if self.rtc.accepts(&input) {
            self.rtc.handle_input(input)?;
        }
        Ok(())
    }

    /// Time has reached what [`Poll::Timeout`] said.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), PeerError> {
        self.rtc.handle_input(Input::Timeout(now))?;
        Ok(())
    }

    /// The next thing to do; call until it returns [`Poll::Timeout`].
    pub fn poll(&mut self) -> Result<Poll, PeerError> {
        Ok(match self.rtc.poll_output()? {
            Output::Transmit(t) => Poll::Transmit(Transmit {
                source: t.source,
                destination: t.destination,
                contents: t.contents.into(),
            }),
            Output::Event(event) => Poll::Event(Box::new(event)),
            Output::Timeout(at) => Poll::Timeout(at),
        })
    }

    /// The str0m instance, for behaviours that write media.
    pub fn rtc(&mut self) -> &mut Rtc {
        &mut self.rtc
    }

    /// Ends the session: nothing more is sent.
    pub fn close(&mut self) {
        self.rtc.disconnect();
    }

    /// Whether the session is still running (ICE not given up, not closed).
    pub fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }
}
