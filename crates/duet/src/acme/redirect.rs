//! Plain HTTP beside HTTPS (`--http-redirect-listen 0.0.0.0:80`): every request is sent
//! to the same place over HTTPS, except the CA's HTTP-01 challenges, answered while an
//! order is open.
//!
//! ```text
//!  GET /.well-known/acme-challenge/<token> ──► key authorization (200), or 404
//!  anything else ──► 308 https://<host>[:port]/<path>
//! ```
//!
//! The host comes from the request, checked to be a host name or an address; a request
//! without a usable one goes to the first `--acme-domain` or gets 400.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Certificates;

/// Where plain HTTP sends people.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The HTTPS port (left out of the URL when 443).
    pub https_port: u16,
    /// Where a request without a usable Host header goes.
    pub default_host: Option<String>,
    /// HTTP-01 answers, with ACME.
    pub certificates: Option<Arc<Certificates>>,
}

/// Serves `redirect` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, redirect: Redirect, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .fallback(to_https)
        .with_state(Arc::new(redirect));
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    if let Err(e) = served {
        tracing::warn!("the HTTP redirect stopped: {e}");
    }
}

async fn challenge(
    State(redirect): State<Arc<Redirect>>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match redirect.certificates.as_ref().and_then(|c| c.http_answer(&token)) {
        Some(answer) => ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response(),
        None => to_https(State(redirect), uri, headers).await,
    }
}

async fn to_https(State(redirect): State<Arc<Redirect>>, uri: Uri, headers: HeaderMap) -> Response {
    let asked = headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(host_name);
    let Some(host) = asked.or(redirect.default_host.clone()) else {
        return (StatusCode::BAD_REQUEST, "Use https:// and this server's name.\n").into_response();
    };
    let port = if redirect.https_port == 443 { String::new() } else { format!(":{}", redirect.https_port) };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{path}");
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response()
}

/// The host part of a Host header, when it is a DNS name, an IPv4 address or a bracketed
/// IPv6 address (nothing that could turn the Location into another URL).
fn host_name(header: &str) -> Option<String> {
    if let Some(rest) = header.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<std::net::Ipv6Addr>().ok().map(|ip| format!("[{ip}]"));
    }
    let host = header.rsplit_once(':').map_or(header, |(host, port)| match port.parse::<u16>() {
        Ok(_) => host,
        Err(_) => "",
    });
    let fine = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    fine.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_host_name_makes_it_into_the_location() {
        assert_eq!(host_name("call.example.org").as_deref(), Some("call.example.org"));
        assert_eq!(host_name("Call.Example.org:80").as_deref(), Some("call.example.org"));
        assert_eq!(host_name("192.0.2.7:8080").as_deref(), Some("192.0.2.7"));
        assert_eq!(host_name("[2001:db8::1]:80").as_deref(), Some("[2001:db8::1]"));
        for hostile in ["evil.example/path", "a@b", "a..b", "", "x:notaport", "[::1", "a b", "évil.example"]
        {
            assert_eq!(host_name(hostile), None, "{hostile}");
        }
    }
}
