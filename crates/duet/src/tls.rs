//! HTTPS: loading the operator's certificate, or making and keeping a self-signed one.
//!
//! Browsers allow camera and microphone only in a secure context: `http://localhost`
//! is one, `http://192.168.1.20:8080` is not. For a LAN, `--tls-self-signed` makes a
//! certificate for `localhost` and every address of this machine, keeps it in the state
//! directory and reuses it on later starts (so a browser's "accept the risk" exception
//! keeps working); it is made anew only when the machine gained an address it lacks.
//!
//! ```text
//!  TlsSource::Files      ──read PEM──────────────────────────┐
//!  TlsSource::SelfSigned ──reuse or rcgen──► dir/*.pem ──────┴──► rustls::ServerConfig
//! ```
//!
//! TLS 1.2 and 1.3 only (rustls supports nothing older), ring as the crypto provider,
//! HTTP/1.1 over ALPN (WebSockets upgrade from HTTP/1.1).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSource;

const CERT_FILE: &str = "self-signed-cert.pem";
const KEY_FILE: &str = "self-signed-key.pem";
/// The names the kept certificate covers, one per line, to tell whether it still fits.
const NAMES_FILE: &str = "self-signed-names.txt";

/// The rustls configuration for `source`, or `None` for plain HTTP.
pub fn server_config(source: &TlsSource) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (cert_path, key_path) = match source {
        TlsSource::None => return Ok(None),
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { dir } => ensure_self_signed(dir, &local_names())?,
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("read TLS certificate {}", cert_path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate found in {}", cert_path.display());
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("read TLS private key {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!("TLS certificate {} does not match key {}", cert_path.display(), key_path.display())
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// `localhost`, loopback and every address of this machine's interfaces.
fn local_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    if let Ok(host) = fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.insert(host.to_owned());
        }
    }
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => names.extend(interfaces.into_iter().map(|i| i.ip().to_string())),
        Err(e) => {
            tracing::warn!("cannot list network interfaces ({e}); the certificate covers localhost only")
        }
    }
    names
}

/// Returns the certificate and key paths in `dir`, creating them if absent or if they do
/// not cover every name in `names`.
fn ensure_self_signed(dir: &Path, names: &BTreeSet<String>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key, listed) = (dir.join(CERT_FILE), dir.join(KEY_FILE), dir.join(NAMES_FILE));
    let covered: BTreeSet<String> =
        fs::read_to_string(&listed).map(|text| text.lines().map(str::to_owned).collect()).unwrap_or_default();
    if cert.exists() && key.exists() && names.is_subset(&covered) {
        tracing::info!("reusing the self-signed certificate in {}", dir.display());
        return Ok((cert, key));
    }
    fs::create_dir_all(dir).with_context(|| format!("create state directory {}", dir.display()))?;
    // Keep every name the old certificate had, so a laptop moving between networks does
    // not invalidate exceptions its users already accepted for other addresses.
    let all: Vec<String> = names.union(&covered).cloned().collect();
    let made =
        rcgen::generate_simple_self_signed(all.clone()).context("generate a self-signed certificate")?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    fs::write(&cert, made.cert.pem()).with_context(|| format!("write {}", cert.display()))?;
    fs::write(&listed, all.join("\n")).with_context(|| format!("write {}", listed.display()))?;
    tracing::info!("created a self-signed certificate in {} for {}", dir.display(), all.join(", "));
    Ok((cert, key))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duet-tls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_self_signed_certificate_is_made_once_and_reused() {
        let dir = temp_dir("reuse");
        let (cert, _) = ensure_self_signed(&dir, &names(&["localhost", "127.0.0.1"])).expect("made");
        let first = fs::read(&cert).expect("written");
        ensure_self_signed(&dir, &names(&["localhost"])).expect("reused");
        assert_eq!(fs::read(&cert).expect("still there"), first);
        let config = server_config(&TlsSource::SelfSigned { dir: dir.clone() }).expect("loads");
        assert!(config.is_some());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_new_address_makes_a_new_certificate_that_keeps_the_old_names() {
        let dir = temp_dir("grow");
        let (cert, _) = ensure_self_signed(&dir, &names(&["localhost", "10.0.0.5"])).expect("made");
        let first = fs::read(&cert).expect("written");
        ensure_self_signed(&dir, &names(&["localhost", "192.168.1.9"])).expect("remade");
        assert_ne!(fs::read(&cert).expect("written"), first);
        let listed = fs::read_to_string(dir.join(NAMES_FILE)).expect("written");
        assert!(listed.contains("10.0.0.5") && listed.contains("192.168.1.9"));
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn the_private_key_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("mode");
        let (_, key) = ensure_self_signed(&dir, &names(&["localhost"])).expect("made");
        assert_eq!(fs::metadata(&key).expect("exists").permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_missing_certificate_file_is_reported_with_its_path() {
        let source =
            TlsSource::Files { cert: "/nonexistent/cert.pem".into(), key: "/nonexistent/key.pem".into() };
        let err = server_config(&source).expect_err("no such file");
        assert!(format!("{err:#}").contains("/nonexistent/cert.pem"), "{err:#}");
    }
}
