//! When to renew, how long to wait after a failure, and what a CA's refusal means in
//! words: pure functions of times and problem documents, tested without a CA.
//!
//! ```text
//!  not_before ─────────── two thirds ───────────┬──── one third ────► not_after
//!                                               renew here (Let's Encrypt: 30 days left)
//!  failure n ──► wait min(first, lifetime/100) · 2ⁿ⁻¹, at most an hour
//!                first: 5 s when the CA could not be reached (nothing counted against
//!                any limit), 1 min when it refused (its limits count failed checks)
//! ```

use std::time::Duration;

/// The first wait after the CA refused, before doubling; a short-lived certificate (a
/// test CA's) waits less, in proportion to its lifetime.
const FIRST_RETRY: Duration = Duration::from_secs(60);
/// The first wait after the CA could not be reached at all (its limits count nothing).
const FIRST_RETRY_UNREACHED: Duration = Duration::from_secs(5);
/// The longest wait between attempts: Let's Encrypt allows five failed validations an
/// hour per name, so an hour apart never runs into its limit.
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// The shortest wait between attempts, whatever the lifetime.
const SHORTEST_RETRY: Duration = Duration::from_secs(1);

/// When a certificate valid from `not_before` to `not_after` (Unix seconds) should be
/// renewed: with a third of its life left (Let's Encrypt's 90 days: at 30 days left).
pub fn renew_at(not_before: u64, not_after: u64) -> u64 {
    let lifetime = not_after.saturating_sub(not_before);
    not_after - lifetime / 3
}

/// Why an attempt failed, as far as waiting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer from the CA (down, or no route): asking again costs nothing.
    Unreached,
    /// The CA answered no (a failed check, a limit): its limits count these.
    Refused,
}

/// How long to wait before attempt `failures + 1` after `failures` failed ones in a row,
/// the last for `why`, for certificates that live `lifetime` (`None` before the first).
pub fn retry_after(failures: u32, why: Failure, lifetime: Option<Duration>) -> Duration {
    let first = match why {
        Failure::Unreached => FIRST_RETRY_UNREACHED,
        Failure::Refused => FIRST_RETRY,
    };
    let first = match lifetime {
        Some(lifetime) => (lifetime / 100).clamp(SHORTEST_RETRY, first),
        None => first,
    };
    let doubled = first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(LONGEST_RETRY)
}

/// What the CA's problem type means for the person running duet, in words. `domain` is
/// the name whose validation failed (or all of them), `port` where the CA checks.
pub fn explain(problem_type: Option<&str>, detail: Option<&str>, domain: &str, port: u16) -> String {
    let mut kind = problem_type.and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:")).unwrap_or("");
    // Some CAs (pebble) call a refused or timed-out connection "unauthorized".
    let said = detail.unwrap_or("").to_ascii_lowercase();
    if ["failed to connect", "connection refused", "timeout", "timed out", "no route"]
        .iter()
        .any(|w| said.contains(w))
    {
        kind = "connection";
    }
    let detail = detail.map(|d| format!(" (the CA said: {d})")).unwrap_or_default();
    match kind {
        "connection" | "tls" => format!(
            "the CA could not reach {domain}:{port} to check the challenge: is the port open and \
             the DNS record pointing here?{detail}"
        ),
        "dns" => format!(
            "the CA could not find {domain} in DNS: does an A or AAAA record for it point at this \
             server?{detail}"
        ),
        "unauthorized" | "incorrectResponse" => format!(
            "the CA reached {domain}:{port} but got the wrong answer to its challenge: is another \
             server, or a proxy that ends TLS, answering for this name?{detail}"
        ),
        "caa" => format!("a CAA record of {domain} forbids this CA to issue for it{detail}"),
        "rejectedIdentifier" | "unsupportedIdentifier" => {
            format!("the CA will not issue a certificate for {domain}{detail}")
        }
        "rateLimited" => {
            format!("the CA says too many certificates were asked for {domain}; duet waits{detail}")
        }
        "invalidContact" | "unsupportedContact" => {
            format!("the CA does not accept the contact address given with --acme-email{detail}")
        }
        "externalAccountRequired" => {
            format!("this CA needs an account set up with it beforehand (external account binding){detail}")
        }
        _ => match detail.is_empty() {
            true => format!("the CA refused a certificate for {domain} ({kind})"),
            false => format!("the CA refused a certificate for {domain}{detail}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn a_lets_encrypt_certificate_is_renewed_with_thirty_days_left() {
        let issued = 1_800_000_000;
        assert_eq!(renew_at(issued, issued + 90 * DAY), issued + 60 * DAY);
        assert_eq!(renew_at(issued, issued + 30), issued + 20, "a test CA's 30 s: at 20 s");
        assert_eq!(renew_at(issued, issued), issued, "an expired or odd one: at once");
    }

    #[test]
    fn retries_start_within_a_minute_double_and_stop_growing_at_an_hour() {
        let waits: Vec<u64> = (1..=9).map(|n| retry_after(n, Failure::Refused, None).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(
            retry_after(1_000, Failure::Refused, None),
            LONGEST_RETRY,
            "no overflow after many failures"
        );
    }

    #[test]
    fn a_ca_that_cannot_be_reached_is_asked_again_sooner() {
        let waits: Vec<u64> = (1..=4).map(|n| retry_after(n, Failure::Unreached, None).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40]);
        assert_eq!(retry_after(12, Failure::Unreached, None), LONGEST_RETRY);
    }

    #[test]
    fn a_short_lived_certificate_is_retried_sooner() {
        let refused = |n, lifetime| retry_after(n, Failure::Refused, Some(Duration::from_secs(lifetime)));
        assert_eq!(refused(1, 90 * DAY), FIRST_RETRY);
        assert_eq!(refused(1, 300), Duration::from_secs(3));
        assert_eq!(refused(2, 300), Duration::from_secs(6));
        assert_eq!(refused(1, 10), SHORTEST_RETRY);
    }

    #[test]
    fn a_failed_challenge_is_explained_with_what_to_check() {
        let said = explain(
            Some("urn:ietf:params:acme:error:connection"),
            Some("Timeout during connect"),
            "call.example.org",
            443,
        );
        assert!(said.contains("could not reach call.example.org:443"), "{said}");
        assert!(said.contains("is the port open and the DNS record pointing here?"), "{said}");
        assert!(said.contains("Timeout during connect"), "{said}");
        let said = explain(
            Some("urn:ietf:params:acme:error:unauthorized"),
            Some("Failed to connect to [::1]:443 for the tls-alpn-01 challenge"),
            "call.example.org",
            443,
        );
        assert!(said.contains("is the port open"), "a refused connection is not a wrong answer: {said}");
        let said = explain(Some("urn:ietf:params:acme:error:dns"), None, "call.example.org", 443);
        assert!(said.contains("A or AAAA record"), "{said}");
        let said = explain(Some("urn:ietf:params:acme:error:incorrectResponse"), None, "a.example", 443);
        assert!(said.contains("proxy that ends TLS"), "{said}");
        let said = explain(Some("urn:example:other"), Some("odd"), "a.example", 443);
        assert!(said.contains("a.example") && said.contains("odd"), "{said}");
    }
}
