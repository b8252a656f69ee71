//! Which published messages to send again: Redis answers each PUBLISH with how many
//! subscribers heard it, so a message for a node that was between two subscriptions
//! (Redis restarted under it) is known to be unheard, and is sent again until that node
//! subscribes again or [`RETRY_FOR`] has passed. Pure, on the caller's clock.
//!
//! ```text
//!  publish batch ──► heard counts ──► heard ≥ 1: done
//!                                 └─► 0, to one node, younger than RETRY_FOR: again, in order
//!                                 └─► 0, older: lost (the clients it was for resume)
//! ```
//! Beats and goodbyes go to every node and are never sent again: the next beat is due.

use std::time::{Duration, Instant};

use super::wire::NODES_CHANNEL;

/// How long a message nobody heard is sent again: a node resubscribes within a second
/// of Redis coming back; longer than this, the node is as good as dead to the others.
pub const RETRY_FOR: Duration = Duration::from_secs(3);

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub channel: String,
    pub text: String,
    /// When it was first published.
    pub since: Instant,
}

/// What became of a published batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// To publish again, in their order.
    pub again: Vec<Outgoing>,
    /// Given up on.
    pub lost: Vec<Outgoing>,
}

/// Sorts `batch` by what `heard` says (one count per message, in order) at `now`.
pub fn settle(batch: Vec<Outgoing>, heard: &[u64], now: Instant) -> Settled {
    let mut settled = Settled::default();
    for (message, &count) in batch.into_iter().zip(heard.iter().chain(std::iter::repeat(&0))) {
        if count > 0 || message.channel == NODES_CHANNEL {
            continue;
        }
        if now.saturating_duration_since(message.since) < RETRY_FOR {
            settled.again.push(message);
        } else {
            settled.lost.push(message);
        }
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(channel: &str, text: &str, since: Instant) -> Outgoing {
        Outgoing { channel: channel.into(), text: text.into(), since }
    }

    #[test]
    fn unheard_messages_to_a_node_go_again_in_order_until_they_are_too_old() {
        let start = Instant::now();
        let batch = vec![
            message("duet:node:a", "1", start),
            message("duet:node:b", "2", start),
            message(NODES_CHANNEL, "beat", start),
            message("duet:node:a", "3", start),
        ];
        let settled = settle(batch.clone(), &[0, 1, 0, 0], start + Duration::from_millis(500));
        assert_eq!(settled.again, vec![batch[0].clone(), batch[3].clone()], "a beat is never repeated");
        assert!(settled.lost.is_empty());
        let again = settled.again.clone();
        let settled = settle(settled.again, &[0, 0], start + RETRY_FOR);
        assert_eq!(settled, Settled { again: vec![], lost: again });
    }

    #[test]
    fn a_short_answer_counts_the_missing_as_unheard() {
        let now = Instant::now();
        let settled = settle(vec![message("duet:node:a", "1", now)], &[], now);
        assert_eq!(settled.again.len(), 1);
    }
}
