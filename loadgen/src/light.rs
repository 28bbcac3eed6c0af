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
//!   split off (an allocation per [`RX_CHUNK`] bytes at most, not per datagram), feeds the core,
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

use crate::marker::{self, now_ns};
use crate::nack::{Nacks, rtp_parts, rtp_ssrc};
use crate::peer::PeerError;
use crate::signal;
use crate::viewer::{
    CONNECT_TIMEOUT, SetupError, TrackCounter, TrackResult, ViewerClock, ViewerContext,
    ViewerResult, whep_url,
};
use bytes::BytesMut;
use cascade_core::media::egress::KeyTap;
use rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder, Registry, Slot};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::marshal::Marshal;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, oneshot};

/// How often a driver runs its viewers' due timers. The core's timers (ICE checks and
/// keepalives, DTLS retransmissions, RTCP reports, NACK) are tens of milliseconds and up.
const TICK: Duration = Duration::from_millis(5);
/// Reads (a datagram, or a GRO batch of them) from one socket before the driver turns to the
/// next (fairness).
const SOCKET_BATCH: usize = 32;
/// The receive buffer datagrams are copied into and split off. When it runs low it is reused in
/// place if the core has dropped every datagram split off it, and allocated anew otherwise.
const RX_CHUNK: usize = 64 * 1024;
/// Room left in the receive buffer before each datagram: more than any datagram an SFU sends.
const MAX_DATAGRAM: usize = 4096;
/// The most one read returns: a whole GRO batch (one GSO send of the node).
const MAX_READ: usize = 64 * 1024;

/// A viewer's socket receive buffer (the kernel doubles it for its bookkeeping; capped by
/// `net.core.rmem_max`). A joining viewer is sent the cached keyframe and everything after it
/// at once, up to a GOP (hundreds of datagrams); the default buffer holds about 90. A `pc`
/// engine viewer survives that burst in its 256-packet channels per track; a light viewer reads
/// straight from its socket, so the socket holds the burst while the driver serves the others.
const SOCKET_RCVBUF: usize = 1024 * 1024;

/// The same ICE timeouts as the nodes' peer connections (`cascade_core::rtc::pc`): a dead edge is
/// noticed within seconds, as by the `pc` engine's viewers.
const ICE_DISCONNECTED: Duration = Duration::from_secs(4);
const ICE_FAILED: Duration = Duration::from_secs(8);
const ICE_KEEPALIVE: Duration = Duration::from_secs(2);

/// How often a viewer that decrypts its own media looks for losses to NACK.
const NACK_EVERY: Duration = Duration::from_millis(20);
/// The SSRC a viewer's own NACKs are sent from: not the core's (SRTCP numbers its packets per
/// SSRC, and the core numbers its own). A receive-only viewer's SSRC names nothing else.
const OWN_RTCP_SSRC: u32 = 0x4e41_434b;

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
    let socket = bind(bind_ip, ctx.gro).map_err(|e| SetupError::Peer(PeerError::Socket(e)))?;
    let local_addr = socket
        .local_addr()
        .map_err(|e| SetupError::Peer(PeerError::Socket(e)))?;
    let (mut pc, offer, tap) = offer(local_addr).map_err(SetupError::Peer)?;
    let url = whep_url(ctx, edge)?;
    let post_start_ns = now_ns();
    let accepted = signal::post_offer(&ctx.client, url, &offer)
        .await
        .map_err(SetupError::Signal)?;
    result.redirects = accepted.redirects;
    *location = Some(accepted.location);
    let answer = RTCSessionDescription::answer(accepted.answer)
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

