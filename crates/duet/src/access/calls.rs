//! Recent calls, for the account a request is signed in as.
//!
//! ```text
//!  GET    /api/calls?before=&limit=  {calls: [newest first], unseen, keptDays}
//!  POST   /api/calls/seen            every missed call seen: {unseen: 0}
//!  DELETE /api/calls                 the history forgotten: {cleared}
//! ```
//!
//! Guests have no history on the server (their page keeps theirs in the browser): 403.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{Api, ApiError, SignedIn, error, unavailable};
use crate::store::{Backend, CallEntry, StoreError};

/// Calls in one page at most, and when the request does not say.
const MOST: usize = 200;
const DEFAULT: usize = 50;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Page {
    /// The `id` of the oldest call already shown.
    before: Option<i64>,
    limit: Option<usize>,
}

/// The account a request is signed in as. The rejection is the answer: 403 for a foreign
/// page or a guest (who has no history on the server), 401 without a live session.
pub(super) struct AccountHolder(String);

impl FromRequestParts<Api> for AccountHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let signed_in = SignedIn::from_request_parts(parts, api).await?;
        match signed_in.admitted.account() {
            Some(account) => Ok(Self(account.to_owned())),
            None => {
                Err(error(StatusCode::FORBIDDEN, "no-history", "Only account holders have a call history."))
            }
        }
    }
}

/// Runs `f` against the store on a blocking thread; `None` when the server has no store.
async fn on_store<R: Send + 'static>(
    api: &Api,
    what: &str,
    f: impl FnOnce(&dyn Backend) -> Result<R, StoreError> + Send + 'static,
) -> Result<Option<R>, ApiError> {
    let Some(store) = api.access.store() else { return Ok(None) };
    let done = store.run(f).await.map_err(|e| unavailable(what, &anyhow::Error::from(e)))?;
    Ok(Some(done))
}

fn entry(CallEntry { id, call, seen }: &CallEntry) -> serde_json::Value {
    json!({
        "id": id,
        "peer": call.peer,
        "peerVerified": call.peer_verified,
        "direction": if call.outgoing { "out" } else { "in" },
        "at": call.started_ms,
        "outcome": call.outcome.as_str(),
        "voice": call.voice,
        "duration": call.duration_ms / 1_000,
        "seen": seen,
    })
}

pub(super) async fn list(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT).clamp(1, MOST);
    let kept_days = api.access.call_history().as_secs() / 86_400;
    let read = on_store(&api, "read the call history", move |db| {
        Ok((db.calls(&account, page.before, limit)?, db.unseen_calls(&account)?))
    });
    let Some((calls, unseen)) = read.await? else {
        return Ok(axum::Json(json!({ "calls": [], "unseen": 0, "keptDays": 0 })).into_response());
    };
    let body = json!({ "calls": calls.iter().map(entry).collect::<Vec<_>>(), "unseen": unseen, "keptDays": kept_days });
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

pub(super) async fn seen(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
) -> Result<Response, ApiError> {
    on_store(&api, "mark the calls seen", move |db| db.mark_calls_seen(&account)).await?;
    Ok(axum::Json(json!({ "unseen": 0 })).into_response())
}

pub(super) async fn clear(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
) -> Result<Response, ApiError> {
    let cleared = on_store(&api, "clear the call history", move |db| db.clear_calls(&account)).await?;
    Ok(axum::Json(json!({ "cleared": cleared.unwrap_or(0) })).into_response())
}
