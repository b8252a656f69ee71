//! What ACME keeps in the state directory, one folder per CA directory (so a staging
//! certificate is never served for production, nor a test CA's account used elsewhere):
//!
//! ```text
//!  <state-dir>/acme/<directory, as a file name>/
//!     account.json       the account's key and URL at the CA (0600)
//!     certificate.pem    the private key, then the chain (0600), replaced atomically
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use instant_acme::AccountCredentials;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::state::write_private;

const ACCOUNT_FILE: &str = "account.json";
const CERTIFICATE_FILE: &str = "certificate.pem";

/// The ACME folder for one CA directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A certificate kept from an earlier start (or just obtained).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub chain_pem: String,
    pub key_pem: String,
    /// Validity, Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    /// The DNS names it covers, lower-cased.
    pub names: Vec<String>,
}

impl Kept {
    /// Whether it covers every one of `domains`.
    pub fn covers(&self, domains: &[String]) -> bool {
        domains.iter().all(|d| self.names.contains(&d.to_ascii_lowercase()))
    }
}

impl Store {
    pub fn new(state_dir: &Path, directory_url: &str) -> Self {
        let folder: String = directory_url
            .trim_start_matches("https://")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        Self { dir: state_dir.join("acme").join(folder) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The account made at this CA on an earlier start.
    pub fn account(&self) -> anyhow::Result<Option<AccountCredentials>> {
        let path = self.dir.join(ACCOUNT_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is damaged; delete it to make a new account", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    pub fn save_account(&self, credentials: &AccountCredentials) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("create {}", self.dir.display()))?;
        let json = serde_json::to_vec_pretty(credentials).context("write the ACME account")?;
        write_private(&self.dir.join(ACCOUNT_FILE), &json)
    }

    /// The certificate kept here, if there is one that can be read.
    pub fn certificate(&self) -> Option<Kept> {
        let path = self.dir.join(CERTIFICATE_FILE);
        let text = fs::read_to_string(&path).ok()?;
        match parse(&text) {
            Ok(kept) => Some(kept),
            Err(e) => {
                tracing::warn!("ignoring {}: {e:#}", path.display());
                None
            }
        }
    }

    /// Keeps a new certificate (key first, then the chain, in one file).
    pub fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> anyhow::Result<Kept> {
        let text = format!("{}\n{}", key_pem.trim_end(), chain_pem.trim_start());
        let kept = parse(&text)?;
        fs::create_dir_all(&self.dir).with_context(|| format!("create {}", self.dir.display()))?;
        write_private(&self.dir.join(CERTIFICATE_FILE), text.as_bytes())?;
        Ok(kept)
    }
}

/// Reads the key, the chain, the leaf's validity and names from one PEM text.
fn parse(text: &str) -> anyhow::Result<Kept> {
    let chain = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("read the certificate chain")?;
    let leaf = chain.first().context("no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).context("read the certificate")?;
    let validity = cert.validity();
    let seconds = |t: &x509_parser::time::ASN1Time| u64::try_from(t.timestamp()).unwrap_or(0);
    let mut names = Vec::new();
    if let Ok(Some(alt)) = cert.subject_alternative_name() {
        for name in &alt.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    let key_start = text.find("-----BEGIN").context("no private key")?;
    let key_end = text.find("-----BEGIN CERTIFICATE").context("no certificate")?;
    anyhow::ensure!(key_start < key_end, "the private key must come before the chain");
    let key_pem = text[key_start..key_end].trim().to_owned() + "\n";
    let chain_pem = text[key_end..].to_owned();
    Ok(Kept {
        chain_pem,
        key_pem,
        not_before: seconds(&validity.not_before),
        not_after: seconds(&validity.not_after),
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duet-acme-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn each_ca_directory_has_a_folder_of_its_own() {
        let state = Path::new("/var/lib/duet");
        let production = Store::new(state, "https://acme-v02.api.letsencrypt.org/directory");
        let staging = Store::new(state, "https://acme-staging-v02.api.letsencrypt.org/directory");
        assert_eq!(production.dir(), Path::new("/var/lib/duet/acme/acme-v02.api.letsencrypt.org_directory"));
        assert_ne!(production.dir(), staging.dir());
        // Whatever the URL holds, it is one folder under acme/.
        let odd = Store::new(state, "https://127.0.0.1:14000/dir/../../x");
        assert_eq!(odd.dir().parent(), Some(state.join("acme").as_path()));
    }

    #[test]
    fn a_saved_certificate_comes_back_with_its_names_and_dates_and_stays_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("keep");
        let store = Store::new(&dir, "https://ca.test/directory");
        assert_eq!(store.certificate(), None);
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["Call.Example.org".into(), "b.example.org".into()])
                .expect("ok");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(1_807_776_000).expect("time");
        let made = params.self_signed(&key).expect("signed");
        let kept = store.save_certificate(&made.pem(), &key.serialize_pem()).expect("saved");
        assert_eq!((kept.not_before, kept.not_after), (1_800_000_000, 1_807_776_000));
        assert!(kept.covers(&["call.example.org".into(), "B.example.org".into()]));
        assert!(!kept.covers(&["c.example.org".into()]));
        assert_eq!(store.certificate(), Some(kept.clone()));
        let file = store.dir().join(CERTIFICATE_FILE);
        assert_eq!(fs::metadata(&file).expect("written").permissions().mode() & 0o777, 0o600);
        let certs = super::super::Certificates::new(&["call.example.org".into()], "w".into()).expect("made");
        certs.install(&kept.chain_pem, &kept.key_pem).expect("what was kept is usable");
        fs::write(&file, "garbage").expect("damage it");
        assert_eq!(store.certificate(), None, "a damaged file is as good as none");
        fs::remove_dir_all(dir).ok();
    }
}
