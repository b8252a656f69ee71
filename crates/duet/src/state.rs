//! What duet keeps in its state directory across restarts: keys (the one that signs
//! resume tokens, so a restarted duet can tell a person's own token from a stranger's
//! guess; the one that signs sessions and invites), and files only the owner may read.
//!
//! ```text
//!  start ──► state_dir/resume.key exists? ──yes──► read 32 bytes
//!                                         └─no──► random 32 bytes, written 0600 (atomically)
//! ```
//!
//! Several duet processes may share a state directory and start at once: the key is
//! written to a file of its own and linked into place, which fails rather than replaces
//! when another process got there first; then that one's key is read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

const RESUME_KEY_FILE: &str = "resume.key";

/// The resume key kept in `dir`, made on first use.
pub fn resume_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    key(dir, RESUME_KEY_FILE)
}

/// The 32-byte key kept in `dir/file`, made on first use (by whichever process gets there
/// first, when several start at once).
pub fn key(dir: &Path, file: &str) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(file);
    match fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!("{} is not a 32-byte key; delete it to make a new one", path.display())
            })?;
            return Ok(key);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    fs::create_dir_all(dir).with_context(|| format!("create state directory {}", dir.display()))?;
    let key = crate::random::bytes::<32>().context("read random bytes from /dev/urandom")?;
    let mine = partial_path(&path);
    write_file(&mine, &key)?;
    give_to_owner_of(&mine, dir)?;
    let linked = fs::hard_link(&mine, &path);
    let _ = fs::remove_file(&mine);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self::key(dir, file),
        Err(e) => Err(e).with_context(|| format!("write {}", path.display())),
    }
}

/// A name beside `path` that no other process writes to.
fn partial_path(path: &Path) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    path.with_extension(format!("{}-{nanos}.partial", std::process::id()))
}

/// Writes a file only its owner can read, atomically: a crash leaves the old file or the
/// new one, never half of one.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let partial = partial_path(path);
    write_file(&partial, contents)?;
    if let Some(dir) = path.parent() {
        give_to_owner_of(&partial, dir)?;
    }
    fs::rename(&partial, path).with_context(|| format!("write {}", path.display()))
}

/// When root writes into a state directory another user owns (the duet service's, under
/// systemd's DynamicUser: `sudo duet user add ann`), the new file goes to that user, or
/// the running service could not read it.
pub fn give_to_owner_of(path: &Path, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    let Ok(owner) = fs::metadata(dir) else { return Ok(()) };
    if me != 0 || owner.uid() == 0 {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))
        .with_context(|| format!("give {} to the owner of {}", path.display(), dir.display()))
}

/// Writes a new file, owner-readable only, to disk.
fn write_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_resume_key_is_made_once_kept_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("duet-state-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let key = resume_key(&dir).expect("made");
        assert_eq!(resume_key(&dir).expect("read"), key, "the same key after a restart");
        let mode = fs::metadata(dir.join(RESUME_KEY_FILE)).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Processes starting together all end up with the one key on disk.
        let _ = fs::remove_file(dir.join(RESUME_KEY_FILE));
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let racers: Vec<_> =
                (0..8).map(|_| s.spawn(|| resume_key(&dir).expect("made or read"))).collect();
            racers.into_iter().map(|r| r.join().expect("no panic")).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "one key for all");
        assert_eq!(resume_key(&dir).expect("read"), keys[0]);
        fs::write(dir.join(RESUME_KEY_FILE), b"short").expect("write");
        let err = resume_key(&dir).expect_err("a damaged key is not silently replaced");
        assert!(err.to_string().contains("delete it"), "{err}");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
