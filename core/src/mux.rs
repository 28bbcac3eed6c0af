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
//!   by the remote address it came from (learnt from STUN, and from where the core sends);
//! - timers: ICE checks and consent, DTLS retransmissions and sender reports run from one tick.
//!
//! Negotiation (offer in, answer out) runs in the caller's task on a fresh core, which is then
//! handed to the engine. Relay links between nodes keep a peer connection each: there are few,
//! and they are also what an edge receives on.

use crate::egress::{History, KeyTap, Protector, RetransmitBudget, SenderStats};
use crate::error::{Error, Result};
use crate::forward::{Codec, KeyframeCache, Leg, Rewriter};
use crate::metrics::Traffic;
use crate::outbox::Outbox;
use crate::pc::{CoreKind, PcFactory};
use crate::room::{KEYFRAME_CACHE_PACKETS, Outgoing, Room, RoomTrack, TrackFeed, same_codec};
use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
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
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Packets of a joining viewer's catch-up (the cached group of pictures) sent per tick at most:
/// 20 times the reference stream's rate, so a two-second group of pictures is caught up in about
/// 100 ms without one burst of hundreds of datagrams overflowing the viewer's receive buffer.
const CATCH_UP_PER_TICK: usize = 32;
/// Socket buffers: a burst of a keyframe to hundreds of viewers must fit.
const SOCKET_BUFFER: usize = 8 << 20;

/// A node's UDP mux: one shard per task, each with its own socket and viewers.
#[derive(Debug)]
pub struct Mux {
    shards: Vec<Shard>,
    /// Negotiations running at once at most (see [`Mux::subscribe`]).
    negotiations: Arc<tokio::sync::Semaphore>,
}

/// What negotiating a new viewer's core gives.
struct Negotiated {
    pc: RTCPeerConnection,
    tap: Arc<KeyTap>,
    ufrag: String,
    legs: Vec<MuxLeg>,
    answer: String,
    at: Instant,
}

/// One engine task's mailbox and address.
#[derive(Debug)]
struct Shard {
    commands: mpsc::UnboundedSender<Command>,
    /// The address in viewers' ICE candidates (the advertised IP, the socket's port).
    candidate: SocketAddr,
    /// Viewers on it, for placing new ones on the least loaded shard.
    viewers: Arc<AtomicUsize>,
}

enum Command {
    Add(Box<Viewer>),
    Remove(u64),
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
}

struct Viewer {
    id: u64,
    /// ICE, DTLS and RTCP; media goes around it (`egress`).
    pc: RTCPeerConnection,
    /// The core's crypto provider, which saw its SRTP keys derived.
    tap: Arc<KeyTap>,
    /// Our SRTP context for the viewer's media, once DTLS is done.
    protector: Option<Protector>,
    /// Where the core sends what is not STUN (DTLS, SRTCP): the selected candidate pair's
    /// remote address, where media goes too.
    media_to: Option<SocketAddr>,
    next_report: Instant,
    /// NACKed packets this viewer may still have resent.
    retransmit_budget: RetransmitBudget,
    feedback: crate::metrics::Feedback,
    ufrag: String,
    legs: Vec<MuxLeg>,
    traffic: Traffic,
    finished: CancellationToken,
    offered_at: Instant,
    connected_at: Option<Instant>,
    first_sent: bool,
    /// When the core next wants `handle_timeout`.
    deadline: Option<Instant>,
    /// Remote addresses routed to this viewer.
    addrs: Vec<SocketAddr>,
    /// Set when the connection failed or closed: removed after the current step.
    gone: bool,
    /// Packets still to send to catch up after joining a running feed (leg, packet, source,
    /// keyframe), paced per tick; live packets queue behind them until it is empty.
    catch_up: VecDeque<(usize, Packet, u32, bool)>,
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
    /// (viewer key, leg index).
    legs: Vec<(usize, usize)>,
}

