//! IVF, the simplest container for VP8: a 32-byte file header, then frames, each a
//! 12-byte header (size, timestamp) and the frame.
//!
//! ```text
//!  "DKIF" ver:u16 hdr:u16=32 "VP80" w:u16 h:u16 rate:u32 scale:u32 frames:u32 unused:u32
//!  size:u32 pts:u64 <size bytes>   size:u32 pts:u64 <size bytes>   ...
//! ```
//! All little-endian; a frame's time is `pts * scale / rate` seconds.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use super::{MediaFileError, read_all};

/// Frames larger than this are refused as corrupt (a 4K VP8 key frame is well below).
const MAX_FRAME: usize = 4 << 20;

/// What the file header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfHeader {
    pub width: u16,
    pub height: u16,
    /// Timestamps count `scale / rate` seconds.
    pub rate: u32,
    pub scale: u32,
}

/// One frame: its presentation time and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfFrame {
    pub pts: u64,
    pub data: Vec<u8>,
}

impl IvfHeader {
    /// When frame `pts` is shown, from the start of the file.
    pub fn time_of(&self, pts: u64) -> Duration {
        let nanos = u128::from(pts) * u128::from(self.scale) * 1_000_000_000 / u128::from(self.rate.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Reads VP8 frames from an IVF file.
#[derive(Debug)]
pub struct IvfReader<R> {
    input: R,
    pub header: IvfHeader,
}

impl<R: Read> IvfReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, MediaFileError> {
        let mut head = [0u8; 32];
        read_all(&mut input, &mut head, "the IVF file header")?;
        if &head[0..4] != b"DKIF" {
            return Err(MediaFileError::NotThisFormat("IVF (it does not start with DKIF)"));
        }
        let header_len = u16::from_le_bytes([head[6], head[7]]);
        if &head[8..12] != b"VP80" {
            let fourcc = String::from_utf8_lossy(&head[8..12]).into_owned();
            return Err(MediaFileError::Unsupported(format!(
                "IVF with codec {fourcc:?}; duet plays VP8 (VP80)"
            )));
        }
        let header = IvfHeader {
            width: u16::from_le_bytes([head[12], head[13]]),
            height: u16::from_le_bytes([head[14], head[15]]),
            rate: u32::from_le_bytes([head[16], head[17], head[18], head[19]]),
            scale: u32::from_le_bytes([head[20], head[21], head[22], head[23]]),
        };
        if header.rate == 0 || header.scale == 0 {
            return Err(MediaFileError::Corrupt("the IVF time base is zero".into()));
        }
        // A longer header (never seen, but allowed) is skipped.
        if header_len > 32 {
            let mut rest = vec![0u8; usize::from(header_len) - 32];
            read_all(&mut input, &mut rest, "the IVF file header")?;
        }
        Ok(Self { input, header })
    }

    /// The next frame, or `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<IvfFrame>, MediaFileError> {
        let mut head = [0u8; 12];
        match self.input.read(&mut head[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        read_all(&mut self.input, &mut head[1..], "an IVF frame header")?;
        let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let pts = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        if size == 0 || size > MAX_FRAME {
            return Err(MediaFileError::Corrupt(format!("an IVF frame of {size} bytes")));
        }
        let mut data = vec![0u8; size];
        read_all(&mut self.input, &mut data, "an IVF frame")?;
        Ok(Some(IvfFrame { pts, data }))
    }
}

/// Writes VP8 frames to an IVF file; [`IvfWriter::finish`] fills in the frame count.
#[derive(Debug)]
pub struct IvfWriter<W: Write + Seek> {
    output: W,
    frames: u32,
}

impl<W: Write + Seek> IvfWriter<W> {
    pub fn new(mut output: W, header: IvfHeader) -> Result<Self, MediaFileError> {
        let mut head = Vec::with_capacity(32);
        head.extend_from_slice(b"DKIF");
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&32u16.to_le_bytes());
        head.extend_from_slice(b"VP80");
        head.extend_from_slice(&header.width.to_le_bytes());
        head.extend_from_slice(&header.height.to_le_bytes());
        head.extend_from_slice(&header.rate.to_le_bytes());
        head.extend_from_slice(&header.scale.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        output.write_all(&head)?;
        Ok(Self { output, frames: 0 })
    }

    pub fn write_frame(&mut self, pts: u64, data: &[u8]) -> Result<(), MediaFileError> {
        let size =
            u32::try_from(data.len()).map_err(|_| MediaFileError::Corrupt("a frame over 4 GiB".into()))?;
        self.output.write_all(&size.to_le_bytes())?;
        self.output.write_all(&pts.to_le_bytes())?;
        self.output.write_all(data)?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Writes the frame count into the header and flushes.
    pub fn finish(mut self) -> Result<W, MediaFileError> {
        self.output.seek(SeekFrom::Start(24))?;
        self.output.write_all(&self.frames.to_le_bytes())?;
        self.output.seek(SeekFrom::End(0))?;
        self.output.flush()?;
        Ok(self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const HEADER: IvfHeader = IvfHeader { width: 320, height: 240, rate: 90_000, scale: 1 };

    #[test]
    fn frames_written_are_read_back_with_their_times() {
        let mut writer = IvfWriter::new(Cursor::new(Vec::new()), HEADER).expect("header");
        writer.write_frame(0, b"key").expect("frame");
        writer.write_frame(3000, b"delta frame").expect("frame");
        let bytes = writer.finish().expect("finished").into_inner();
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().expect("4")), 2, "the count is filled in");
        let mut reader = IvfReader::new(Cursor::new(bytes)).expect("valid");
        assert_eq!(reader.header, HEADER);
        assert_eq!(reader.next_frame().expect("ok"), Some(IvfFrame { pts: 0, data: b"key".to_vec() }));
        let second = reader.next_frame().expect("ok").expect("a frame");
        assert_eq!(reader.header.time_of(second.pts), Duration::from_nanos(33_333_333));
        assert_eq!(reader.next_frame().expect("ok"), None);
    }

    #[test]
    fn broken_files_get_a_clear_error() {
        let err = |bytes: Vec<u8>| -> String {
            let result = IvfReader::new(Cursor::new(bytes)).and_then(|mut r| {
                while r.next_frame()?.is_some() {}
                Ok(())
            });
            result.expect_err("must fail").to_string()
        };
        assert!(err(b"OggS and more bytes than a header has, surely".to_vec()).contains("IVF"));
        assert!(err(b"DKIF".to_vec()).contains("ends in the middle of the IVF file header"));
        let mut writer = IvfWriter::new(Cursor::new(Vec::new()), HEADER).expect("header");
        writer.write_frame(0, b"0123456789").expect("frame");
        let mut bytes = writer.finish().expect("ok").into_inner();
        bytes.truncate(bytes.len() - 3);
        assert!(err(bytes.clone()).contains("ends in the middle of an IVF frame"));
        bytes[8..12].copy_from_slice(b"VP90");
        assert!(err(bytes).contains("VP8"));
    }
}
