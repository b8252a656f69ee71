//! "Ring this device when duet is closed": an account holder's push subscriptions.
//!
//! ```text
//!  GET    /api/push                {publicKey, devices: [{endpoint, device, created, used}], most}
//!  GET    /api/push/subscriptions  the same
//!  POST   /api/push/subscriptions  {subscription: PushSubscription.toJSON(), device?} ─► 201 {devices}
//!  DELETE /api/push/subscriptions  {endpoint} ─► 204 (404: none of this account's there)
//!  POST   /api/push/test           a test ring on every device ─► {delivered, gone, failed}
//! ```
//!
//! Guests get 403 (their tab rings while it is open); a server without a store answers
//! 404 `push-off`. A subscription is checked before it is kept (https, or an origin the
//! operator allowed; keys of the right sizes), so nothing a page sends becomes a request
//! to an arbitrary address.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use duet_push::{Push, Subscription, Urgency};
use serde_json::json;

use super::api::{AccountHolder, Api, ApiError, error, on_store};
use crate::push::{Outcome, Pusher};
use crate::store::{NewPushDevice, PushDevice};

/// What a page may call its device, at most.
const DEVICE_NAME: usize = 64;
/// How long a test ring may take.
const TEST_RING: Duration = Duration::from_secs(20);

#[derive(Debug, serde::Deserialize)]
pub(super) struct Subscribe {
    subscription: serde_json::Value,
    #[serde(default)]
    device: String,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct Unsubscribe {
    endpoint: String,
}

fn pusher(api: &Api) -> Result<&std::sync::Arc<Pusher>, ApiError> {
    api.pusher
        .as_ref()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "push-off", "This server does not ring devices by push."))
}

fn device(d: &PushDevice) -> serde_json::Value {
    json!({ "endpoint": d.endpoint, "device": d.device, "created": d.created_ms, "used": d.used_ms })
}

async fn devices(api: &Api, account: String) -> Result<Vec<serde_json::Value>, ApiError> {
    let list = on_store(api, "read the devices", move |db| db.push_devices(&account)).await?;
    Ok(list.unwrap_or_default().iter().map(device).collect())
}

pub(super) async fn status(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
) -> Result<Response, ApiError> {
    let pusher = pusher(&api)?;
    let (key, most) = (pusher.public_key(), pusher.config().per_account);
    let body = json!({ "publicKey": key, "devices": devices(&api, account).await?, "most": most });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

pub(super) async fn subscribe(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
    Json(body): Json<Subscribe>,
) -> Result<Response, ApiError> {
    let pusher = pusher(&api)?;
    let sub = Subscription::from_json(&body.subscription.to_string(), &pusher.config().rules)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "bad-subscription", &e.to_string()))?;
    let (p256dh, auth) = sub.keys();
    let name: String = body.device.chars().filter(|c| !c.is_control()).take(DEVICE_NAME).collect();
    let new = NewPushDevice {
        endpoint: sub.endpoint.as_str(),
        p256dh,
        auth,
        device: if name.trim().is_empty() { "A browser".to_owned() } else { name.trim().to_owned() },
    };
    let (most, now) = (pusher.config().per_account, crate::clock::now_ms());
    let who = account.clone();
    let kept = on_store(&api, "keep the device", move |db| db.add_push_device(&who, &new, now, most)).await?;
    if kept.flatten().is_none() {
        return Err(error(StatusCode::FORBIDDEN, "no-account", "That account no longer exists."));
    }
    api.sockets.push_devices_changed();
    Ok((StatusCode::CREATED, Json(json!({ "devices": devices(&api, account).await? }))).into_response())
}

pub(super) async fn unsubscribe(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
    Json(body): Json<Unsubscribe>,
) -> Result<Response, ApiError> {
    pusher(&api)?;
    let removed =
        on_store(&api, "forget the device", move |db| db.remove_push_device(&account, &body.endpoint));
    if removed.await?.unwrap_or(false) {
        api.sockets.push_devices_changed();
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(error(StatusCode::NOT_FOUND, "no-such-device", "None of your devices has that subscription."))
    }
}

pub(super) async fn test(
    State(api): State<Api>,
    AccountHolder(account): AccountHolder,
) -> Result<Response, ApiError> {
    let pusher = pusher(&api)?;
    let payload = json!({ "type": "test", "account": account }).to_string().into_bytes();
    let push = Push::new(payload, TEST_RING, Urgency::Normal, Some("test".into()));
    let outcomes = pusher.ring_and_wait(account, push, Instant::now() + TEST_RING).await;
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let body = json!({
        "delivered": count(|o| *o == Outcome::Delivered),
        "gone": count(|o| *o == Outcome::Gone),
        "failed": count(|o| matches!(o, Outcome::Failed(_))),
    });
    Ok(Json(body).into_response())
}
