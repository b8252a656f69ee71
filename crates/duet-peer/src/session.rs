//! One WebRTC session (one call) around a str0m [`Rtc`], speaking duet's signaling
//! formats: SDP as `{type, sdp}` JSON, candidates as `RTCIceCandidate.toJSON()`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
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
    /// The answer is not `{type:"answer", sdp}`, or answers no offer of ours.
    #[error("the answer is not usable: {0}")]
    Answer(String),
    /// str0m refused input (a corrupt packet it could not skip, a broken state).
    #[error("the WebRTC session failed: {0}")]
    Rtc(#[from] str0m::RtcError),
}

/// Audio or video, as far as sending a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opus, 48 kHz RTP clock.
    Audio,
    /// VP8, 90 kHz RTP clock.
    Video,
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
    /// Our offer, until its answer comes.
    pending: Option<SdpPendingOffer>,
    /// The media of the session, learned from our offer or the remote one.
    media: Vec<(Mid, MediaKind)>,
}

impl Session {
    /// A session that offers `local` (bound UDP sockets' addresses) as host candidates.
    pub fn new(now: Instant, local: &[SocketAddr]) -> Result<Self, PeerError> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(crypto)
            .set_stats_interval(Some(std::time::Duration::from_secs(1)))
            .build(now);
        for &addr in local {
            let candidate =
                Candidate::host(addr, "udp").map_err(|e| PeerError::LocalAddress(addr, e.to_string()))?;
            rtc.add_local_candidate(candidate);
        }
        Ok(Self { rtc, pending: None, media: Vec::new() })
    }

    /// Offers `relayed` (a TURN allocation reached from our socket `local`) as a
    /// candidate too. Returns the candidate as `RTCIceCandidate.toJSON()`, to trickle to
    /// the other side when the offer or answer has gone already.
    pub fn add_relayed_candidate(
        &mut self,
        relayed: SocketAddr,
        local: SocketAddr,
    ) -> Result<String, PeerError> {
        let candidate = Candidate::relayed(relayed, local, "udp")
            .map_err(|e| PeerError::LocalAddress(relayed, e.to_string()))?;
        let line = candidate.to_sdp_string();
        self.rtc.add_local_candidate(candidate);
        let line = line.strip_prefix("a=").unwrap_or(&line).to_owned();
        Ok(serde_json::json!({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}).to_string())
    }

    /// Offers `mapped` (our address as a STUN/TURN server saw it, through any NAT) as a
    /// server-reflexive candidate of our socket `local`. Returns it as JSON to trickle,
    /// or `None` when it is `local` itself (no NAT in between).
    pub fn add_reflexive_candidate(
        &mut self,
        mapped: SocketAddr,
        local: SocketAddr,
    ) -> Result<Option<String>, PeerError> {
        if mapped == local {
            return Ok(None);
        }
        let candidate = Candidate::server_reflexive(mapped, local, "udp")
            .map_err(|e| PeerError::LocalAddress(mapped, e.to_string()))?;
        Ok(Some(self.add_and_describe(candidate)))
    }

    fn add_and_describe(&mut self, candidate: Candidate) -> String {
        let line = candidate.to_sdp_string();
        self.rtc.add_local_candidate(candidate);
        let line = line.strip_prefix("a=").unwrap_or(&line).to_owned();
        serde_json::json!({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}).to_string()
    }

    /// Our offer (`{type:"offer", sdp}`): one audio and one video media, both ways.
    pub fn create_offer(&mut self) -> Result<String, PeerError> {
        let mut change = self.rtc.sdp_api();
        // One stream id for both, so browsers play the sound with the picture.
        let stream = Some("duet".to_owned());
        let audio = change.add_media(
            MediaKind::Audio,
            Direction::SendRecv,
            stream.clone(),
            Some("audio".into()),
            None,
        );
        let video =
            change.add_media(MediaKind::Video, Direction::SendRecv, stream, Some("video".into()), None);
        let Some((offer, pending)) = change.apply() else {
            unreachable!("two new media always make a change");
        };
        self.media.extend([(audio, MediaKind::Audio), (video, MediaKind::Video)]);
        self.pending = Some(pending);
        Ok(serde_json::to_string(&offer).expect("an SDP offer serializes"))
    }

    /// The answer to our offer.
    pub fn accept_answer(&mut self, answer: &str) -> Result<(), PeerError> {
        let answer: SdpAnswer = serde_json::from_str(answer).map_err(|e| PeerError::Answer(e.to_string()))?;
        let pending =
            self.pending.take().ok_or_else(|| PeerError::Answer("no offer of ours is open".into()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Sends one encoded frame: a VP8 frame at `rtp_time` in 90 kHz units, or an Opus
    /// packet at `rtp_time` in 48 kHz units. Returns `false` when it cannot go out (no such
    /// media or codec was agreed, or the connection is not up yet).
    pub fn send_frame(&mut self, kind: Kind, wallclock: Instant, rtp_time: u64, data: &[u8]) -> bool {
        let (media_kind, codec, time) = match kind {
            Kind::Audio => (
                MediaKind::Audio,
                Codec::Opus,
                MediaTime::new(rtp_time, str0m::media::Frequency::FORTY_EIGHT_KHZ),
            ),
            Kind::Video => (MediaKind::Video, Codec::Vp8, MediaTime::from_90khz(rtp_time)),
        };
        let Some(mid) = self.media.iter().find(|(_, k)| *k == media_kind).map(|(mid, _)| *mid) else {
            return false;
        };
        let Some(writer) = self.rtc.writer(mid) else { return false };
        let Some(pt) = writer.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt()) else {
            return false;
        };
        writer.write(pt, wallclock, time, data.to_vec()).is_ok()
    }

    /// Whether media `mid` is audio or video.
    pub fn kind_of(&self, mid: Mid) -> Option<Kind> {
        self.media.iter().find(|(m, _)| *m == mid).map(|(_, k)| match k {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        })
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
            Output::Event(event) => {
                if let Event::MediaAdded(added) = &event {
                    self.media.push((added.mid, added.kind));
                }
                Poll::Event(Box::new(event))
            }
            Output::Timeout(at) => Poll::Timeout(at),
        })
    }

    /// The str0m instance, for behaviours that write media.
    pub fn rtc(&mut self) -> &mut Rtc {
        &mut self.rtc
    }

    /// The call's safety code (see [`crate::safety_code`]), once the other side's
    /// fingerprint is known from its description.
    pub fn safety_code(&mut self) -> Option<String> {
        let api = self.rtc.direct_api();
        let mine = api.local_dtls_fingerprint().to_string();
        let theirs = api.remote_dtls_fingerprint()?.to_string();
        Some(crate::safety_code(&mine, &theirs))
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
