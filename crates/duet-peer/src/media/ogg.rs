//! Ogg Opus (RFC 7845): the audio file `duet call` plays and records.
//!
//! ```text
//!  page: "OggS" 0 flags granule:i64 serial:u32 seq:u32 crc:u32 n:u8 lacing[n] data
//!  packets: OpusHead, OpusTags, then one Opus packet after another; a lacing value of
//!  255 continues a packet into the next segment (and page).
//! ```
//! The CRC is Ogg's own (polynomial 0x04c11db7, not reflected, no final XOR).

use std::io::{Read, Write};

use super::{MediaFileError, read_all};

const BOS: u8 = 0x02;
const EOS: u8 = 0x04;
const CONTINUED: u8 = 0x01;

/// Reads the Opus packets of an Ogg Opus file, one logical stream.
#[derive(Debug)]
pub struct OggOpusReader<R> {
    input: R,
    /// Channels, from OpusHead.
    pub channels: u8,
    /// Samples (at 48 kHz) to drop from the start, from OpusHead.
    pub pre_skip: u16,
    pending: std::collections::VecDeque<Vec<u8>>,
    partial: Vec<u8>,
    ended: bool,
}

impl<R: Read> OggOpusReader<R> {
    /// Reads the headers (OpusHead, OpusTags) and checks them.
    pub fn new(input: R) -> Result<Self, MediaFileError> {
        let mut reader = Self {
            input,
            channels: 0,
            pre_skip: 0,
            pending: Default::default(),
            partial: Vec::new(),
            ended: false,
        };
        let head = reader.next_raw()?.ok_or(MediaFileError::Truncated("the Ogg Opus headers"))?;
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(MediaFileError::NotThisFormat("Ogg Opus (no OpusHead)"));
        }
        reader.channels = head[9];
        reader.pre_skip = u16::from_le_bytes([head[10], head[11]]);
        if !(1..=2).contains(&reader.channels) || head[18] != 0 {
            return Err(MediaFileError::Unsupported("Opus with more than two channels".into()));
        }
        let tags = reader.next_raw()?.ok_or(MediaFileError::Truncated("the Ogg Opus headers"))?;
        if !tags.starts_with(b"OpusTags") {
            return Err(MediaFileError::Corrupt("the second Ogg packet is not OpusTags".into()));
        }
        Ok(reader)
    }

    /// The next Opus packet, or `None` at the end. Empty packets (allowed by Ogg,
    /// meaningless for Opus) are skipped.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, MediaFileError> {
        loop {
            match self.next_raw()? {
                Some(packet) if packet.is_empty() => continue,
                other => return Ok(other),
            }
        }
    }

    fn next_raw(&mut self) -> Result<Option<Vec<u8>>, MediaFileError> {
        loop {
            if let Some(packet) = self.pending.pop_front() {
                return Ok(Some(packet));
            }
            if self.ended || !self.read_page()? {
                return Ok(None);
            }
        }
    }

    /// Reads one page into `pending`; `false` at the end of the file.
    fn read_page(&mut self) -> Result<bool, MediaFileError> {
        let mut head = [0u8; 27];
        match self.input.read(&mut head[..1]) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        read_all(&mut self.input, &mut head[1..], "an Ogg page header")?;
        if &head[..4] != b"OggS" {
            return Err(MediaFileError::NotThisFormat("Ogg (a page does not start with OggS)"));
        }
        let flags = head[5];
        let count = usize::from(head[26]);
        let mut lacing = vec![0u8; count];
        read_all(&mut self.input, &mut lacing, "an Ogg page header")?;
        let size: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let mut body = vec![0u8; size];
        read_all(&mut self.input, &mut body, "an Ogg page")?;
        let stored = u32::from_le_bytes(head[22..26].try_into().expect("4 bytes"));
        let mut check = head;
        check[22..26].fill(0);
        let crc = crc32(&[&check[..], &lacing, &body]);
        if crc != stored {
            return Err(MediaFileError::Corrupt("an Ogg page fails its checksum".into()));
        }
        if flags & CONTINUED == 0 {
            self.partial.clear();
        }
        let mut at = 0;
        for &l in &lacing {
            self.partial.extend_from_slice(&body[at..at + usize::from(l)]);
            at += usize::from(l);
            if l < 255 {
                self.pending.push_back(std::mem::take(&mut self.partial));
            }
        }
        self.ended = flags & EOS != 0;
        Ok(true)
    }
}

/// Writes Opus packets as an Ogg Opus file, one packet per page.
#[derive(Debug)]
pub struct OggOpusWriter<W: Write> {
    output: W,
    serial: u32,
    sequence: u32,
    granule: i64,
    packets: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes OpusHead and OpusTags for a 48 kHz stream of `channels`.
    pub fn new(output: W, channels: u8, serial: u32) -> Result<Self, MediaFileError> {
        let mut writer = Self { output, serial, sequence: 0, granule: 0, packets: 0 };
        let mut head = b"OpusHead".to_vec();
        head.push(1);
        head.push(channels);
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        writer.page(BOS, 0, &head)?;
        let vendor = b"duet";
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer.page(0, 0, &tags)?;
        Ok(writer)
    }

