//! A room: one source per track (a publisher's, or an upstream relay link's), and any number of
//! subscribers (viewers, and relay links to other nodes).
//!
//! The packet path: a track's pump task reads a packet from its source, strips the publisher's
//! header extensions, notes whether it starts a keyframe, records it in the track's
//! [`KeyframeCache`], and `try_send`s a clone (a reference-counted payload, no copy) to each
//! subscriber's bounded queue. A subscriber whose queue is full loses that packet (and is counted)
//! instead of slowing everyone else down. The track's lock is held by its one pump task and is
//! contended only by a subscriber joining or leaving, which is what makes "cached keyframe, then
//! live packets, with nothing missed or repeated" atomic.
//!
//! A track's source can be replaced under live subscribers (failover: an edge re-attached to
//! another upstream, a publisher that came back). Each source gets a new number; packets carry
//! it, and a subscriber seeing it change re-bases its rewriter and waits for a keyframe, so
//! what it sends stays one continuous stream (same SSRC, sequence numbers and timestamps).

use crate::media::MediaKind;
use crate::media::forward::{Codec, KeyframeCache, keyframe_start, strip_extensions};
use crate::media::keyframe_limit::{KeyframeAsk, KeyframeLimiter};
use crate::media::layers::Layer;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Packets a keyframe cache holds at most (about 4 s of a 2.5 Mbps stream).
pub(crate) const KEYFRAME_CACHE_PACKETS: usize = 1024;
/// At most one keyframe request per track per this interval goes upstream.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// How long after a room is created its subscribers may wait for the simulcast layers its
/// publisher declared to open ([`Room::ready`]).
pub const LAYER_WAIT: Duration = Duration::from_secs(5);
/// How long a relayed room's subscribers may wait for the rest of the layers an upstream node
/// described, once one layer of each simulcast group came, if [`LAYER_WAIT`] has passed
/// ([`Room::ready`]).
pub const RELAYED_LAYER_WAIT: Duration = Duration::from_secs(1);
/// A subscriber's queue: room for a cached group of pictures plus live packets.
pub const SUBSCRIBER_QUEUE: usize = KEYFRAME_CACHE_PACKETS + 1024;

/// One packet on its way to one subscriber.
#[derive(Debug)]
pub struct Outgoing {
    /// The subscription it was queued for (see [`RoomTrack::feed`]).
    pub subscriber: u64,
    /// Index of the room track it belongs to.
    pub track: usize,
    /// Whether it starts a keyframe.
    pub keyframe: bool,
    /// Whether it comes from the track's cached group of pictures, queued as the subscription
    /// began (the picture is as old as the group): not live.
    pub replay: bool,
    /// Which source of the track it came from (see [`Fanout::switch_source`]).
    pub source: u32,
    pub packet: Packet,
}

/// Why a room ended, as a subscriber waiting for it is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReason {
    /// The room was never there (upstream said NOT_FOUND).
    pub not_found: bool,
    pub message: String,
}

/// Counters for one track, read by status and metrics.
#[derive(Debug, Default)]
pub struct TrackStats {
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Packets a subscriber did not get because its queue was full.
    pub queue_drops: AtomicU64,
    /// The recent ingress bitrate, computed when status is read.
    pub rate: crate::obs::rate::RateMeter,
}

struct SubscriberTx {
    id: u64,
    tx: mpsc::Sender<Outgoing>,
}