/// A viewer's socket, non-blocking, not yet registered with a reactor; with UDP GRO when `gro`
/// (and the kernel has it: without, datagrams simply arrive one by one).
fn bind(ip: IpAddr, gro: bool) -> std::io::Result<std::net::UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    setsockopt(&socket, sockopt::RcvBuf, &SOCKET_RCVBUF).map_err(std::io::Error::from)?;
    if gro && let Err(e) = setsockopt(&socket, sockopt::UdpGroSegment, &true) {
        log::debug!("UDP GRO not available: {e}");
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// One read of a (GRO) socket into `buf`: the bytes read, the size of each datagram in them
/// (the last may be shorter; all of it when the kernel did not coalesce), and the sender.
fn recv_batch(
    socket: &UdpSocket,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> std::io::Result<(usize, usize, SocketAddr)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd;
    socket.try_io(tokio::io::Interest::READABLE, || {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut *cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(std::io::Error::from)?;
        let len = msg.bytes;
        let mut stride = len;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::UdpGroSegments(size) = c
                && size > 0
            {
                stride = size as usize;
            }
        }
        let from = msg
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                    })
            })
            .ok_or_else(|| std::io::Error::other("datagram without a sender address"))?;
        Ok((len, stride.max(1), from))
    })
}

/// A receive-only core (video and audio) whose one ICE candidate is `local`, and its offer: WHEP
/// without trickle, so the candidate is in the SDP. The core derives its SRTP keys through the
/// returned [`KeyTap`], and offers only the profiles the tap tells apart.
fn offer(local: SocketAddr) -> Result<(RTCPeerConnection, String, Arc<KeyTap>), PeerError> {
    let tap = KeyTap::new().map_err(|e| {
        PeerError::Build(cascade_core::Error::Internal(format!(
            "crypto provider: {e}"
        )))
    })?;
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_default_codecs()
        .map_err(PeerError::webrtc("registering codecs"))?;
    let registry = receiver_interceptors(&mut media_engine)
        .map_err(PeerError::webrtc("registering interceptors"))?;
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED),
            Some(ICE_FAILED),
            Some(ICE_KEEPALIVE),
        )
        // As the nodes', and browsers': a joining viewer gets its group of pictures in a burst.
        .with_srtp_replay_protection_window(cascade_core::rtc::pc::SRTP_REPLAY_WINDOW)
        .with_srtp_protection_profiles(cascade_core::media::egress::PROFILES.to_vec())
        .with_crypto_provider(tap.clone())
        .build();
    let now = Instant::now();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(PeerError::webrtc("building the peer connection"))?;
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .map_err(PeerError::webrtc("add_transceiver"))?;
    }
    let candidate = cascade_core::rtc::pc::host_candidate(local)
        .map_err(PeerError::webrtc("host candidate"))?;
    pc.add_local_candidate(candidate)
        .map_err(PeerError::webrtc("add_local_candidate"))?;
    // An empty candidate ends gathering.
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(PeerError::webrtc("add_local_candidate"))?;
    let offer = pc
        .create_offer(None)
        .map_err(PeerError::webrtc("create_offer"))?;
    pc.set_local_description(now, offer)
        .map_err(PeerError::webrtc("set_local_description"))?;
    let sdp = pc
        .local_description()
        .map(|d| d.sdp)
        .ok_or(PeerError::NoLocalDescription)?;
    Ok((pc, sdp, tap))
}

/// What a `pc` engine viewer gets from `register_default_interceptors`, less what only a
/// sender uses: the same NACKs, receiver reports and TWCC feedback on the wire, the same SDP
/// (feedback types and header extensions). The NACK responder and the sender reports have
/// nothing to do on a receive-only peer, but every packet would still pass through their queues.
fn receiver_interceptors(
    media_engine: &mut MediaEngine,
) -> Result<Registry, rtc::shared::error::Error> {
    cascade_core::rtc::pc::register_nack_feedback(media_engine);
    configure_simulcast_extension_headers(media_engine)?;
    let registry = Registry::new()
        // A lost packet is NACKed at most three times (as the nodes do, `cascade_core::rtc::pc`):
        // unbounded, one loss was re-requested every 100 ms, a storm under load.
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(3)
                .build(),
        )
        .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
    configure_twcc_receiver_only(registry, media_engine)
}

/// Sockets that became readable, by viewer index, and the wake-up for the driver.
#[derive(Default)]
struct ReadyQueue {
    indexes: Mutex<Vec<usize>>,
    notify: Notify,
}

/// The waker a viewer's socket readiness is registered with: queues the viewer once until the
/// driver takes it.
struct SocketWaker {
    index: usize,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl Wake for SocketWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue
                .indexes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.index);
            self.queue.notify.notify_one();
        }
    }
}

