//! One WebRTC session (one call) around a str0m [`Rtc`], speaking duet's signaling
//! formats: SDP as `{type, sdp}` JSON, candidates as `RTCIceCandidate.toJSON()`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use duet_signal::{Candidate as Trickled, Description};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::FingerprintHash;

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
    /// No DTLS certificate could be made.
    #[error("cannot make a DTLS certificate")]
    Certificate,
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
    /// Our DTLS certificate (DER), to list its fingerprint under other hash functions.
    certificate: Vec<u8>,
    /// The hash functions our descriptions list the fingerprint under (SHA-256 first).
    listed: Vec<FingerprintHash>,
    /// The fingerprints the safety code is made from, from the SDP texts as they were
    /// sent and received (docs/protocol.md): ours, theirs.
    fingerprints: (Option<String>, Option<String>),
}

impl Session {
    /// A session that offers `local` (bound UDP sockets' addresses) as host candidates.
    pub fn new(now: Instant, local: &[SocketAddr]) -> Result<Self, PeerError> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto.dtls_provider.generate_certificate().ok_or(PeerError::Certificate)?;
        let certificate = cert.certificate.clone();
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(crypto)
            .set_dtls_cert(cert)
            .set_stats_interval(Some(std::time::Duration::from_secs(1)))
            .build(now);
        for &addr in local {
            let candidate =
                Candidate::host(addr, "udp").map_err(|e| PeerError::LocalAddress(addr, e.to_string()))?;
            rtc.add_local_candidate(candidate);
        }
        Ok(Self {
            rtc,
            pending: None,
            media: Vec::new(),
            certificate,
            listed: vec![FingerprintHash::Sha256],
            fingerprints: (None, None),
        })
    }

    /// Lists our certificate's fingerprint under `hashes` too (after SHA-256, in this
    /// order), as many WebRTC stacks do; the last one is what Chromium checks.
    pub fn list_fingerprints(&mut self, hashes: &[FingerprintHash]) {
        self.listed = std::iter::once(FingerprintHash::Sha256)
            .chain(hashes.iter().copied().filter(|h| *h != FingerprintHash::Sha256))
            .collect();
    }

    /// Our description (`{type, sdp}` JSON) as it goes out: every listed fingerprint
    /// after str0m's SHA-256 line; the fingerprint it sent is kept for the safety code.
    fn outgoing(&mut self, description: String) -> String {
        let mut description: Description = serde_json::from_str(&description).expect("str0m's JSON");
        let sdp = &description.sdp;
        let extra: String = self.listed[1..]
            .iter()
            .map(|hash| format!("\r\na=fingerprint:{}", hash.fingerprint(&self.certificate)))
            .collect();
        let sdp = sdp
            .split("\r\n")
            .map(|line| {
                if line.starts_with("a=fingerprint:sha-256 ") {
                    format!("{line}{extra}")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        self.fingerprints.0 = crate::fingerprint_in(&sdp);
        description.sdp = sdp;
        description.to_raw().get().to_owned()
    }

    /// Keeps the fingerprint of the other side's description `{type, sdp}` as received.
    fn incoming(&mut self, description: &str) {
        if let Ok(description) = serde_json::from_str::<Description>(description) {
            self.fingerprints.1 = crate::fingerprint_in(&description.sdp);
        }
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
        Ok(Trickled::on_first_section(line).to_raw().get().to_owned())
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
        Trickled::on_first_section(line).to_raw().get().to_owned()
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
        Ok(self.outgoing(serde_json::to_string(&offer).expect("an SDP offer serializes")))
    }

    /// The answer to our offer.
    pub fn accept_answer(&mut self, answer: &str) -> Result<(), PeerError> {
        let answer_text = answer;
        let answer: SdpAnswer = serde_json::from_str(answer).map_err(|e| PeerError::Answer(e.to_string()))?;
        let pending =
            self.pending.take().ok_or_else(|| PeerError::Answer("no offer of ours is open".into()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.incoming(answer_text);
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
        let offer_text = offer;
        let offer: SdpOffer = serde_json::from_str(offer).map_err(|e| PeerError::Offer(e.to_string()))?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.incoming(offer_text);
        Ok(self.outgoing(serde_json::to_string(&answer).expect("an SDP answer serializes")))
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

    /// The call's safety code (see [`crate::safety_code`]), made from the fingerprints
    /// in the descriptions as sent and received, once both crossed.
    pub fn safety_code(&self) -> Option<String> {
        let (mine, theirs) = (self.fingerprints.0.as_ref()?, self.fingerprints.1.as_ref()?);
        Some(crate::safety_code(mine, theirs))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(port: u16) -> Session {
        Session::new(Instant::now(), &[SocketAddr::from(([127, 0, 0, 1], port))]).expect("a session")
    }

    fn sdp(description: &str) -> String {
        let json: serde_json::Value = serde_json::from_str(description).expect("JSON");
        json["sdp"].as_str().expect("an sdp").to_owned()
    }

    #[test]
    fn a_session_listing_three_fingerprints_and_its_peer_see_the_same_code() {
        let mut caller = session(40_000);
        caller.list_fingerprints(&[FingerprintHash::Sha384, FingerprintHash::Sha512]);
        let offer = caller.create_offer().expect("an offer");
        let lines: Vec<String> = sdp(&offer)
            .lines()
            .filter(|l| l.starts_with("a=fingerprint:"))
            .map(|l| l[14..21].to_owned())
            .collect();
        assert_eq!(
            lines.concat(),
            ["sha-256", "sha-384", "sha-512"].repeat(2).concat(),
            "in each media, SHA-512 last"
        );
        let mut callee = session(40_001);
        let answer = callee.accept_offer(&offer).expect("an answer");
        caller.accept_answer(&answer).expect("accepted");
        let code = caller.safety_code().expect("both descriptions crossed");
        assert_eq!(callee.safety_code().as_deref(), Some(code.as_str()));
        assert_eq!(
            Some(code),
            fingerprint_pair(&offer, &answer).map(|(a, b)| crate::safety_code(&a, &b)),
            "the code of the texts as they crossed"
        );
    }

    fn fingerprint_pair(offer: &str, answer: &str) -> Option<(String, String)> {
        Some((crate::fingerprint_in(&sdp(offer))?, crate::fingerprint_in(&sdp(answer))?))
    }
}
