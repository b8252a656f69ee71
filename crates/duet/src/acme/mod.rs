//! Certificates by themselves (ACME, RFC 8555): duet asks a CA (Let's Encrypt unless told
//! otherwise) for a certificate for `--acme-domain`, proves it holds the name on its own
//! HTTPS port (TLS-ALPN-01, RFC 8737) or on port 80 (HTTP-01), keeps the certificate in
//! the state directory and renews it with a third of its life left, without a restart.
//!
//! ```text
//!  start ──► kept certificate for these names? ──yes──► serve it
//!              │                               └─no──► serve a stand-in, pages say why
//!              ▼
//!  loop: due (renew_at) or retrying (retry_after)?
//!        account (kept, or made) ─► order ─► per name: answer the challenge
//!        (Certificates: acme-tls/1 handshakes, or /.well-known/acme-challenge/) ─► ready
//!        ─► finalize (new key, CSR) ─► chain ─► kept (0600) ─► Certificates::install
//!        failure ─► in words (policy::explain), log, keep serving the old one, back off
//! ```
//!
//! The protocol is instant-acme's; what is duet's is when to ask, what to answer and
//! what to tell the operator.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, Problem,
    RetryPolicy,
};
use tokio_util::sync::CancellationToken;

use self::policy::Failure;

mod certificates;
pub mod policy;
pub mod redirect;
mod store;

pub use certificates::{ALPN_ACME, Certificates};
pub use store::{Kept, Store};

use crate::config::{AcmeChallenge, AcmeConfig};

/// How long one order may take from "ready" to a certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest the task sleeps before looking at the clock again (a machine that was
/// suspended, or a clock that was set, is noticed within this).
const LOOK_AGAIN: Duration = Duration::from_secs(3600);

/// The ACME task: obtains and renews the certificate `certificates` serves.
#[derive(Debug)]
pub struct Acme {
    config: AcmeConfig,
    store: Store,
    certificates: Arc<Certificates>,
}

impl Acme {
    /// Serves the kept certificate at once when it covers the domains and has not expired.
    pub fn new(config: AcmeConfig) -> anyhow::Result<Self> {
        let store = Store::new(&config.state_dir, &config.directory);
        let waiting = format!(
            "duet is asking {} for a certificate for {}",
            host_of(&config.directory),
            config.domains.join(", ")
        );
        let certificates = Certificates::new(&config.domains, waiting)?;
        let acme = Self { config, store, certificates };
        if let Some(kept) = acme.usable(unix_now()) {
            acme.certificates.install(&kept.chain_pem, &kept.key_pem)?;
            tracing::info!(
                "serving the certificate kept in {} ({})",
                acme.store.dir().display(),
                validity(&kept)
            );
        }
        Ok(acme)
    }

    /// What the web port's TLS answers with.
    pub fn certificates(&self) -> Arc<Certificates> {
        Arc::clone(&self.certificates)
    }

    /// The kept certificate, if it covers the domains and is still valid at `now`.
    fn usable(&self, now: u64) -> Option<Kept> {
        self.store.certificate().filter(|kept| kept.covers(&self.config.domains) && kept.not_after > now)
    }