/// One viewer on a driver.
struct LightViewer {
    clock: ViewerClock,
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local_addr: SocketAddr,
    waker: Waker,
    wake: Arc<SocketWaker>,
    tap: Arc<KeyTap>,
    /// The viewer's own SRTP contexts, once DTLS is done (`--viewer-own-srtp`).
    own: Option<OwnSrtp>,
    /// When the viewer next looks for losses to NACK (its own media only).
    next_nack: Instant,
    /// The core was given a datagram since it was last flushed.
    fed_core: bool,
    /// Tracks (video and audio: at most two, compared per packet).
    tracks: Vec<LightTrack>,
    /// The video track's SSRC once it opened, and video datagrams seen since (`--viewer-loss`).
    video_ssrc: Option<u32>,
    video_in: u64,
    /// The core's next timer.
    deadline: Option<Instant>,
    handed_at: Instant,
    connected: bool,
    disconnected: bool,
    index_at_connect: (u32, u32),
    /// Set when the viewer failed before connecting: the driver ends it.
    failure: Option<SetupError>,
    done: oneshot::Sender<Outcome>,
}

/// One track a viewer receives.
struct LightTrack {
    /// The core's track id.
    id: String,
    ssrc: u32,
    counter: TrackCounter,
    /// Losses being NACKed (by the viewer itself, when it decrypts its own media).
    nacks: Nacks,
}

/// A viewer's own SRTP: the remote context decrypts the edge's media, the local one protects
/// our NACKs.
struct OwnSrtp {
    remote: rtc::srtp::context::Context,
    local: rtc::srtp::context::Context,
    /// Where media comes from: where NACKs go.
    peer: Option<SocketAddr>,
}

impl OwnSrtp {
    /// From the keys the core derived (taken from the tap, which forgets them).
    fn new(tap: &KeyTap) -> Result<Self, cascade_core::media::egress::EgressError> {
        let (sending, receiving) = tap.take_both_keys()?;
        Ok(Self {
            // No replay window: a duplicate is counted as one by the track's sequence tracker
            // (the core's context refuses it unseen), and shifting a 1024-packet window per
            // packet was a visible share of the load generator's time.
            remote: receiving.context(None)?,
            local: sending.context(None)?,
            peer: None,
        })
    }
}

impl LightViewer {
    /// Whether to drop this arriving datagram (`--viewer-loss`): SRTP of the video track, and
    /// its turn by `loss`, so drops are evenly spaced (the RTP header and its SSRC are clear).
    fn drops(&mut self, datagram: &[u8], loss: f64) -> bool {
        let Some(video) = self.video_ssrc else {
            return false;
        };
        if rtp_ssrc(datagram) != Some(video) {
            return false;
        }
        let n = self.video_in as f64;
        self.video_in += 1;
        ((n + 1.0) * loss).floor() > (n * loss).floor()
    }

