//! Any text as a signaling frame, from two connections at once: nothing panics, and
//! everything the hub sends is JSON with a type.
#![no_main]

use std::time::Instant;

use duet_signal::{Hub, HubConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut hub = Hub::new(HubConfig::default());
    let now = Instant::now();
    let a = hub.connect();
    let b = hub.connect();
    let _ = hub.handle_text(now, b, r#"{"type":"username","name":"bo"}"#);
    for (i, line) in text.split('\n').enumerate() {
        let conn = if i % 2 == 0 { a } else { b };
        let _ = hub.handle_text(now, conn, line);
    }
    hub.disconnect(now, a);
    while let Some(out) = hub.poll_output() {
        assert!(out.payload.starts_with("{\"type\":\""), "{}", out.payload);
    }
});
