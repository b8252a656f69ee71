//! Push ringing's settings: who push services may contact about this server, which
//! endpoints beyond the public `https` ones it may send to, how many devices an account
//! keeps subscribed, and how many pushes go out at once.

use clap::Args;
use duet_push::EndpointRules;

/// The push options, as given.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Who push services (Google's, Mozilla's, Apple's) may contact about this server's
    /// pushes: `mailto:you@example.org` or an `https:` URL. Set it for a server people
    /// use: some push services refuse pushes without a real contact.
    #[arg(long, env = "DUET_PUSH_CONTACT", default_value = "mailto:duet@localhost", value_parser = parse_contact)]
    pub push_contact: String,

    /// An origin (`http://127.0.0.1:8090`) push requests may go to whatever its scheme
    /// and address: a push service in a test or on a closed network. Repeatable. Only
    /// `https` endpoints on public addresses are sent to otherwise.
    #[arg(
        long = "push-dangerous-allow-endpoint",
        env = "DUET_PUSH_DANGEROUS_ALLOW_ENDPOINT",
        value_delimiter = ','
    )]
    pub push_dangerous_allow_endpoint: Vec<String>,

    /// Devices one account may have ringing by push; subscribing one more forgets the
    /// least recently used.
    #[arg(long, env = "DUET_PUSH_DEVICES_PER_ACCOUNT", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub push_devices_per_account: u16,

    /// Pushes under way at once (each an outgoing HTTPS request); past it, a push is
    /// dropped and counted.
    #[arg(long, env = "DUET_PUSH_AT_ONCE", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub push_at_once: u32,
}

fn parse_contact(text: &str) -> Result<String, String> {
    let text = text.trim();
    let fine = (text.starts_with("mailto:") && text.len() > "mailto:".len() && text.contains('@'))
        || text.starts_with("https://");
    if fine && text.len() <= 256 && !text.contains(char::is_whitespace) {
        Ok(text.to_owned())
    } else {
        Err("a push contact is mailto:someone@example.org or an https:// URL".to_owned())
    }
}

/// How pushes are sent.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// `mailto:` or `https:`: who push services contact about this server's pushes.
    pub contact: String,
    pub rules: EndpointRules,
    /// Devices one account may have subscribed (the least recently used go past it).
    pub per_account: usize,
    /// Pushes under way at once; past it, a push is dropped (and counted).
    pub at_once: usize,
}

impl PushArgs {
    pub fn into_config(self) -> anyhow::Result<PushConfig> {
        for origin in &self.push_dangerous_allow_endpoint {
            let fine = (origin.starts_with("http://") || origin.starts_with("https://"))
                && origin
                    .split_once("://")
                    .is_some_and(|(_, rest)| !rest.trim_end_matches('/').contains('/'));
            anyhow::ensure!(
                fine,
                "--push-dangerous-allow-endpoint {origin}: an origin, like http://127.0.0.1:8090"
            );
        }
        Ok(PushConfig {
            contact: self.push_contact,
            rules: EndpointRules { dangerous_allowed: self.push_dangerous_allow_endpoint },
            per_account: self.push_devices_per_account.into(),
            at_once: usize::try_from(self.push_at_once).unwrap_or(usize::MAX),
        })
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            contact: "mailto:duet@localhost".to_owned(),
            rules: EndpointRules::default(),
            per_account: 10,
            at_once: 512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_is_a_mail_address_or_an_https_url_and_an_allowed_endpoint_an_origin() {
        assert_eq!(parse_contact("mailto:ops@example.org"), Ok("mailto:ops@example.org".to_owned()));
        assert!(parse_contact("https://example.org/contact").is_ok());
        for bad in ["ops@example.org", "mailto:", "http://example.org", "mailto:a b@example.org"] {
            assert!(parse_contact(bad).is_err(), "{bad}");
        }
        let args = |origin: &str| PushArgs {
            push_contact: "mailto:ops@example.org".into(),
            push_dangerous_allow_endpoint: vec![origin.into()],
            push_devices_per_account: 10,
            push_at_once: 512,
        };
        assert!(args("http://127.0.0.1:8090").into_config().is_ok());
        let refused = args("http://127.0.0.1:8090/notify").into_config().expect_err("a path is no origin");
        assert!(refused.to_string().contains("an origin"), "{refused}");
    }
}
