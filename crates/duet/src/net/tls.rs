//! HTTPS: loading the operator's certificate, or making and keeping a self-signed one.
//!
//! Browsers allow camera and microphone only in a secure context: `http://localhost`
//! is one, `http://192.168.1.20:8080` is not. For a LAN, `--tls-self-signed` makes a
//! certificate for `localhost`, loopback, the listen address and the names given with
//! `--tls-name` (nothing else: a certificate should not tell the world every address of
//! the machine), valid for a year, keeps it in the state directory and reuses it on
//! later starts (so a browser's "accept the risk" exception keeps working). It is made
//! anew when the names asked for change or when it has less than 30 days left.
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSource;
use crate::state::write_private;

const CERT_FILE: &str = "self-signed-cert.pem";
const KEY_FILE: &str = "self-signed-key.pem";
/// When the kept certificate expires (Unix seconds) on the first line, then the names it
/// covers, one per line: to tell whether it still fits without parsing it.
const NAMES_FILE: &str = "self-signed-names.txt";
/// How long a self-signed certificate is valid.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A kept certificate with less left than this is made anew.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The rustls configuration for `source`, or `None` for plain HTTP.
pub fn server_config(source: &TlsSource) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (cert_path, key_path) = match source {
        TlsSource::None => return Ok(None),
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { dir, names } => ensure_self_signed(dir, names, unix_now())?,
        // Its certificates change while duet runs: `acme::Certificates::server_config`.
        TlsSource::Acme(_) => anyhow::bail!("ACME certificates are served by acme::Certificates"),
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

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Returns the certificate and key paths in `dir`, creating them if absent, if they do
/// not cover exactly `names`, or if they expire within [`RENEW_BEFORE`] of `now`.
fn ensure_self_signed(dir: &Path, names: &BTreeSet<String>, now: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key, listed) = (dir.join(CERT_FILE), dir.join(KEY_FILE), dir.join(NAMES_FILE));
    let kept = fs::read_to_string(&listed).unwrap_or_default();
    let mut lines = kept.lines();
    let until: u64 =
        lines.next().and_then(|l| l.strip_prefix("valid-until ")).and_then(|t| t.parse().ok()).unwrap_or(0);
    let covered: BTreeSet<String> = lines.map(str::to_owned).collect();
    if cert.exists() && key.exists() && *names == covered && until > now + RENEW_BEFORE.as_secs() {
        tracing::info!("reusing the self-signed certificate in {}", dir.display());
        return Ok((cert, key));
    }
    fs::create_dir_all(dir).with_context(|| format!("create state directory {}", dir.display()))?;
    let all: Vec<String> = names.iter().cloned().collect();
    let mut params = rcgen::CertificateParams::new(all.clone()).context("the certificate's names")?;
    let at = |unix: u64| {
        time::OffsetDateTime::from_unix_timestamp(unix as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let until = now + VALIDITY.as_secs();
    params.not_before = at(now.saturating_sub(24 * 3600)); // a clock a little behind still accepts it
    params.not_after = at(until);
    let signing_key = rcgen::KeyPair::generate().context("generate a key")?;
    let made = params.self_signed(&signing_key).context("generate a self-signed certificate")?;
    write_private(&key, signing_key.serialize_pem().as_bytes())?;
    fs::write(&cert, made.pem()).with_context(|| format!("write {}", cert.display()))?;
    fs::write(&listed, format!("valid-until {until}\n{}", all.join("\n")))
        .with_context(|| format!("write {}", listed.display()))?;
    tracing::info!("created a self-signed certificate in {} for {}", dir.display(), all.join(", "));
    Ok((cert, key))
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

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_self_signed_certificate_is_made_once_and_reused() {
        let dir = temp_dir("reuse");
        let asked = names(&["localhost", "127.0.0.1"]);
        let (cert, _) = ensure_self_signed(&dir, &asked, NOW).expect("made");
        let first = fs::read(&cert).expect("written");
        ensure_self_signed(&dir, &asked, NOW + 86_400).expect("reused");
        assert_eq!(fs::read(&cert).expect("still there"), first);
        let config = server_config(&TlsSource::SelfSigned { dir: dir.clone(), names: asked }).expect("loads");
        assert!(config.is_some());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn the_certificate_names_only_what_was_asked_and_lives_a_year() {
        let dir = temp_dir("names");
        let (cert, _) = ensure_self_signed(&dir, &names(&["localhost", "192.0.2.9"]), NOW).expect("made");
        let first = fs::read(&cert).expect("written");
        ensure_self_signed(&dir, &names(&["localhost"]), NOW).expect("remade");
        assert_ne!(fs::read(&cert).expect("written"), first, "a name no longer asked for is dropped");
        let listed = fs::read_to_string(dir.join(NAMES_FILE)).expect("written");
        assert!(!listed.contains("192.0.2.9"));
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-enddate", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl runs (test.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("DNS:localhost") && !text.contains("IP Address"), "{text}");
        assert!(text.contains("notAfter=Jan 15 08:00:00 2028 GMT"), "{text}"); // NOW + 365 days
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_certificate_near_its_end_is_made_anew() {
        let dir = temp_dir("renew");
        let asked = names(&["localhost"]);
        let (cert, _) = ensure_self_signed(&dir, &asked, NOW).expect("made");
        let first = fs::read(&cert).expect("written");
        ensure_self_signed(&dir, &asked, NOW + 336 * 86_400).expect("29 days left: remade");
        assert_ne!(fs::read(&cert).expect("written"), first);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn the_private_key_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("mode");
        let (_, key) = ensure_self_signed(&dir, &names(&["localhost"]), NOW).expect("made");
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
