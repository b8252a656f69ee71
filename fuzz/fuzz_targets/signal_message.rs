//! Any text as a signaling frame, from two connections at once: nothing panics, and
//! everything the hub sends is JSON with a type.
#![no_main]

use std::time::Instant;

use duet_signal::{Hub, HubConfig, RoomName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut hub = Hub::new(HubConfig::default());
    let now = Instant::now();
    let a = hub.connect(RoomName::lobby(), "fuzz-token-aaaaaaaa");
    let b = hub.connect(RoomName::lobby(), "fuzz-token-bbbbbbbb");
    let _ = hub.handle_text(now, b, r#"{"type":"username","name":"bo","ringing":true}"#);
    for (i, line) in text.split('\n').enumerate() {
        let conn = if i % 2 == 0 { a } else { b };
        let _ = hub.handle_text(now, conn, line);
    }
    hub.connection_lost(now, b);
    hub.disconnect(now, a);
    hub.handle_timeout(now + std::time::Duration::from_secs(3600));
    while let Some(out) = hub.poll_output() {
        assert!(out.payload.starts_with("{\"type\":\""), "{}", out.payload);
    }
});
