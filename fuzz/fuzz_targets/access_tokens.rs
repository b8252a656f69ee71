//! Any text as a session cookie, an invite link and an Origin header: nothing panics,
//! and nothing but the genuine token gets in.
//!
//! The input is also mixed into a genuine cookie and invite (one byte changed at a
//! position the input picks), which must then be refused.
#![no_main]

use duet_access::invite::InviteSpec;
use duet_access::{Accounts, Gate, InviteBook, Key, Origin, Session, SignedOut, Who, origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Key::new([7; 32]);
    let accounts = Accounts::default();
    let mut invites = InviteBook::default();
    let spec = InviteSpec { room: None, name: None, ttl_ms: 60_000, uses: 1 };
    let (_, invite) = invites.mint(&key, spec, [1; 8], "fuzz", 0);
    let signed_out = SignedOut::default();
    let gate = Gate {
        key: &key,
        accounts: &accounts,
        invites: &invites,
        signed_out: &signed_out,
        password: Some("pw"),
    };
    let tag = Gate::password_tag(&key, "pw");
    let cookie = Session::new([2; 16], Who::Password { tag }, 0, 60_000).seal(&key);
    assert!(gate.check(&cookie, 1).is_ok());

    let text = String::from_utf8_lossy(data);
    let _ = gate.check(&text, 1);
    let _ = invites.peek(&key, &text, 1);
    let _ = Origin::parse(&text);
    let _ = origin::check(Some(&text), "https", Some(&text), &[]);
    let _ = Session::open(&key, &text);
    assert!(
        text.is_empty() || gate.check(&format!("{cookie}{text}"), 1).is_err(),
        "a cookie with more after it"
    );

    if let Some((&at, rest)) = data.split_first() {
        let flip = rest.first().copied().unwrap_or(1).max(1);
        for token in [&cookie, &invite] {
            let mut bytes = token.clone().into_bytes();
            let i = usize::from(at) % bytes.len();
            bytes[i] ^= flip;
            if let Ok(changed) = String::from_utf8(bytes) {
                assert!(gate.check(&changed, 1).is_err(), "a changed cookie got in: {changed}");
                assert!(invites.peek(&key, &changed, 1).is_err(), "a changed invite got in: {changed}");
            }
        }
    }
});
