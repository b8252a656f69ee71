//! Certificates by themselves, as options: which names, which CA, how to prove the
//! names, and plain HTTP on port 80 that redirects to HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

/// Let's Encrypt, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging CA: certificates browsers do not trust, limits that forgive
/// a setup being tried.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// How the CA checks that this server answers for the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcmeChallenge {
    /// On the HTTPS port itself (RFC 8737): nothing but that port needs to be open.
    #[value(name = "tls-alpn-01")]
    TlsAlpn01,
    /// On port 80 (--http-redirect-listen), for a CA or network that cannot reach the
    /// HTTPS port's TLS directly.
    #[value(name = "http-01")]
    Http01,
}

#[derive(Debug, Clone, Args)]
pub struct AcmeArgs {
    /// Get a certificate for this domain name from an ACME CA (Let's Encrypt unless
    /// --acme-directory says otherwise), keep it in --state-dir and renew it without a
    /// restart. Its DNS record must point at this server, and the HTTPS port (--listen)
    /// be reachable from the internet. Takes the place of --tls-self-signed. Repeat, or
    /// separate with commas.
    #[arg(
        long = "acme-domain",
        env = "DUET_ACME_DOMAINS",
        value_delimiter = ',',
        conflicts_with = "tls_cert"
    )]
    pub acme_domains: Vec<String>,

    /// An address the CA may write to about the certificates (Let's Encrypt: none
    /// needed).
    #[arg(long, env = "DUET_ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// The ACME directory URL of another CA (default: Let's Encrypt).
    #[arg(long, env = "DUET_ACME_DIRECTORY", conflicts_with = "acme_staging")]
    pub acme_directory: Option<String>,

    /// Use Let's Encrypt's staging CA, to try a setup: its certificates are not trusted
    /// by browsers, and its limits forgive mistakes.
    #[arg(long, env = "DUET_ACME_STAGING")]
    pub acme_staging: bool,

    /// A PEM file with the root certificate that signs the ACME directory's own HTTPS,
    /// for a private CA (not needed for Let's Encrypt).
    #[arg(long, env = "DUET_ACME_CA_ROOT")]
    pub acme_ca_root: Option<PathBuf>,

    /// How the CA checks the domain: tls-alpn-01 on the HTTPS port (no port 80 needed),
    /// or http-01 on --http-redirect-listen.
    #[arg(long, env = "DUET_ACME_CHALLENGE", value_enum, default_value = "tls-alpn-01")]
    pub acme_challenge: AcmeChallenge,
}

/// What the ACME task needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// Lower-cased DNS names, at least one.
    pub domains: Vec<String>,
    pub email: Option<String>,
    pub directory: String,
    pub ca_root: Option<PathBuf>,
    pub challenge: AcmeChallenge,
    /// Where the account and certificate are kept.
    pub state_dir: PathBuf,
    /// The HTTPS port (where the CA checks TLS-ALPN-01), for messages.
    pub https_port: u16,
}

impl AcmeArgs {
    /// `None` without --acme-domain.
    pub fn into_config(
        self,
        state_dir: Option<&Path>,
        listen: SocketAddr,
        http_redirect: Option<SocketAddr>,
    ) -> anyhow::Result<Option<AcmeConfig>> {
        if self.acme_domains.is_empty() {
            // (Checked here rather than by clap, which checks a config file's settings one by one.)
            let given = self.acme_email.is_some()
                || self.acme_directory.is_some()
                || self.acme_staging
                || self.acme_ca_root.is_some()
                || self.acme_challenge != AcmeChallenge::TlsAlpn01;
            anyhow::ensure!(
                !given,
                "the --acme-… options need --acme-domain: which name is the certificate for?"
            );
            return Ok(None);
        }
        let mut domains = Vec::new();
        for domain in &self.acme_domains {
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            check_domain(&domain).with_context(|| format!("--acme-domain {domain}"))?;
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        if let Some(email) = &self.acme_email {
            let fine = email.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty() && host.contains('.') && !email.contains([' ', ',', '<', '>'])
            });
            anyhow::ensure!(fine, "--acme-email {email}: not an e-mail address");
        }
        let directory = match (self.acme_directory, self.acme_staging) {
            (Some(url), _) => url,
            (None, true) => LETS_ENCRYPT_STAGING.to_owned(),
            (None, false) => LETS_ENCRYPT.to_owned(),
        };
        anyhow::ensure!(
            directory.starts_with("https://"),
            "--acme-directory {directory}: an ACME directory is an https:// URL"
        );
        if let Some(root) = &self.acme_ca_root {
            let text =
                std::fs::read(root).with_context(|| format!("--acme-ca-root: read {}", root.display()))?;
            use rustls::pki_types::pem::PemObject;
            let found =
                rustls::pki_types::CertificateDer::pem_slice_iter(&text).next().is_some_and(|c| c.is_ok());
            anyhow::ensure!(found, "--acme-ca-root {}: no PEM certificate in it", root.display());
        }
        if self.acme_challenge == AcmeChallenge::Http01 {
            anyhow::ensure!(
                http_redirect.is_some_and(|a| a.port() == 80),
                "--acme-challenge http-01 needs duet on port 80: add --http-redirect-listen 0.0.0.0:80 \
                 (or use tls-alpn-01, which needs only the HTTPS port)"
            );
        }
        let Some(state_dir) = state_dir else {
            anyhow::bail!(
                "--acme-domain needs a state directory to keep the certificate in: set --state-dir"
            );
        };
        Ok(Some(AcmeConfig {
            domains,
            email: self.acme_email,
            directory,
            ca_root: self.acme_ca_root,
            challenge: self.acme_challenge,
            state_dir: state_dir.to_owned(),
            https_port: listen.port(),
        }))
    }
}

/// A name a CA can issue a certificate for by TLS-ALPN-01 or HTTP-01: a DNS name of
/// letters, digits and hyphens with a dot in it; no address, no wildcard.
fn check_domain(domain: &str) -> anyhow::Result<()> {
    anyhow::ensure!(!domain.starts_with("*."), "a wildcard needs a DNS-01 challenge, which duet does not do");
    anyhow::ensure!(
        domain.parse::<std::net::IpAddr>().is_err(),
        "a CA issues for a domain name, not an address"
    );
    anyhow::ensure!(
        domain.contains('.') && domain.len() <= 253,
        "not a full domain name (like call.example.org)"
    );
    let labels_fine = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    anyhow::ensure!(labels_fine, "not a domain name (letters, digits, hyphens and dots; xn-- for others)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_must_be_one_a_ca_can_check_here() {
        for fine in ["call.example.org", "a-b.example.co.uk", "xn--bcher-kva.example"] {
            assert!(check_domain(fine).is_ok(), "{fine}");
        }
        for (wrong, why) in [
            ("*.example.org", "wildcard"),
            ("192.0.2.1", "address"),
            ("localhost", "full domain"),
            ("bad_name.example", "letters"),
            ("-a.example", "letters"),
            ("a..example", "letters"),
        ] {
            let err = check_domain(wrong).expect_err(wrong);
            assert!(err.to_string().contains(why), "{wrong}: {err}");
        }
    }
}
