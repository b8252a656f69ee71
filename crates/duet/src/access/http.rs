//! The sign-in API the page (and `duet call`) uses.
//!
//! ```text
//!  GET  /api/access               the mode and who this browser is signed in as
//!  POST /api/sign-in              {password} | {account, password} | {invite} ──► Set-Cookie
//!  POST /api/sign-out             this session ends; its sockets close
//!  POST /api/sign-out-everywhere  every session of this account ends
//!  POST /api/invites              an admin makes an invite link: {room?, name?, ttl?, uses?}
//!  /api/calls                     Recent calls (`calls`)
//! ```
//!
//! Every POST from a browser must come from duet's own origin (or an allowed one), so
//! another site can neither sign a visitor in or out nor make invites with their cookie.
//! Answers are JSON: `{error, message}` on failure, the message in words for the page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use duet_access::{Admitted, InviteSpec};
use duet_signal::{RoomName, UserName};
use serde_json::json;

pub use super::api::SessionsChanged;
use super::api::{Api, ApiError, OwnOrigin, SignedIn, error, unavailable};
use super::{Access, SignIn, SignInRefusal};

/// Largest request body the API reads.
const MAX_BODY_BYTES: usize = 8 * 1024;

/// The API's routes (`tls`: the listener serves HTTPS).
pub fn routes(
    access: Arc<Access>,
    sockets: Arc<dyn SessionsChanged>,
    tls: bool,
    pusher: Option<Arc<crate::push::Pusher>>,
) -> Router {
    Router::new()
        .route("/api/access", get(status))
        .route("/api/sign-in", post(sign_in))
        .route("/api/sign-out", post(sign_out))
        .route("/api/sign-out-everywhere", post(sign_out_everywhere))
        .route("/api/invites", post(make_invite))
        .route("/api/calls", get(super::calls::list).delete(super::calls::clear))
        .route("/api/calls/seen", post(super::calls::seen))
        .route("/api/calls/decline", post(super::calls::decline))
        .route("/api/push", get(super::push::status))
        .route(
            "/api/push/subscriptions",
            get(super::push::status).post(super::push::subscribe).delete(super::push::unsubscribe),
        )
        .route("/api/push/test", post(super::push::test))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Api { access, sockets, tls, pusher })
}

impl From<&SignInRefusal> for ApiError {
    fn from(refusal: &SignInRefusal) -> Self {
        let retry_after = match refusal {
            SignInRefusal::TooMany { retry_after } | SignInRefusal::Resting { retry_after, .. } => {
                Some((retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1))
            }
            _ => None,
        };
        Self { status: refusal.status(), code: refusal.code(), message: refusal.message(), retry_after }
    }
}

/// What the page needs to know about a session.
fn describe(access: &Access, admitted: Option<&Admitted>) -> serde_json::Value {
    json!({
        "mode": access.mode().as_str(),
        "signedIn": admitted.is_some(),
        "name": admitted.and_then(Admitted::name).map(UserName::as_str),
        "account": admitted.and_then(Admitted::account),
        "admin": admitted.is_some_and(|a| a.admin),
        "room": admitted.and_then(|a| a.room.as_ref()).map(RoomName::as_str),
        "accounts": access.has_accounts(),
    })
}

async fn status(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let https = api.access.client(peer.ip(), api.tls, &headers).https;
    let admitted = api.access.session(&headers, https).and_then(Result::ok);
    let mut body = describe(&api.access, admitted.as_ref());
    body["sessionTtl"] = json!(api.access.session_ttl().as_secs());
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

async fn sign_in(
    State(api): State<Api>,
    OwnOrigin { ip, https }: OwnOrigin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: SignIn = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => {
            let refusal =
                SignInRefusal::BadRequest("Send JSON: {password}, {account, password} or {invite}.");
            return Err(ApiError::from(&refusal));
        }
    };
    match api.access.sign_in(request, ip).await {
        Ok((admitted, value)) => {
            let cookie = super::cookie::set(https, &value, api.access.session_ttl());
            let mut response = axum::Json(describe(&api.access, Some(&admitted))).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        Err(refusal) => {
            if let SignInRefusal::Unavailable(detail) = &refusal {
                tracing::error!("sign-in failed on the server's side: {detail}");
            }
            Err(ApiError::from(&refusal))
        }
    }
}

fn signed_out_response(https: bool, access: &Access) -> Result<Response, ApiError> {
    let mut response = axum::Json(describe(access, None)).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&super::cookie::clear(https)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn sign_out(
    State(api): State<Api>,
    OwnOrigin { https, .. }: OwnOrigin,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(Ok(admitted)) = api.access.session(&headers, https) {
        api.access.sign_out(&admitted.session).await.map_err(|e| unavailable("sign you out", &e.into()))?;
        api.sockets.sessions_changed();
    }
    signed_out_response(https, &api.access)
}

async fn sign_out_everywhere(
    State(api): State<Api>,
    SignedIn { admitted, https }: SignedIn,
) -> Result<Response, ApiError> {
    let Some(account) = admitted.account() else {
        let message = "Only an account can be signed out everywhere.";
        return Err(error(StatusCode::BAD_REQUEST, "no-account", message));
    };
    api.access.sign_out_everywhere(account).await.map_err(|e| unavailable("sign you out", &e))?;
    api.sockets.sessions_changed();
    signed_out_response(https, &api.access)
}

/// What an admin asks for.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    uses: Option<u32>,
}

async fn make_invite(
    State(api): State<Api>,
    SignedIn { admitted, .. }: SignedIn,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(by) = admitted.account().filter(|_| admitted.admin) else {
        return Err(error(StatusCode::FORBIDDEN, "not-admin", "Only an admin can make invite links."));
    };
    let bad = |message: String| error(StatusCode::BAD_REQUEST, "bad-request", &message);
    let request: InviteRequest =
        serde_json::from_slice(&body).map_err(|e| bad(format!("Send JSON: {e}.")))?;
    let ttl = match request.ttl.as_deref().map(crate::clock::parse_duration).transpose() {
        Ok(ttl) => ttl.unwrap_or(Duration::from_secs(86_400)),
        Err(e) => return Err(bad(format!("ttl: {e}"))),
    };
    let names = api.access.account_names();
    let uses = request.uses.unwrap_or(1);
    let spec = InviteSpec::checked(request.room.as_deref(), request.name.as_deref(), ttl, uses, &names)
        .map_err(|e| bad(e.to_string()))?;
    let (record, path) = api
        .access
        .invite(spec, (by, admitted.account_id()))
        .await
        .map_err(|e| unavailable("make the invite", &e))?;
    Ok(axum::Json(json!({
        "path": path,
        "id": record.id,
        "room": record.room,
        "name": record.name,
        "uses": record.uses,
        "expires": record.expires,
    }))
    .into_response())
}
