//! The UDP listener: every datagram is one STUN message or one ChannelData frame.

use std::sync::Arc;

use duet_turn::{FiveTuple, Transport};

use super::{MAX_DATAGRAM, Shared};

pub(super) async fn serve(shared: Arc<Shared>) {
    let Ok(server) = shared.udp.local_addr() else { return };
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let (len, client) = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            read = shared.udp.recv_from(&mut buf) => match read {
                Ok(read) => read,
                Err(_) => continue, // ICMP port unreachable from an earlier send
            },
        };
        let from = FiveTuple { client, server, transport: Transport::Udp };
        shared.from_client(from, &buf[..len]).await;
    }
}
