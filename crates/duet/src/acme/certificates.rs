//! The certificate every TLS handshake on the web port (and TURN's own TLS port) is
//! answered with, swapped in place when a new one arrives, and the answers to the CA's
//! challenges while an order is open.
//!
//! ```text
//!  ClientHello ─► ALPN acme-tls/1? ──yes──► the challenge certificate for its SNI (RFC 8737)
//!                                  └─no───► the CA's certificate ── none yet? ──► a
//!                                           self-signed stand-in (and pages say why)
//!  GET /.well-known/acme-challenge/<token> (port 80) ──► the key authorization (HTTP-01)
//! ```
//!
//! Every rustls configuration made from the one resolver shares it, so a renewed
//! certificate is used by the next handshake everywhere; open connections keep theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol id of the TLS-ALPN-01 challenge (RFC 8737).
pub const ALPN_ACME: &[u8] = b"acme-tls/1";

/// What the web port answers TLS with, and what the ACME task is doing.
#[derive(Debug)]
pub struct Certificates {
    provider: Arc<CryptoProvider>,
    /// The CA's certificate, once there is one.
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// Served until then, so `/readyz` and the pages can say what is happening.
    stand_in: Arc<CertifiedKey>,
    /// TLS-ALPN-01 answers by domain, while an order is open.
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// HTTP-01 answers: token → key authorization.
    tokens: Mutex<HashMap<String, String>>,
    /// Why there is no certificate yet (`None` once there is one).
    waiting: Mutex<Option<String>>,
}

impl Certificates {
    /// No certificate yet: handshakes get a self-signed stand-in for `domains`.
    pub fn new(domains: &[String], waiting: String) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rcgen::KeyPair::generate().context("generate a key")?;
        let made = rcgen::CertificateParams::new(domains.to_vec())
            .context("the certificate's names")?
            .self_signed(&key)
            .context("make a stand-in certificate")?;
        let stand_in = certified(&made.pem(), &key.serialize_pem(), &provider)?;
        Ok(Arc::new(Self {
            provider,
            current: RwLock::new(None),
            stand_in: Arc::new(stand_in),
            challenges: Mutex::default(),
            tokens: Mutex::default(),
            waiting: Mutex::new(Some(waiting)),
        }))
    }

    /// Serves `chain_pem` with `key_pem` from the next handshake on.
    pub fn install(&self, chain_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        let key = certified(chain_pem, key_pem, &self.provider)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(key));
        *lock(&self.waiting) = None;
        Ok(())
    }

    /// Why the server has no certificate yet, or `None` once it has one.
    pub fn waiting(&self) -> Option<String> {
        lock(&self.waiting).clone()
    }

    /// Says why there is still no certificate (the latest failure, in words).
    pub fn still_waiting(&self, why: String) {
        let mut waiting = lock(&self.waiting);
        if waiting.is_some() {
            *waiting = Some(why);
        }
    }

    /// Answers the TLS-ALPN-01 challenge for `domain` with a certificate carrying the
    /// digest of the key authorization (RFC 8737 §3).
    pub fn answer_tls_alpn(&self, domain: &str, digest: &[u8]) -> anyhow::Result<()> {
        let key = rcgen::KeyPair::generate().context("generate a key")?;
        let mut params =
            rcgen::CertificateParams::new(vec![domain.to_owned()]).context("the challenge's name")?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let made = params.self_signed(&key).context("make the challenge certificate")?;
        // Not `certified`: its check that key and certificate match parses the certificate
        // with webpki, which refuses the critical acmeIdentifier extension.
        let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?;
        let signer = self.provider.key_provider.load_private_key(der).context("load the challenge key")?;
        let answer = CertifiedKey::new(vec![made.der().clone()], signer);
        lock(&self.challenges).insert(domain.to_ascii_lowercase(), Arc::new(answer));
        Ok(())
    }

    /// Answers the HTTP-01 challenge `token`.
    pub fn answer_http(&self, token: &str, key_authorization: &str) {
        lock(&self.tokens).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// The key authorization for an HTTP-01 `token`, while its order is open.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        lock(&self.tokens).get(token).cloned()
    }

    /// The order is over: no more challenge answers.
    pub fn clear_challenges(&self) {
        lock(&self.challenges).clear();
        lock(&self.tokens).clear();
    }

    /// A rustls configuration that answers with these certificates (HTTP/1.1 and the
    /// TLS-ALPN-01 challenge over ALPN).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec(), ALPN_ACME.to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let challenge = hello.alpn().is_some_and(|mut offered| offered.any(|p| p == ALPN_ACME));
        if challenge {
            // The validator offers nothing else and must get nothing else.
            let name = hello.server_name()?.to_ascii_lowercase();
            return lock(&self.challenges).get(&name).cloned();
        }
        let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Some(current.unwrap_or_else(|| Arc::clone(&self.stand_in)))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A chain and key (PEM) ready for rustls.
fn certified(chain_pem: &str, key_pem: &str, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("read the certificate chain")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the chain");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("read the private key")?;
    CertifiedKey::from_der(chain, key, provider).context("the certificate does not match its key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stand_in_is_served_until_the_cas_certificate_arrives() {
        let certs = Certificates::new(&["call.example.org".into()], "asking the CA".into()).expect("made");
        assert_eq!(certs.waiting().as_deref(), Some("asking the CA"));
        certs.still_waiting("the CA could not reach call.example.org:443".into());
        assert!(certs.waiting().expect("still waiting").contains("could not reach"));
        let key = rcgen::KeyPair::generate().expect("key");
        let made = rcgen::CertificateParams::new(vec!["call.example.org".into()])
            .expect("params")
            .self_signed(&key)
            .expect("signed");
        certs.install(&made.pem(), &key.serialize_pem()).expect("installed");
        assert_eq!(certs.waiting(), None);
        certs.still_waiting("a later failed renewal".into());
        assert_eq!(certs.waiting(), None, "a failed renewal keeps the certificate being served");
    }

    #[test]
    fn a_key_that_does_not_match_is_refused_and_the_old_certificate_stays() {
        let certs = Certificates::new(&["a.example".into()], "waiting".into()).expect("made");
        let key = rcgen::KeyPair::generate().expect("key");
        let other = rcgen::KeyPair::generate().expect("key");
        let made = rcgen::CertificateParams::new(vec!["a.example".into()])
            .expect("params")
            .self_signed(&key)
            .expect("signed");
        assert!(certs.install(&made.pem(), &other.serialize_pem()).is_err());
        assert!(certs.install("not a certificate", &key.serialize_pem()).is_err());
        assert!(certs.waiting().is_some());
    }

    #[test]
    fn http_challenge_answers_last_as_long_as_the_order() {
        let certs = Certificates::new(&["a.example".into()], "waiting".into()).expect("made");
        certs.answer_http("tok", "tok.thumb");
        assert_eq!(certs.http_answer("tok").as_deref(), Some("tok.thumb"));
        assert_eq!(certs.http_answer("other"), None);
        certs.clear_challenges();
        assert_eq!(certs.http_answer("tok"), None);
    }
}
