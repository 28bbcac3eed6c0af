//! The UDP mux: every WHEP viewer of a node on one UDP socket, driven by one task.
//!
//! Why: the `webrtc` crate gives each peer connection its own socket and driver task, and a
//! subscriber hands it each packet with an `await` that crosses into that task. At a few hundred
//! viewers an edge spends its time waking tasks and making one `sendmsg` per packet per viewer
//! (BENCHMARKS.md). Here one task owns the sans-I/O core (`rtc::RTCPeerConnection`) of every
//! viewer, and works in batches:
//!
//! - media: each room track a viewer watches feeds one shared queue once ([`TrackFeed`]), however
//!   many viewers watch it. For each packet and each viewer of its track, [`Leg::forward`]
//!   decides and rewrites, our own SRTP context protects it (`egress`: the viewer's core is
//!   bypassed for media, its keys taken as its DTLS derived them), and the datagram joins the
//!   outbox; the packet joins its feed's history once, for every leg (a NACKed number maps back
//!   to it through the leg's rewriter); the outbox goes out by UDP GSO and `sendmmsg`, up to
//!   [`SEND_BATCH`] messages per system call;
//! - input: datagrams are read until the socket is empty and handed to their viewer: a STUN
//!   request by its ICE username (`ours:theirs`; each viewer gets its own ufrag), anything else
//!   by the remote address it came from (learnt from where the core sends: its ICE-lite agent
//!   answers only checks that authenticate, and sends nothing to the offer's candidates);
//! - timers: ICE checks and consent, DTLS retransmissions and sender reports run from one tick.
//!
//! Negotiation (offer in, answer out) runs in the caller's task on a fresh core, which is then
//! handed to the engine. Relay links between nodes keep a peer connection each: there are few,
//! and they are also what an edge receives on.

use crate::error::{Error, Result};
use crate::media::bwe::Bwe;
use crate::media::egress::{History, KeyTap, Protector, RetransmitBudget, SenderStats, TwccExt};
use crate::media::forward::{Codec, KeyframeCache, Leg};
use crate::media::outbox::Outbox;
use crate::media::room::{KEYFRAME_CACHE_PACKETS, Outgoing, Room, RoomTrack, TrackFeed};
use crate::obs::metrics::Traffic;
use crate::rtc::ice_tcp::{Accepted, IceTcp, Registration, Route};
use crate::rtc::negotiate::{
    NegotiationError, Offer, choose_tracks, new_leg, no_codec_accepted, payload_type,
    rtx_payload_type, sending_track, sent_codec,
};
use crate::rtc::pc::{CoreKind, PcFactory, build_core};
use crate::rtc::transport::{Transport, TransportCell};
use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::RTCConfiguration;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::marshal::MarshalSize;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod engine;
mod sendmmsg;
mod tcp;

use crate::rtc::stun::is_stun;
pub use crate::rtc::stun::stun_local_ufrag;
use engine::Engine;
use sendmmsg::register_readable;
use tcp::TcpConns;