    /// Obtains and renews until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut next = 0u64; // at once, unless a kept certificate says later
        if let Some(kept) = self.usable(unix_now()) {
            next = policy::renew_at(kept.not_before, kept.not_after);
            tracing::info!("the certificate is renewed from {}", at(next));
        }
        loop {
            let now = unix_now();
            if now < next {
                let wait = Duration::from_secs(next - now).min(LOOK_AGAIN);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return,
                attempt = self.obtain() => attempt,
            };
            self.certificates.clear_challenges();
            match attempt.and_then(|(chain, key)| self.keep(&chain, &key)) {
                Ok(kept) => {
                    failures = 0;
                    next = policy::renew_at(kept.not_before, kept.not_after);
                    tracing::info!(
                        "obtained a certificate for {} from {} ({}); renewing from {}",
                        self.config.domains.join(", "),
                        host_of(&self.config.directory),
                        validity(&kept),
                        at(next)
                    );
                }
                Err((failure, why)) => {
                    failures += 1;
                    let now = unix_now();
                    let kept = self.store.certificate().filter(|kept| kept.covers(&self.config.domains));
                    let lifetime =
                        kept.as_ref().map(|k| Duration::from_secs(k.not_after.saturating_sub(k.not_before)));
                    let wait = policy::retry_after(failures, failure, lifetime);
                    next = now + wait.as_secs().max(1);
                    let serving = match &kept {
                        Some(kept) if kept.not_after > now => {
                            format!("still serving the current certificate ({})", validity(kept))
                        }
                        Some(kept) => format!(
                            "the current certificate expired at {}: browsers refuse it",
                            at(kept.not_after)
                        ),
                        None => "no certificate yet: browsers cannot reach this server".to_owned(),
                    };
                    tracing::warn!("cannot get a certificate: {why}; {serving}; trying again in {wait:?}");
                    self.certificates.still_waiting(format!("{why} (trying again in {wait:?})"));
                }
            }
        }
    }

    fn keep(&self, chain_pem: &str, key_pem: &str) -> Result<Kept, (Failure, String)> {
        let kept = self.store.save_certificate(chain_pem, key_pem).map_err(refused)?;
        self.certificates.install(&kept.chain_pem, &kept.key_pem).map_err(refused)?;
        Ok(kept)
    }

    /// One order, start to finish: the chain and its key (PEM), or why not in words.
    async fn obtain(&self) -> Result<(String, String), (Failure, String)> {
        let domains = self.config.domains.join(", ");
        let account = self.account(false).await.map_err(|e| self.words(&e, &domains))?;
        let identifiers: Vec<Identifier> = self.config.domains.iter().cloned().map(Identifier::Dns).collect();
        let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
            Ok(order) => order,
            Err(instant_acme::Error::Api(problem)) if is(&problem, "accountDoesNotExist") => {
                // The CA forgot the account (a test CA restarts empty): make a new one.
                let account = self.account(true).await.map_err(|e| self.words(&e, &domains))?;
                account.new_order(&NewOrder::new(&identifiers)).await.map_err(|e| self.words(&e, &domains))?
            }
            Err(e) => return Err(self.words(&e, &domains)),
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| self.words(&e, &domains))?;
            let domain = authorization.identifier().to_string();
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err((
                        Failure::Refused,
                        format!("the CA's authorization for {domain} is {other:?}"),
                    ));
                }
            }
            let http = self.config.challenge == AcmeChallenge::Http01;
            let kind = if http { ChallengeType::Http01 } else { ChallengeType::TlsAlpn01 };
            let Some(mut challenge) = authorization.challenge(kind) else {
                let name = if http { "HTTP-01" } else { "TLS-ALPN-01" };
                return Err((Failure::Refused, format!("the CA offers no {name} challenge for {domain}")));
            };
            let key_authorization = challenge.key_authorization();
            match http {
                true => {
                    let token = challenge.token.clone();
                    self.certificates.answer_http(&token, key_authorization.as_str());
                }
                false => self
                    .certificates
                    .answer_tls_alpn(&domain, key_authorization.digest().as_ref())
                    .map_err(refused)?,
            }
            challenge.set_ready().await.map_err(|e| self.words(&e, &domain))?;
        }
        let retries = RetryPolicy::new().initial_delay(Duration::from_millis(500)).timeout(ORDER_TIMEOUT);
        let status = order.poll_ready(&retries).await.map_err(|e| self.words(&e, &domains))?;
        if status != OrderStatus::Ready {
            return Err((Failure::Refused, self.why_invalid(&mut order, &domains).await));
        }
        let key_pem = order.finalize().await.map_err(|e| self.words(&e, &domains))?;
        let chain_pem = order.poll_certificate(&retries).await.map_err(|e| self.words(&e, &domains))?;
        Ok((chain_pem, key_pem))
    }

    /// The account at the CA: the kept one, or a new one (also when `fresh`).
    async fn account(&self, fresh: bool) -> Result<Account, instant_acme::Error> {
        let builder = || match &self.config.ca_root {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        if !fresh
            && let Some(credentials) =
                self.store.account().map_err(|e| instant_acme::Error::Other(e.into()))?
        {
            return builder()?.from_credentials(credentials).await;
        }
        let contact: Vec<String> = self.config.email.iter().map(|e| format!("mailto:{e}")).collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let new =
            NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
        let (account, credentials) = builder()?.create(&new, self.config.directory.clone(), None).await?;
        self.store.save_account(&credentials).map_err(|e| instant_acme::Error::Other(e.into()))?;
        tracing::info!("made an account at {}", host_of(&self.config.directory));
        Ok(account)
    }

    /// Why an order ended invalid: the first failed challenge's problem, in words.
    async fn why_invalid(&self, order: &mut instant_acme::Order, domains: &str) -> String {
        let mut authorizations = order.authorizations();
        while let Some(Ok(mut authorization)) = authorizations.next().await {
            let domain = authorization.identifier().to_string();
            let Ok(state) = authorization.refresh().await else { continue };
            if let Some(problem) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
                return self.explain(problem, &domain);
            }
        }
        format!("the CA refused the order for {domains} without saying why")
    }

    fn words(&self, error: &instant_acme::Error, domain: &str) -> (Failure, String) {
        match error {
            instant_acme::Error::Api(problem) => (Failure::Refused, self.explain(problem, domain)),
            instant_acme::Error::Timeout(_) => (
                Failure::Refused,
                format!("the CA did not finish checking {domain} within {ORDER_TIMEOUT:?}"),
            ),
            other => (
                Failure::Unreached,
                format!("cannot talk to the CA at {}: {}", self.config.directory, chain(other)),
            ),
        }
    }

    fn explain(&self, problem: &Problem, domain: &str) -> String {
        let (kind, detail, domain) = match problem.subproblems.first() {
            Some(sub) => (
                sub.r#type.as_deref(),
                sub.detail.as_deref(),
                sub.identifier.as_ref().map(|i| i.authorized(false).to_string()).unwrap_or(domain.to_owned()),
            ),
            None => (problem.r#type.as_deref(), problem.detail.as_deref(), domain.to_owned()),
        };
        let port = match self.config.challenge {
            AcmeChallenge::TlsAlpn01 => self.config.https_port,
            AcmeChallenge::Http01 => 80,
        };
        policy::explain(kind, detail, &domain, port)
    }
}

fn refused(error: anyhow::Error) -> (Failure, String) {
    (Failure::Refused, format!("{error:#}"))
}

fn is(problem: &Problem, kind: &str) -> bool {
    problem.r#type.as_deref().and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:")) == Some(kind)
}

/// An error and its causes on one line (hyper hides the useful part in a source).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// The wall clock in whole seconds (certificates are valid to the second).
fn unix_now() -> u64 {
    crate::clock::now_ms() / 1000
}

/// A Unix time as people read it (UTC).
fn at(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

fn validity(kept: &Kept) -> String {
    format!("valid until {}", at(kept.not_after))
}
