//! The `rtc` viewer engine: WHEP viewers on webrtc-rs's sans-I/O core
//! ([`RTCPeerConnection`]), many of them driven by one task.
//!
//! A `webrtc` peer connection (the `pc` engine, [`crate::viewer`]) brings a driver task, a
//! reader task per track and a channel hop per packet; at a few hundred viewers the load
//! generator spent the CPU the node under test should have had. Here:
//!
//! - A viewer's own task does the signalling, which is rare and slow: it binds the viewer's UDP
//!   socket (the SFU tells viewers apart by their address, so each keeps its own), builds the
//!   core, offers with that socket as its one host candidate, POSTs by WHEP, applies the answer
//!   and hands core and socket to a driver. Then it waits for the outcome, leaves (DELETE) and
//!   closes.
//! - A driver task owns many viewers, on a thread of its own (a current-thread runtime whose
//!   reactor has only its sockets: no wake-ups across worker threads, and no signalling work
//!   between it and its packets). A socket's readiness wakes a per-socket waker that queues
//!   the socket's index and wakes the driver; the driver drains each queued socket with
//!   `recvmsg` and copies what it read, datagram by datagram, into one receive buffer they are
//!   split off (an allocation per [`RX_CHUNK`](driver::RX_CHUNK) bytes at most, not per datagram), feeds the core,
//!   counts what it decrypts with the same [`TrackCounter`]
//!   as the `pc` engine, and sends what the core queued. One tick runs every viewer's due
//!   timers. Nothing is awaited per packet or per viewer.
//! - Sockets ask for UDP GRO (`--viewer-gro`, on by default): a node's GSO send of a video frame
//!   then reaches the viewer as one buffer and one wake-up, as the kernel passes it over
//!   loopback unsplit, instead of a delivery and a wake-up per datagram. On loopback the
//!   receivers' kernel work is charged to the sending node; over a network it is not, so a
//!   viewer that splits the frame itself measures the node closer to how it serves real
//!   viewers, and costs the load generator less.
//! - Once DTLS is done, a viewer decrypts its media itself (`--viewer-own-srtp`, on by
//!   default): its core was built over a [`KeyTap`], which noted the SRTP master keys the core
//!   derived, so the viewer keeps SRTP contexts of its own. A track's first packet still goes
//!   through the core (which opens the track and names its codec); after that the track's
//!   packets are decrypted and counted here, and its losses NACKed here ([`crate::nack`]), in
//!   SRTCP of our own under an SSRC the core does not use. The core keeps ICE, DTLS and the
//!   rest of RTCP. Through the core, every packet moved through handler and interceptor
//!   stages (memmove was the load generator's top symbol), which bounded how many viewers one
//!   load generator could hold.
//!
//! Files, by concern:
//! - here: the engine (its driver threads) and a viewer's own task (signalling, hand-over to a
//!   driver, leaving);
//! - [`offer`]: the receive-only core a viewer is built on, and its offer;
//! - [`socket`]: a viewer's UDP socket (GRO reads) and the waker that queues it for its driver;
//! - [`receive`]: one viewer's state on a driver, and its receive path: datagrams into its core
//!   or its own SRTP, counting, its own NACKs;
//! - [`driver`]: the driver loop: readiness, reads, timers, hand-overs.

mod driver;
mod offer;
mod receive;
mod socket;
mod twcc;

use crate::peer::PeerError;
use crate::signal;
use crate::viewer::{SetupError, TrackResult, ViewerClock, ViewerContext, ViewerResult, post_whep};
use cascade_core::media::egress::KeyTap;
use driver::Driver;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::sansio::Protocol;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The drivers, and where viewers bind their sockets.
#[derive(Debug)]
pub struct LightEngine {
    drivers: Vec<mpsc::UnboundedSender<Handover>>,
    bind_ip: IpAddr,
}

impl LightEngine {
    /// Starts `drivers` driver threads (at least one), which run until `ctx.stop`.
    pub fn start(
        ctx: &Arc<ViewerContext>,
        drivers: usize,
        bind_ip: IpAddr,
    ) -> std::io::Result<Self> {
        let drivers = (0..drivers.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::unbounded_channel();
                let driver = Driver::new(ctx.clone());
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                std::thread::Builder::new()
                    .name(format!("rtc-viewers-{i}"))
                    .spawn(move || runtime.block_on(driver.run(rx)))?;
                Ok(tx)
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self { drivers, bind_ip })
    }

    /// Gives a signalled viewer to its driver. A driver that has ended drops it, and the viewer
    /// hears "stopped".
    fn hand_over(&self, handover: Handover) {
        let driver = &self.drivers[handover.clock.id % self.drivers.len()];
        let _ = driver.send(handover);
    }
}