/// The shared media queue: every room track the mux's viewers watch feeds it.
const QUEUE: usize = 16 * 1024;
/// Media packets taken from the queue per wake-up at most.
const BATCH: usize = 128;
/// Datagrams per `sendmmsg` call at most.
pub const SEND_BATCH: usize = 64;
/// Datagrams read per wake-up at most, so media is not held up by a flood.
const RECV_BATCH: usize = 256;
/// One GSO send carries at most this many bytes, and this many datagrams.
const GSO_BYTES: usize = 60_000;
const MAX_SEGMENTS: usize = 64;
/// How long a flush waits for room once when the socket's send buffer is full.
const SEND_BUFFER_WAIT: Duration = Duration::from_millis(1);
/// How often the cores' timers are checked.
const TICK: Duration = Duration::from_millis(5);
/// Every this many ticks, every core is asked for its next timeout again (writing media can
/// start timers, e.g. sender reports).
const FULL_SWEEP_TICKS: u32 = 50;
/// How long the rest of a video frame is waited for once its first packets are in (see
/// [`rest_of_frame`]): its packets arrive back to back, so this bounds a frame whose
/// last packet was lost upstream.
const FRAME_WAIT: Duration = Duration::from_millis(2);
/// How often each viewer gets a sender report per track (webrtc-rs's own interval).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a new viewer may take to connect.
/// Packets of a joining viewer's catch-up (the cached group of pictures) sent per tick at most:
/// 20 times the reference stream's rate, so a two-second group of pictures is caught up in about
/// 100 ms without one burst of hundreds of datagrams overflowing the viewer's receive buffer.
const CATCH_UP_PER_TICK: usize = 32;
/// Remote addresses routed to one viewer at most (see `engine::route`): a browser uses one or
/// two (one per local candidate of it that reaches us). The viewer's ICE agent learns at most
/// as many peer-reflexive candidates (`rtc-ice` patch).
const MAX_VIEWER_ADDRS: usize = 16;
/// Socket buffers: a burst of a keyframe to hundreds of viewers must fit.
const SOCKET_BUFFER: usize = 8 << 20;

/// A node's UDP mux: one shard per task, each with its own socket and viewers.
#[derive(Debug)]
pub struct Mux {
    shards: Vec<Shard>,
    /// Every shard's mailbox, by index: a viewer's removal goes to all of them (it may have
    /// been handed to another shard than the one it joined on).
    mailboxes: Arc<[mpsc::UnboundedSender<Command>]>,
    /// Negotiations running at once at most (see [`Mux::subscribe`]).
    negotiations: Arc<tokio::sync::Semaphore>,
    /// The node's ICE-TCP port, when viewers may connect over TCP too.
    ice_tcp: Option<Arc<IceTcp>>,
}

/// What negotiating a new viewer's core gives.
struct Negotiated {
    pc: RTCPeerConnection,
    tap: Arc<KeyTap>,
    ufrag: String,
    legs: Vec<MuxLeg>,
    answer: String,
    at: Instant,
    twcc_id: Option<u8>,
}

/// One engine task's mailbox and address.
#[derive(Debug)]
struct Shard {
    /// The address in viewers' ICE candidates (the advertised IP, the socket's port).
    candidate: SocketAddr,
    /// Viewers on it, for placing new ones on the least loaded shard.
    viewers: Arc<AtomicUsize>,
    /// Where the ICE-TCP listener hands the shard its viewers' connections.
    tcp_accepted: mpsc::UnboundedSender<Accepted>,
}

enum Command {
    Add(Box<Viewer>),
    Remove(u64),
    /// Datagrams another shard read that none of its viewers claims: the shards share one
    /// port, and the kernel picks a shard's socket by the sender's address, not by viewer
    /// (`engine::handoff`). With the index of the shard that read them.
    Datagrams(usize, Vec<(SocketAddr, bytes::Bytes)>),
    /// A viewer that connected on another shard whose datagrams arrive at this one's socket.
    Adopt(Box<Viewer>),
}

/// One room track as one viewer receives it.
struct MuxLeg {
    track: Arc<RoomTrack>,
    sender: RTCRtpSenderId,
    /// The track id of the viewer's sender, as the core names it in RTCP it hands us.
    track_id: String,
    forward: Leg,
    /// The viewer's SSRC for this track, and the track's RTP clock rate.
    ssrc: u32,
    clock_rate: u32,
    /// What the sender reports say.
    stats: SenderStats,
    /// For a simulcast track: the group's other layers it may be switched to, and how.
    layers: Option<Box<engine::LegLayers>>,
    /// For a video track without simulcast layers: whether the viewer's link carries it.
    gate: Option<Box<engine::VideoGate>>,
    /// Its video is paused by the gate: the link cannot carry it.
    video_off: bool,
    /// Its retransmission stream (RFC 4588), if the viewer takes one: NACKed packets and the
    /// padding that probes the link go there.
    rtx: Option<engine::Rtx>,
    /// Since when it has waited for a keyframe (`engine::repair::keep_asking`), if it does.
    keyframe_wait: Option<Instant>,
}

