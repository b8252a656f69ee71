//! Finding message boundaries in a TCP or TLS byte stream (RFC 8656 section 12.5):
//! STUN messages and ChannelData frames back to back.
//!
//! ```text
//!  first 4 bytes ─► 0b00...: STUN, 20 + length (the header's length excludes the header)
//!                ─► 0b01...: ChannelData, 4 + length padded to 4
//!                ─► 0b1x...: neither: the stream is out of step and must be closed
//! ```

/// The first bytes of a frame, from which its length follows.
pub const FRAME_HEADER_LEN: usize = 4;
/// The longest frame: a ChannelData of 65535 bytes padded to four.
pub const MAX_FRAME_LEN: usize = 4 + 65_536;

/// The bytes cannot start a STUN message or a ChannelData frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stream does not carry STUN or ChannelData here")]
pub struct OutOfStep;

/// The whole length of the frame that starts with `header`.
pub fn frame_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, OutOfStep> {
    let declared = usize::from(u16::from_be_bytes([header[2], header[3]]));
    match header[0] >> 6 {
        0 => Ok(20 + declared),
        1 => Ok(4 + ((declared + 3) & !3)),
        _ => Err(OutOfStep),
    }
}

/// Splits `stream` into complete frames; returns them and the unconsumed rest.
pub fn split_frames(mut stream: &[u8]) -> (Vec<&[u8]>, Result<&[u8], OutOfStep>) {
    let mut frames = Vec::new();
    while stream.len() >= FRAME_HEADER_LEN {
        let header = [stream[0], stream[1], stream[2], stream[3]];
        let len = match frame_len(header) {
            Ok(len) => len,
            Err(e) => return (frames, Err(e)),
        };
        if stream.len() < len {
            break;
        }
        let (frame, rest) = stream.split_at(len);
        frames.push(frame);
        stream = rest;
    }
    (frames, Ok(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_padded_channel_data_are_split_and_garbage_is_refused() {
        let mut stream: Vec<u8> = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stream.extend_from_slice(&[7; 12]);
        stream.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        stream.extend_from_slice(&[0x40, 0x01]); // an incomplete header
        let (frames, rest) = split_frames(&stream);
        assert_eq!(frames.iter().map(|f| f.len()).collect::<Vec<_>>(), [20, 12]);
        assert_eq!(rest, Ok(&[0x40, 0x01][..]));
        assert_eq!(split_frames(&[0xff, 0, 0, 0]).1, Err(OutOfStep));
        assert_eq!(frame_len([0x40, 0, 0xff, 0xff]), Ok(MAX_FRAME_LEN));
    }
}
