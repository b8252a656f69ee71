//! What every API route shares: its state, its refusals (JSON, with a code and words),
//! and who is asking (axum extractors whose rejection is the answer).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duet_access::Admitted;
use serde_json::json;

use super::Access;
use crate::store::{Backend, StoreError};

/// The signaling side the API reaches: told when sessions may have ended (so their open
/// sockets are closed at once), and asked to decline a call for an account holder whose
/// page is not open (the Decline of a ringing notification).
pub trait SessionsChanged: Send + Sync + std::fmt::Debug {
    fn sessions_changed(&self);
    /// False when no call of that id rings for `account`.
    fn decline_for_account(&self, account: &str, call: u64) -> bool;
    /// Which accounts have devices rung by push may have changed (read them again).
    fn push_devices_changed(&self);
}

#[derive(Debug, Clone)]
pub(super) struct Api {
    pub(super) access: Arc<Access>,
    pub(super) sockets: Arc<dyn SessionsChanged>,
    pub(super) tls: bool,
    /// Rings account holders' devices by push (a server with a store).
    pub(super) pusher: Option<Arc<crate::push::Pusher>>,
}

/// A refused request: its status, a stable code and a message in words.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({ "error": self.code, "message": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub(super) fn error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError { status, code, message: message.to_owned(), retry_after: None }
}

/// A request from a page of duet's own origin (or an allowed one, or no browser): the
/// client's address and whether it came over HTTPS. The rejection is the 403 answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct OwnOrigin {
    pub(super) ip: IpAddr,
    pub(super) https: bool,
}

impl FromRequestParts<Api> for OwnOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let peer =
            peer.ok_or_else(|| error(StatusCode::INTERNAL_SERVER_ERROR, "unavailable", "No peer address."))?;
        let client = api.access.client(peer.ip(), api.tls, &parts.headers);
        if !api.access.origin(&parts.headers, client.https).allowed() {
            let message = "This page may not use duet's sign-in (its origin is not duet's own).";
            return Err(error(StatusCode::FORBIDDEN, "foreign-origin", message));
        }
        Ok(Self { ip: client.ip, https: client.https })
    }
}

/// A signed-in session on a request from duet's own origin. The rejection is the 403
/// (foreign page) or 401 (no live session) answer.
#[derive(Debug)]
pub(super) struct SignedIn {
    pub(super) admitted: Admitted,
    pub(super) https: bool,
}

impl FromRequestParts<Api> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let OwnOrigin { https, .. } = OwnOrigin::from_request_parts(parts, api).await?;
        match api.access.session(&parts.headers, https) {
            Some(Ok(admitted)) => Ok(Self { admitted, https }),
            Some(Err(e)) => Err(error(StatusCode::UNAUTHORIZED, "signed-out", &e.to_string())),
            None => Err(error(StatusCode::UNAUTHORIZED, "signed-out", "You are not signed in.")),
        }
    }
}

pub(super) fn unavailable(what: &str, e: &anyhow::Error) -> ApiError {
    tracing::error!("cannot {what}: {e:#}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "unavailable", &format!("The server could not {what}."))
}

/// The account a request is signed in as. The rejection is the answer: 403 for a foreign
/// page or a guest (who keeps no history or devices on the server), 401 without a live
/// session.
pub(super) struct AccountHolder(pub(super) String);

impl FromRequestParts<Api> for AccountHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let signed_in = SignedIn::from_request_parts(parts, api).await?;
        match signed_in.admitted.account() {
            Some(account) => Ok(Self(account.to_owned())),
            None => {
                let message = "Only account holders keep calls and devices on the server.";
                Err(error(StatusCode::FORBIDDEN, "account-only", message))
            }
        }
    }
}

/// Runs `f` against the store on a blocking thread; `None` when the server has no store.
pub(super) async fn on_store<R: Send + 'static>(
    api: &Api,
    what: &str,
    f: impl FnOnce(&dyn Backend) -> Result<R, StoreError> + Send + 'static,
) -> Result<Option<R>, ApiError> {
    let Some(store) = api.access.store() else { return Ok(None) };
    let done = store.run(f).await.map_err(|e| unavailable(what, &anyhow::Error::from(e)))?;
    Ok(Some(done))
}
