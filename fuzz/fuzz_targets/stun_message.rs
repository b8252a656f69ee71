//! Any bytes: parsing never panics, and what parses can be read and verified.
#![no_main]

use duet_turn::stun::{Message, attr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let _ = (msg.method(), msg.class(), msg.transaction_id());
        for ty in msg.attribute_types().collect::<Vec<_>>() {
            let _ = msg.get(ty);
        }
        let _ = msg.text(attr::USERNAME);
        let _ = msg.u32(attr::LIFETIME);
        let _ = msg.xor_address(attr::XOR_PEER_ADDRESS);
        let _ = msg.xor_addresses(attr::XOR_PEER_ADDRESS).count();
        let _ = msg.verify_integrity(b"key");
    }
});