struct Viewer {
    id: u64,
    /// ICE, DTLS and RTCP; media goes around it (`egress`).
    pc: RTCPeerConnection,
    /// The core's crypto provider, which saw its SRTP keys derived.
    tap: Arc<KeyTap>,
    /// Our SRTP context for the viewer's media, once DTLS is done.
    protector: Option<Protector>,
    /// Our SRTCP context for what the viewer sends (its feedback), once DTLS is done: its RTCP
    /// is read here, not by its core (`engine::feedback`).
    srtcp: Option<rtc::srtp::context::Context>,
    /// The viewer's SSRCs and the highest cumulative loss its reports gave each (metrics).
    reported_loss: Vec<(u32, u32)>,
    /// Where the core sends what is not STUN (DTLS, SRTCP): the selected candidate pair's
    /// remote end, where media goes too.
    media_to: Option<MediaTo>,
    /// Its ufrag's route on the ICE-TCP port, while it is on the mux.
    _tcp_route: Option<Registration>,
    /// Its ICE-TCP connections (at most `tcp::MAX_PER_VIEWER`).
    tcp_conns: Vec<u64>,
    /// Its TCP connection has more waiting than it takes (`tcp::CONGESTED`): video is paused.
    congested: bool,
    /// How its media travels, set when it connects; its offer's relay candidates tell.
    transport: TransportCell,
    relays: Vec<SocketAddr>,
    next_report: Instant,
    /// NACKed packets this viewer may still have resent.
    retransmit_budget: RetransmitBudget,
    feedback: crate::obs::metrics::Feedback,
    ufrag: String,
    legs: Vec<MuxLeg>,
    traffic: Traffic,
    finished: CancellationToken,
    offered_at: Instant,
    /// Closed if not connected by then (`--connect-timeout`).
    connect_by: Instant,
    connected_at: Option<Instant>,
    /// Cancelled when the viewer connects.
    connected: CancellationToken,
    first_sent: bool,
    /// When the core next wants `handle_timeout`.
    deadline: Option<Instant>,
    /// Remote addresses routed to this viewer (at most [`MAX_VIEWER_ADDRS`]).
    addrs: Vec<SocketAddr>,
    /// Set when the connection failed or closed: removed after the current step.
    gone: bool,
    /// The shard whose socket its latest datagram arrived on (`engine::handoff`).
    arrived_on: Option<usize>,
    /// Cancelled as its removal is sent (DELETE, the room's end, shutdown): a viewer handed to
    /// another shard as its removal was on the way is removed there at once.
    removing: CancellationToken,
    /// Its bandwidth estimate, from its TWCC feedback (and REMB).
    bwe: Bwe,
    /// The id the viewer gave the transport-wide sequence number extension, if it took it.
    twcc_id: Option<u8>,
    /// When its simulcast layers are next reconsidered.
    next_adapt: Instant,
    /// Probing its link for a higher layer (`engine::probe`).
    probing: engine::Probing,
    /// Packets still to send to catch up after joining a running feed (leg, packet, source,
    /// keyframe), paced per tick; live packets queue behind them until it is empty.
    catch_up: VecDeque<(usize, Packet, u32, bool)>,
}

/// Where a viewer's media goes: the remote end of its selected candidate pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaTo {
    Udp(SocketAddr),
    /// A client connected to the ICE-TCP port, by its connection's id in `tcp::TcpConns`.
    Tcp(u64),
}

/// What a shard sends: datagrams for the UDP socket, and framed ones for TCP connections.
struct Out {
    udp: Outbox,
    tcp: TcpConns,
}

