//! The UDP listener: every datagram is one STUN message or one ChannelData frame, read
//! in batches.

use std::sync::Arc;

use super::Shared;

pub(super) async fn serve(shared: Arc<Shared>) {
    let udp = Arc::clone(&shared.udp);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            // An error is an ICMP port unreachable from an earlier send: keep reading.
            _ = udp.recv_batch(|batch, n| shared.from_udp_clients(batch, n)) => {}
        }
    }
}
