//! Account holders' do not disturb kept in the store: what the hub says changed is
//! written by a task (never under the hub's lock), and at start the kept settings are
//! given back to the hub, so a restart does not ring someone who asked for quiet.
//!
//! ```text
//!  QuietChanged{verified} ──► try_send (full: dropped, logged) ──► writer ──► Store::set_quiet
//!  start ──► Store::quiet_settings(now) ──► Hub::set_quiet, each (wall clock → Instant)
//! ```
//!
//! Guests' settings are their tab's and are never written: nothing a guest sends costs a
//! write.

use std::time::{Duration, Instant};

use duet_signal::{DoNotDisturb, Event, Happened, Quiet, UserName};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::signaling::events::Listener;
use crate::store::{QuietSetting, Store};

/// Changes waiting to be written; an account holder changes this a few times a day.
const QUEUE: usize = 256;

/// The listener: queues account holders' changes for the writer.
#[derive(Debug)]
pub struct KeptQuiet {
    queue: mpsc::Sender<(String, QuietSetting)>,
}

impl KeptQuiet {
    /// A listener whose changes a task spawned on `tasks` writes into `store`, until
    /// `shutdown` (after writing what was queued by then).
    pub fn start(store: Store, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (queue, changes) = mpsc::channel(QUEUE);
        tasks.spawn(write(store, changes, shutdown));
        Self { queue }
    }
}

impl Listener for KeptQuiet {
    fn heard(&self, happened: &Happened) {
        let Event::QuietChanged { who, quiet } = &happened.event else { return };
        if !who.verified {
            return;
        }
        let setting = to_wall(*quiet, Instant::now(), crate::clock::now_ms());
        if self.queue.try_send((who.name.as_str().to_owned(), setting)).is_err() {
            tracing::warn!(account = %who.name, "do not disturb not kept: too many changes at once");
        }
    }
}

/// The hub's setting on the wall clock, given one instant and its wall time.
pub fn to_wall(quiet: Quiet, now: Instant, now_ms: u64) -> QuietSetting {
    let dnd_until_ms = match quiet.dnd {
        DoNotDisturb::Off => None,
        DoNotDisturb::On => Some(QuietSetting::FOREVER),
        DoNotDisturb::Until(until) => {
            let left = u64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX);
            Some(now_ms.saturating_add(left))
        }
    };
    QuietSetting { dnd_until_ms, guests: quiet.guests }
}

/// A kept setting for the hub's clock, given one instant and its wall time.
pub fn from_wall(setting: QuietSetting, now: Instant, now_ms: u64) -> Quiet {
    let dnd = match setting.dnd_until_ms {
        None => DoNotDisturb::Off,
        Some(QuietSetting::FOREVER) => DoNotDisturb::On,
        Some(until) if until <= now_ms => DoNotDisturb::Off,
        Some(until) => DoNotDisturb::Until(now + Duration::from_millis(until - now_ms)),
    };
    Quiet { dnd, guests: setting.guests }
}

/// The kept settings, ready for [`duet_signal::Hub::set_quiet`].
pub async fn kept(store: &Store) -> Vec<(UserName, Quiet)> {
    let now_ms = crate::clock::now_ms();
    let settings = match store.run(move |db| db.quiet_settings(now_ms)).await {
        Ok(settings) => settings,
        Err(e) => {
            tracing::error!("cannot read the kept do not disturb settings: {e}");
            return Vec::new();
        }
    };
    let now = Instant::now();
    let now_ms = crate::clock::now_ms();
    settings
        .into_iter()
        .filter_map(|(name, setting)| Some((UserName::new(&name).ok()?, from_wall(setting, now, now_ms))))
        .collect()
}

async fn write(
    store: Store,
    mut changes: mpsc::Receiver<(String, QuietSetting)>,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            () = shutdown.cancelled() => changes.try_recv().ok(),
        };
        let Some((account, setting)) = change else { return };
        if let Err(e) = store.run(move |db| db.set_quiet(&account, setting)).await {
            tracing::error!("cannot keep a do not disturb setting: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_goes_to_the_wall_clock_and_back_unchanged_and_one_that_ran_out_is_off() {
        let now = Instant::now();
        let hour = Quiet { dnd: DoNotDisturb::Until(now + Duration::from_secs(3600)), guests: true };
        let forever = Quiet { dnd: DoNotDisturb::On, guests: false };
        for quiet in [hour, forever, Quiet::default()] {
            assert_eq!(from_wall(to_wall(quiet, now, 1_000_000), now, 1_000_000), quiet);
        }
        let kept = to_wall(hour, now, 1_000_000);
        assert_eq!(kept.dnd_until_ms, Some(1_000_000 + 3_600_000));
        let after = from_wall(kept, now, 1_000_000 + 3_600_000);
        assert_eq!(after, Quiet { dnd: DoNotDisturb::Off, guests: true }, "a restart after the hour");
    }
}