impl Out {
    /// Queues the datagram `write` appends for `to`, if it says it wrote one.
    fn push_with(&mut self, to: MediaTo, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        match to {
            MediaTo::Udp(addr) => self.udp.push_with(addr, write),
            MediaTo::Tcp(id) => self.tcp.push_with(id, write),
        }
    }

    /// Queues what viewer `viewer`'s core sends, where it sends it: over TCP only to a
    /// connection of the viewer's own (the core knows no other TCP peer). Returns where it
    /// went, `None` when it went nowhere.
    fn push_core(&mut self, viewer: usize, out: &TaggedBytesMut) -> Option<MediaTo> {
        let to = out.transport.peer_addr;
        if out.transport.transport_protocol == TransportProtocol::TCP {
            let id = self.tcp.conn_of(to, viewer)?;
            self.tcp.push(id, &out.message);
            Some(MediaTo::Tcp(id))
        } else {
            self.udp.push(to, &out.message);
            Some(MediaTo::Udp(to))
        }
    }
}

/// One room track feeding the mux, and the viewers' legs that receive it.
struct Feed {
    /// Held, not read: dropping it detaches the feed from the room track.
    _feed: TrackFeed,
    /// The packets since the track's last keyframe, for viewers that join the feed later.
    cache: KeyframeCache,
    /// The feed's recent packets by source sequence number, as they came (one copy for every
    /// leg): a leg's NACKed number maps back to one through its rewriter
    /// ([`Rewriter::source_of`]), and the copy is rewritten as it was sent.
    history: History,
    video: bool,
    source: Option<u32>,
    traffic: Traffic,
    /// The room track (by address) it carries.
    track: usize,
    /// (viewer key, leg index): legs on this track, and legs waiting for its keyframe to
    /// switch simulcast layers to it.
    legs: Vec<(usize, usize)>,
}

