//! The echo behaviour: everything the caller sends comes straight back to them.
//!
//! Audio and video frames are written back on the media they arrived on (the browser
//! offers send-and-receive, so each media carries both directions). Feedback is passed
//! along so the reflected video recovers from loss: when the caller's browser asks us for
//! a key frame (PLI/FIR, it lost part of what we send), we ask the caller's own sender for
//! one, since every frame we send is one of theirs. NACKs are answered by str0m from its
//! send buffer, and str0m sends NACKs for what we miss.

use std::time::Instant;

use str0m::media::MediaData;
use str0m::{Event, IceConnectionState};

use crate::session::{PeerError, Poll, Session, Transmit};

/// Counters of one echo call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EchoStats {
    /// Audio and video frames written back.
    pub frames_echoed: u64,
    /// Frames that could not be written back (no sending direction for them).
    pub frames_dropped: u64,
    /// Key frame requests passed on to the caller's sender.
    pub keyframe_requests: u64,
}

/// One echo call.
#[derive(Debug)]
pub struct Echo {
    session: Session,
    stats: EchoStats,
    connected: bool,
}

/// What an echo call wants next.
#[derive(Debug)]
pub enum EchoPoll {
    Transmit(Transmit),
    Timeout(Instant),
    /// ICE gave up or the session was closed: the call is over.
    Ended,
}

impl Echo {
    pub fn new(session: Session) -> Self {
        Self { session, stats: EchoStats::default(), connected: false }
    }

    /// The session, to feed offers, candidates, datagrams and time.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    pub fn stats(&self) -> EchoStats {
        self.stats
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Runs the session until it needs input: echoes media as it comes out.
    pub fn poll(&mut self) -> Result<EchoPoll, PeerError> {
        loop {
            if !self.session.is_alive() {
                return Ok(EchoPoll::Ended);
            }
            match self.session.poll()? {
                Poll::Transmit(t) => return Ok(EchoPoll::Transmit(t)),
                Poll::Timeout(at) => return Ok(EchoPoll::Timeout(at)),
                Poll::Event(event) => match *event {
                    Event::Connected => self.connected = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        self.session.close();
                        return Ok(EchoPoll::Ended);
                    }
                    Event::MediaData(data) => self.echo(data),
                    Event::KeyframeRequest(request) => {
                        let rtc = self.session.rtc();
                        if let Some(mut writer) = rtc.writer(request.mid)
                            && writer.request_keyframe(request.rid, request.kind).is_ok()
                        {
                            self.stats.keyframe_requests += 1;
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    fn echo(&mut self, data: MediaData) {
        let written = match self.session.rtc().writer(data.mid) {
            Some(writer) => writer.write(data.pt, data.network_time, data.time, data.data).is_ok(),
            None => false,
        };
        if written {
            self.stats.frames_echoed += 1;
        } else {
            self.stats.frames_dropped += 1;
        }
    }
}
