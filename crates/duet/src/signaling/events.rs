//! What the hub says happened ([`duet_signal::Event`]), heard by the shell: every
//! [`Listener`] hears each event in order, under the hub's lock, as it is drained with
//! the frames. The [`Tally`] behind `/metrics` is one; call history and push ringing
//! subscribe the same way ([`crate::signaling::Signaling::listen`]) without touching the
//! hub.
//!
//! ```text
//!  Hub::poll_event ──► Shared::dispatch ──► each Listener::heard (Tally, history, push…)
//!                                      └──► SessionEnded ──► TURN credentials revoked
//!                                                            (after the lock)
//! ```
//!
//! A listener runs with the hub locked: it counts, or hands the event to a task of its
//! own (a bounded channel's `try_send`); it never waits, writes a file or talks to the
//! network there.

use std::sync::atomic::{AtomicU64, Ordering};

use duet_signal::{EndReason, Event, Happened, SessionEnd};

/// Hears what happened in the hub.
pub trait Listener: Send + Sync + std::fmt::Debug {
    /// `happened`, in the order things happened; never blocks.
    fn heard(&self, happened: &Happened);
}

/// Counts of what happened since the process started, for `/metrics`.
#[derive(Debug, Default)]
pub struct Tally {
    sessions_started: AtomicU64,
    sessions_resumed: AtomicU64,
    /// By [`SessionEnd::ALL`]'s order.
    sessions_ended: [AtomicU64; SessionEnd::ALL.len()],
    calls_rung: AtomicU64,
    calls_answered: AtomicU64,
    calls_restored: AtomicU64,
    /// By [`EndReason::ALL`]'s order; `busy` counts calls to someone in a call.
    calls_ended: [AtomicU64; EndReason::ALL.len()],
    service_calls: AtomicU64,
    service_calls_busy: AtomicU64,
}

/// A [`Tally`] read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub sessions_started: u64,
    pub sessions_resumed: u64,
    pub sessions_ended: Vec<(&'static str, u64)>,
    pub calls_rung: u64,
    pub calls_answered: u64,
    pub calls_restored: u64,
    pub calls_ended: Vec<(&'static str, u64)>,
    pub service_calls: u64,
    pub service_calls_busy: u64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Where `of` stands in `all` (the counters are kept in that order).
fn index<T: PartialEq>(all: &[T], of: &T) -> usize {
    all.iter().position(|x| x == of).unwrap_or_default()
}

impl Listener for Tally {
    fn heard(&self, happened: &Happened) {
        match &happened.event {
            Event::SessionStarted { .. } => add(&self.sessions_started),
            Event::SessionResumed { .. } => add(&self.sessions_resumed),
            Event::SessionEnded { why, .. } => {
                add(&self.sessions_ended[index(&SessionEnd::ALL, why)]);
            }
            Event::CallRinging { .. } => add(&self.calls_rung),
            Event::CallAnswered { .. } => add(&self.calls_answered),
            Event::CallRestored { .. } => add(&self.calls_restored),
            Event::CallEnded { reason, .. } => add(&self.calls_ended[index(&EndReason::ALL, reason)]),
            Event::CallBusy { .. } => add(&self.calls_ended[index(&EndReason::ALL, &EndReason::Busy)]),
            Event::CallUnavailable { .. } => {
                add(&self.calls_ended[index(&EndReason::ALL, &EndReason::Unavailable)])
            }
            Event::QuietChanged { .. } => {}
            Event::ServiceCallStarted { .. } => add(&self.service_calls),
            Event::ServiceBusy { .. } => add(&self.service_calls_busy),
            Event::ServiceCallEnded { .. } => {}
        }
    }
}

impl Tally {
    pub fn read(&self) -> EventCounts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        EventCounts {
            sessions_started: get(&self.sessions_started),
            sessions_resumed: get(&self.sessions_resumed),
            sessions_ended: SessionEnd::ALL
                .iter()
                .map(|w| w.as_str())
                .zip(self.sessions_ended.iter().map(get))
                .collect(),
            calls_rung: get(&self.calls_rung),
            calls_answered: get(&self.calls_answered),
            calls_restored: get(&self.calls_restored),
            calls_ended: EndReason::ALL
                .iter()
                .map(|r| r.as_str())
                .zip(self.calls_ended.iter().map(get))
                .collect(),
            service_calls: get(&self.service_calls),
            service_calls_busy: get(&self.service_calls_busy),
        }
    }
}
