//! Keeping the open sockets honest: pings (so proxies keep them, and silent ones are
//! closed) and access checks (a signed-out or revoked session's sockets close at once).
//!
//! ```text
//!  every keepalive interval ──► ping every socket (here and relayed) ──► silent 2.5 intervals: close
//!  every 2 s / a sign-out / SIGHUP ──► what changed in the store read (blocking thread)
//!                                  ──► sessions no longer valid: close (4001)
//!  every minute ──► expired sign-outs and old invites forgotten (store and copy)
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use duet_access::Session;
use duet_signal::{ConnId, Payload};

use crate::signaling::Signaling;
use crate::signaling::socket::{KEEPALIVE, Outbox};

/// How often the store is looked at for changes (`duet user`, `duet invite`, other
/// nodes' sign-outs) and the sessions of open sockets checked again.
const RECHECK_EVERY: Duration = Duration::from_secs(2);
/// How often what can no longer matter (expired sign-outs, old invites) is forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Signaling {
    /// Every `every`, queues a ping for every connection, so that proxies with an idle
    /// timeout (often 60 s) keep the sockets open, and closes connections that have
    /// answered nothing for two intervals (a dead peer, or one that stopped reading).
    /// One task for all connections: an idle connection carries no timer of its own.
    pub(super) async fn run_keepalive(self: Arc<Self>, every: Duration) {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ping: Payload = Payload::from(KEEPALIVE);
        let silence = (every * 2 + every / 2).as_millis() as u64;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                _ = interval.tick() => {
                    let now = self.millis();
                    let mut shared = self.lock();
                    shared.outboxes.retain(|_, outbox| still_heard(outbox, now, silence, &ping));
                    shared.nodes.links.retain(|_, link| still_heard(&link.outbox, now, silence, &ping));
                }
            }
        }
    }

    /// Every [`RECHECK_EVERY`], or at once when told: reads what changed in the store,
    /// and closes the sockets whose sessions no longer hold (signed out, account removed
    /// or its password changed, invite revoked, expired). Their hub sessions end as if
    /// they had left, so their TURN credentials stop working too.
    pub(super) async fn run_recheck(self: Arc<Self>) {
        let mut pruned = Instant::now();
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.sessions_changed.notified() => {}
                () = tokio::time::sleep(RECHECK_EVERY) => {}
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                if let Err(e) = self.access.prune().await {
                    tracing::error!("cannot forget expired sign-outs: {e}");
                }
            }
            self.recheck().await;
        }
    }

    /// SIGHUP: the store is read again whole, and open sockets are checked against it
    /// at once.
    pub async fn reload(&self) {
        match self.access.reload().await {
            Ok(summary) => {
                tracing::info!("SIGHUP: read the store again: {summary}");
                let names = self.access.account_names();
                self.with_hub(|hub| hub.reserve_names(names));
            }
            Err(e) => tracing::error!("SIGHUP: cannot read the store: {e}"),
        }
        self.close_ended_sessions();
    }

    pub(super) async fn recheck(&self) {
        match self.access.refresh().await {
            Ok(Some(true)) => {
                let names = self.access.account_names();
                self.with_hub(|hub| hub.reserve_names(names));
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot read the store: {e}"),
        }
        self.close_ended_sessions();
    }

    /// Closes the sockets (here and relayed) whose sessions no longer hold.
    fn close_ended_sessions(&self) {
        self.recheck_links();
        let sessions: Vec<(ConnId, Session)> =
            self.lock().sessions.iter().map(|(conn, session)| (*conn, session.clone())).collect();
        let ended: Vec<ConnId> = sessions
            .into_iter()
            .filter(|(_, session)| !self.access.still_valid(session))
            .map(|(conn, _)| conn)
            .collect();
        if ended.is_empty() {
            return;
        }
        let now = Instant::now();
        self.with_hub(|hub| ended.iter().for_each(|&conn| hub.disconnect(now, conn)));
        let mut shared = self.lock();
        for conn in &ended {
            shared.sessions.remove(conn);
            if let Some(outbox) = shared.outboxes.remove(conn) {
                // Dropping the sender ends the connection task, which reads this flag.
                outbox.meter.ended.store(true, Ordering::Relaxed);
            }
        }
        tracing::info!("closed {} connection(s) whose session ended", ended.len());
    }
}

/// Pings `outbox`'s client; false (close it) when it answered nothing for `silence` ms.
fn still_heard(outbox: &Outbox, now: u64, silence: u64, ping: &Payload) -> bool {
    let heard = outbox.meter.heard.load(Ordering::Relaxed);
    // Service instances and clients relayed from other nodes have no socket here.
    if heard != 0 && now.saturating_sub(heard) > silence {
        tracing::debug!("no answer to pings; closing");
        return false;
    }
    // A full outbox belongs to a client being dropped as too slow.
    let _ = outbox.push(ping.clone());
    true
}
