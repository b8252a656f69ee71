//! Waiting for a sans-IO core's next timeout (`poll_timeout` in duet-signal and
//! duet-turn), the one place the shell turns an `Option<Instant>` into a sleep.

use std::time::Instant;

/// Sleeps until `due`, or forever when the core has nothing scheduled.
pub async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