    /// Feeds one datagram that arrived at `at`; returns the RTP packets it yielded.
    fn read(
        &mut self,
        ctx: &ViewerContext,
        datagram: BytesMut,
        from: SocketAddr,
        at: Instant,
    ) -> u64 {
        if let Some(counted) = self.read_own(ctx, &datagram, from, at) {
            return counted;
        }
        self.fed_core = true;
        let read = self.pc.handle_read(TaggedBytesMut {
            now: at,
            transport: TransportContext {
                local_addr: self.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: datagram,
        });
        if let Err(e) = read {
            log::debug!("viewer {}: handle_read: {e}", self.clock.id);
        }
        self.drain_reads(ctx, marker::ns_at(at))
    }

    /// Decrypts and counts an RTP packet of an open track with the viewer's own SRTP context;
    /// `None` when the datagram is for the core (no own context yet, not RTP, a track the core
    /// has not opened). A packet SRTP refuses (a replay, a bad tag) is dropped, as the core
    /// would.
    fn read_own(
        &mut self,
        ctx: &ViewerContext,
        datagram: &[u8],
        from: SocketAddr,
        at: Instant,
    ) -> Option<u64> {
        let own = self.own.as_mut()?;
        let ssrc = rtp_ssrc(datagram)?;
        let track = self.tracks.iter_mut().find(|t| t.ssrc == ssrc)?;
        own.peer = Some(from);
        let plain = match own.remote.decrypt_rtp(datagram) {
            Ok(plain) => plain,
            Err(e) => {
                log::trace!("viewer {}: SRTP refused a packet: {e}", self.clock.id);
                return Some(0);
            }
        };
        let Some((_, seq, payload)) = rtp_parts(&plain) else {
            return Some(0);
        };
        track
            .counter
            .packet(ctx, &self.clock, marker::ns_at(at), seq, payload);
        Some(1)
    }

    /// Sends NACKs for what its own media lost (nothing while the core decrypts). `seqs` is
    /// scratch.
    fn nack(
        &mut self,
        ctx: &ViewerContext,
        now: Instant,
        seqs: &mut Vec<u16>,
        stats: &mut DriverStats,
    ) {
        let Some(own) = self.own.as_mut() else {
            return;
        };
        let Some(peer) = own.peer else {
            return;
        };
        for track in &mut self.tracks {
            seqs.clear();
            track.nacks.due(track.counter.seq(), now, seqs);
            if seqs.is_empty() {
                continue;
            }
            let nack = TransportLayerNack {
                sender_ssrc: OWN_RTCP_SSRC,
                media_ssrc: track.ssrc,
                nacks: nack_pairs_from_sequence_numbers(seqs),
            };
            let sent = nack
                .marshal()
                .ok()
                .and_then(|plain| own.local.encrypt_rtcp(&plain).ok())
                .is_some_and(|datagram| self.socket.try_send_to(&datagram, peer).is_ok());
            if sent {
                stats.nacks_out += 1;
                ctx.counters.nacks_sent.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.send_errors += 1;
            }
        }
    }

    /// Counts what the core decrypted, as arrived at `now_ns`; returns the packets counted.
    fn drain_reads(&mut self, ctx: &ViewerContext, now_ns: u64) -> u64 {
        let mut counted = 0;
        while let Some(message) = self.pc.poll_read() {
            let RTCMessage::RtpPacket(track_id, packet) = message.message else {
                continue;
            };
            // A track's first packet comes with its OnOpen event.
            let track = match self.track(&track_id) {
                Some(i) => i,
                None => {
                    self.handle_events(ctx);
                    match self.track(&track_id) {
                        Some(i) => i,
                        None => continue,
                    }
                }
            };
            counted += 1;
            self.tracks[track].counter.packet(
                ctx,
                &self.clock,
                now_ns,
                packet.header.sequence_number,
                &packet.payload,
            );
        }
        counted
    }

    fn track(&self, track_id: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == track_id)
    }