/// One track's fan-out: its keyframe cache and its subscribers' queues. Plain state, no I/O:
/// the room keeps it behind the track's lock, benchmarks drive it directly.
pub struct Fanout {
    track: usize,
    codec: Codec,
    /// The current source's number.
    source: u32,
    cache: KeyframeCache,
    subscribers: Vec<SubscriberTx>,
    /// Keyframe starts delivered, whatever the source (a deferred request checks it).
    keyframes: u64,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("track", &self.track)
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl Fanout {
    pub fn new(track: usize, codec: Codec) -> Self {
        Self {
            track,
            codec,
            source: 0,
            cache: KeyframeCache::new(KEYFRAME_CACHE_PACKETS),
            subscribers: Vec::new(),
            keyframes: 0,
        }
    }

    /// How many keyframe starts it delivered.
    pub fn keyframes(&self) -> u64 {
        self.keyframes
    }

    /// Records one source packet and queues it for every subscriber. Returns how many
    /// subscribers lost it because their queue was full.
    pub fn deliver(&mut self, packet: &Packet, keyframe: bool) -> u64 {
        if self.codec.needs_keyframe() {
            self.cache.push(packet, keyframe);
        }
        self.keyframes += u64::from(keyframe);
        let mut drops = 0;
        for sub in &self.subscribers {
            let out = Outgoing {
                subscriber: sub.id,
                track: self.track,
                keyframe,
                replay: false,
                source: self.source,
                packet: packet.clone(),
            };
            if sub.tx.try_send(out).is_err() {
                drops += 1;
            }
        }
        drops
    }

    /// Registers a subscriber and queues the cached keyframe for it first. Returns whether the
    /// subscriber still needs a keyframe from upstream.
    pub fn attach(&mut self, id: u64, tx: &mpsc::Sender<Outgoing>) -> bool {
        let cached = self.cache.snapshot();
        for (i, packet) in cached.iter().enumerate() {
            let _ = tx.try_send(Outgoing {
                subscriber: id,
                track: self.track,
                keyframe: i == 0,
                replay: true,
                source: self.source,
                packet: packet.clone(),
            });
        }
        self.subscribers.push(SubscriberTx { id, tx: tx.clone() });
        self.codec.needs_keyframe() && cached.is_empty()
    }

    /// Registers a subscriber for live packets only (one that resumes: the cached pictures are
    /// older than what it sent last).
    pub fn attach_live(&mut self, id: u64, tx: &mpsc::Sender<Outgoing>) {
        if !self.subscribers.iter().any(|s| s.id == id) {
            self.subscribers.push(SubscriberTx { id, tx: tx.clone() });
        }
    }

    pub fn detach(&mut self, id: u64) {
        self.subscribers.retain(|s| s.id != id);
    }

    /// Forgets the cached pictures (the source stops sending for a while: they would be stale).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// A new source feeds the track from now on; returns its number. The cached keyframe is
    /// the old source's, so it goes.
    pub fn switch_source(&mut self) -> u32 {
        self.source = self.source.wrapping_add(1);
        self.cache.clear();
        self.source
    }

    /// The current source's number.
    pub fn source(&self) -> u32 {
        self.source
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }
}

/// One track of a room and its source.
pub struct RoomTrack {
    pub index: usize,
    pub kind: MediaKind,
    /// Set when the track is one simulcast layer of a publisher's track ([`crate::media::layers`]).
    pub layer: Option<Layer>,
    /// The codec as negotiated with the source, which subscribers are offered.
    pub codec: RTCRtpCodec,
    codec_kind: Codec,
    /// The current source, for keyframe requests; its packets are pumped by its own task.
    source: Mutex<Source>,
    fanout: Mutex<Fanout>,
    limiter: Mutex<KeyframeLimiter>,
    epoch: Instant,
    pub stats: TrackStats,
    traffic: crate::obs::metrics::Traffic,
    /// Whether the upstream was asked to stop sending this layer, and what it brought before
    /// ([`upstream`]).
    upstream: upstream::UpstreamPause,
}

impl std::fmt::Debug for RoomTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomTrack")
            .field("index", &self.index)
            .field("kind", &self.kind)
            .field("codec", &self.codec.mime_type)
            .finish()
    }
}

/// One source stream to bind to a room track ([`Room::bind`]).
struct Bind {
    kind: MediaKind,
    codec: RTCRtpCodec,
    ssrc: u32,
    layer: Option<Layer>,
}

/// A track's source: a remote track and the SSRC forwarded from it.
#[derive(Clone)]
struct Source {
    remote: Arc<dyn TrackRemote>,
    ssrc: u32,
}

impl RoomTrack {
    /// The per-packet path: see the module documentation. `source` is the number of the
    /// source the packet came from; a replaced source's late packets are dropped.
    fn on_packet(&self, mut packet: Packet, ssrc: u32, source: u32) {
        if packet.header.ssrc != ssrc {
            // RTX or another simulcast layer: not forwarded.
            return;
        }
        strip_extensions(&mut packet);
        self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_in
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        self.traffic.packets_in.inc();
        self.traffic.bytes_in.inc_by(packet.payload.len() as u64);
        let keyframe = keyframe_start(self.codec_kind, &packet.payload);
        let drops = {
            let mut fanout = self.fanout.lock().unwrap_or_else(|p| p.into_inner());
            if fanout.source() != source {
                return;
            }
            fanout.deliver(&packet, keyframe)
        };
        if drops > 0 {
            self.stats.queue_drops.fetch_add(drops, Ordering::Relaxed);
            self.traffic.queue_drops.inc_by(drops);
        }
    }

