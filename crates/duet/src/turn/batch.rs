//! Batched UDP for the relay's hot path.
//!
//! ```text
//!  socket ──recvmmsg (32 at a time; GRO may pack a run of one sender's datagrams
//!          into one buffer, split again by its stride)──► Batch ──► server, one lock
//!  Sends ◄── every datagram to send, runs of one socket → one address packed together
//!    └──► one sendmsg per run (UDP GSO: the kernel cuts it into the datagrams again)
//! ```
//!
//! Writes never wait: a full send buffer loses that datagram, as UDP may. Public for the
//! TURN benchmark, whose zero-protocol relay runs on the same batched I/O.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::ops::Range;
use std::sync::Arc;

use duet_turn::{HEADROOM, TAILROOM};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

use super::MAX_DATAGRAM;

/// Datagrams read by one system call.
pub const BATCH: usize = quinn_udp::BATCH_SIZE;

/// The most bytes one segmented write carries (the kernel's limit is 64 KiB per send).
const MAX_RUN_BYTES: usize = 65_000;

/// A non-blocking UDP socket read in batches and written in runs.
#[derive(Debug)]
pub struct BatchSocket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
}

impl BatchSocket {
    pub fn new(socket: StdUdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        let io = tokio::net::UdpSocket::from_std(socket)?;
        Ok(Self { io, state })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Waits until datagrams arrive, then reads as many as fit into this thread's batch
    /// and hands it to `handle`. The batch is lent for the call only: nothing in it
    /// survives an `.await`, so one batch per thread serves every socket.
    pub async fn recv_batch<R>(&self, handle: impl FnOnce(&mut Batch, usize) -> R) -> io::Result<R> {
        let mut handle = Some(handle);
        loop {
            self.io.readable().await?;
            let read = BATCHES.with_borrow_mut(|batch| {
                let batch = batch.get_or_insert_with(Batch::new);
                let mut got = None;
                let result = self.io.try_io(Interest::READABLE, || {
                    let n = batch.received.read(&self.state, &self.io)?;
                    got = Some(n);
                    // A batch that is not full emptied the socket: its readiness is
                    // cleared now rather than by one more read that finds nothing. A
                    // datagram arriving meanwhile raises it again (tokio clears only
                    // the readiness it saw).
                    if n < BATCH { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
                });
                match (got, result) {
                    (Some(n), _) => Some(Ok(handle.take().map(|h| h(batch, n)))),
                    (None, Err(e)) if e.kind() != io::ErrorKind::WouldBlock => Some(Err(e)),
                    (None, _) => None,
                }
            });
            match read {
                Some(Ok(Some(done))) => return Ok(done),
                Some(Err(e)) => return Err(e),
                Some(Ok(None)) | None => continue,
            }
        }
    }

    /// Sends one datagram, or `data` cut into datagrams of `segment` bytes (the last may
    /// be shorter). A full send buffer or an unreachable address loses them: the
    /// endpoints' own retransmission covers that, as it covers any loss on the way.
    pub fn send(&self, to: SocketAddr, data: &[u8], segment: Option<usize>) {
        let transmit =
            Transmit { destination: to, ecn: None, contents: data, segment_size: segment, src_ip: None };
        match self.state.try_send((&self.io).into(), &transmit) {
            Ok(()) => {}
            // The system refused segmentation (and has turned it off): one by one.
            Err(_)
                if let Some(size) = segment
                    && self.state.max_gso_segments() == 1 =>
            {
                for datagram in data.chunks(size.max(1)) {
                    self.send(to, datagram, None);
                }
            }
            Err(e) => tracing::trace!(%to, "a UDP send failed: {e}"),
        }
    }

    /// How many datagrams one segmented write may carry (1 where the system has no GSO).
    fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }
}

thread_local! {
    /// Each runtime thread's receive batch, made on first use.
    static BATCHES: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// One thread's datagrams just read, and those to send in answer.
#[derive(Debug)]
pub struct Batch {
    pub received: Received,
    pub sends: Sends,
}

impl Batch {
    fn new() -> Self {
        let received = Received {
            buffers: vec![0; SLOT * BATCH],
            meta: [RecvMeta::default(); BATCH],
            scratch: vec![0; SLOT],
        };
        Self { received, sends: Sends::default() }
    }
}

/// Receive buffers with the headroom the server writes headers into, and their metadata.
#[derive(Debug)]
pub struct Received {
    buffers: Vec<u8>,
    meta: [RecvMeta; BATCH],
    /// Where a datagram that shares its buffer with others (GRO) is copied to be framed.
    scratch: Vec<u8>,
}

/// One buffer: headroom, the largest datagram (or a GRO run of them), room for padding.
const SLOT: usize = HEADROOM + MAX_DATAGRAM + TAILROOM;

impl Received {
    fn read(&mut self, state: &UdpSocketState, socket: &tokio::net::UdpSocket) -> io::Result<usize> {
        let mut slots = self.buffers.chunks_exact_mut(SLOT);
        let mut slices: [IoSliceMut<'_>; BATCH] = std::array::from_fn(|_| {
            let slot = slots.next().expect("BATCH slots");
            IoSliceMut::new(&mut slot[HEADROOM..HEADROOM + MAX_DATAGRAM])
        });
        state.recv(socket.into(), &mut slices, &mut self.meta)
    }

    /// Calls `each` with every datagram of the first `n` buffers, in order: its sender,
    /// a buffer it sits in with [`HEADROOM`] before and [`TAILROOM`] after, and its range
    /// there.
    pub fn for_each(&mut self, n: usize, mut each: impl FnMut(SocketAddr, &mut [u8], Range<usize>)) {
        for (meta, slot) in self.meta.iter().zip(self.buffers.chunks_exact_mut(SLOT)).take(n) {
            let len = meta.len.min(MAX_DATAGRAM);
            let stride = if meta.stride == 0 { len } else { meta.stride.min(len) };
            if len == stride {
                each(meta.addr, slot, HEADROOM..HEADROOM + len);
                continue;
            }
            // Several datagrams back to back: each is copied out so that headers and
            // padding written around it cannot touch its neighbours.
            for datagram in slot[HEADROOM..HEADROOM + len].chunks(stride.max(1)) {
                self.scratch[HEADROOM..HEADROOM + datagram.len()].copy_from_slice(datagram);
                each(meta.addr, &mut self.scratch, HEADROOM..HEADROOM + datagram.len());
            }
        }
    }
}

/// Datagrams waiting to be sent, packed into runs: consecutive datagrams from one socket
/// to one address, all of one size but the last, go out in one segmented write.
#[derive(Debug, Default)]
pub struct Sends {
    runs: Vec<Run>,
    /// Buffers of sent runs, kept for the next ones.
    spare: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Run {
    socket: Arc<BatchSocket>,
    to: SocketAddr,
    data: Vec<u8>,
    segment: usize,
    count: usize,
    /// A shorter datagram ended the run: nothing may follow it in one write.
    closed: bool,
}

impl Sends {
    pub fn push(&mut self, socket: &Arc<BatchSocket>, to: SocketAddr, datagram: &[u8]) {
        // Only the newest run to the same place may grow: appending to an older one
        // would reorder.
        let same = self.runs.iter_mut().rev().find(|r| r.to == to && Arc::ptr_eq(&r.socket, socket));
        if let Some(run) = same
            && !run.closed
            && !datagram.is_empty()
            && datagram.len() <= run.segment
            && run.count < socket.max_segments()
            && run.data.len() + datagram.len() <= MAX_RUN_BYTES
        {
            run.data.extend_from_slice(datagram);
            run.count += 1;
            run.closed = datagram.len() < run.segment;
            return;
        }
        let mut data = self.spare.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(datagram);
        self.runs.push(Run {
            socket: Arc::clone(socket),
            to,
            data,
            segment: datagram.len(),
            count: 1,
            closed: datagram.is_empty(),
        });
    }

