//! Accounts made in a state directory's store, as `duet user add` makes them.

use std::path::Path;

use duet::store::{AccountChange, NewAccount, Store};

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
