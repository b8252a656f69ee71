//! Time in the shell: waiting for a sans-IO core's next timeout (`poll_timeout` in
//! duet-signal and duet-turn), the one place an `Option<Instant>` becomes a sleep, and
//! durations as people write them (`500ms`, `5s`, `2m`, `1h`, `30d`), and the wall clock
//! for what outlives the process (sessions, invites).

use std::time::{Duration, Instant};

/// Sleeps until `due`, or forever when the core has nothing scheduled.
pub async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// Milliseconds since the Unix epoch: the clock of sessions and invites, which a restart
/// must not reset.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses `500ms`, `5s`, `2m`, `1h`, `30d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 =
        digits.parse().map_err(|_| format!("\"{text}\" is not a duration like 500ms, 5s, 2m, 1h or 30d"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        "h" => Ok(Duration::from_secs(value * 3600)),
        "d" => Ok(Duration::from_secs(value * 86_400)),
        _ => Err(format!("\"{text}\" needs a unit: ms, s, m, h or d")),
    }
}