    fn handle_events(&mut self, ctx: &ViewerContext) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.state_changed(ctx, state);
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.open_track(init);
                }
                _ => {}
            }
        }
    }

    fn state_changed(&mut self, ctx: &ViewerContext, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected if !self.connected => {
                self.connected = true;
                if ctx.own_srtp {
                    // DTLS is done, so the core has derived its keys.
                    match OwnSrtp::new(&self.tap) {
                        Ok(own) => self.own = Some(own),
                        Err(e) => log::warn!(
                            "viewer {}: no SRTP keys of its own ({e}); its core decrypts",
                            self.clock.id
                        ),
                    }
                }
                ctx.counters.connected.fetch_add(1, Ordering::Relaxed);
                self.index_at_connect = (
                    ctx.publisher.video_next.load(Ordering::Relaxed),
                    ctx.publisher.audio_next.load(Ordering::Relaxed),
                );
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                if self.connected {
                    if !self.disconnected {
                        self.disconnected = true;
                        ctx.counters.disconnected.fetch_add(1, Ordering::Relaxed);
                    }
                } else if self.failure.is_none() {
                    let why = if state == RTCPeerConnectionState::Failed {
                        "failed"
                    } else {
                        "closed"
                    };
                    self.failure = Some(SetupError::Peer(PeerError::NotConnected(why)));
                }
            }
            _ => {}
        }
    }

    fn open_track(&mut self, init: RTCTrackEventInit) {
        if self.track(&init.track_id).is_some() {
            return;
        }
        let Some(receiver) = self.pc.rtp_receiver(init.receiver_id) else {
            return;
        };
        let track = receiver.track();
        let kind = track.kind();
        if kind == RtpCodecKind::Video {
            self.video_ssrc = Some(init.ssrc);
        }
        let mime = track
            .codec(init.ssrc)
            .map(|c| c.mime_type.clone())
            .unwrap_or_default();
        self.tracks.push(LightTrack {
            id: init.track_id,
            ssrc: init.ssrc,
            counter: TrackCounter::new(kind, &mime),
            nacks: Nacks::new(),
        });
    }

    /// Takes the core's events, counts what it still holds, sends what it queued and notes its
    /// next timer. Returns the RTP packets counted.
    fn flush(&mut self, ctx: &ViewerContext, now: Instant, stats: &mut DriverStats) -> u64 {
        self.fed_core = false;
        self.handle_events(ctx);
        let counted = self.drain_reads(ctx, marker::ns_at(now));
        while let Some(out) = self.pc.poll_write() {
            // A full send buffer drops the datagram (RTCP or a STUN check): as a lossy network
            // would, and the core retries what matters.
            match self
                .socket
                .try_send_to(&out.message, out.transport.peer_addr)
            {
                Ok(_) => stats.datagrams_out += 1,
                Err(_) => stats.send_errors += 1,
            }
        }
        self.deadline = self.pc.poll_timeout();
        counted
    }

    /// Ends the viewer, handing back what it saw.
    fn finish(mut self, ctx: &ViewerContext) {
        let watched = match self.failure.take() {
            Some(e) => Err(e),
            None if !self.connected => Err(SetupError::Stopped),
            None => {
                let mut video = None;
                let mut audio = None;
                for track in self.tracks.drain(..) {
                    let kind = track.counter.kind();
                    let result = track.counter.finish(ctx, &self.clock);
                    match kind {
                        RtpCodecKind::Video => video = Some(result),
                        _ => audio = Some(result),
                    }
                }
                Ok(Watched {
                    disconnected: self.disconnected,
                    index_at_connect: self.index_at_connect,
                    join_us: self.clock.join_us(),
                    video,
                    audio,
                })
            }
        };
        let _ = self.done.send(Outcome {
            pc: self.pc,
            socket: self.socket.into_std().ok(),
            watched,
        });
    }
}