impl Mux {
    /// Binds the mux's sockets (`bind_ip:port + i` for shard `i`; port 0 lets the OS pick) and
    /// starts their engines, which run until `shutdown`.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(
        media: &crate::pc::MediaSettings,
        settings: crate::pc::MuxSettings,
        send_errors: prometheus_client::metrics::counter::Counter,
        shutdown: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let mut shards = Vec::with_capacity(usize::from(settings.shards));
        for i in 0..settings.shards.max(1) {
            let port = if settings.port == 0 {
                0
            } else {
                settings.port.checked_add(i).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "mux port + shards beyond 65535",
                    )
                })?
            };
            shards.push(Shard::start(
                media,
                port,
                send_errors.clone(),
                shutdown.clone(),
            )?);
        }
        // Half the cores: a flash crowd's negotiations leave the other half to the engines and
        // the rooms' ingest.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Arc::new(Self {
            shards,
            negotiations: Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1))),
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
    /// engine. It runs until it leaves, `cancel` fires or the room ends; then `finished` fires.
    pub async fn subscribe(
        &self,
        factory: &PcFactory,
        room: Arc<Room>,
        offer: &str,
        cancel: CancellationToken,
        finished: CancellationToken,
    ) -> Result<String> {
        let offered_at = Instant::now();
        let chosen = crate::session::choose_tracks(&room, offer).await?;
        let shard = self
            .shards
            .iter()
            .min_by_key(|s| s.viewers.load(Ordering::Relaxed))
            .ok_or_else(|| Error::Internal("the mux has no shard".into()))?;
        let engines = factory.engines(CoreKind::OwnMedia)?;
        // Negotiating is a millisecond or two of CPU with a browser's offer (dozens of codecs;
        // `cargo bench -p cascade-core --bench negotiate`). A flash crowd of joins would hold
        // the runtime's workers with it, and the rooms' ingest and the mux engines run there:
        // so it runs on the blocking pool, a few at a time.
        let _permit = self
            .negotiations
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the node is shutting down".into()))?;
        let (candidate, offer, track_room) = (shard.candidate, offer.to_owned(), room.clone());
        let Negotiated {
            pc,
            tap,
            ufrag,
            legs,
            answer: sdp,
            at: now,
        } = tokio::task::spawn_blocking(move || {
            negotiate(engines, &track_room, &chosen, &offer, candidate)
        })
        .await
        .map_err(|e| Error::Internal(format!("negotiation task: {e}")))??;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let viewer = Viewer {
            id,
            pc,
            tap,
            protector: None,
            media_to: None,
            next_report: now + REPORT_INTERVAL,
            retransmit_budget: RetransmitBudget::new(now),
            feedback: factory.feedback().clone(),
            ufrag,
            legs,
            traffic: room.traffic.clone(),
            finished: finished.clone(),
            offered_at,
            connected_at: None,
            first_sent: false,
            deadline: Some(now),
            addrs: Vec::new(),
            gone: false,
            catch_up: VecDeque::new(),
        };
        // Counted before the engine can remove (and un-count) it.
        shard.viewers.fetch_add(1, Ordering::Relaxed);
        if shard.commands.send(Command::Add(Box::new(viewer))).is_err() {
            shard.viewers.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Unavailable("the node is shutting down".into()));
        }
        // Ends the viewer on DELETE, shutdown or the room's end; the engine's own endings
        // (ICE failure, connect timeout) fire `finished`.
        let commands = shard.commands.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = room.ended() => {}
                _ = finished.cancelled() => return,
            }
            let _ = commands.send(Command::Remove(id));
        });
        Ok(sdp)
    }
}

impl Shard {
    fn start(
        settings: &crate::pc::MediaSettings,
        port: u16,
        send_errors_metric: prometheus_client::metrics::counter::Counter,
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
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (media_tx, media_rx) = mpsc::channel(QUEUE);
        let viewers = Arc::new(AtomicUsize::new(0));
        let engine = Engine {
            socket,
            local: candidate,
            viewers: Slab::new(),
            count: viewers.clone(),
            by_id: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            feeds: HashMap::new(),
            feed_of_track: HashMap::new(),
            media_tx,
            outbox: Outbox::with_capacity(4 * SEND_BATCH, 4 * SEND_BATCH * 1500),
            recv_buf: vec![0; 2048],
            due: Vec::new(),
            catching: Vec::new(),
            messages: Vec::with_capacity(4 * SEND_BATCH),
            gso_segments,
            batch_feeds: Vec::new(),
            pads: Vec::new(),
            feed_packets: Vec::new(),
            legs: Vec::new(),
            send_errors: 0,
            send_errors_metric,
        };
        tokio::spawn(engine.run(commands_rx, media_rx, shutdown));
        tracing::info!(%local, %candidate, "UDP mux shard serving viewers");
        Ok(Self {
            commands,
            candidate,
            viewers,
        })
    }
}

