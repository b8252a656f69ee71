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
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{AccountHolder, Api, ApiError, on_store};
use crate::store::CallEntry;

/// Calls in one page at most, and when the request does not say.
const MOST: usize = 200;
const DEFAULT: usize = 50;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Page {
    /// The `id` of the oldest call already shown.
    before: Option<i64>,
    limit: Option<usize>,
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

#[derive(Debug, serde::Deserialize)]
pub(super) struct Decline {
    call: u64,
}

/// `POST /api/calls/decline {call}`: the account holder declines a call ringing for them
/// without opening a page (a notification's Decline): 204, or 404 when it rings no more.
pub(super) async fn decline(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
    axum::Json(body): axum::Json<Decline>,
) -> Result<Response, ApiError> {
    if api.sockets.decline_for_account(&account, body.call) {
        Ok(axum::http::StatusCode::NO_CONTENT.into_response())
    } else {
        let message = "That call is not ringing for you any more.";
        Err(super::api::error(axum::http::StatusCode::NOT_FOUND, "no-such-call", message))
    }
}

pub(super) async fn clear(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
) -> Result<Response, ApiError> {
    let cleared = on_store(&api, "clear the call history", move |db| db.clear_calls(&account)).await?;
    Ok(axum::Json(json!({ "cleared": cleared.unwrap_or(0) })).into_response())
}
