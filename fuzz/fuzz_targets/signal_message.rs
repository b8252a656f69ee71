//! Any text as signaling frames from several connections, with floods, dropped sockets
//! and time passing in between: nothing panics, and everything the hub sends is JSON
//! with a type.
//!
//! Each line is a frame from the next connection in turn, except for control lines:
//! `!lose` drops that connection's socket (its session is held for resuming), `!new`
//! opens another connection, `!tick` lets 700 ms pass (timers fire), and `*<frame>`
//! sends the frame 300 times at once (a flood, far past the rate limits).
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use duet_signal::{Hub, HubConfig, RoomName, UserName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = HubConfig {
        resume_key: Some([5; 32]),
        resume_grace: Duration::from_secs(2),
        services: vec![UserName::new("echo").expect("a valid name")],
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config);
    let mut now = Instant::now();
    let address = IpAddr::from([192, 0, 2, 1]);
    let mut opened = 0u32;
    let mut connect = |hub: &mut Hub| {
        opened += 1;
        hub.connect(RoomName::lobby(), &format!("fuzz-token-{opened:08}"), address)
    };
    let mut conns = vec![connect(&mut hub), connect(&mut hub)];
    let _ = hub.handle_text(now, conns[1], r#"{"type":"username","name":"bo","ringing":true}"#);
    for (i, line) in text.split('\n').enumerate() {
        let conn = conns[i % conns.len()];
        match line {
            "!lose" => hub.connection_lost(now, conn),
            "!new" if conns.len() < 8 => conns.push(connect(&mut hub)),
            "!tick" => {
                now += Duration::from_millis(700);
                hub.handle_timeout(now);
            }
            flood if flood.starts_with('*') => {
                for _ in 0..300 {
                    let _ = hub.handle_text(now, conn, &flood[1..]);
                }
            }
            frame => {
                let _ = hub.handle_text(now, conn, frame);
            }
        }
        while let Some(out) = hub.poll_output() {
            assert!(out.payload.starts_with("{\"type\":\""), "{}", out.payload);
        }
        while let Some(happened) = hub.poll_event() {
            assert!(happened.at <= now, "an event from the future: {happened:?}");
        }
    }
    for &conn in &conns {
        hub.disconnect(now, conn);
    }
    hub.handle_timeout(now + Duration::from_secs(3600));
    while let Some(out) = hub.poll_output() {
        assert!(out.payload.starts_with("{\"type\":\""), "{}", out.payload);
    }
});