    /// Sends every run, in the order they were started.
    pub fn flush(&mut self) {
        for run in self.runs.drain(..) {
            let segment = (run.count > 1).then_some(run.segment);
            run.socket.send(run.to, &run.data, segment);
            self.spare.push(run.data);
        }
        self.spare.truncate(BATCH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket() -> Arc<BatchSocket> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
        let _guard = rt.enter();
        let std = StdUdpSocket::bind("127.0.0.1:0").expect("bind");
        Arc::new(BatchSocket::new(std).expect("batch socket"))
    }

    fn receiver() -> StdUdpSocket {
        let r = StdUdpSocket::bind("127.0.0.1:0").expect("bind");
        r.set_read_timeout(Some(std::time::Duration::from_secs(2))).expect("timeout");
        r
    }

    fn received(r: &StdUdpSocket, count: usize) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 70_000];
        (0..count).map(|_| r.recv(&mut buf).map(|n| buf[..n].to_vec()).expect("a datagram")).collect()
    }

    #[test]
    fn runs_to_one_address_arrive_as_the_datagrams_pushed_in_order() {
        let socket = socket();
        let (a, b) = (receiver(), receiver());
        let (to_a, to_b) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
        let mut sends = Sends::default();
        let datagrams: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; if i == 9 { 300 } else { 1200 }]).collect();
        for (i, d) in datagrams.iter().enumerate() {
            sends.push(&socket, to_a, d);
            if i % 3 == 0 {
                sends.push(&socket, to_b, &[i as u8; 7]);
            }
        }
        sends.push(&socket, to_a, &[42; 1200]); // after a short one: a new run
        assert_eq!(sends.runs.len(), 3, "one run per address, and one after the short datagram");
        sends.flush();
        let mut expected = datagrams.clone();
        expected.push(vec![42; 1200]);
        assert_eq!(received(&a, 11), expected);
        assert_eq!(received(&b, 4), (0..10).step_by(3).map(|i| vec![i as u8; 7]).collect::<Vec<_>>());
    }

    #[test]
    fn a_datagram_larger_than_the_run_starts_a_new_one() {
        let socket = socket();
        let r = receiver();
        let to = r.local_addr().expect("bound");
        let mut sends = Sends::default();
        for len in [100usize, 100, 200, 200, 0, 5] {
            sends.push(&socket, to, &vec![len as u8; len]);
        }
        sends.flush();
        let lens: Vec<usize> = received(&r, 6).iter().map(Vec::len).collect();
        assert_eq!(lens, [100, 100, 200, 200, 0, 5]);
    }
}
