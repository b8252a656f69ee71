//! One push request to a push service, as an outgoing request to an address a browser
//! chose must be made: the endpoint's name resolved, every address checked against the
//! peer policy (no loopback, private, link-local or own addresses, unless the operator
//! allowed that origin), the connection made to the checked address itself (so a second
//! resolution cannot point elsewhere), TLS with the public authorities, HTTP/1.1, the
//! whole exchange within a timeout, and no more than a few KiB of the answer read.
//!
//! ```text
//!  endpoint ──► lookup_host ──► first allowed address ──► TCP ──► TLS (SNI = host)
//!           ──► POST (encrypted body) ──► status + Retry-After (body: ≤ 4 KiB, dropped)
//! ```

use std::sync::Arc;
use std::time::Duration;

use duet_push::Endpoint;
use duet_turn::policy::PeerPolicy;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// One exchange with a push service, from resolving its name to its answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a push service's answer is read (its words, for the log).
const MOST_READ: usize = 4 * 1024;

/// What the push service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

/// Makes push requests; one per connection (a push service is asked rarely).
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
    policy: Arc<PeerPolicy>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(policy: Arc<PeerPolicy>) -> Self {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), policy }
    }

    /// Sends `request` to `endpoint` and reads the answer, within [`TIMEOUT`].
    pub async fn send(&self, endpoint: &Endpoint, request: http::Request<Vec<u8>>) -> Result<Answer, String> {
        tokio::time::timeout(TIMEOUT, self.exchange(endpoint, request))
            .await
            .map_err(|_| format!("{} did not answer within {} s", endpoint.origin(), TIMEOUT.as_secs()))?
    }

    async fn exchange(&self, endpoint: &Endpoint, request: http::Request<Vec<u8>>) -> Result<Answer, String> {
        let address = self.address(endpoint).await?;
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect to {} ({address}): {e}", endpoint.origin()))?;
        let _ = tcp.set_nodelay(true);
        let request = origin_form(endpoint, request)?;
        if !endpoint.is_https() {
            return exchange_over(tcp, request).await;
        }
        let name = rustls::pki_types::ServerName::try_from(endpoint.host().to_owned())
            .map_err(|e| format!("{} is not a host name: {e}", endpoint.host()))?;
        let tls =
            self.tls.connect(name, tcp).await.map_err(|e| format!("TLS with {}: {e}", endpoint.origin()))?;
        exchange_over(tls, request).await
    }

    /// The first address the endpoint's name resolves to that duet may send to.
    async fn address(&self, endpoint: &Endpoint) -> Result<std::net::SocketAddr, String> {
        let addresses: Vec<_> = tokio::net::lookup_host((endpoint.host(), endpoint.port()))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host()))?
            .collect();
        let mut refused = None;
        for address in addresses {
            match endpoint.check_address(address.ip(), &self.policy) {
                Ok(()) => return Ok(address),
                Err(e) => refused = Some(e.to_string()),
            }
        }
        Err(refused.unwrap_or_else(|| format!("{} resolves to no address", endpoint.host())))
    }
}

/// The request as HTTP/1.1 sends it: the path in the request line, the name in `Host`.
fn origin_form(
    endpoint: &Endpoint,
    request: http::Request<Vec<u8>>,
) -> Result<http::Request<Full<Bytes>>, String> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    parts.uri = path.parse().map_err(|_| "the endpoint's path is not a URL path".to_owned())?;
    let host = match endpoint.uri().port_u16() {
        Some(port) => format!("{}:{port}", endpoint.uri().host().unwrap_or_default()),
        None => endpoint.uri().host().unwrap_or_default().to_owned(),
    };
    let host =
        http::HeaderValue::from_str(&host).map_err(|_| "the endpoint's host is no header".to_owned())?;
    parts.headers.insert(http::header::HOST, host);
    Ok(http::Request::from_parts(parts, Full::new(Bytes::from(body))))
}

async fn exchange_over<S>(stream: S, request: http::Request<Full<Bytes>>) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP with the push service: {e}"))?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| format!("the push service: {e}"));
    let answer = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // A few KiB of what it says, for nothing but to let the exchange end cleanly.
            let _ = Limited::new(response.into_body(), MOST_READ).collect().await;
            Ok(Answer { status, retry_after })
        }
        Err(e) => Err(e),
    };
    driver.abort();
    answer
}