/// A viewer whose offer was answered, on its way to a driver.
struct Handover {
    clock: ViewerClock,
    pc: RTCPeerConnection,
    /// The core's crypto provider, which notes its SRTP keys.
    tap: Arc<KeyTap>,
    /// Registered with the driver's reactor once there.
    socket: std::net::UdpSocket,
    local_addr: SocketAddr,
    done: oneshot::Sender<Outcome>,
}

/// What a driver gives back when a viewer's watch ends: its core and socket, to close, and
/// what it saw.
struct Outcome {
    pc: RTCPeerConnection,
    /// Deregistered from the driver's reactor, which ends with the driver.
    socket: Option<std::net::UdpSocket>,
    watched: Result<Watched, SetupError>,
}

/// What a connected viewer saw.
struct Watched {
    disconnected: bool,
    index_at_connect: (u32, u32),
    join_us: Option<u64>,
    video: Option<TrackResult>,
    audio: Option<TrackResult>,
}

/// Runs viewer `id` against `edge` (base URL) until `ctx.stop`, then leaves (WHEP DELETE,
/// close) and returns what it saw: [`crate::viewer::run_viewer`] on the `rtc` engine.
pub async fn run_light_viewer(
    ctx: Arc<ViewerContext>,
    engine: Arc<LightEngine>,
    id: usize,
    edge: reqwest::Url,
) -> ViewerResult {
    ctx.counters.started.fetch_add(1, Ordering::Relaxed);
    let mut result = ViewerResult::new(id, &edge);
    let mut location = None;
    let signalled = tokio::select! {
        s = signal_viewer(&ctx, engine.bind_ip, &edge, &mut location, &mut result) => s,
        _ = ctx.stop.cancelled() => Err(SetupError::Stopped),
    };
    let (closing, error) = match signalled {
        Ok(s) => {
            let (done, outcome) = oneshot::channel();
            engine.hand_over(Handover {
                clock: ViewerClock::new(id, s.post_start_ns),
                pc: s.pc,
                tap: s.tap,
                socket: s.socket,
                local_addr: s.local_addr,
                done,
            });
            match outcome.await {
                Ok(outcome) => {
                    let error = match outcome.watched {
                        Ok(w) => {
                            result.connected = true;
                            result.disconnected = w.disconnected;
                            result.index_at_connect = w.index_at_connect;
                            result.join_us = w.join_us;
                            result.video = w.video;
                            result.audio = w.audio;
                            None
                        }
                        Err(e) => Some(e),
                    };
                    (Some((outcome.pc, outcome.socket)), error)
                }
                Err(_) => (None, Some(SetupError::Stopped)),
            }
        }
        Err(e) => (None, Some(e)),
    };
    if let Some(e) = error {
        ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
        result.error = Some(e.kind());
        result.error_detail = Some(e.detail());
    }
    if let Some(location) = location {
        let _ = signal::delete(&ctx.client, &location).await;
    }
    if let Some((mut pc, socket)) = closing {
        // DTLS close_notify, best effort, as the `pc` engine's close sends it.
        let _ = pc.close();
        while let Some(out) = pc.poll_write() {
            if let Some(socket) = &socket {
                let _ = socket.send_to(&out.message, out.transport.peer_addr);
            }
        }
    }
    result
}

/// A viewer after signalling: the core has the edge's answer.
struct Signalled {
    pc: RTCPeerConnection,
    tap: Arc<KeyTap>,
    socket: std::net::UdpSocket,
    local_addr: SocketAddr,
    post_start_ns: u64,
}

/// Binds the viewer's socket, offers, POSTs to the edge's WHEP endpoint and applies the answer.
/// `location` is set as soon as the edge accepted.
async fn signal_viewer(
    ctx: &ViewerContext,
    bind_ip: IpAddr,
    edge: &reqwest::Url,
    location: &mut Option<reqwest::Url>,
    result: &mut ViewerResult,
) -> Result<Signalled, SetupError> {
    let socket =
        socket::bind(bind_ip, ctx.gro).map_err(|e| SetupError::Peer(PeerError::Socket(e)))?;
    let local_addr = socket
        .local_addr()
        .map_err(|e| SetupError::Peer(PeerError::Socket(e)))?;
    let (mut pc, offer, tap) = offer::offer(local_addr, ctx.ice_check).map_err(SetupError::Peer)?;
    let (answer, post_start_ns) = post_whep(ctx, edge, &offer, location, result).await?;
    let answer = RTCSessionDescription::answer(answer)
        .map_err(|e| SetupError::Peer(PeerError::webrtc("parsing the SDP answer")(e)))?;
    pc.set_remote_description(Instant::now(), answer)
        .map_err(|e| SetupError::Peer(PeerError::webrtc("set_remote_description")(e)))?;
    Ok(Signalled {
        pc,
        tap,
        socket,
        local_addr,
        post_start_ns,
    })
}
