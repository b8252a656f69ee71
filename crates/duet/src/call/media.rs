//! The files of a call from a terminal: what is played into it (VP8 in IVF, Opus in Ogg,
//! paced by their own timestamps) and what is recorded from it.
//!
//! ```text
//!  --play a.ivf ──► VideoSource ──┐                 ┌──► VideoSink ──► --record b.ivf
//!  --play a.ogg ──► AudioSource ──┴► Session ⇄ peer ┴──► OggOpusWriter ──► --record b.ogg
//! ```

use super::*;

/// The files of the call: what is played and what is recorded.
pub(super) struct Media {
    video: Option<VideoSource>,
    audio: Option<AudioSource>,
    video_out: Option<VideoSink>,
    audio_out: Option<(PathBuf, OggOpusWriter<std::io::BufWriter<File>>)>,
    pub(super) received_frames: u64,
    pub(super) sent_frames: u64,
}

struct VideoSource {
    path: PathBuf,
    reader: IvfReader<BufReader<File>>,
    next: Option<duet_peer::media::ivf::IvfFrame>,
    /// Added to the file's times when it loops.
    offset: Duration,
    last: Duration,
}

struct AudioSource {
    path: PathBuf,
    reader: OggOpusReader<BufReader<File>>,
    next: Option<Vec<u8>>,
    /// 48 kHz samples sent so far.
    samples: u64,
}

struct VideoSink {
    path: PathBuf,
    writer: Option<IvfWriter<std::io::BufWriter<File>>>,
    first: Option<u64>,
}

fn file_error(path: &Path) -> impl Fn(MediaFileError) -> CallError + '_ {
    move |source| CallError::File { path: path.to_owned(), source }
}

fn kind_of_path(path: &Path) -> Result<Kind, CallError> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("ivf") => Ok(Kind::Video),
        Some("ogg" | "opus") => Ok(Kind::Audio),
        _ => Err(CallError::Usage(format!(
            "{}: duet plays and records .ivf (VP8 video) and .ogg/.opus (Opus audio)",
            path.display()
        ))),
    }
}

impl Media {
    pub(super) fn open(args: &CallArgs) -> Result<Self, CallError> {
        let mut media = Self {
            video: None,
            audio: None,
            video_out: None,
            audio_out: None,
            received_frames: 0,
            sent_frames: 0,
        };
        for path in &args.play {
            match kind_of_path(path)? {
                Kind::Video if media.video.is_some() => {
                    return Err(CallError::Usage("--play takes one .ivf".into()));
                }
                Kind::Audio if media.audio.is_some() => {
                    return Err(CallError::Usage("--play takes one .ogg".into()));
                }
                Kind::Video => media.video = Some(VideoSource::open(path)?),
                Kind::Audio => media.audio = Some(AudioSource::open(path)?),
            }
        }
        for path in &args.record {
            let create = |path: &Path| {
                File::create(path).map(std::io::BufWriter::new).map_err(|e| file_error(path)(e.into()))
            };
            match kind_of_path(path)? {
                Kind::Video => {
                    media.video_out = Some(VideoSink { path: path.clone(), writer: None, first: None })
                }
                Kind::Audio => {
                    let writer =
                        OggOpusWriter::new(create(path)?, 2, 0x6475_6574).map_err(file_error(path))?;
                    media.audio_out = Some((path.clone(), writer));
                }
            }
            if kind_of_path(path)? == Kind::Video {
                create(path)?; // fail now, not at the first frame, if it cannot be written
            }
        }
        Ok(media)
    }

    /// When the next frame is due, once the call is connected.
    pub(super) fn next_due(&self, connected: Option<Instant>) -> Option<Instant> {
        let started = connected?;
        let video = self
            .video
            .as_ref()
            .and_then(|v| v.next.as_ref().map(|f| started + v.offset + v.reader.header.time_of(f.pts)));
        let audio =
            self.audio.as_ref().filter(|a| a.next.is_some()).map(|a| started + samples_time(a.samples));
        [video, audio].into_iter().flatten().min()
    }

    /// Sends every frame due by `now`. Returns `false` when nothing is left to play.
    pub(super) fn send_due(
        &mut self,
        session: &mut Session,
        started: Instant,
        now: Instant,
        looping: bool,
    ) -> Result<bool, CallError> {
        if let Some(video) = self.video.as_mut() {
            while let Some(frame) = video.next.as_ref() {
                let at = video.offset + video.reader.header.time_of(frame.pts);
                if started + at > now {
                    break;
                }
                let rtp = u64::try_from(at.as_nanos() * 90_000 / 1_000_000_000).unwrap_or(u64::MAX);
                if session.send_frame(Kind::Video, now, rtp, &frame.data) {
                    self.sent_frames += 1;
                }
                video.last = at;
                video.advance(looping)?;
            }
        }
        if let Some(audio) = self.audio.as_mut() {
            while let Some(packet) = audio.next.as_ref() {
                if started + samples_time(audio.samples) > now {
                    break;
                }
                session.send_frame(Kind::Audio, now, audio.samples, packet);
                audio.samples += u64::from(opus_packet_samples(packet).unwrap_or(960));
                audio.advance(looping)?;
            }
        }
        let playing = self.video.as_ref().is_some_and(|v| v.next.is_some())
            || self.audio.as_ref().is_some_and(|a| a.next.is_some());
        Ok(playing || (self.video.is_none() && self.audio.is_none()))
    }