impl Mux {
    /// Binds the mux's sockets, one per shard, all on `bind_ip:port` (port 0 lets the OS pick
    /// one), and starts their engines, which run until `shutdown`.
    ///
    /// Several shards share the port (`SO_REUSEPORT`): the kernel gives each sender's datagrams
    /// to one shard's socket, picked by the sender's address, and the shards hand each other
    /// what belongs to the other's viewers (`engine::handoff`). A port someone already holds is
    /// refused first, so that a second process cannot join the group and split its traffic.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(
        media: &crate::rtc::pc::MediaSettings,
        settings: crate::rtc::pc::MuxSettings,
        counters: crate::obs::metrics::MuxCounters,
        ice_tcp: Option<Arc<IceTcp>>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let n = usize::from(settings.shards.max(1));
        let (mailboxes, inboxes): (Vec<_>, Vec<_>) =
            (0..n).map(|_| mpsc::unbounded_channel()).unzip();
        let mailboxes: Arc<[mpsc::UnboundedSender<Command>]> = mailboxes.into();
        let shared = n > 1;
        if shared && settings.port != 0 {
            drop(std::net::UdpSocket::bind(SocketAddr::new(
                media.bind_ip,
                settings.port,
            ))?);
        }
        let mut port = settings.port;
        let mut shards = Vec::with_capacity(n);
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let shard = Shard::start(
                media,
                port,
                shared.then(|| engine::Sharing::new(index, mailboxes.clone(), &counters)),
                inbox,
                counters.send_errors.clone(),
                ice_tcp.as_ref().map(|t| t.candidate()),
                shutdown.clone(),
            )?;
            port = shard.candidate.port();
            shards.push(shard);
        }
        // Half the cores: a flash crowd's negotiations leave the other half to the engines and
        // the rooms' ingest.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Arc::new(Self {
            shards,
            mailboxes,
            negotiations: Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1))),
            ice_tcp,
        }))
    }

    /// The addresses viewers send media to, one per shard.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        self.shards.iter().map(|s| s.candidate).collect()
    }

    /// Each shard's candidate address and how many viewers it serves now.
    pub fn shard_loads(&self) -> Vec<(SocketAddr, usize)> {
        self.shards
            .iter()
            .map(|s| (s.candidate, s.viewers.load(Ordering::Relaxed)))
            .collect()
    }

    /// A WHEP viewer on the mux: answers `offer` with `room`'s tracks and hands the viewer to the
    /// engine. It runs until it leaves, `cancel` fires, the room ends, or the factory's connect
    /// timeout passes before it connects; then `finished` fires. `connected` fires when ICE and
    /// DTLS are done.
    #[allow(clippy::too_many_arguments)]
    pub async fn subscribe(
        &self,
        factory: &PcFactory,
        room: Arc<Room>,
        offer: &Offer,
        cancel: CancellationToken,
        finished: CancellationToken,
        connected: CancellationToken,
        transport: TransportCell,
    ) -> Result<String> {
        let offered_at = Instant::now();
        let chosen = choose_tracks(&room, offer).await?;
        let (index, shard) = self
            .shards
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.viewers.load(Ordering::Relaxed))
            .ok_or_else(|| Error::Internal("the mux has no shard".into()))?;
        // An ICE-lite core: it checks none of the candidates the offer lists (`pc::IceRole`).
        let engines = (
            factory.configuration(),
            factory.answering_engines(CoreKind::OwnMedia)?,
        );
        // Negotiating is a millisecond or two of CPU with a browser's offer (dozens of codecs;
        // `cargo bench -p cascade-core --bench negotiate`). A flash crowd of joins would hold
        // the runtime's workers with it, and the rooms' ingest and the mux engines run there:
        // so it runs on the blocking pool, a few at a time.
        let _permit = self
            .negotiations
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the node is shutting down".into()))?;
        let relays = crate::rtc::transport::relay_candidates(&offer.sdp);
        let choice = offer.layers.clone();
        let (candidate, offer, track_room) = (shard.candidate, offer.sdp.clone(), room.clone());
        let tcp_candidate = self.ice_tcp.as_ref().map(|t| t.candidate());
        let Negotiated {
            pc,
            tap,
            ufrag,
            mut legs,
            answer: sdp,
            at: now,
            twcc_id,
        } = tokio::task::spawn_blocking(move || {
            negotiate(
                engines,
                &track_room,
                &chosen,
                &offer,
                candidate,
                tcp_candidate,
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("negotiation task: {e}")))??;
        engine::give_layers(&mut legs, &room.tracks(), &choice, now);
        engine::give_gates(&mut legs, now);
        if let Some(layer) = legs.iter().find_map(|l| l.track.layer.as_ref()) {
            transport.set_layer(&layer.rid);
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let removing = CancellationToken::new();
        let viewer = Viewer {
            id,
            pc,
            tap,
            protector: None,
            srtcp: None,
            reported_loss: Vec::new(),
            media_to: None,
            _tcp_route: self
                .ice_tcp
                .as_ref()
                .map(|t| t.register(&ufrag, Route::Hand(shard.tcp_accepted.clone()))),
            tcp_conns: Vec::new(),
            congested: false,
            transport,
            relays,
            next_report: now + REPORT_INTERVAL,
            retransmit_budget: RetransmitBudget::new(now),
            feedback: factory.feedback().clone(),
            ufrag,
            legs,
            traffic: room.traffic.clone(),
            finished: finished.clone(),
            offered_at,
            connect_by: offered_at + factory.connect_timeout(),
            connected_at: None,
            connected,
            first_sent: false,
            deadline: Some(now),
            addrs: Vec::new(),
            gone: false,
            arrived_on: None,
            removing: removing.clone(),
            catch_up: VecDeque::new(),
            bwe: Bwe::new(now),
            twcc_id,
            next_adapt: now,
            probing: engine::Probing::new(now),
        };
        // Counted before the engine can remove (and un-count) it.
        shard.viewers.fetch_add(1, Ordering::Relaxed);
        if self.mailboxes[index]
            .send(Command::Add(Box::new(viewer)))
            .is_err()
        {
            shard.viewers.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Unavailable("the node is shutting down".into()));
        }
        // Ends the viewer on DELETE, shutdown or the room's end; the engine's own endings
        // (ICE failure, connect timeout) fire `finished`.
        let mailboxes = self.mailboxes.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = room.ended() => {}
                _ = finished.cancelled() => return,
            }
            removing.cancel();
            for mailbox in mailboxes.iter() {
                let _ = mailbox.send(Command::Remove(id));
            }
        });
        Ok(sdp)
    }
}