/// A new viewer's core answers `offer` (on the blocking pool: see [`Mux::subscribe`]), one leg
/// per chosen room track the offer accepts the codec of; `candidate` is its shard's address.
fn negotiate(
    (media_engine, registry, setting_engine): (MediaEngine, Registry, SettingEngineBuilder),
    room: &Room,
    chosen: &[Arc<RoomTrack>],
    offer: &str,
    candidate: SocketAddr,
) -> Result<Negotiated> {
    let ufrag = random_token(16);
    let tap = KeyTap::new().map_err(|e| Error::Internal(format!("crypto provider: {e}")))?;
    let setting_engine = setting_engine
        .with_ice_credentials(ufrag.clone(), random_token(32))
        .with_crypto_provider(tap.clone())
        .build();
    let now = Instant::now();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting_engine)
        .build(now)?;
    let offer = RTCSessionDescription::offer(offer.to_owned())
        .map_err(|e| Error::BadRequest(format!("invalid SDP offer: {e}")))?;
    pc.set_remote_description(now, offer)
        .map_err(|e| Error::BadRequest(format!("SDP offer refused: {e}")))?;
    let mut legs = Vec::with_capacity(chosen.len());
    for track in chosen {
        let ssrc = rand::random::<u32>();
        let sending = crate::session::sending_track(room, track, ssrc);
        let track_id = sending.track_id().to_string();
        let sender = pc.add_track(sending)?;
        legs.push(MuxLeg {
            forward: Leg::new(
                Rewriter::new(ssrc, 0, rand::random::<u16>() & 0x7fff),
                Codec::from_mime(&track.codec.mime_type),
                track.codec.clock_rate,
            ),
            track: track.clone(),
            sender,
            track_id,
            ssrc,
            clock_rate: track.codec.clock_rate,
            stats: SenderStats::default(),
        });
    }
    pc.add_local_candidate(crate::pc::host_candidate(candidate)?)?;
    let answer = pc.create_answer(None)?;
    pc.set_local_description(now, answer)?;
    // Payload types are the viewer's: take each leg's from what was negotiated for it.
    legs.retain_mut(|leg| {
        let pt = pc.rtp_sender(leg.sender).and_then(|mut s| {
            s.get_parameters()
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| same_codec(&c.rtp_codec, &leg.track.codec))
                .map(|c| c.payload_type)
        });
        match pt {
            Some(pt) => {
                leg.forward.set_payload_type(pt);
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
        return Err(Error::BadRequest(format!(
            "the offer accepts none of the room's codecs ({})",
            chosen
                .iter()
                .map(|t| t.codec.mime_type.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
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
    })
}

/// Random ICE credential characters (RFC 8839: ice-char is ALPHA / DIGIT / "+" / "/").
fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The local ufrag of a STUN message's USERNAME (`local:remote`), if it has one. Anything that
/// is not a well-formed STUN message yields `None`.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < 20 || datagram[0] & 0xc0 != 0 || datagram[4..8] != MAGIC {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(20..20 + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Whether a datagram is STUN (RFC 7983: first byte 0..=3).
fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| *b < 4)
}

struct Engine {
    /// Non-blocking, registered with the reactor for reading only.
    socket: AsyncFd<std::net::UdpSocket>,
    /// The local address the cores are told datagrams arrive on: their host candidate's.
    local: SocketAddr,
    viewers: Slab<Viewer>,
    /// The shard's viewer count, shared with [`Mux::subscribe`].
    count: Arc<AtomicUsize>,
    by_id: HashMap<u64, usize>,
    by_ufrag: HashMap<String, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    /// Feed id (the subscriber id its packets carry) -> feed.
    feeds: HashMap<u64, Feed>,
    /// Room track (by address) -> feed id.
    feed_of_track: HashMap<usize, u64>,
    media_tx: mpsc::Sender<Outgoing>,
    outbox: Outbox,
    recv_buf: Vec<u8>,
    due: Vec<usize>,
    catching: Vec<usize>,
    /// Scratch for [`Engine::flush`]: the outbox as messages.
    messages: Vec<Message>,
    /// The datagrams one GSO send may carry (1: the kernel cannot segment).
    gso_segments: usize,
    /// Scratch for [`Engine::forward`]: the batch's feeds, and one feed's legs.
    batch_feeds: Vec<u64>,
    /// Scratch for [`Engine::forward`]: the RTP padding each packet of the batch gets.
    pads: Vec<u8>,
    /// Scratch for [`frame_pads`]: one feed's packets in the batch.
    feed_packets: Vec<usize>,
    legs: Vec<(usize, usize)>,
    send_errors: u64,
    send_errors_metric: prometheus_client::metrics::counter::Counter,
}

impl Engine {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut media: mpsc::Receiver<Outgoing>,
        shutdown: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ticks = 0u32;
        loop {
            // Biased: control before media, so timers and input are never starved by a busy
            // stream.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                command = commands.recv() => match command {
                    Some(Command::Add(viewer)) => self.add(*viewer),
                    Some(Command::Remove(id)) => {
                        if let Some(&key) = self.by_id.get(&id) {
                            self.remove(key);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    self.timers(ticks.is_multiple_of(FULL_SWEEP_TICKS));
                }
                ready = self.socket.readable() => {
                    // The guard is dropped without clearing readiness: `receive` clears it when
                    // the socket runs dry.
                    let ready = ready.is_ok();
                    if ready {
                        self.receive();
                    }
                }
                n = media.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    rest_of_frame(&self.feeds, &mut media, &mut batch).await;
                    self.forward(&mut batch).await;
                }
            }
            self.flush().await;
        }
        let keys: Vec<usize> = self.viewers.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.remove(key);
        }
        self.flush().await;
    }

    fn add(&mut self, viewer: Viewer) {
        let ufrag = viewer.ufrag.clone();
        let id = viewer.id;
        let key = self.viewers.insert(viewer);
        self.by_id.insert(id, key);
        self.by_ufrag.insert(ufrag, key);
        let now = Instant::now();
        let viewer = &mut self.viewers[key];
        if let Err(e) = viewer.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "viewer core timeout");
        }
        self.service(key);
    }

    /// Drains what a core has after it was given input: datagrams to send, state changes,
    /// RTCP for us (keyframe requests); then removes it if it is gone.
    fn service(&mut self, key: usize) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        while let Some(out) = viewer.pc.poll_write() {
            let to = out.transport.peer_addr;
            if let std::collections::hash_map::Entry::Vacant(e) = self.by_addr.entry(to) {
                e.insert(key);
                viewer.addrs.push(to);
            }
            if !is_stun(&out.message) {
                viewer.media_to = Some(to);
            }
            self.outbox.push(to, &out.message);
        }
        let mut connected = false;
        while let Some(event) = viewer.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                tracing::debug!(viewer = viewer.id, %state, "viewer connection state");
                match state {
                    RTCPeerConnectionState::Connected => connected = true,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        viewer.gone = true;
                    }
                    _ => {}
                }
            }
        }
        while let Some(message) = viewer.pc.poll_read() {
            // Only keyframe requests and NACKs reach us (`pc::KeyframeRequestForwarder`).
            if let RTCMessage::RtcpPacket(track_id, packets) = message.message {
                for packet in &packets {
                    let any = packet.as_any();
                    // A NACK names its stream; the track id the core gives a compound packet
                    // may be another stream's (the one its reception reports name first).
                    if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                        if let Some(leg) =
                            viewer.legs.iter().position(|l| l.ssrc == nack.media_ssrc)
                        {
                            let feed = self
                                .feed_of_track
                                .get(&(Arc::as_ptr(&viewer.legs[leg].track) as usize))
                                .and_then(|id| self.feeds.get(id));
                            if let Some(feed) = feed {
                                resend(viewer, leg, nack, feed, &mut self.outbox);
                            }
                        }
                    } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                        let by_ssrc = any
                            .downcast_ref::<PictureLossIndication>()
                            .and_then(|p| viewer.legs.iter().find(|l| l.ssrc == p.media_ssrc));
                        let leg =
                            by_ssrc.or_else(|| viewer.legs.iter().find(|l| l.track_id == track_id));
                        if let Some(leg) = leg {
                            let track = leg.track.clone();
                            tokio::spawn(async move { track.request_keyframe().await });
                        }
                    }
                }
            }
        }
        if connected && viewer.protector.is_none() {
            // DTLS is done, so the core has derived its SRTP keys.
            match viewer
                .tap
                .take_sending_keys()
                .and_then(|keys| Protector::new(&keys))
            {
                Ok(p) => viewer.protector = Some(p),
                Err(e) => {
                    tracing::warn!(viewer = viewer.id, error = %e, "viewer's SRTP keys not found; ending it");
                    viewer.gone = true;
                }
            }
        }
        viewer.deadline = viewer.pc.poll_timeout();
        if viewer.gone {
            self.remove(key);
        } else if connected && viewer.connected_at.is_none() {
            viewer.connected_at = Some(Instant::now());
            self.attach(key);
            self.catch_up(key, Instant::now());
        }
    }

    /// A viewer is connected: its legs join their tracks' feeds. A feed already running gives
    /// the new leg its cached keyframe at once; a new feed gets the room track's.
    fn attach(&mut self, key: usize) {
        let legs = self.viewers[key].legs.len();
        for leg in 0..legs {
            let track = self.viewers[key].legs[leg].track.clone();
            let track_key = Arc::as_ptr(&track) as usize;
            let feed_id = match self.feed_of_track.get(&track_key) {
                Some(&id) => id,
                None => {
                    let (feed, starving) = track.feed(&self.media_tx);
                    if starving {
                        let track = track.clone();
                        tokio::spawn(async move { track.request_keyframe().await });
                    }
                    let id = feed.id;
                    self.feeds.insert(
                        id,
                        Feed {
                            _feed: feed,
                            cache: KeyframeCache::new(KEYFRAME_CACHE_PACKETS),
                            history: History::default(),
                            video: Codec::from_mime(&track.codec.mime_type).needs_keyframe(),
                            source: None,
                            traffic: self.viewers[key].traffic.clone(),
                            legs: Vec::new(),
                        },
                    );
                    self.feed_of_track.insert(track_key, id);
                    id
                }
            };
            let feed = self.feeds.get_mut(&feed_id).expect("feed just found");
            if let Some(source) = feed.source {
                let cached = feed.cache.snapshot();
                if feed.video && cached.is_empty() {
                    let track = track.clone();
                    tokio::spawn(async move { track.request_keyframe().await });
                }
                let viewer = &mut self.viewers[key];
                viewer.catch_up.extend(
                    cached
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (leg, p.clone(), source, i == 0)),
                );
            }
            feed.legs.push((key, leg));
        }
    }

    /// Sends the next slice of a joining viewer's catch-up.
    fn catch_up(&mut self, key: usize, now: Instant) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        let (mut sent, mut bytes) = (0u64, 0u64);
        for _ in 0..CATCH_UP_PER_TICK {
            let Some((leg, packet, source, keyframe)) = viewer.catch_up.pop_front() else {
                break;
            };
            if let Some(n) = send(
                viewer,
                leg,
                &packet,
                source,
                keyframe,
                0,
                now,
                &mut self.outbox,
            ) {
                sent += 1;
                bytes += n;
            }
        }
        viewer.traffic.packets_out.inc_by(sent);
        viewer.traffic.bytes_out.inc_by(bytes);
    }

    fn remove(&mut self, key: usize) {
        let Some(mut viewer) = self.viewers.try_remove(key) else {
            return;
        };
        let _ = viewer.pc.close();
        while let Some(out) = viewer.pc.poll_write() {
            self.outbox.push(out.transport.peer_addr, &out.message);
        }
        self.by_id.remove(&viewer.id);
        self.by_ufrag.remove(&viewer.ufrag);
        for addr in &viewer.addrs {
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
        }
        for leg in &viewer.legs {
            let track_key = Arc::as_ptr(&leg.track) as usize;
            let Some(&feed_id) = self.feed_of_track.get(&track_key) else {
                continue;
            };
            let Some(feed) = self.feeds.get_mut(&feed_id) else {
                continue;
            };
            feed.legs.retain(|&(k, _)| k != key);
            if feed.legs.is_empty() {
                // Dropping the feed detaches it from the room track.
                self.feeds.remove(&feed_id);
                self.feed_of_track.remove(&track_key);
            }
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(viewer = viewer.id, "viewer left the mux");
        viewer.finished.cancel();
    }

    /// Reads what the socket holds (bounded) and hands each datagram to its viewer.
    fn receive(&mut self) {
        for _ in 0..RECV_BATCH {
            let (n, from) = match self
                .socket
                .try_io(Interest::READABLE, |s| s.recv_from(&mut self.recv_buf))
            {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "mux receive failed");
                    return;
                }
            };
            let data = &self.recv_buf[..n];
            let by_ufrag = if is_stun(data) {
                stun_local_ufrag(data).and_then(|u| self.by_ufrag.get(u).copied())
            } else {
                None
            };
            let key = match by_ufrag {
                Some(key) => {
                    if self.by_addr.insert(from, key) != Some(key) {
                        self.viewers[key].addrs.push(from);
                    }
                    key
                }
                None => match self.by_addr.get(&from) {
                    Some(&key) => key,
                    None => continue,
                },
            };
            let message = TaggedBytesMut {
                now: Instant::now(),
                transport: TransportContext {
                    local_addr: self.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(data),
            };
            if let Some(viewer) = self.viewers.get_mut(key) {
                if let Err(e) = viewer.pc.handle_read(message) {
                    tracing::trace!(error = %e, "viewer core refused a datagram");
                }
                self.service(key);
            }
        }
    }

    /// Runs the timers that are due; on a full sweep, asks every core for its next deadline.
    fn timers(&mut self, full: bool) {
        let now = Instant::now();
        self.due.clear();
        for (key, viewer) in self.viewers.iter_mut() {
            if full {
                viewer.deadline = viewer.pc.poll_timeout();
            }
            let timed_out =
                viewer.connected_at.is_none() && now - viewer.offered_at > CONNECT_TIMEOUT;
            if timed_out {
                viewer.gone = true;
            }
            let reporting = viewer.protector.is_some() && viewer.next_report <= now;
            if reporting {
                viewer.next_report = now + REPORT_INTERVAL;
                report(viewer, now);
            }
            if timed_out || reporting || viewer.deadline.is_some_and(|d| d <= now) {
                self.due.push(key);
            }
        }
        self.catching.clear();
        self.catching.extend(
            self.viewers
                .iter()
                .filter(|(_, v)| !v.catch_up.is_empty())
                .map(|(k, _)| k),
        );
        for i in 0..self.catching.len() {
            self.catch_up(self.catching[i], now);
        }
        for i in 0..self.due.len() {
            let key = self.due[i];
            if let Some(viewer) = self.viewers.get_mut(key) {
                if !viewer.gone
                    && let Err(e) = viewer.pc.handle_timeout(now)
                {
                    tracing::debug!(error = %e, "viewer core timeout");
                }
                self.service(key);
            }
        }
    }

    /// The per-packet path: each packet to every leg of its feed, then out in batches.
    ///
    /// Viewer by viewer rather than packet by packet: each leg takes all of the batch's packets
    /// of its feed in a row, so a viewer's core (hundreds of them, each with its own buffers)
    /// is brought into the CPU's cache once per batch, not once per packet.
    async fn forward(&mut self, batch: &mut Vec<Outgoing>) {
        let now = Instant::now();
        // The feeds' own state, in arrival order; and which feeds the batch holds.
        self.batch_feeds.clear();
        batch.retain(|out| self.feeds.contains_key(&out.subscriber));
        for out in batch.iter() {
            let feed = self.feeds.get_mut(&out.subscriber).expect("retained");
            if feed.source != Some(out.source) {
                feed.cache.clear();
                feed.history.clear();
                feed.source = Some(out.source);
            }
            feed.history.push(out.packet.clone());
            if feed.video {
                feed.cache.push(&out.packet, out.keyframe);
            }
            if !self.batch_feeds.contains(&out.subscriber) {
                self.batch_feeds.push(out.subscriber);
            }
        }
        self.pads.clear();
        self.pads.resize(batch.len(), 0);
        for &feed_id in &self.batch_feeds {
            if self.feeds.get(&feed_id).is_some_and(|f| f.video) {
                frame_pads(batch, feed_id, &mut self.feed_packets, &mut self.pads);
            }
        }
        for f in 0..self.batch_feeds.len() {
            let feed_id = self.batch_feeds[f];
            let Some(feed) = self.feeds.get(&feed_id) else {
                continue;
            };
            self.legs.clear();
            self.legs.extend_from_slice(&feed.legs);
            let traffic = feed.traffic.clone();
            let (mut sent, mut bytes) = (0u64, 0u64);
            for l in 0..self.legs.len() {
                let (key, leg) = self.legs[l];
                let viewer = &mut self.viewers[key];
                for (i, out) in batch.iter().enumerate() {
                    if out.subscriber != feed_id {
                        continue;
                    }
                    if !viewer.catch_up.is_empty() {
                        viewer.catch_up.push_back((
                            leg,
                            out.packet.clone(),
                            out.source,
                            out.keyframe,
                        ));
                    } else {
                        let waiting = !viewer.legs[leg].forward.is_started();
                        if let Some(n) = send(
                            viewer,
                            leg,
                            &out.packet,
                            out.source,
                            out.keyframe,
                            self.pads[i],
                            now,
                            &mut self.outbox,
                        ) {
                            sent += 1;
                            bytes += n;
                        }
                        if waiting
                            && out.keyframe
                            && viewer.legs[leg].forward.is_started()
                            && let Some(feed) = self.feeds.get(&feed_id)
                        {
                            // The leg starts at this keyframe. If its first packet came late
                            // (resent after a NACK upstream), the rest of its group of pictures
                            // came before it and the leg skipped them: the feed's cache holds
                            // them after it. Packets the batch still has for the leg are then
                            // refused by its rewriter as already sent.
                            let cached = feed.cache.snapshot();
                            let from_here = cached.first().is_some_and(|k| {
                                k.header.sequence_number == out.packet.header.sequence_number
                            });
                            for p in cached.iter().skip(1).filter(|_| from_here) {
                                if let Some(n) = send(
                                    viewer,
                                    leg,
                                    p,
                                    out.source,
                                    false,
                                    0,
                                    now,
                                    &mut self.outbox,
                                ) {
                                    sent += 1;
                                    bytes += n;
                                }
                            }
                        }
                    }
                }
                if self.outbox.len() >= SEND_BATCH {
                    self.flush().await;
                }
            }
            if sent > 0 {
                traffic.packets_out.inc_by(sent);
                traffic.bytes_out.inc_by(bytes);
            }
        }
        batch.clear();
    }

    /// Sends the outbox, up to [`SEND_BATCH`] messages per `sendmmsg`. Consecutive datagrams
    /// to one viewer of one size (the last may be shorter: the end of a frame) are one message,
    /// a UDP GSO send, when the kernel can: forwarding viewer by viewer, a video frame's packets
    /// to a viewer are such a run. So one system call carries the frame to dozens of viewers,
    /// and the kernel reads the datagrams where they are (no copy into a GSO buffer). Messages
    /// leave in outbox order, so a viewer's datagrams stay in order. A full socket buffer waits
    /// for room once; what still does not fit is dropped (and NACKed by the viewer).
    async fn flush(&mut self) {
        self.messages.clear();
        let mut i = 0;
        while i < self.outbox.len() {
            let (to, first) = (self.outbox.to(i), self.outbox.size(i));
            let mut j = i + 1;
            while j < self.outbox.len()
                && j - i < self.gso_segments
                && self.outbox.to(j) == to
                && self.outbox.size(j) <= first
                && (j - i + 1) * first <= GSO_BYTES
            {
                j += 1;
                if self.outbox.size(j - 1) < first {
                    break;
                }
            }
            let segment = if j - i >= 2 { first as u16 } else { 0 };
            self.messages.push(Message {
                start: i,
                end: j,
                segment,
            });
            i = j;
        }
        let mut at = 0;
        let mut waited = false;
        while at < self.messages.len() {
            let result =
                sendmmsg_messages(self.socket.as_raw_fd(), &self.outbox, &self.messages[at..]);
            match result {
                Ok(n) => at += n.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !waited => {
                    // The socket is not registered for writability (see `Shard::start`): a
                    // full send buffer is rare (loopback frees it at once, a NIC as it sends),
                    // so give it a moment instead.
                    waited = true;
                    tokio::time::sleep(SEND_BUFFER_WAIT).await;
                }
                Err(e)
                    if self.messages[at].segment != 0
                        && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) =>
                {
                    // The kernel or the route cannot segment: one datagram per message from now
                    // on, starting with what is left of this flush.
                    tracing::info!(error = %e, "UDP GSO send failed; mux sends one datagram per message from now on");
                    self.gso_segments = 1;
                    let rest: Vec<Message> = self.messages[at..]
                        .iter()
                        .flat_map(|m| {
                            (m.start..m.end).map(|k| Message {
                                start: k,
                                end: k + 1,
                                segment: 0,
                            })
                        })
                        .collect();
                    self.messages.truncate(at);
                    self.messages.extend(rest);
                }
                Err(e) => {
                    // One message the kernel refuses (an unreachable address) costs only itself.
                    self.send_error(&e);
                    at += 1;
                }
            }
        }
        self.outbox.clear();
    }

    fn send_error(&mut self, e: &std::io::Error) {
        self.send_errors += 1;
        self.send_errors_metric.inc();
        if self.send_errors.is_power_of_two() {
            tracing::debug!(error = %e, errors = self.send_errors, "mux send failed");
        }
    }
}