    pub(super) fn record(&mut self, kind: Kind, rtp_time: u64, data: &[u8]) -> Result<(), CallError> {
        self.received_frames += 1;
        match kind {
            Kind::Video => {
                let Some(sink) = self.video_out.as_mut() else { return Ok(()) };
                if sink.writer.is_none() {
                    let (width, height) = vp8_size(data).unwrap_or((0, 0));
                    let file = File::create(&sink.path).map_err(|e| file_error(&sink.path)(e.into()))?;
                    let header = IvfHeader { width, height, rate: 90_000, scale: 1 };
                    sink.writer = Some(
                        IvfWriter::new(std::io::BufWriter::new(file), header)
                            .map_err(file_error(&sink.path))?,
                    );
                }
                let first = *sink.first.get_or_insert(rtp_time);
                let writer = sink.writer.as_mut().expect("created above");
                writer.write_frame(rtp_time.saturating_sub(first), data).map_err(file_error(&sink.path))
            }
            Kind::Audio => match self.audio_out.as_mut() {
                Some((path, writer)) => writer.write_packet(data).map_err(file_error(path)),
                None => Ok(()),
            },
        }
    }

    /// Closes the recordings (frame counts, end of stream).
    pub(super) fn finish(&mut self) -> Result<(), CallError> {
        if let Some(sink) = self.video_out.take()
            && let Some(writer) = sink.writer
        {
            let frames = writer.frames();
            writer.finish().map_err(file_error(&sink.path))?;
            println!("recorded {frames} video frames to {}", sink.path.display());
        }
        if let Some((path, writer)) = self.audio_out.take() {
            let packets = writer.packets();
            writer.finish().map_err(file_error(&path))?;
            println!("recorded {packets} audio packets to {}", path.display());
        }
        Ok(())
    }
}

impl VideoSource {
    fn open(path: &Path) -> Result<Self, CallError> {
        let file = File::open(path).map_err(|e| file_error(path)(e.into()))?;
        let mut reader = IvfReader::new(BufReader::new(file)).map_err(file_error(path))?;
        let next = reader.next_frame().map_err(file_error(path))?;
        if next.is_none() {
            return Err(CallError::Usage(format!("{}: the video has no frames", path.display())));
        }
        Ok(Self { path: path.to_owned(), reader, next, offset: Duration::ZERO, last: Duration::ZERO })
    }

    fn advance(&mut self, looping: bool) -> Result<(), CallError> {
        self.next = self.reader.next_frame().map_err(file_error(&self.path))?;
        if self.next.is_none() && looping {
            let mut again = Self::open(&self.path)?;
            // One frame interval after the last frame.
            again.offset = self.last + Duration::from_millis(33);
            *self = again;
        }
        Ok(())
    }
}

impl AudioSource {
    fn open(path: &Path) -> Result<Self, CallError> {
        let file = File::open(path).map_err(|e| file_error(path)(e.into()))?;
        let mut reader = OggOpusReader::new(BufReader::new(file)).map_err(file_error(path))?;
        let next = reader.next_packet().map_err(file_error(path))?;
        if next.is_none() {
            return Err(CallError::Usage(format!("{}: the audio has no packets", path.display())));
        }
        Ok(Self { path: path.to_owned(), reader, next, samples: 0 })
    }

    fn advance(&mut self, looping: bool) -> Result<(), CallError> {
        self.next = self.reader.next_packet().map_err(file_error(&self.path))?;
        if self.next.is_none() && looping {
            let samples = self.samples;
            *self = Self::open(&self.path)?;
            self.samples = samples;
        }
        Ok(())
    }
}

fn samples_time(samples: u64) -> Duration {
    Duration::from_micros(samples * 1_000_000 / 48_000)
}

/// The picture size in a VP8 key frame's header.
fn vp8_size(frame: &[u8]) -> Option<(u16, u16)> {
    let key = frame.first()? & 1 == 0;
    if !key || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let height = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vp8_key_frame_tells_its_size() {
        let frame = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        assert_eq!(vp8_size(&frame), Some((320, 240)));
        assert_eq!(vp8_size(&[0x11, 0, 0]), None, "not a key frame");
    }
}
