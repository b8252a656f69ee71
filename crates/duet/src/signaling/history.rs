//! Account holders' call history, from the hub's events: each ended call (or call that
//! found someone busy) becomes a row in the history of each side that signed in with an
//! account, written to the store by a task of its own, never under the hub's lock.
//!
//! ```text
//!  CallEnded / CallBusy ──► records (pure: who, which way, when, how it went, how long)
//!        │ under the hub's lock: try_send (a full queue drops and counts, never waits)
//!        ▼
//!  writer task ──► Store::run(record_calls), a batch at a time; at shutdown, the calls
//!                  the closing sockets end are written too (signaling waits for it)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use duet_signal::{EndReason, Event, Happened, Party, Side};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::signaling::events::Listener;
use crate::store::{Call, CallOutcome, CallRecord, Store};

/// Calls waiting to be written; a burst past this is dropped (and counted).
const QUEUE: usize = 4096;
/// Calls written in one transaction at most.
const BATCH: usize = 256;
/// At shutdown, how long the writer waits for another call to end before it stops.
const QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// The listener: turns events into records and queues them for the writer.
#[derive(Debug)]
pub struct History {
    queue: mpsc::Sender<CallRecord>,
    dropped: AtomicU64,
}

impl History {
    /// A listener whose records a task spawned on `tasks` writes into `store`, until
    /// `shutdown` (after writing what was queued by then).
    pub fn start(store: Store, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (queue, records) = mpsc::channel(QUEUE);
        tasks.spawn(write(store, records, shutdown));
        Self { queue, dropped: AtomicU64::new(0) }
    }
}

impl Listener for History {
    fn heard(&self, happened: &Happened) {
        // The clocks are read only for the events that make rows (most make none).
        let wall = |at| wall_clock(Instant::now(), crate::clock::now_ms())(at);
        for record in records(happened, wall) {
            if self.queue.try_send(record).is_err() {
                let before = self.dropped.fetch_add(1, Ordering::Relaxed);
                if before.is_power_of_two() || before == 0 {
                    tracing::warn!("call history is behind: {} call(s) not kept", before + 1);
                }
            }
        }
    }
}

/// Milliseconds since the epoch of an instant, given one instant and its wall time.
fn wall_clock(now: Instant, now_ms: u64) -> impl Fn(Instant) -> u64 {
    move |at: Instant| {
        let ago = u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX);
        now_ms.saturating_sub(ago)
    }
}