    /// Registers a subscriber and queues the cached keyframe for it, atomically with respect to
    /// live packets. Returns whether the subscriber still needs a keyframe from upstream.
    fn attach(&self, id: u64, tx: &mpsc::Sender<Outgoing>) -> bool {
        let starving = self
            .fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attach(id, tx);
        self.upstream.wanted();
        starving
    }

    /// Registers a subscriber for live packets only: see [`Fanout::attach_live`].
    fn attach_live(&self, id: u64, tx: &mpsc::Sender<Outgoing>) {
        self.fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attach_live(id, tx);
        self.upstream.wanted();
    }

    fn detach(&self, id: u64) {
        self.fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .detach(id);
    }

    /// Asks the source for a keyframe, at most once per interval whoever asks: a request within
    /// the interval goes at its end, unless a keyframe came through in the meantime.
    pub async fn request_keyframe(self: &Arc<Self>) {
        if !self.codec_kind.needs_keyframe() {
            return;
        }
        let keyframes = self.keyframes_seen();
        let ask = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ask(self.epoch.elapsed(), keyframes);
        match ask {
            KeyframeAsk::Now => self.send_keyframe_request().await,
            KeyframeAsk::Covered => {}
            KeyframeAsk::Later(wait) => {
                let track = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let keyframes = track.keyframes_seen();
                    let due = track
                        .limiter
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .fire(track.epoch.elapsed(), keyframes);
                    if due {
                        track.send_keyframe_request().await;
                    }
                });
            }
        }
    }

    /// How many keyframes the current source has brought.
    fn keyframes_seen(&self) -> u64 {
        self.fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keyframes()
    }

    async fn send_keyframe_request(&self) {
        let source = self
            .source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tracing::debug!(track = self.index, "requesting keyframe upstream");
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: source.ssrc,
        };
        match source.remote.write_rtcp(vec![Box::new(pli)]).await {
            Ok(_) => {
                self.traffic.keyframe_requests.inc();
            }
            Err(e) => tracing::debug!(error = %e, "keyframe request not sent"),
        }
    }

    /// Makes `remote`'s stream `ssrc` the track's source: its packets are forwarded from now on
    /// (read by the caller: its own pump, or a simulcast group's), the old source's no longer.
    /// Subscribers see the new source number and continue their streams. Returns the number.
    fn rebind(&self, remote: Arc<dyn TrackRemote>, ssrc: u32) -> u32 {
        let number = self
            .fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .switch_source();
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = Source { remote, ssrc };
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reset();
        number
    }

    /// Feeds the track from one source until that source ends.
    fn pump(self: &Arc<Self>, remote: Arc<dyn TrackRemote>, ssrc: u32, number: u32) {
        let track = self.clone();
        tokio::spawn(async move {
            while let Some(event) = remote.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => track.on_packet(packet, ssrc, number),
                    TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
                    _ => {}
                }
            }
            tracing::debug!(track = track.index, source = number, "source track ended");
        });
    }

    /// Feeds this track's packets into `tx`, a queue shared by many subscriptions (the UDP
    /// mux's): the cached keyframe first, then live packets, each tagged with the returned
    /// feed's id. Also returns whether no keyframe was cached (ask upstream for one).
    pub fn feed(self: &Arc<Self>, tx: &mpsc::Sender<Outgoing>) -> (TrackFeed, bool) {
        let id = next_subscriber_id();
        let starving = self.attach(id, tx);
        (
            TrackFeed {
                track: self.clone(),
                id,
            },
            starving,
        )
    }

    /// How many subscribers this track feeds.
    pub fn subscriber_count(&self) -> usize {
        self.fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subscriber_count()
    }
}

