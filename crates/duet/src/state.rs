//! What duet keeps in its state directory across restarts: the key that signs resume
//! tokens (so a restarted duet can tell a person's own token from a stranger's guess),
//! and files only the owner may read.
//!
//! ```text
//!  start ──► state_dir/resume.key exists? ──yes──► read 32 bytes
//!                                         └─no──► random 32 bytes, written 0600 (atomically)
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

const RESUME_KEY_FILE: &str = "resume.key";

/// The resume key kept in `dir`, made on first use.
pub fn resume_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(RESUME_KEY_FILE);
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
    let key = crate::config::random_bytes::<32>().context("read random bytes from /dev/urandom")?;
    write_private(&path, &key)?;
    Ok(key)
}

/// Writes a file only its owner can read, atomically: a crash leaves the old file or the
/// new one, never half of one.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("write {}", partial.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", partial.display()))?;
    fs::rename(&partial, path).with_context(|| format!("write {}", path.display()))
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
        fs::write(dir.join(RESUME_KEY_FILE), b"short").expect("write");
        let err = resume_key(&dir).expect_err("a damaged key is not silently replaced");
        assert!(err.to_string().contains("delete it"), "{err}");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
