//! Recent calls, for the account a request is signed in as.
//!
//! ```text
//!  GET    /api/calls?before=&limit=  {calls: [newest first], unseen, keptDays}
//!  POST   /api/calls/seen            every missed call seen: {unseen: 0}
//!  DELETE /api/calls                 the history forgotten: {cleared}
//! ```
//!
//! Guests have no history on the server (their page keeps theirs in the browser): 403.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{Api, ApiError, SignedIn, error, unavailable};
use crate::store::{CallEntry, StoreError};

/// Calls in one page at most, and when the request does not say.
const MOST: usize = 200;
const DEFAULT: usize = 50;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Page {
    /// The `id` of the oldest call already shown.
    before: Option<i64>,
    limit: Option<usize>,
}

/// The account of the request, or the 403 for a guest.
fn account(signed_in: &SignedIn) -> Result<String, ApiError> {
    match signed_in.admitted.account() {
        Some(account) => Ok(account.to_owned()),
        None => Err(error(StatusCode::FORBIDDEN, "no-history", "Only account holders have a call history.")),
    }
}

fn failed(what: &str, e: StoreError) -> ApiError {
    unavailable(what, &anyhow::Error::from(e))
}

fn entry(CallEntry { id, call, seen }: &CallEntry) -> serde_json::Value {
    json!({
        "id": id,
        "peer": call.peer,
        "peerVerified": call.peer_verified,
        "direction": if call.outgoing { "out" } else { "in" },
        "at": call.started_ms,
        "outcome": call.outcome.as_str(),
        "duration": call.duration_ms / 1_000,
        "seen": seen,
    })
}

pub(super) async fn list(
    State(api): State<Api>,
    signed_in: SignedIn,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let account = account(&signed_in)?;
    let limit = page.limit.unwrap_or(DEFAULT).clamp(1, MOST);
    let kept_days = api.access.call_history().as_secs() / 86_400;
    let Some(store) = api.access.store() else {
        return Ok(axum::Json(json!({ "calls": [], "unseen": 0, "keptDays": 0 })).into_response());
    };
    let (calls, unseen) = store
        .run(move |db| Ok((db.calls(&account, page.before, limit)?, db.unseen_calls(&account)?)))
        .await
        .map_err(|e| failed("read the call history", e))?;
    let body = json!({ "calls": calls.iter().map(entry).collect::<Vec<_>>(), "unseen": unseen, "keptDays": kept_days });
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

pub(super) async fn seen(State(api): State<Api>, signed_in: SignedIn) -> Result<Response, ApiError> {
    let account = account(&signed_in)?;
    if let Some(store) = api.access.store() {
        store
            .run(move |db| db.mark_calls_seen(&account))
            .await
            .map_err(|e| failed("mark the calls seen", e))?;
    }
    Ok(axum::Json(json!({ "unseen": 0 })).into_response())
}

pub(super) async fn clear(State(api): State<Api>, signed_in: SignedIn) -> Result<Response, ApiError> {
    let account = account(&signed_in)?;
    let cleared = match api.access.store() {
        Some(store) => store
            .run(move |db| db.clear_calls(&account))
            .await
            .map_err(|e| failed("clear the call history", e))?,
        None => 0,
    };
    Ok(axum::Json(json!({ "cleared": cleared })).into_response())
}