impl Shard {
    /// A shard on `port` (0: one the OS picks); `sharing`: its part among shards that share
    /// the port; `commands` its own mailbox's receiving end.
    fn start(
        settings: &crate::rtc::pc::MediaSettings,
        port: u16,
        sharing: Option<engine::Sharing>,
        commands: mpsc::UnboundedReceiver<Command>,
        send_errors_metric: prometheus_client::metrics::counter::Counter,
        tcp_candidate: Option<SocketAddr>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(SocketAddr::new(settings.bind_ip, port)),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        // Best effort: the kernel caps them at net.core.{w,r}mem_max.
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        socket.set_nonblocking(true)?;
        if sharing.is_some() {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&SocketAddr::new(settings.bind_ip, port).into())?;
        let socket: std::net::UdpSocket = socket.into();
        let local = socket.local_addr()?;
        let gso_segments = quinn_udp::UdpSocketState::new((&socket).into())?
            .max_gso_segments()
            .clamp(1, MAX_SEGMENTS);
        // Registered for reading only. A socket registered for writing too gets an epoll wake-up
        // each time the kernel frees a sent datagram's buffer (on loopback, at once): a parked
        // runtime thread woke up for every send. The mux writes without waiting for readiness.
        let socket = register_readable(socket)?;
        let candidate = SocketAddr::new(settings.advertise_ip.unwrap_or(local.ip()), local.port());
        let (media_tx, media_rx) = mpsc::channel(QUEUE);
        let (tcp_accepted, tcp_accepted_rx) = mpsc::unbounded_channel();
        let (tcp_input_tx, tcp_input) = mpsc::channel(tcp::INPUT_QUEUE);
        let viewers = Arc::new(AtomicUsize::new(0));
        let engine = Engine::new(
            socket,
            candidate,
            tcp_candidate,
            viewers.clone(),
            media_tx,
            TcpConns::new(tcp_input_tx),
            gso_segments,
            send_errors_metric,
            sharing,
        );
        tokio::spawn(engine.run(
            commands,
            media_rx,
            engine::TcpInputs {
                accepted: tcp_accepted_rx,
                input: tcp_input,
            },
            shutdown,
        ));
        tracing::info!(%local, %candidate, "UDP mux shard serving viewers");
        Ok(Self {
            candidate,
            viewers,
            tcp_accepted,
        })
    }
}

