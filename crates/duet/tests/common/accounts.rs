//! Accounts made in a state directory's store, as `duet user add` makes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use duet::access::Access;
use duet::config::AccessConfig;
use duet::store::{AccountChange, NewAccount, Store};
use duet_access::Mode;
use duet_signal::limit::Rate;
use serde_json::{Value, json};

use super::{Client, TestServer, http_request};

/// The instance password of `Mode::Password` servers made by [`options`].
pub const PASSWORD: &str = "the server's password";

/// Adds the account `name` with `password` to the store in `dir`.
pub fn add(dir: &Path, name: &str, password: &str, admin: bool) {
    let store = Store::open(dir).expect("a store");
    let hash = duet_access::accounts::hash_password(password, &[7; 16]);
    let id = duet::random::bytes::<16>().expect("random bytes");
    let now_ms = duet::clock::now_ms();
    let new = NewAccount { name: name.into(), hash, admin, id, now_ms };
    store.backend().add_account(new).expect("stored").expect("added");
}

/// Removes the account `name`, as `duet user remove` does from another process.
pub fn remove(dir: &Path, name: &str) {
    let store = Store::open(dir).expect("a store");
    store.backend().change_account(name, AccountChange::Remove).expect("stored").expect("removed");
}

/// A state directory of its own, with these accounts (name, password, admin).
pub fn state_dir(test: &str, accounts: &[(&str, &str, bool)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duet-accounts-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for &(name, password, admin) in accounts {
        add(&dir, name, password, admin);
    }
    dir
}

pub fn options(mode: Mode, dir: &Path) -> duet::RunOptions {
    options_with(mode, dir, Rate::every(10, Duration::from_secs(10)))
}

/// The same, with `sign_ins` attempts per address.
pub fn options_with(mode: Mode, dir: &Path, sign_ins: Rate) -> duet::RunOptions {
    let config = AccessConfig {
        mode,
        password: (mode == Mode::Password).then(|| PASSWORD.to_owned()),
        sign_ins,
        ..AccessConfig::open()
    };
    let access = Access::new(config, Some(dir)).expect("access starts");
    duet::RunOptions { access: Arc::new(access), ..duet::RunOptions::plain() }
}

/// Signs in with `body`; the status, the JSON answer and the cookie (`name=value`).
pub async fn sign_in(server: &TestServer, body: Value) -> (u16, Value, Option<String>) {
    let headers = [("Content-Type", "application/json")];
    let (status, headers, body) =
        http_request(server.addr, "POST", "/api/sign-in", &headers, &body.to_string()).await;
    let cookie = headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.split(';').next().expect("name=value").to_owned());
    (status, serde_json::from_str(&body).unwrap_or(Value::Null), cookie)
}

/// A socket signed in with `cookie`, asking for `name`; returns it with the name granted.
pub async fn join(server: &TestServer, path: &str, cookie: &str, name: &str) -> (Client, String) {
    let mut client = Client::connect_with(&server.url(path), &[("Cookie", cookie)]).await.expect("upgraded");
    client.expect_type("id").await;
    client.send(json!({"type": "username", "name": name, "ringing": true})).await;
    let session = client.expect_type("session").await;
    (client, session["name"].as_str().expect("a name").to_owned())
}