/// The history rows `happened` makes, one per side that is an account holder.
pub fn records(happened: &Happened, wall: impl Fn(Instant) -> u64) -> Vec<CallRecord> {
    match &happened.event {
        Event::CallEnded { caller, callee, reason, by, began, answered, voice, .. } => {
            let duration_ms = answered.map_or(0, |from| {
                u64::try_from(happened.at.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
            });
            let (mine, theirs) = match answered {
                // Taken, but nothing ever flowed: no talk to count.
                Some(_) if *reason == EndReason::Failed => (CallOutcome::Failed, CallOutcome::Failed),
                Some(_) => (CallOutcome::Answered, CallOutcome::Answered),
                None => unanswered(*reason, *by),
            };
            let duration_ms = if *reason == EndReason::Failed { 0 } else { duration_ms };
            let made = Made { started_ms: wall(*began), voice: *voice };
            both(caller, callee, made, |outgoing| (if outgoing { mine } else { theirs }, duration_ms))
        }
        Event::CallBusy { caller, callee, voice, .. }
        | Event::CallUnavailable { caller, callee, voice, .. } => {
            let made = Made { started_ms: wall(happened.at), voice: *voice };
            // The caller found them busy (or not taking calls); to the callee, a call came
            // and did not ring: missed.
            let (mine, _) = unanswered(reason_of(&happened.event), None);
            both(caller, callee, made, |outgoing| (if outgoing { mine } else { CallOutcome::Missed }, 0))
        }
        _ => Vec::new(),
    }
}

/// When a call was made, and how.
#[derive(Debug, Clone, Copy)]
struct Made {
    started_ms: u64,
    voice: bool,
}

/// Why a call that never rang did not.
fn reason_of(event: &Event) -> EndReason {
    if matches!(event, Event::CallUnavailable { .. }) { EndReason::Unavailable } else { EndReason::Busy }
}

/// How an unanswered call went: (for the caller, for the callee).
fn unanswered(reason: EndReason, by: Option<Side>) -> (CallOutcome, CallOutcome) {
    match reason {
        EndReason::Declined => (CallOutcome::Declined, CallOutcome::Declined),
        EndReason::Busy => (CallOutcome::Busy, CallOutcome::Missed),
        // The caller gave up, or left, before an answer: a missed call for the callee.
        EndReason::Cancelled | EndReason::HungUp => (CallOutcome::Cancelled, CallOutcome::Missed),
        EndReason::Disconnected if by == Some(Side::Caller) => (CallOutcome::Cancelled, CallOutcome::Missed),
        EndReason::Unavailable => (CallOutcome::Unavailable, CallOutcome::Missed),
        // (Answered elsewhere is said to a callee's other devices, never of a call; a
        // failed call was taken first.)
        EndReason::Missed | EndReason::Disconnected | EndReason::AnsweredElsewhere | EndReason::Failed => {
            (CallOutcome::Missed, CallOutcome::Missed)
        }
    }
}

/// A row for the caller (outgoing) and one for the callee, for those with accounts;
/// `how(outgoing)` is how it went from that side, and for how long.
fn both(
    caller: &Party,
    callee: &Party,
    made: Made,
    how: impl Fn(bool) -> (CallOutcome, u64),
) -> Vec<CallRecord> {
    let row = |account: &Party, peer: &Party, outgoing: bool| {
        let (outcome, duration_ms) = how(outgoing);
        let call = Call {
            peer: peer.name.as_str().to_owned(),
            peer_verified: peer.verified,
            outgoing,
            started_ms: made.started_ms,
            outcome,
            duration_ms,
            voice: made.voice,
        };
        CallRecord { account: account.name.as_str().to_owned(), call }
    };
    let mut rows = Vec::new();
    if caller.verified {
        rows.push(row(caller, callee, true));
    }
    if callee.verified {
        rows.push(row(callee, caller, false));
    }
    rows
}

/// Writes what is queued, a batch per transaction, until the listener is gone. After
/// `shutdown` it goes on while calls keep ending (the sockets closing end theirs), until
/// [`QUIET`] passes without one, and then ends.
async fn write(store: Store, mut records: mpsc::Receiver<CallRecord>, shutdown: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            received = records.recv_many(&mut batch, BATCH) => received,
            () = shutdown.cancelled() => {
                tokio::time::timeout(QUIET, records.recv_many(&mut batch, BATCH)).await.unwrap_or(0)
            }
        };
        if received == 0 {
            return;
        }
        let taken = std::mem::take(&mut batch);
        let count = taken.len();
        if let Err(e) = store.run(move |db| db.record_calls(&taken)).await {
            tracing::error!("cannot keep {count} call(s) in the call history: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use duet_signal::{RoomName, UserName};

    use super::*;

    fn party(name: &str, verified: bool) -> Party {
        Party { session: 1, name: UserName::new(name).expect("valid"), verified }
    }

    fn ended(reason: EndReason, by: Option<Side>, talked: Option<u64>) -> Happened {
        let began = Instant::now();
        let answered = talked.map(|_| began + Duration::from_secs(4));
        let at = began + Duration::from_secs(4 + talked.unwrap_or(0));
        let (caller, callee) = (party("ann", true), party("bo", true));
        let event = Event::CallEnded {
            call: 1,
            room: RoomName::lobby(),
            caller,
            callee,
            reason,
            by,
            began,
            answered,
            voice: false,
        };
        Happened { at, event }
    }

    fn outcomes(happened: &Happened) -> Vec<(String, bool, CallOutcome, u64)> {
        records(happened, |_| 1_000)
            .into_iter()
            .map(|r| (r.account, r.call.outgoing, r.call.outcome, r.call.duration_ms / 1_000))
            .collect()
    }

    #[test]
    fn every_way_a_call_goes_is_a_row_for_each_account_holder_with_its_duration() {
        use CallOutcome::*;
        let rows = |reason, by, talked| outcomes(&ended(reason, by, talked));
        let as_expected = |caller, callee, secs| {
            vec![("ann".into(), true, caller, secs), ("bo".into(), false, callee, secs)]
        };
        assert_eq!(
            rows(EndReason::HungUp, Some(Side::Callee), Some(95)),
            as_expected(Answered, Answered, 95)
        );
        assert_eq!(rows(EndReason::Declined, Some(Side::Callee), None), as_expected(Declined, Declined, 0));
        assert_eq!(rows(EndReason::Cancelled, Some(Side::Caller), None), as_expected(Cancelled, Missed, 0));
        assert_eq!(rows(EndReason::Missed, None, None), as_expected(Missed, Missed, 0));
        assert_eq!(
            rows(EndReason::Disconnected, Some(Side::Caller), None),
            as_expected(Cancelled, Missed, 0)
        );
        assert_eq!(rows(EndReason::Disconnected, Some(Side::Callee), None), as_expected(Missed, Missed, 0));
        assert_eq!(
            rows(EndReason::Disconnected, Some(Side::Callee), Some(30)),
            as_expected(Answered, Answered, 30)
        );
        assert_eq!(rows(EndReason::Failed, Some(Side::Caller), Some(12)), as_expected(Failed, Failed, 0));
        let at = Instant::now();
        let busy = Happened {
            at,
            event: Event::CallBusy {
                room: RoomName::lobby(),
                caller: party("ann", true),
                callee: party("bo", true),
                voice: false,
            },
        };
        assert_eq!(outcomes(&busy), as_expected(Busy, Missed, 0));
        let quiet = Happened {
            at,
            event: Event::CallUnavailable {
                room: RoomName::lobby(),
                caller: party("ann", true),
                callee: party("bo", true),
                voice: true,
            },
        };
        assert_eq!(outcomes(&quiet), as_expected(Unavailable, Missed, 0));
        assert!(records(&quiet, |_| 0).iter().all(|r| r.call.voice), "a voice call is kept as one");
    }

    #[test]
    fn guests_keep_no_history_and_an_account_sees_whether_its_peer_was_verified() {
        let began = Instant::now();
        let event = Event::CallEnded {
            call: 1,
            room: RoomName::lobby(),
            caller: party("guest", false),
            callee: party("bo", true),
            reason: EndReason::Missed,
            by: None,
            began,
            answered: None,
            voice: false,
        };
        let rows = records(&Happened { at: began + Duration::from_secs(30), event }, |_| 5_000);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].account.as_str(), rows[0].call.peer.as_str(), rows[0].call.peer_verified),
            ("bo", "guest", false)
        );
        assert_eq!(rows[0].call.started_ms, 5_000, "when the call was made");
    }

    #[test]
    fn an_instant_reads_as_the_wall_time_it_was() {
        let now = Instant::now();
        let wall = wall_clock(now, 1_000_000);
        assert_eq!(wall(now), 1_000_000);
        assert_eq!(wall(now - Duration::from_secs(30)), 970_000);
    }
}
