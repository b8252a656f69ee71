//! The session cookie on the wire: `Set-Cookie` when signing in and out, and finding it
//! again in a request's `Cookie` headers.
//!
//! ```text
//!  HTTPS: __Host-duet_session=<sealed session>; Path=/; Max-Age=…; HttpOnly; SameSite=Lax; Secure
//!  HTTP:  duet_session=<sealed session>; Path=/; Max-Age=…; HttpOnly; SameSite=Lax
//! ```
//!
//! `HttpOnly`: the page's scripts never see it. `SameSite=Lax`: another site's form or
//! script cannot send it along (a link still can, which only opens the page). The
//! `__Host-` prefix makes browsers refuse the cookie unless it is `Secure`, for the whole
//! host (no `Domain`), so no sibling subdomain can set or shadow it.

use std::time::Duration;

/// The cookie's name.
pub fn name(secure: bool) -> &'static str {
    if secure { "__Host-duet_session" } else { "duet_session" }
}

/// The `Set-Cookie` value that stores `value` for `max_age`.
pub fn set(secure: bool, value: &str, max_age: Duration) -> String {
    let mut cookie =
        format!("{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax", name(secure), max_age.as_secs());
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The `Set-Cookie` value that deletes the cookie.
pub fn clear(secure: bool) -> String {
    set(secure, "", Duration::ZERO)
}

/// The session cookie's value among the request's `Cookie` header values.
pub fn find<'a>(headers: impl IntoIterator<Item = &'a str>, secure: bool) -> Option<&'a str> {
    let wanted = name(secure);
    headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_the_cookie_is_host_only_secure_http_only_and_lax() {
        let cookie = set(true, "abc.def", Duration::from_secs(60));
        assert_eq!(cookie, "__Host-duet_session=abc.def; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        assert!(!set(false, "x", Duration::from_secs(1)).contains("Secure"));
        assert!(clear(false).contains("Max-Age=0"));
    }

    #[test]
    fn the_session_is_found_among_other_cookies_and_only_under_its_name() {
        let headers = ["theme=dark; duet_session=abc.def", "other=1"];
        assert_eq!(find(headers, false), Some("abc.def"));
        assert_eq!(find(headers, true), None, "over HTTPS only the __Host- cookie counts");
        assert_eq!(find(["__Host-duet_session=x.y"], true), Some("x.y"));
        assert_eq!(find(["duet_session="], false), None);
        assert_eq!(find(["not a cookie header at all"], false), None);
    }
}