/// Drives many viewers: their sockets, their cores, their timers.
struct Driver {
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
struct DriverStats {
    viewers: usize,
    datagrams_in: u64,
    datagrams_out: u64,
    send_errors: u64,
    timer_runs: u64,
    wakes: u64,
    /// NACK packets a viewer sent itself (`--viewer-own-srtp`).
    nacks_out: u64,
}

impl Driver {
    fn new(ctx: Arc<ViewerContext>) -> Self {
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

    async fn run(mut self, mut handovers: mpsc::UnboundedReceiver<Handover>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_is_receive_only_with_the_socket_as_its_candidate() {
        let local: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        let (_pc, sdp, _tap) = offer(local).unwrap();
        let media: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(media.len(), 2, "{sdp}");
        assert!(media[0].starts_with("m=video") && media[1].starts_with("m=audio"));
        assert_eq!(sdp.matches("a=recvonly").count(), 2, "{sdp}");
        assert!(
            sdp.lines()
                .any(|l| l.starts_with("a=candidate:") && l.contains("127.0.0.1 40123 typ host")),
            "{sdp}"
        );
        assert!(
            sdp.contains("VP8/90000") && sdp.contains("opus/48000"),
            "{sdp}"
        );
    }

    #[test]
    fn receiver_interceptors_negotiate_what_the_default_ones_do() {
        let negotiated = |default: bool| {
            let mut media_engine = MediaEngine::default();
            media_engine.register_default_codecs().unwrap();
            let registry = if default {
                rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors(
                    Registry::new(),
                    &mut media_engine,
                )
                .unwrap()
            } else {
                receiver_interceptors(&mut media_engine).unwrap()
            };
            let mut pc = RTCPeerConnectionBuilder::new()
                .with_media_engine(media_engine)
                .with_interceptor_registry(registry)
                .build(Instant::now())
                .unwrap();
            for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
                pc.add_transceiver_from_kind(kind, None).unwrap();
            }
            let sdp = pc.create_offer(None).unwrap().sdp;
            // Per media section, in any order (header extensions come out of a hash map).
            let mut lines = Vec::new();
            let mut section = String::new();
            for l in sdp.lines() {
                if l.starts_with("m=") {
                    section = l.to_owned();
                }
                if l.starts_with("a=rtcp-fb") || l.starts_with("a=extmap") {
                    lines.push(format!("{section} | {l}"));
                }
            }
            lines.sort();
            lines
        };
        let default = negotiated(true);
        assert!(default.iter().any(|l| l.contains("transport-cc")));
        assert!(default.iter().any(|l| l.ends_with(" nack pli")));
        assert_eq!(negotiated(false), default);
    }

    #[tokio::test]
    async fn a_readable_socket_queues_its_viewer_once() {
        let queue = Arc::new(ReadyQueue::default());
        let wake = Arc::new(SocketWaker {
            index: 7,
            queued: AtomicBool::new(false),
            queue: queue.clone(),
        });
        let waker = Waker::from(wake.clone());
        let socket =
            UdpSocket::from_std(bind("127.0.0.1".parse().unwrap(), false).unwrap()).unwrap();
        let to = socket.local_addr().unwrap();
        assert!(
            socket
                .poll_recv_ready(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"one", to).unwrap();
        sender.send_to(b"two", to).unwrap();
        tokio::time::timeout(Duration::from_secs(5), queue.notify.notified())
            .await
            .expect("the driver is woken");
        // Woken again before the driver took it: still queued once.
        wake.wake_by_ref();
        assert_eq!(*queue.indexes.lock().unwrap(), vec![7]);

        // The driver drains it into one buffer, each datagram split off without a copy.
        let mut rx = BytesMut::with_capacity(RX_CHUNK);
        let mut got = Vec::new();
        while let Ok((_, from)) = socket.try_recv_buf_from(&mut rx) {
            assert_eq!(from, sender.local_addr().unwrap());
            got.push(rx.split().freeze());
        }
        assert_eq!(got, vec![&b"one"[..], &b"two"[..]]);
        assert!(rx.capacity() >= RX_CHUNK - 6);
    }

    #[tokio::test]
    async fn a_gso_send_arrives_as_one_read_split_into_its_datagrams() {
        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrIn, sendmsg};
        use std::os::fd::AsRawFd;
        let socket =
            UdpSocket::from_std(bind("127.0.0.1".parse().unwrap(), true).unwrap()).unwrap();
        let to = match socket.local_addr().unwrap() {
            SocketAddr::V4(v4) => SockaddrIn::from(v4),
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        };
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Three datagrams of 1000, 1000 and 500 bytes in one GSO send.
        let payload: Vec<u8> = (0..2500u32).map(|i| (i / 1000) as u8).collect();
        let segment = 1000u16;
        sendmsg(
            sender.as_raw_fd(),
            &[std::io::IoSlice::new(&payload)],
            &[ControlMessage::UdpGsoSegments(&segment)],
            MsgFlags::empty(),
            Some(&to),
        )
        .expect("the kernel has UDP GSO");
        let (mut buf, mut cmsg) = (vec![0; MAX_READ], nix::cmsg_space!(i32));
        let (len, stride, from) = loop {
            socket.readable().await.unwrap();
            match recv_batch(&socket, &mut buf, &mut cmsg) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                other => break other.unwrap(),
            }
        };
        assert_eq!(from, sender.local_addr().unwrap());
        let datagrams: Vec<&[u8]> = buf[..len].chunks(stride).collect();
        assert_eq!(
            datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        for (i, d) in datagrams.iter().enumerate() {
            assert!(d.iter().all(|&b| b == i as u8), "datagram {i} intact");
        }
    }
}
