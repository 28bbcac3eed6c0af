//! A driver: one task on a thread of its own that owns many light viewers. Socket readiness
//! queues a viewer; each round the driver reads every queued socket (a batch at most), feeds the
//! viewers, runs their due timers on a tick, takes in newly signalled viewers, and hands back
//! what each saw when it ends.

use super::Handover;
use super::Outcome;
use super::receive::LightViewer;
use super::socket::{MAX_READ, ReadyQueue, SocketWaker, recv_batch};
use crate::peer::PeerError;
use crate::viewer::{CONNECT_TIMEOUT, SetupError, ViewerContext};
use bytes::BytesMut;
use rtc::sansio::Protocol;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How often a driver runs its viewers' due timers. The core's timers (ICE checks and
/// keepalives, DTLS retransmissions, RTCP reports, NACK) are tens of milliseconds and up.
const TICK: Duration = Duration::from_millis(5);
/// Reads (a datagram, or a GRO batch of them) from one socket before the driver turns to the
/// next (fairness).
const SOCKET_BATCH: usize = 32;
/// The receive buffer datagrams are copied into and split off. When it runs low it is reused in
/// place if the core has dropped every datagram split off it, and allocated anew otherwise.
pub(super) const RX_CHUNK: usize = 64 * 1024;
/// Room left in the receive buffer before each datagram: more than any datagram an SFU sends.
const MAX_DATAGRAM: usize = 4096;

/// How often a viewer that decrypts its own media looks for losses to NACK.
const NACK_EVERY: Duration = Duration::from_millis(20);

/// Drives many viewers: their sockets, their cores, their timers.
pub(super) struct Driver {
    ctx: Arc<ViewerContext>,
    /// By index; an ended viewer leaves a hole (indexes are never reused, so a stale wake finds
    /// nothing).
    viewers: Vec<Option<LightViewer>>,
    ready: Arc<ReadyQueue>,
    /// Indexes taken from the ready queue, being served.
    serving: Vec<usize>,
    rx: BytesMut,
    /// One read's bytes (a GRO batch), and its control messages.
    read_buf: Vec<u8>,
    cmsg: Vec<u8>,
    /// Packets counted since the shared counter was last updated.
    packets: u64,
    /// Scratch: sequence numbers to NACK.
    nack_seqs: Vec<u16>,
    stats: DriverStats,
}

/// What a driver did, logged at its end (`LOADGEN_LOG=info`).
#[derive(Debug, Default)]
pub(super) struct DriverStats {
    pub(super) viewers: usize,
    pub(super) datagrams_in: u64,
    pub(super) datagrams_out: u64,
    pub(super) send_errors: u64,
    pub(super) timer_runs: u64,
    pub(super) wakes: u64,
    /// NACK packets a viewer sent itself (`--viewer-own-srtp`).
    pub(super) nacks_out: u64,
}

impl Driver {
    pub(super) fn new(ctx: Arc<ViewerContext>) -> Self {
        Self {
            ctx,
            viewers: Vec::new(),
            ready: Arc::new(ReadyQueue::default()),
            serving: Vec::new(),
            rx: BytesMut::with_capacity(RX_CHUNK),
            read_buf: vec![0; MAX_READ],
            cmsg: nix::cmsg_space!(i32),
            packets: 0,
            nack_seqs: Vec::new(),
            stats: DriverStats::default(),
        }
    }

    pub(super) async fn run(mut self, mut handovers: mpsc::UnboundedReceiver<Handover>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ready = self.ready.clone();
        let stop = self.ctx.stop.clone();
        let mut open = true;
        loop {
            // The tick before the sockets: a busy driver must still run its timers (ICE
            // keepalives, RTCP), or its viewers would be disconnected for its being busy.
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tick.tick() => self.timers(Instant::now()),
                handover = handovers.recv(), if open => match handover {
                    Some(h) => self.add(h),
                    None => open = false,
                },
                _ = ready.notify.notified() => self.stats.wakes += 1,
            }
            self.serve_ready();
            if self.packets > 0 {
                self.ctx
                    .counters
                    .packets
                    .fetch_add(std::mem::take(&mut self.packets), Ordering::Relaxed);
            }
            // Let the runtime poll its reactor (and renew this task's cooperative budget) after
            // every round. A busy driver always has a socket queued again (a batch cut short, or
            // readiness that came in meanwhile), so without this it would never give the
            // reactor a turn: the sockets not yet queued would starve, and once the budget ran
            // out, readiness checks and the tick would stay pending while the loop spun.
            tokio::task::yield_now().await;
        }
        for viewer in self.viewers.drain(..).flatten() {
            viewer.finish(&self.ctx);
        }
        log::info!("rtc viewer driver: {:?}", self.stats);
    }

    fn add(&mut self, h: Handover) {
        let socket = match UdpSocket::from_std(h.socket) {
            Ok(socket) => socket,
            Err(e) => {
                let _ = h.done.send(Outcome {
                    pc: h.pc,
                    socket: None,
                    watched: Err(SetupError::Peer(PeerError::Socket(e))),
                });
                return;
            }
        };
        let index = self.viewers.len();
        let wake = Arc::new(SocketWaker {
            index,
            queued: AtomicBool::new(false),
            queue: self.ready.clone(),
        });
        let waker = Waker::from(wake.clone());
        let mut viewer = LightViewer {
            clock: h.clock,
            pc: h.pc,
            tap: h.tap,
            own: None,
            twcc: None,
            next_nack: Instant::now(),
            fed_core: false,
            socket,
            local_addr: h.local_addr,
            waker,
            wake,
            tracks: Vec::with_capacity(2),
            video_ssrc: None,
            video_in: 0,
            deadline: None,
            handed_at: Instant::now(),
            connected: false,
            disconnected: false,
            index_at_connect: (0, 0),
            failure: None,
            done: h.done,
        };
        // Start ICE: the first checks go out now, not at the next tick.
        let now = Instant::now();
        let _ = viewer.pc.handle_timeout(now);
        self.packets += viewer.flush(&self.ctx, now, &mut self.stats);
        self.stats.viewers += 1;
        // Register for readiness; anything already waiting is served in this round.
        if viewer
            .socket
            .poll_recv_ready(&mut Context::from_waker(&viewer.waker))
            .is_ready()
        {
            viewer.wake.wake_by_ref();
        }
        self.viewers.push(Some(viewer));
    }

    /// Serves every socket that became readable since the last round.
    fn serve_ready(&mut self) {
        debug_assert!(self.serving.is_empty());
        std::mem::swap(
            &mut *self.ready.indexes.lock().unwrap_or_else(|p| p.into_inner()),
            &mut self.serving,
        );
        for i in 0..self.serving.len() {
            let index = self.serving[i];
            self.serve(index);
        }
        self.serving.clear();
    }

    /// Reads one viewer's socket (up to [`SOCKET_BATCH`] datagrams; more are left for the next
    /// round), feeds its core and flushes it.
    fn serve(&mut self, index: usize) {
        let Some(viewer) = self.viewers.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        // Cleared before reading: readiness that arrives meanwhile queues it again.
        viewer.wake.queued.store(false, Ordering::Release);
        let mut reads = 0;
        loop {
            match recv_batch(&viewer.socket, &mut self.read_buf, &mut self.cmsg) {
                Ok((len, stride, from)) => {
                    for bytes in self.read_buf[..len].chunks(stride) {
                        if self.rx.capacity() - self.rx.len() < MAX_DATAGRAM {
                            self.rx.reserve(RX_CHUNK);
                        }
                        self.rx.extend_from_slice(bytes);
                        let datagram = self.rx.split();
                        self.stats.datagrams_in += 1;
                        if self.ctx.loss > 0.0
                            && Instant::now() < self.ctx.loss_until
                            && viewer.drops(&datagram, self.ctx.loss)
                        {
                            self.ctx
                                .counters
                                .induced_drops
                                .fetch_add(1, Ordering::Relaxed);
                        } else {
                            self.packets += viewer.read(&self.ctx, datagram, from, Instant::now());
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Re-registers the waker; ready again means data arrived meanwhile.
                    let mut cx = Context::from_waker(&viewer.waker);
                    if viewer.socket.poll_recv_ready(&mut cx).is_pending() {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    log::debug!("viewer {}: recv: {e}", viewer.clock.id);
                }
            }
            reads += 1;
            if reads == SOCKET_BATCH {
                viewer.wake.wake_by_ref();
                break;
            }
        }
        // Media the viewer decrypted itself left the core idle: nothing to flush.
        if viewer.fed_core {
            self.packets += viewer.flush(&self.ctx, Instant::now(), &mut self.stats);
        }
        if viewer.failure.is_some() {
            self.end(index);
        }
    }

    /// Runs the due timers of every viewer, and ends those that did not connect in time.
    fn timers(&mut self, now: Instant) {
        for index in 0..self.viewers.len() {
            let Some(viewer) = self.viewers[index].as_mut() else {
                continue;
            };
            if !viewer.connected && now.duration_since(viewer.handed_at) > CONNECT_TIMEOUT {
                viewer
                    .failure
                    .get_or_insert(SetupError::Peer(PeerError::NotConnected(
                        "timed out connecting",
                    )));
            } else if viewer.own.is_some() && viewer.next_nack <= now {
                viewer.next_nack = now + NACK_EVERY;
                viewer.nack(&self.ctx, now, &mut self.nack_seqs, &mut self.stats);
            }
            viewer.send_twcc(now, &mut self.stats);
            if viewer.failure.is_none() && viewer.deadline.is_some_and(|d| d <= now) {
                if let Err(e) = viewer.pc.handle_timeout(now) {
                    log::debug!("viewer {}: handle_timeout: {e}", viewer.clock.id);
                }
                self.stats.timer_runs += 1;
                self.packets += viewer.flush(&self.ctx, now, &mut self.stats);
            }
            if viewer.failure.is_some() {
                self.end(index);
            }
        }
    }

    fn end(&mut self, index: usize) {
        if let Some(viewer) = self.viewers[index].take() {
            viewer.finish(&self.ctx);
        }
    }
}