/// A room on this node.
pub struct Room {
    pub id: String,
    /// True when this node takes the room from an upstream node (edge), false when a publisher
    /// sends it here (origin).
    pub relayed: bool,
    pub created: Instant,
    /// The node's traffic counters (see [`crate::obs::metrics`]).
    pub traffic: crate::obs::metrics::Traffic,
    tracks: Mutex<Vec<Arc<RoomTrack>>>,
    /// Tracks waiting for a new source (see [`Room::replace_sources`]). Locked after `tracks`.
    waiting: Mutex<Vec<Arc<RoomTrack>>>,
    /// Set while tracks wait for new sources.
    orphaned: AtomicBool,
    /// Source outages so far.
    outages: AtomicU64,
    expected_tracks: AtomicUsize,
    /// Number of tracks bound so far; subscribers wait on it.
    bound: watch::Sender<usize>,
    ended: CancellationToken,
    end_reason: Mutex<Option<EndReason>>,
    /// Sessions attached or attaching (viewers and downstream relay links), and holds.
    reservations: AtomicUsize,
    /// Of the reservations, those that hold the room for a downstream node's `Subscribe`
    /// (`Node::hold_room`), not sessions.
    holds: AtomicUsize,
    expected_known: AtomicBool,
    /// The next simulcast group number (see [`Layer::group`]).
    next_group: AtomicU32,
    /// Simulcast layers the publisher declared (or the upstream described), and how many have
    /// opened.
    expected_layers: AtomicUsize,
    opened_layers: AtomicUsize,
    /// When every expected track (one layer of each simulcast group) was bound (relayed rooms).
    groups_bound_at: std::sync::OnceLock<tokio::time::Instant>,
    /// Woken when a subscriber attaches to a layer paused upstream ([`upstream`]).
    demand: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("id", &self.id)
            .field("relayed", &self.relayed)
            .finish()
    }
}

impl Room {
    /// A room counting its traffic on its own (tests, benchmarks).
    pub fn new(id: impl Into<String>, relayed: bool) -> Arc<Self> {
        Self::with_traffic(id, relayed, crate::obs::metrics::Traffic::default())
    }