/// A video frame arrives as a burst of packets, handed over one by one: when the batch
/// ends inside a frame (its last video packet lacks the marker bit), waits for the rest of
/// it, up to [`FRAME_WAIT`]. Each viewer then gets the frame as one GSO send instead of a
/// datagram or two per wake-up.
async fn rest_of_frame(
    feeds: &HashMap<u64, Feed>,
    media: &mut mpsc::Receiver<Outgoing>,
    batch: &mut Vec<Outgoing>,
) {
    let inside_frame = |batch: &[Outgoing]| {
        batch.last().is_some_and(|out| {
            !out.packet.header.marker && feeds.get(&out.subscriber).is_some_and(|f| f.video)
        })
    };
    if !inside_frame(batch) {
        return;
    }
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    while batch.len() < BATCH && inside_frame(batch) {
        match tokio::time::timeout_at(deadline, media.recv_many(batch, BATCH - batch.len())).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// The most RTP padding [`frame_pads`] gives a packet.
const MAX_PAD: usize = 32;

/// Sets `pads[i]` for the packets of video feed `feed` in `batch` so that each frame's packets
/// (a run of one timestamp) are all one size but the last: a packetizer splits a frame into
/// packets whose sizes differ by a byte or so (libwebrtc's VP8 packetizer balances them), and
/// UDP GSO needs equal segments (only the last may be shorter). Then each viewer gets the frame
/// as one GSO send instead of two or more. `scratch` holds the feed's packet indexes.
fn frame_pads(batch: &[Outgoing], feed: u64, scratch: &mut Vec<usize>, pads: &mut [u8]) {
    scratch.clear();
    scratch.extend((0..batch.len()).filter(|&i| batch[i].subscriber == feed));
    for run in scratch
        .chunk_by(|&a, &b| batch[a].packet.header.timestamp == batch[b].packet.header.timestamp)
    {
        let Some((_, rest)) = run.split_last() else {
            continue;
        };
        let target = run
            .iter()
            .map(|&i| batch[i].packet.marshal_size())
            .max()
            .unwrap_or(0);
        for &i in rest {
            let pad = target - batch[i].packet.marshal_size();
            if pad <= MAX_PAD {
                pads[i] = pad as u8;
            }
        }
    }
}

/// One packet to one viewer's leg: decide, rewrite, protect (with `pad` bytes of RTP padding)
/// and queue the datagram (NACKs are answered from the feed's history). Returns the payload
/// size when it went out.
#[allow(clippy::too_many_arguments)]
fn send(
    viewer: &mut Viewer,
    leg: usize,
    packet: &rtc::rtp::Packet,
    source: u32,
    keyframe: bool,
    pad: u8,
    now: Instant,
    outbox: &mut Outbox,
) -> Option<u64> {
    let l = &mut viewer.legs[leg];
    let mut packet = packet.clone();
    if !l.forward.forward(&mut packet, source, keyframe, now) {
        return None;
    }
    let to = viewer.media_to?;
    let protector = viewer.protector.as_mut()?;
    if !outbox.push_with(to, |buf| protector.protect_into(&packet, pad, buf)) {
        return None;
    }
    let size = packet.payload.len() as u64;
    l.stats.sent(&packet, now);
    if !viewer.first_sent {
        viewer.first_sent = true;
        viewer
            .traffic
            .join
            .observe(viewer.offered_at.elapsed().as_secs_f64());
        if let Some(at) = viewer.connected_at {
            viewer
                .traffic
                .connected_to_media
                .observe(at.elapsed().as_secs_f64());
        }
    }
    Some(size)
}

/// Answers a viewer's NACK with the packets of `leg` it names that are still held, as they were
/// first sent (same SSRC and sequence number: RFC 4585 retransmission without RTX): each NACKed
/// number maps back through the leg's rewriter to a source packet in `feed`'s history (only
/// one the leg sent, under its current mapping), and a copy is rewritten as it was sent.
fn resend(
    viewer: &mut Viewer,
    leg: usize,
    nack: &TransportLayerNack,
    feed: &Feed,
    outbox: &mut Outbox,
) {
    let (Some(to), Some(protector)) = (viewer.media_to, viewer.protector.as_mut()) else {
        return;
    };
    let l = &viewer.legs[leg];
    if feed.source.is_none() || l.forward.source() != feed.source {
        return;
    }
    let rewriter = l.forward.rewriter();
    let now = Instant::now();
    let (mut packets, mut bytes, mut refused) = (0u64, 0u64, 0u64);
    for pair in &nack.nacks {
        for seq in pair.into_iter() {
            let Some(packet) = rewriter
                .source_of(seq)
                .and_then(|source_seq| feed.history.get(source_seq))
            else {
                tracing::trace!(viewer = viewer.id, seq, "NACKed packet not in the history");
                continue;
            };
            if !viewer.retransmit_budget.take(now) {
                refused += 1;
                continue;
            }
            let mut packet = packet.clone();
            rewriter.rewrite_again(&mut packet);
            if outbox.push_with(to, |buf| protector.protect_into(&packet, 0, buf)) {
                packets += 1;
                bytes += packet.payload.len() as u64;
            }
        }
    }
    viewer.feedback.retransmitted_packets.inc_by(packets);
    viewer.feedback.retransmitted_bytes.inc_by(bytes);
    if refused > 0 {
        viewer.feedback.retransmits_refused.inc_by(refused);
        tracing::debug!(viewer = viewer.id, refused, "retransmission budget spent");
    }
}

/// Hands the core a sender report for each of the viewer's legs that has sent something; the
/// core protects and queues them (drained by [`Engine::service`]).
fn report(viewer: &mut Viewer, now: Instant) {
    let wall = std::time::SystemTime::now();
    for l in &viewer.legs {
        let Some(sr) = l.stats.report(l.ssrc, l.clock_rate, now, wall) else {
            continue;
        };
        if let Some(mut sender) = viewer.pc.rtp_sender(l.sender)
            && let Err(e) = sender.write_rtcp(now, vec![Box::new(sr)])
        {
            tracing::trace!(error = %e, "viewer core refused a sender report");
        }
    }
}

/// Registers the mux's socket with the reactor for reading only.
#[allow(unsafe_code)]
fn register_readable(socket: std::net::UdpSocket) -> std::io::Result<AsyncFd<std::net::UdpSocket>> {
    // SAFETY: the `UdpSocket` owns its descriptor and keeps it open, unchanged, for as long as
    // the `AsyncFd` that owns the socket exists.
    Ok(unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?)
}

/// One message of a flush: `outbox[start..end]`, to one destination; several datagrams leave as
/// one UDP GSO send of `segment`-byte segments (the last may be shorter), one has `segment` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message {
    start: usize,
    end: usize,
    segment: u16,
}

/// Room for one `UDP_SEGMENT` control message (`CMSG_SPACE(2)` is 24 bytes on 64-bit Linux).
type CmsgBuf = [u64; 4];

/// One `sendmmsg` of the leading `messages` (at most [`SEND_BATCH`]); returns how many messages
/// went. Each message is one iovec over its datagrams, which lie back to back in the outbox
/// (several datagrams: a GSO send of them). Direct, because `nix`'s `sendmmsg` result reads memory it never
/// wrote, and it gives every message the same control messages.
#[allow(unsafe_code)]
fn sendmmsg_messages(
    fd: std::os::fd::RawFd,
    outbox: &Outbox,
    messages: &[Message],
) -> std::io::Result<usize> {
    let n = messages.len().min(SEND_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let addrs: [socket2::SockAddr; SEND_BATCH] =
        std::array::from_fn(|k| socket2::SockAddr::from(outbox.to(messages[k.min(n - 1)].start)));
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_BATCH];
    let mut cmsgs: [CmsgBuf; SEND_BATCH] = [[0; 4]; SEND_BATCH];
    // SAFETY: `mmsghdr` is plain old data; all zeroes is a valid (empty) header.
    let mut headers: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    for (k, m) in messages[..n].iter().enumerate() {
        let bytes = outbox.span(m.start..m.end);
        iovecs[k] = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        let h = &mut headers[k].msg_hdr;
        h.msg_name = addrs[k].as_ptr() as *mut libc::c_void;
        h.msg_namelen = addrs[k].len();
        h.msg_iov = &mut iovecs[k];
        h.msg_iovlen = 1;
        if m.segment != 0 {
            h.msg_control = cmsgs[k].as_mut_ptr() as *mut libc::c_void;
            // SAFETY: `cmsgs[k]` is 32 bytes, aligned for `cmsghdr`, and holds CMSG_SPACE(2);
            // CMSG_FIRSTHDR of a header whose control buffer is that large is non-null.
            unsafe {
                h.msg_controllen = libc::CMSG_SPACE(2) as _;
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(2) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, m.segment);
            }
        }
    }
    // SAFETY: `headers[..n]` point at `addrs`, `iovecs` and `cmsgs` (alive until the call
    // returns) and through the iovecs at the outbox's buffers, which the kernel only reads.
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            headers.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(feed: u64, ts: u32, payload: usize) -> Outgoing {
        Outgoing {
            subscriber: feed,
            track: 0,
            keyframe: false,
            source: 0,
            packet: Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    timestamp: ts,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(vec![0; payload]),
            },
        }
    }

    /// A frame split 1127, 1127, 1126, 1126 (and another feed's packet between) is padded to
    /// 1127 but for its last packet; the next frame's packets are evened out on their own; a
    /// packet far smaller than its frame's others is left as it is.
    #[test]
    fn a_frames_packets_are_padded_to_one_size_but_the_last() {
        let batch = vec![
            outgoing(1, 100, 1127),
            outgoing(1, 100, 1127),
            outgoing(2, 7, 100),
            outgoing(1, 100, 1126),
            outgoing(1, 100, 1126),
            outgoing(1, 200, 1000),
            outgoing(1, 200, 998),
            outgoing(1, 200, 500),
            outgoing(1, 200, 990),
        ];
        let (mut scratch, mut pads) = (Vec::new(), vec![0u8; batch.len()]);
        frame_pads(&batch, 1, &mut scratch, &mut pads);
        assert_eq!(pads, vec![0, 0, 0, 1, 0, 0, 2, 0, 0]);
    }

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&0x0006u16.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // A PRIORITY attribute after it, as browsers send.
        attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn finds_the_local_ufrag_of_a_binding_request() {
        assert_eq!(
            stun_local_ufrag(&binding_request("abcd1234:xyz")),
            Some("abcd1234")
        );
        assert_eq!(stun_local_ufrag(&binding_request("odd")), Some("odd"));
    }

    #[test]
    fn garbage_is_not_stun() {
        assert_eq!(stun_local_ufrag(&[]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        let mut m = binding_request("abcd:efgh");
        m[3] = 0xff; // length beyond the datagram
        assert_eq!(stun_local_ufrag(&m), None);
        let mut m = binding_request("abcd:efgh");
        m[22..24].copy_from_slice(&[0xff, 0xff]); // attribute length beyond the body
        assert_eq!(stun_local_ufrag(&m), None);
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = stun_local_ufrag(&junk);
        }
    }

    #[test]
    fn one_sendmmsg_carries_gso_frames_and_single_datagrams_in_order() {
        use std::os::fd::AsRawFd;
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let datagram = |tag: u8, len: usize| vec![tag; len];
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // A frame of three to `a` (the last shorter), one datagram to `b`, one more to `a`.
        let mut outbox = Outbox::default();
        for (to, tag, len) in [
            (to_a, 1, 1000),
            (to_a, 2, 1000),
            (to_a, 3, 400),
            (to_b, 4, 300),
            (to_a, 5, 200),
        ] {
            outbox.push(to, &datagram(tag, len));
        }
        let messages = [
            Message {
                start: 0,
                end: 3,
                segment: 1000,
            },
            Message {
                start: 3,
                end: 4,
                segment: 0,
            },
            Message {
                start: 4,
                end: 5,
                segment: 0,
            },
        ];
        let gso = quinn_udp::UdpSocketState::new((&tx).into())
            .unwrap()
            .max_gso_segments()
            > 1;
        let sent = sendmmsg_messages(tx.as_raw_fd(), &outbox, &messages);
        if !gso {
            return; // no UDP GSO on this kernel: the mux sends one datagram per message
        }
        assert_eq!(sent.unwrap(), 3);
        let read = |rx: &std::net::UdpSocket, n: usize| -> Vec<(u8, usize)> {
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 2048];
            (0..n)
                .map(|_| {
                    let len = rx.recv(&mut buf).unwrap();
                    assert!(
                        buf[..len].iter().all(|&x| x == buf[0]),
                        "one datagram intact"
                    );
                    (buf[0], len)
                })
                .collect()
        };
        assert_eq!(read(&a, 4), vec![(1, 1000), (2, 1000), (3, 400), (5, 200)]);
        assert_eq!(read(&b, 1), vec![(4, 300)]);
    }
}