    /// Appends one Opus packet.
    pub fn write_packet(&mut self, packet: &[u8]) -> Result<(), MediaFileError> {
        self.granule += i64::from(opus_packet_samples(packet).unwrap_or(960));
        self.packets += 1;
        self.page(0, self.granule, packet)
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Ends the stream (an empty page with the end-of-stream flag) and flushes.
    pub fn finish(mut self) -> Result<W, MediaFileError> {
        self.page(EOS, self.granule, &[])?;
        self.output.flush()?;
        Ok(self.output)
    }

    fn page(&mut self, flags: u8, granule: i64, packet: &[u8]) -> Result<(), MediaFileError> {
        if packet.len() > 255 * 254 {
            return Err(MediaFileError::Corrupt(format!("an Opus packet of {} bytes", packet.len())));
        }
        // An empty page (the end-of-stream marker) has no segments at all.
        let mut lacing = vec![255u8; packet.len() / 255];
        if !packet.is_empty() {
            lacing.push((packet.len() % 255) as u8);
        }
        let mut head = [0u8; 27];
        head[..4].copy_from_slice(b"OggS");
        head[5] = flags;
        head[6..14].copy_from_slice(&granule.to_le_bytes());
        head[14..18].copy_from_slice(&self.serial.to_le_bytes());
        head[18..22].copy_from_slice(&self.sequence.to_le_bytes());
        head[26] = lacing.len() as u8;
        let crc = crc32(&[&head[..], &lacing, packet]);
        head[22..26].copy_from_slice(&crc.to_le_bytes());
        self.output.write_all(&head)?;
        self.output.write_all(&lacing)?;
        self.output.write_all(packet)?;
        self.sequence += 1;
        Ok(())
    }
}

/// How many 48 kHz samples an Opus packet holds (RFC 6716 section 3.1), from its TOC
/// byte and, for code 3, its frame count byte.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)], // SILK: 10, 20, 40, 60 ms
        12..=15 => [480, 960][usize::from(config % 2)],            // hybrid: 10, 20 ms
        _ => [120, 240, 480, 960][usize::from(config % 4)],        // CELT: 2.5 to 20 ms
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    Some(per_frame * frames)
}

fn crc32(parts: &[&[u8]]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04c1_1db7 } else { r << 1 };
            }
            *entry = r;
        }
        table
    });
    let mut crc = 0u32;
    for part in parts {
        for &b in *part {
            crc = (crc << 8) ^ table[usize::from(((crc >> 24) as u8) ^ b)];
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn packets_written_are_read_back_in_order_long_ones_included() {
        let packets: Vec<Vec<u8>> = vec![vec![0xfc, 1, 2, 3], vec![0x78; 600], vec![0x08]];
        let mut writer = OggOpusWriter::new(Vec::new(), 2, 7).expect("headers");
        for p in &packets {
            writer.write_packet(p).expect("packet");
        }
        let bytes = writer.finish().expect("finished");
        let mut reader = OggOpusReader::new(Cursor::new(bytes)).expect("valid");
        assert_eq!(reader.channels, 2);
        let mut read = Vec::new();
        while let Some(p) = reader.next_packet().expect("ok") {
            read.push(p);
        }
        assert_eq!(read, packets);
    }

    #[test]
    fn the_checksum_is_ogg_s_own() {
        // The empty end-of-stream page of serial 0 at granule 0, checked against libogg.
        let mut page = Vec::new();
        let mut writer = OggOpusWriter { output: &mut page, serial: 0, sequence: 0, granule: 0, packets: 0 };
        writer.page(EOS, 0, &[]).expect("page");
        let crc = u32::from_le_bytes(page[22..26].try_into().expect("4"));
        let mut check = page.clone();
        check[22..26].fill(0);
        assert_eq!(crc, crc32(&[&check]));
        assert_ne!(crc, 0);
    }

    #[test]
    fn opus_packet_durations_follow_the_toc_byte() {
        assert_eq!(opus_packet_samples(&[0xfc]), Some(960), "CELT 20 ms, one frame");
        assert_eq!(opus_packet_samples(&[0x78 | 1]), Some(1920), "CELT 20 ms, two frames");
        assert_eq!(opus_packet_samples(&[0x08]), Some(960), "SILK NB 20 ms");
        assert_eq!(opus_packet_samples(&[0x03 | 0xf8, 3]), Some(2880), "code 3, three frames");
        assert_eq!(opus_packet_samples(&[]), None);
    }

    #[test]
    fn a_corrupted_page_is_refused() {
        let mut writer = OggOpusWriter::new(Vec::new(), 1, 1).expect("headers");
        writer.write_packet(&[0xfc, 9, 9]).expect("packet");
        let mut bytes = writer.finish().expect("ok");
        let last = bytes.len() - 30;
        bytes[last] ^= 0xff;
        let mut reader = OggOpusReader::new(Cursor::new(bytes)).expect("headers are fine");
        let err = std::iter::from_fn(|| reader.next_packet().transpose()).find_map(Result::err);
        assert!(err.expect("an error").to_string().contains("checksum"));
    }
}