    /// A room counting its traffic in a node's counters.
    pub fn with_traffic(
        id: impl Into<String>,
        relayed: bool,
        traffic: crate::obs::metrics::Traffic,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: id.into(),
            relayed,
            created: Instant::now(),
            traffic,
            tracks: Mutex::new(Vec::new()),
            waiting: Mutex::new(Vec::new()),
            orphaned: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            expected_tracks: AtomicUsize::new(0),
            bound: watch::Sender::new(0),
            ended: CancellationToken::new(),
            end_reason: Mutex::new(None),
            reservations: AtomicUsize::new(0),
            holds: AtomicUsize::new(0),
            expected_known: AtomicBool::new(false),
            next_group: AtomicU32::new(0),
            expected_layers: AtomicUsize::new(0),
            opened_layers: AtomicUsize::new(0),
            groups_bound_at: std::sync::OnceLock::new(),
            demand: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// How many tracks the source will bring (from its SDP, or the upstream's description),
    /// a simulcast group counting as one.
    pub fn expect_tracks(&self, n: usize) {
        self.expected_tracks.store(n, Ordering::Release);
        self.expected_known.store(true, Ordering::Release);
        self.bound.send_modify(|_| {});
    }

    /// How many simulcast layers the publisher's offer declares (its `a=rid` send lines), or
    /// an upstream node describes. [`Room::ready`] waits for them to open in the room's first
    /// [`LAYER_WAIT`] (a publisher's sender ramps its layers up one by one, and an upstream
    /// forwards a layer from its first keyframe), and a relayed room also
    /// [`RELAYED_LAYER_WAIT`] after one layer of each group came; a layer that has not come by
    /// then is paused upstream, and later subscribers do not wait for it.
    pub fn expect_layers(&self, n: usize) {
        self.expected_layers.store(n, Ordering::Release);
    }

    /// Binds a source track to the room and starts pumping its packets. After
    /// [`Room::replace_sources`], a track of the same kind and codec (and simulcast RID) that
    /// waits for a new source takes this one instead, and its subscribers carry on; otherwise it
    /// is a new track. `layer` names the simulcast layer an upstream node described the track
    /// as; a publisher's simulcast track (its streams carry RIDs) becomes one room track per
    /// layer ([`crate::media::layers`]). `None` when the remote track has no SSRC or codec yet,
    /// or a replacement brings another codec than the one subscribers negotiated.
    pub async fn add_track(
        self: &Arc<Self>,
        remote: Arc<dyn TrackRemote>,
        layer: Option<Layer>,
    ) -> Option<Arc<RoomTrack>> {
        let ssrc = *remote.ssrcs().await.first()?;
        let codec = remote.codec(ssrc).await?;
        let kind = match remote.kind().await {
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        if layer.is_none()
            && let Some(rid) = remote.rid(ssrc).await
        {
            return self.add_simulcast(remote, kind, codec, ssrc, rid).await;
        }
        let bind = Bind {
            kind,
            codec,
            ssrc,
            layer,
        };
        let (track, number, replaced) = self.bind(&remote, bind)?;
        track.pump(remote, ssrc, number);
        if replaced {
            // Subscribers wait for a keyframe of the new source: ask for one now.
            track.request_keyframe().await;
        }
        Some(track)
    }

    /// A publisher's simulcast track: one room track per layer, bound as each layer's stream
    /// opens, and one task that reads them all and hands each packet to its layer by SSRC.
    async fn add_simulcast(
        self: &Arc<Self>,
        remote: Arc<dyn TrackRemote>,
        kind: MediaKind,
        codec: RTCRtpCodec,
        ssrc: u32,
        rid: String,
    ) -> Option<Arc<RoomTrack>> {
        let group = self.next_group.fetch_add(1, Ordering::Relaxed);
        let bind = Bind {
            kind,
            codec: codec.clone(),
            ssrc,
            layer: Some(Layer { group, rid }),
        };
        let (first, number, replaced) = self.bind(&remote, bind)?;
        // A resumed group keeps the number its subscribers know.
        let group = first.layer.as_ref().map_or(group, |l| l.group);
        if replaced {
            first.request_keyframe().await;
        }
        let room = self.clone();
        let reader = remote.clone();
        let mut layers = vec![(ssrc, first.clone(), number)];
        tokio::spawn(async move {
            while let Some(event) = reader.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        let ssrc = packet.header.ssrc;
                        // At most a handful of layers: a scan, no map.
                        if let Some((_, track, number)) = layers.iter().find(|l| l.0 == ssrc) {
                            track.on_packet(packet, ssrc, *number);
                        }
                    }
                    TrackRemoteEvent::OnOpen(init) => {
                        let Some(rid) = init.rid.map(|r| r.to_string()) else {
                            continue;
                        };
                        // One track per RID: a stream that repeats one (a repair stream) is
                        // not a layer.
                        if layers.iter().any(|l| {
                            l.0 == init.ssrc || l.1.layer.as_ref().is_some_and(|x| x.rid == rid)
                        }) {
                            continue;
                        }
                        let bind = Bind {
                            kind,
                            codec: codec.clone(),
                            ssrc: init.ssrc,
                            layer: Some(Layer { group, rid }),
                        };
                        if let Some((track, number, replaced)) = room.bind(&reader, bind) {
                            if replaced {
                                track.request_keyframe().await;
                            }
                            layers.push((init.ssrc, track, number));
                        }
                    }
                    TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
                    _ => {}
                }
            }
            tracing::debug!(room = %room.id, group, "simulcast source ended");
        });
        Some(first)
    }

    /// Binds one source stream: to a track waiting for a new source of its kind, codec and RID
    /// (returned with `true`), or to a new track. Returns the track and the source's number; the
    /// caller reads the stream. Only the first layer of a group counts as a bound track for
    /// [`Room::ready`]: the publisher's offer counts sections, not layers.
    fn bind(
        &self,
        remote: &Arc<dyn TrackRemote>,
        bind: Bind,
    ) -> Option<(Arc<RoomTrack>, u32, bool)> {
        let Bind {
            kind,
            codec,
            ssrc,
            layer,
        } = bind;
        let rid = layer.as_ref().map(|l| l.rid.as_str());
        let mut tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = waiting
            .iter()
            .position(|t| t.kind == kind && t.layer.as_ref().map(|l| l.rid.as_str()) == rid)
        {
            let track = waiting.remove(pos);
            if !same_codec(&track.codec, &codec) {
                tracing::error!(
                    room = %self.id, track = track.index, was = %track.codec.mime_type,
                    now = %codec.mime_type, "a new source brings another codec; not bound"
                );
                return None;
            }
            let number = track.rebind(remote.clone(), ssrc);
            if waiting.is_empty() {
                self.orphaned.store(false, Ordering::Release);
            }
            tracing::info!(room = %self.id, track = track.index, kind = kind.as_str(), ssrc, "track source replaced");
            return Some((track, number, true));
        }
        // Only the first layer of a group counts as a bound track for `ready`.
        let first_of_group = layer.as_ref().is_none_or(|l| {
            !tracks
                .iter()
                .any(|t| t.layer.as_ref().is_some_and(|x| x.group == l.group))
        });
        let codec_kind = Codec::from_mime(&codec.mime_type);
        let track = Arc::new(RoomTrack {
            index: tracks.len(),
            kind,
            layer,
            codec_kind,
            codec,
            source: Mutex::new(Source {
                remote: remote.clone(),
                ssrc,
            }),
            fanout: Mutex::new(Fanout::new(tracks.len(), codec_kind)),
            limiter: Mutex::new(KeyframeLimiter::new(KEYFRAME_REQUEST_INTERVAL)),
            epoch: Instant::now(),
            stats: TrackStats::default(),
            traffic: self.traffic.clone(),
            upstream: upstream::UpstreamPause::new(self.demand.clone()),
        });
        tracks.push(track.clone());
        drop(waiting);
        drop(tracks);
        tracing::info!(
            room = %self.id, track = track.index, kind = kind.as_str(),
            codec = %track.codec.mime_type, ssrc,
            rid = track.layer.as_ref().map(|l| l.rid.as_str()), "track bound"
        );
        if track.layer.is_some() {
            self.opened_layers.fetch_add(1, Ordering::AcqRel);
        }
        // Wakes `ready` for a layer too; only the first of a group counts as a track.
        self.bound
            .send_modify(|n| *n += usize::from(first_of_group));
        if self.relayed && self.groups_bound() {
            self.groups_bound_at.get_or_init(tokio::time::Instant::now);
        }
        Some((track, 0, false))
    }

    /// The room's sources are gone (an upstream link broke, a publisher vanished) and new ones
    /// will be bound by [`Room::add_track`]: until then every track waits for one, and its
    /// subscribers stay attached. Returns the number of this outage, for [`Room::orphaned_since`].
    pub fn replace_sources(&self) -> u64 {
        let tracks = self.tracks();
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = tracks;
        self.orphaned.store(true, Ordering::Release);
        self.outages.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// True while the tracks wait for new sources since outage `outage` (no newer outage and
    /// no new source since).
    pub fn orphaned_since(&self, outage: u64) -> bool {
        self.orphaned.load(Ordering::Acquire) && self.outages.load(Ordering::Acquire) == outage
    }

    /// A new source is coming for an orphaned room (a publisher came back): true for the one
    /// caller that gets to bind it, false when the room is not orphaned.
    pub fn resume(&self) -> bool {
        self.orphaned
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Source outages so far (the number [`Room::replace_sources`] returned last).
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Acquire)
    }

    /// True while the tracks wait for new sources.
    pub fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::Acquire)
    }

    /// The tracks bound so far.
    pub fn tracks(&self) -> Vec<Arc<RoomTrack>> {
        self.tracks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until every expected track is bound, the room ends, or `timeout` passes. Returns the
    /// tracks bound by then.
    pub async fn ready(&self, timeout: Duration) -> Result<Vec<Arc<RoomTrack>>, EndReason> {
        let mut rx = self.bound.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                if self.groups_bound() {
                    // Early on, wait for the layers too, so that a relay link made now
                    // carries them all.
                    let layers = self.opened_layers.load(Ordering::Acquire)
                        >= self.expected_layers.load(Ordering::Acquire);
                    let layers_by = self.layers_by();
                    if layers || tokio::time::Instant::now() >= layers_by {
                        return;
                    }
                    tokio::select! {
                        changed = rx.changed() => if changed.is_err() { return },
                        _ = tokio::time::sleep_until(layers_by) => return,
                    }
                    continue;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = self.ended.cancelled() => {}
            _ = tokio::time::sleep(timeout) => {}
        }
        if let Some(reason) = self.end_reason() {
            return Err(reason);
        }
        Ok(self.tracks())
    }

    /// Every expected track is bound (one layer of each simulcast group).
    fn groups_bound(&self) -> bool {
        self.expected_known.load(Ordering::Acquire)
            && *self.bound.borrow() >= self.expected_tracks.load(Ordering::Acquire)
    }

    /// Until when [`Room::ready`] waits for layers that have not opened: see
    /// [`Room::expect_layers`].
    fn layers_by(&self) -> tokio::time::Instant {
        let early = tokio::time::Instant::from_std(self.created + LAYER_WAIT);
        if self.relayed {
            let groups = *self.groups_bound_at.get_or_init(tokio::time::Instant::now);
            early.max(groups + RELAYED_LAYER_WAIT)
        } else {
            early
        }
    }

    /// Attaches a subscriber to the given tracks. The cached keyframe of each video track is
    /// queued first; tracks that have none get a keyframe request upstream.
    pub async fn subscribe(self: &Arc<Self>, tracks: &[Arc<RoomTrack>]) -> Subscription {
        let id = next_subscriber_id();
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let resume = tx.downgrade();
        let mut starving = Vec::new();
        for track in tracks {
            if track.attach(id, &tx) {
                starving.push(track.clone());
            }
        }
        for track in starving {
            track.request_keyframe().await;
        }
        Subscription {
            room: self.clone(),
            tracks: tracks.to_vec(),
            id,
            rx,
            resume,
        }
    }

    /// Ends the room: every session attached to it closes.
    pub fn end(&self, reason: EndReason) {
        {
            let mut r = self.end_reason.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_none() {
                tracing::info!(room = %self.id, reason = %reason.message, "room ended");
                *r = Some(reason);
            }
        }
        self.ended.cancel();
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    pub fn end_reason(&self) -> Option<EndReason> {
        self.end_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves when the room ends.
    pub fn ended(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.ended.cancelled()
    }

    /// A token cancelled when the room ends.
    pub fn end_token(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Counts a session that is attaching; see [`Room::release`].
    pub fn reserve(&self) {
        self.reservations.fetch_add(1, Ordering::AcqRel);
    }

    /// Un-counts a session; returns how many remain.
    pub fn release(&self) -> usize {
        self.reservations
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1)
    }

    /// Sessions attached or attaching, and holds.
    pub fn reservations(&self) -> usize {
        self.reservations.load(Ordering::Acquire)
    }

    /// Marks one reservation taken as a hold: for a session to come (see [`Room::take_hold`]).
    pub fn mark_hold(&self) {
        self.holds.fetch_add(1, Ordering::AcqRel);
    }

    /// Un-counts one hold, if any is left (its reservation is then the caller's to release):
    /// each hold ends once, at the session it was for or at its deadline, whichever is first.
    pub fn take_hold(&self) -> bool {
        self.holds
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| h.checked_sub(1))
            .is_ok()
    }

    /// Sessions attached or attaching: the reservations that are not holds.
    pub fn sessions(&self) -> usize {
        self.reservations()
            .saturating_sub(self.holds.load(Ordering::Acquire))
    }
}

pub(crate) fn same_codec(a: &RTCRtpCodec, b: &RTCRtpCodec) -> bool {
    a.mime_type.eq_ignore_ascii_case(&b.mime_type) && a.clock_rate == b.clock_rate
}

/// Subscriber ids are unique in the process, so one queue can carry several rooms' packets.
fn next_subscriber_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A track feeding a shared queue (see [`RoomTrack::feed`]). Dropping it detaches.
#[derive(Debug)]
pub struct TrackFeed {
    track: Arc<RoomTrack>,
    pub id: u64,
}

impl TrackFeed {
    pub fn track(&self) -> &Arc<RoomTrack> {
        &self.track
    }
}

impl Drop for TrackFeed {
    fn drop(&mut self) {
        self.track.detach(self.id);
    }
}

/// One subscriber's view of a room: the queue its packets arrive on. Dropping it detaches.
pub struct Subscription {
    room: Arc<Room>,
    tracks: Vec<Arc<RoomTrack>>,
    id: u64,
    pub rx: mpsc::Receiver<Outgoing>,
    /// The queue's sending end, for a track that resumes (weak: the queue closes when no
    /// track holds it).
    resume: mpsc::WeakSender<Outgoing>,
}

impl Subscription {
    /// Stops queueing `track`'s packets (one of its tracks) until [`Subscription::resume`].
    pub fn pause(&mut self, track: &Arc<RoomTrack>) {
        track.detach(self.id);
    }

    /// Queues `track`'s live packets again after [`Subscription::pause`]; the caller asks for
    /// a keyframe where its stream can start again.
    pub fn resume(&mut self, track: &Arc<RoomTrack>) {
        if let Some(tx) = self.resume.upgrade() {
            track.attach_live(self.id, &tx);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("room", &self.room.id)
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for track in &self.tracks {
            track.detach(self.id);
        }
    }
}

#[cfg(test)]
mod tests;
pub mod upstream;
