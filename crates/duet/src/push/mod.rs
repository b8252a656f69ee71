//! Ringing account holders' devices by Web Push (RFC 8030): the I/O around `duet-push`.
//! Each device's push goes on a task of its own, so a slow push service never delays
//! another; pushes at once are bounded (past that, one is dropped and counted); every
//! answer is read by `duet_push::Delivery` (try again within the deadline, forget a
//! subscription the service says is gone).
//!
//! ```text
//!  ring(account, push, deadline) ──► the account's devices (store, blocking thread)
//!     └─► per device: Subscription ──► Push::request (encrypted, VAPID) ──► Client::send
//!           ──► Delivered (store: used) | Gone (store: forgotten) | RetryAt ─► again | GiveUp
//! ```
//!
//! Nothing here knows the hub: signaling's listener decides when to ring whom.

pub mod client;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use duet_push::{Delivery, Next, Push, Subscription, Vapid, delivery::retry_after};
use duet_turn::policy::PeerPolicy;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub use crate::config::push::PushConfig;
use crate::store::{PushDevice, Store};
use client::Client;

/// The store's name for the VAPID private key.
const VAPID_SECRET: &str = "vapid";

/// What became of one device's push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The push service no longer knows the subscription: it was forgotten.
    Gone,
    Failed(String),
}

/// Counts, for /metrics.
#[derive(Debug, Default)]
pub struct PushCounts {
    pub delivered: AtomicU64,
    pub gone: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Sends pushes; one per server, shared.
#[derive(Debug)]
pub struct Pusher {
    store: Store,
    vapid: Vapid,
    client: Client,
    config: PushConfig,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
    pub counts: PushCounts,
}

impl Pusher {
    /// The pusher of `store`'s server: its VAPID key is the store's (made now if this is
    /// the first server to ask). Pushes run on `tasks`.
    pub async fn start(
        store: Store,
        config: PushConfig,
        policy: Arc<PeerPolicy>,
        tasks: TaskTracker,
    ) -> anyhow::Result<Arc<Self>> {
        let fresh = loop {
            let candidate = crate::random::bytes::<32>()?;
            if Vapid::from_secret(&candidate, &config.contact).is_ok() {
                break candidate;
            }
        };
        let secret = store.run(move |db| db.shared_secret(VAPID_SECRET, &fresh)).await?;
        let vapid = Vapid::from_secret(&secret, &config.contact)?;
        let permits = Arc::new(Semaphore::new(config.at_once.max(1)));
        let client = Client::new(policy);
        Ok(Arc::new(Self { store, vapid, client, config, permits, tasks, counts: PushCounts::default() }))
    }

    /// The key pages subscribe with (`applicationServerKey`).
    pub fn public_key(&self) -> String {
        self.vapid.public_key()
    }

    pub fn config(&self) -> &PushConfig {
        &self.config
    }

    /// Pushes since the start, by outcome: delivered, gone, failed, dropped.
    pub fn figures(&self) -> [(&'static str, u64); 4] {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counts;
        [
            ("delivered", read(&c.delivered)),
            ("gone", read(&c.gone)),
            ("failed", read(&c.failed)),
            ("dropped", read(&c.dropped)),
        ]
    }

    /// Sends `push` to every device of `account`, each on a task of its own, good until
    /// `deadline`; returns at once.
    pub fn ring(self: &Arc<Self>, account: String, push: Push, deadline: Instant) {
        let me = Arc::clone(self);
        self.tasks.spawn(async move {
            let _ = me.ring_and_wait(account, push, deadline).await;
        });
    }

    /// [`Pusher::ring`], waiting for every device's outcome.
    pub async fn ring_and_wait(
        self: &Arc<Self>,
        account: String,
        push: Push,
        deadline: Instant,
    ) -> Vec<Outcome> {
        let devices = match self.store.run(move |db| db.push_devices(&account)).await {
            Ok(devices) => devices,
            Err(e) => {
                tracing::error!("cannot read the push subscriptions: {e}");
                return Vec::new();
            }
        };
        let mut sends = Vec::with_capacity(devices.len());
        for device in devices {
            let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("too many pushes at once: one to {} dropped", device.device);
                continue;
            };
            let (me, push) = (Arc::clone(self), push.clone());
            sends.push(self.tasks.spawn(async move {
                let outcome = me.deliver(&device, &push, deadline).await;
                drop(permit);
                outcome
            }));
        }
        let mut outcomes = Vec::with_capacity(sends.len());
        for send in sends {
            outcomes.push(send.await.unwrap_or_else(|e| Outcome::Failed(e.to_string())));
        }
        outcomes
    }

    /// One device's push, tried again as its answers allow.
    async fn deliver(&self, device: &PushDevice, push: &Push, deadline: Instant) -> Outcome {
        let sub = match Subscription::new(&device.endpoint, &device.p256dh, &device.auth, &self.config.rules)
        {
            Ok(sub) => sub,
            Err(e) => return self.failed(device, e.to_string()),
        };
        let mut delivery = Delivery::new(deadline);
        loop {
            let request = match push.request(&sub, &self.vapid) {
                Ok(request) => request,
                Err(e) => return self.failed(device, e.to_string()),
            };
            let next = match self.client.send(&sub.endpoint, request).await {
                Ok(answer) => delivery.answered(
                    Instant::now(),
                    answer.status,
                    retry_after(answer.retry_after.as_deref()),
                ),
                Err(why) => delivery.failed(Instant::now(), &why),
            };
            match next {
                Next::Delivered => return self.delivered(device).await,
                Next::Gone => return self.gone(device).await,
                Next::RetryAt(at) => tokio::time::sleep_until(at.into()).await,
                Next::GiveUp(why) => return self.failed(device, why),
            }
        }
    }

    async fn delivered(&self, device: &PushDevice) -> Outcome {
        self.counts.delivered.fetch_add(1, Ordering::Relaxed);
        let (endpoint, now) = (device.endpoint.clone(), crate::clock::now_ms());
        if let Err(e) = self.store.run(move |db| db.push_used(&endpoint, now)).await {
            tracing::warn!("cannot note a delivered push: {e}");
        }
        Outcome::Delivered
    }

    async fn gone(&self, device: &PushDevice) -> Outcome {
        self.counts.gone.fetch_add(1, Ordering::Relaxed);
        tracing::info!("the push service no longer knows {}'s subscription: forgotten", device.device);
        let endpoint = device.endpoint.clone();
        if let Err(e) = self.store.run(move |db| db.forget_push_endpoint(&endpoint)).await {
            tracing::warn!("cannot forget a gone push subscription: {e}");
        }
        Outcome::Gone
    }

    fn failed(&self, device: &PushDevice, why: String) -> Outcome {
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("a push to {} was not delivered: {why}", device.device);
        Outcome::Failed(why)
    }
}