/// A new viewer's core answers `offer` (on the blocking pool: see [`Mux::subscribe`]), one leg
/// per chosen room track the offer accepts the codec of; `candidate` is its shard's address,
/// `tcp_candidate` the node's ICE-TCP port's.
fn negotiate(
    (configuration, (media_engine, registry, setting_engine)): (
        RTCConfiguration,
        (MediaEngine, Registry, SettingEngineBuilder),
    ),
    room: &Room,
    chosen: &[Arc<RoomTrack>],
    offer: &str,
    candidate: SocketAddr,
    tcp_candidate: Option<SocketAddr>,
) -> Result<Negotiated> {
    let ufrag = random_token(16);
    // Retransmissions on a stream of their own where the viewer offers it (browsers do).
    let offers_rtx = offer.to_ascii_lowercase().contains(" rtx/90000");
    let offer_sdp = offer;
    let tap = KeyTap::new().map_err(|e| Error::Internal(format!("crypto provider: {e}")))?;
    let setting_engine = setting_engine
        .with_ice_credentials(ufrag.clone(), random_token(32))
        .with_crypto_provider(tap.clone())
        .build();
    let now = Instant::now();
    let mut pc = build_core(configuration, media_engine, registry, setting_engine, now)?;
    let offer = RTCSessionDescription::offer(offer.to_owned())
        .map_err(|e| NegotiationError::BadOffer(format!("invalid SDP offer: {e}")))?;
    pc.set_remote_description(now, offer)
        .map_err(|e| NegotiationError::BadOffer(format!("SDP offer refused: {e}")))?;
    let mut legs = Vec::with_capacity(chosen.len());
    for track in chosen {
        let (ssrc, forward) = new_leg(track);
        let rtx_ssrc =
            (offers_rtx && track.kind == crate::media::MediaKind::Video).then(rand::random::<u32>);
        let (codec, _) = sent_codec(track, offer_sdp);
        let sending = sending_track(room, track, &codec, ssrc, rtx_ssrc);
        let track_id = sending.track_id().to_string();
        let sender = pc.add_track(sending)?;
        legs.push(MuxLeg {
            forward,
            track: track.clone(),
            sender,
            track_id,
            ssrc,
            clock_rate: track.codec.clock_rate,
            stats: SenderStats::default(),
            layers: None,
            gate: None,
            video_off: false,
            rtx: rtx_ssrc.map(engine::Rtx::unnegotiated),
            keyframe_wait: None,
        });
    }
    pc.add_local_candidate(crate::rtc::pc::host_candidate(candidate)?)?;
    if let Some(tcp) = tcp_candidate {
        pc.add_local_candidate(crate::rtc::pc::tcp_host_candidate(tcp)?)?;
    }
    let answer = pc.create_answer(None)?;
    pc.set_local_description(now, answer)?;
    // Payload types are the viewer's: take each leg's from what was negotiated for it.
    legs.retain_mut(|leg| {
        let codecs = pc
            .rtp_sender(leg.sender)
            .map(|mut s| s.get_parameters().rtp_parameters.codecs.clone())
            .unwrap_or_default();
        let (codec, red_primary) = sent_codec(&leg.track, offer_sdp);
        match payload_type(&codecs, &codec) {
            Some(pt) => {
                leg.forward.set_payload_type(pt, red_primary);
                let rtx_pt = rtx_payload_type(&codecs, pt);
                leg.rtx = leg.rtx.take().and_then(|r| r.negotiated(rtx_pt));
                true
            }
            None => {
                tracing::info!(
                    room = %room.id,
                    codec = %leg.track.codec.mime_type,
                    "viewer did not accept the room's codec; track not sent"
                );
                false
            }
        }
    });
    if legs.is_empty() {
        return Err(no_codec_accepted(chosen).into());
    }
    // One id for the whole bundle: any sender's negotiated extensions tell it.
    let twcc_id = legs.iter().find_map(|leg| {
        let mut sender = pc.rtp_sender(leg.sender)?;
        let params = sender.get_parameters();
        params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == rtc::sdp::extmap::TRANSPORT_CC_URI)
            .and_then(|e| u8::try_from(e.id).ok())
    });
    let answer = pc
        .local_description()
        .map(|d| d.sdp)
        .ok_or_else(|| Error::Internal("no local description after negotiation".into()))?;
    Ok(Negotiated {
        pc,
        tap,
        ufrag,
        legs,
        answer,
        at: now,
        twcc_id,
    })
}

/// Random ICE credential characters (RFC 8839: ice-char is ALPHA / DIGIT / "+" / "/").
fn random_token(len: usize) -> String {
    use rand::RngExt;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
