//! The access files in the state directory, shared by the server and the `duet user` and
//! `duet invite` commands, which may run at the same time.
//!
//! ```text
//!  state_dir/access.key        32 bytes: signs sessions and invites (0600)
//!  state_dir/accounts.json     duet_access::Accounts (argon2id hashes; 0600)
//!  state_dir/invites.json      duet_access::InviteBook (uses counted, revocations)
//!  state_dir/signed-out.json   duet_access::SignedOut (sessions ended before expiry)
//!  state_dir/access.lock       held (flock) around every read-modify-write
//! ```
//!
//! Every change reads the file fresh under the lock, changes it and writes it whole
//! (a new file renamed into place), so two writers never lose each other's change and
//! a crash leaves the old file or the new one. The server notices changes made by the
//! commands by the files' modification times ([`Store::stamp`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const ACCOUNTS: &str = "accounts.json";
pub const INVITES: &str = "invites.json";
pub const SIGNED_OUT: &str = "signed-out.json";
pub const KEY: &str = "access.key";
const LOCK: &str = "access.lock";

/// The state directory, seen as the home of the access files.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// When each access file last changed: a different stamp means "read them again".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp(Vec<Option<(SystemTime, u64)>>);

impl Store {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that signs sessions and invites, made on first use.
    pub fn key(&self) -> anyhow::Result<duet_access::Key> {
        crate::state::key(&self.dir, KEY).map(duet_access::Key::new)
    }

    /// The contents of `file`; a missing file is an empty one.
    pub fn read<T: DeserializeOwned + Default>(&self, file: &str) -> anyhow::Result<T> {
        let path = self.dir.join(file);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{} is damaged at line {}, column {}: {e}", path.display(), e.line(), e.column())
        })
    }

    /// Reads `file`, lets `change` change it, and writes it back, all under the lock.
    pub fn update<T, R>(&self, file: &str, change: impl FnOnce(&mut T) -> R) -> anyhow::Result<R>
    where
        T: DeserializeOwned + Serialize + Default,
    {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("create state directory {}", self.dir.display()))?;
        let lock_path = self.dir.join(LOCK);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("open {}", lock_path.display()))?;
        crate::state::give_to_owner_of(&lock_path, &self.dir)?;
        lock.lock().with_context(|| format!("lock {}", lock_path.display()))?;
        let mut value = self.read::<T>(file)?;
        let result = change(&mut value);
        let mut json = serde_json::to_vec_pretty(&value).expect("access files serialize");
        json.push(b'\n');
        crate::state::write_private(&self.dir.join(file), &json)?;
        drop(lock); // unlocks
        Ok(result)
    }

    /// The modification times and sizes of the access files.
    pub fn stamp(&self) -> Stamp {
        Stamp(
            [ACCOUNTS, INVITES, SIGNED_OUT]
                .iter()
                .map(|file| {
                    let meta = fs::metadata(self.dir.join(file)).ok()?;
                    Some((meta.modified().ok()?, meta.len()))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn concurrent_changes_all_land_and_files_stay_private() {
        let dir = std::env::temp_dir().join(format!("duet-store-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::new(&dir);
        let before = store.stamp();
        std::thread::scope(|s| {
            for i in 0..8 {
                let store = store.clone();
                s.spawn(move || {
                    store
                        .update::<std::collections::BTreeMap<String, u32>, _>("counts.json", |m| {
                            m.insert(format!("writer-{i}"), i)
                        })
                        .expect("written")
                });
            }
        });
        let counts: std::collections::BTreeMap<String, u32> = store.read("counts.json").expect("read");
        assert_eq!(counts.len(), 8, "no writer lost another's change");
        let mode = fs::metadata(dir.join("counts.json")).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        store.update::<duet_access::Accounts, _>(ACCOUNTS, |_| ()).expect("written");
        assert_ne!(store.stamp(), before, "a change shows in the stamp");
        fs::write(dir.join(INVITES), "{\n  \"invites\": [\n").expect("write");
        let err = store.read::<duet_access::InviteBook>(INVITES).expect_err("damaged");
        assert!(err.to_string().contains("damaged at line 2"), "{err}");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn root_writing_into_the_services_state_directory_leaves_the_files_to_the_service() {
        use std::os::unix::fs::MetadataExt;
        if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
            return; // only root can give files away
        }
        let dir = std::env::temp_dir().join(format!("duet-store-owner-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("made");
        std::os::unix::fs::chown(&dir, Some(61_234), Some(61_234)).expect("chown");
        let store = Store::new(&dir);
        store.update::<duet_access::Accounts, _>(ACCOUNTS, |_| ()).expect("written");
        store.key().expect("a key");
        for file in [ACCOUNTS, KEY, LOCK] {
            let meta = fs::metadata(dir.join(file)).expect("exists");
            assert_eq!((meta.uid(), meta.gid()), (61_234, 61_234), "{file} belongs to the directory's owner");
        }
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
