//! A TCP/TLS byte stream split into frames: every frame has the length its header
//! declares, the frames and the rest add up to the input, and nothing panics.
#![no_main]

use duet_turn::framing::{MAX_FRAME_LEN, split_frames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (frames, rest) = split_frames(data);
    let mut total = 0;
    for frame in &frames {
        assert!(frame.len() >= 4 && frame.len() <= MAX_FRAME_LEN + 16);
        total += frame.len();
    }
    if let Ok(rest) = rest {
        total += rest.len();
        assert_eq!(total, data.len());
    }
});
