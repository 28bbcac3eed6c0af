//! A viewer: one real WebRTC peer that watches a room by WHEP and counts what it receives.
//!
//! Light by design, so thousands fit in one process: no decoding, a few counters and a
//! [`SeqTracker`] per track, latency samples batched into shared sharded histograms, one atomic
//! add per packet for the progress line.
//!
//! "Live" packets: a joining viewer is first sent the SFU's cached keyframe and what followed
//! it, packets the publisher sent before the viewer existed. Their "latency" would measure the
//! join, not the path, so latency and skew count only packets sent after this viewer's first
//! packet arrived; join time measures the join.
//!
//! "Settled" packets: live packets sent [`SETTLE`] or more after the viewer's first packet
//! arrived. A joining viewer's first live packets queue behind its catch-up at the SFU, so their
//! latency measures the join too; settled latency is what a viewer sees once it is watching,
//! including while others join.

use crate::marker::now_ns;
use crate::payload::{self, PayloadFormat};
use crate::peer::{Peer, PeerError};
use crate::publisher::PublisherStats;
use crate::seq::{Arrival, SeqTracker};
use crate::signal::{self, SignalError};
use crate::stats::{ShardedHistogram, SkewTable};
use cascade_core::media::forward::{Codec, keyframe_start};
use cascade_core::rtc::events::gone;
use cascade_core::rtc::pc::PcFactory;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long after its first packet a viewer counts as settled (module docs).
pub const SETTLE: Duration = Duration::from_secs(1);
/// Latency samples a track reader keeps before adding them to the shared histogram.
const LATENCY_BATCH: usize = 32;

/// Counters over all viewers, read by the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicU64,
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    /// Connected, then lost the connection before the end.
    pub disconnected: AtomicU64,
    pub packets: AtomicU64,
    /// Video datagrams dropped on purpose on arrival (`--viewer-loss`).
    pub induced_drops: AtomicU64,
    /// RTCP NACK packets light viewers sent themselves (`--viewer-own-srtp`).
    pub nacks_sent: AtomicU64,
}

/// What every viewer shares.
pub struct ViewerContext {
    pub factory: PcFactory,
    /// `pc` viewers connect by ICE-TCP only (`--viewer-transport tcp`).
    pub tcp: bool,
    pub client: reqwest::Client,
    pub room: String,
    pub publisher: Arc<PublisherStats>,
    pub counters: Counters,
    /// Publisher-to-viewer latency of live packets, microseconds.
    pub latency: ShardedHistogram,
    /// The same, of settled packets only (module docs).
    pub latency_settled: ShardedHistogram,
    /// WHEP POST to first keyframe packet, microseconds.
    pub join: ShardedHistogram,
    /// Where a join's time goes: WHEP POST to the answer (the node's negotiation and the HTTP
    /// round trip), and to the connection up (ICE and DTLS after it), microseconds.
    pub join_answer: ShardedHistogram,
    pub join_connected: ShardedHistogram,
    pub skew_video: SkewTable,
    pub skew_audio: SkewTable,
    /// The end of the measurement: viewers stop counting, then leave.
    pub stop: CancellationToken,
    /// Fraction of video datagrams a light viewer drops on arrival (`--viewer-loss`).
    pub loss: f64,
    /// No drops after this (the end of the measurement, less the time a NACK needs).
    pub loss_until: std::time::Instant,
    /// Light viewers' sockets ask for UDP GRO (`--viewer-gro`).
    pub gro: bool,
    /// Light viewers decrypt their media and send their NACKs themselves (`--viewer-own-srtp`).
    pub own_srtp: bool,
    /// Such viewers send their own TWCC feedback (`--viewer-twcc`).
    pub twcc: bool,
    /// How often a connecting viewer's ICE agent checks (`--viewer-ice-check-ms`).
    pub ice_check: std::time::Duration,
}

impl std::fmt::Debug for ViewerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerContext")
            .field("room", &self.room)
            .field("counters", &self.counters)
            .finish()
    }
}

/// What one viewer saw on one track.
#[derive(Debug, Clone, Default)]
pub struct TrackResult {
    /// Packets that arrived, duplicates included.
    pub packets: u64,
    pub seq: SeqTracker,
    /// Lowest publisher index received.
    pub min_index: Option<u32>,
    /// Highest publisher index received.
    pub max_index: Option<u32>,
    /// Packets that start a keyframe.
    pub keyframes: u64,
    /// Packets whose marker could not be read.
    pub no_marker: u64,
    /// Packets counted for latency (sent after this viewer's first arrival).
    pub live: u64,
    /// When the last new packet arrived ([`now_ns`] time).
    pub last_arrival_ns: Option<u64>,
    /// The longest time between two new packets, ns: a stall (an upstream's failover, a
    /// freeze) shows here.
    pub longest_gap_ns: u64,
}

/// What one viewer saw.
#[derive(Debug, Clone)]
pub struct ViewerResult {
    pub id: usize,
    pub edge: String,
    pub connected: bool,
    /// Why it failed, as a short kind for counting.
    pub error: Option<String>,
    /// The full error.
    pub error_detail: Option<String>,
    pub disconnected: bool,
    pub join_us: Option<u64>,
    pub redirects: usize,
    /// The publisher's next packet indexes when this viewer connected: where its streams
    /// should start at the latest.
    pub index_at_connect: (u32, u32),
    pub video: Option<TrackResult>,
    pub audio: Option<TrackResult>,
}

impl ViewerResult {
    /// A viewer that has not connected (yet).
    pub fn new(id: usize, edge: &reqwest::Url) -> Self {
        Self {
            id,
            edge: edge.to_string(),
            connected: false,
            error: None,
            error_detail: None,
            disconnected: false,
            join_us: None,
            redirects: 0,
            index_at_connect: (0, 0),
            video: None,
            audio: None,
        }
    }
}

/// One viewer's clock, shared by its tracks: when the WHEP POST started, when the first packet
/// (on any track) and the first keyframe arrived. Atomics, because the `pc` engine reads each
/// track on its own task; uncontended in the `rtc` engine.
#[derive(Debug)]
pub struct ViewerClock {
    pub id: usize,
    post_start_ns: u64,
    /// Arrival time of the first packet on any track; 0 until then.
    first_arrival_ns: AtomicU64,
    /// Join time in microseconds + 1; 0 until the first keyframe.
    join_us: AtomicU64,
}

impl ViewerClock {
    pub fn new(id: usize, post_start_ns: u64) -> Self {
        Self {
            id,
            post_start_ns,
            first_arrival_ns: AtomicU64::new(0),
            join_us: AtomicU64::new(0),
        }
    }

    /// Notes an arrival at `now`; returns when this viewer's first packet arrived (packets sent
    /// from then on are live).
    fn live_from(&self, now: u64) -> u64 {
        match self.first_arrival_ns.load(Ordering::Relaxed) {
            0 => match self.first_arrival_ns.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => now,
                Err(earlier) => earlier,
            },
            earlier => earlier,
        }
    }

    /// Notes a keyframe arriving at `now`; returns the join time in microseconds the first time.
    fn first_keyframe(&self, now: u64) -> Option<u64> {
        if self.join_us.load(Ordering::Relaxed) != 0 {
            return None;
        }
        let join_us = now.saturating_sub(self.post_start_ns) / 1000;
        self.join_us
            .compare_exchange(0, join_us + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
            .then_some(join_us)
    }

    /// Microseconds from the WHEP POST to `now` ([`now_ns`] time).
    pub fn since_post_us(&self, now: u64) -> u64 {
        now.saturating_sub(self.post_start_ns) / 1000
    }

    /// WHEP POST to the first keyframe, microseconds.
    pub fn join_us(&self) -> Option<u64> {
        self.join_us.load(Ordering::Relaxed).checked_sub(1)
    }
}

/// What one viewer counts on one track, packet by packet; both engines feed it the same way.
#[derive(Debug)]
pub struct TrackCounter {
    kind: RtpCodecKind,
    format: Option<PayloadFormat>,
    codec: Codec,
    out: TrackResult,
    /// Latency samples on their way to `ViewerContext::latency` and `latency_settled`.
    latencies: Samples,
    settled_latencies: Samples,
}

/// Latency samples kept before adding them to a shared histogram, [`LATENCY_BATCH`] at a time.
#[derive(Debug)]
struct Samples(Vec<u64>);

impl Samples {
    fn new() -> Self {
        Self(Vec::with_capacity(LATENCY_BATCH))
    }

    fn push(&mut self, into: &ShardedHistogram, key: usize, us: u64) {
        self.0.push(us);
        if self.0.len() == LATENCY_BATCH {
            self.flush(into, key);
        }
    }

    fn flush(&mut self, into: &ShardedHistogram, key: usize) {
        into.record_all(key, &self.0);
        self.0.clear();
    }
}

impl TrackCounter {
    /// A counter for a track of `kind` whose codec has MIME type `mime`.
    pub fn new(kind: RtpCodecKind, mime: &str) -> Self {
        let format = if mime.eq_ignore_ascii_case(MIME_TYPE_VP8) {
            Some(PayloadFormat::Vp8)
        } else if mime.eq_ignore_ascii_case(MIME_TYPE_OPUS) {
            Some(PayloadFormat::Opus)
        } else {
            None
        };
        Self {
            kind,
            format,
            codec: Codec::from_mime(mime),
            out: TrackResult::default(),
            latencies: Samples::new(),
            settled_latencies: Samples::new(),
        }
    }

    pub fn kind(&self) -> RtpCodecKind {
        self.kind
    }

    /// The sequence numbers received so far.
    pub fn seq(&self) -> &SeqTracker {
        &self.out.seq
    }

    /// Counts one decrypted RTP packet that arrived at `now` ([`now_ns`] time). Allocates
    /// nothing.
    pub fn packet(
        &mut self,
        ctx: &ViewerContext,
        clock: &ViewerClock,
        now: u64,
        sequence_number: u16,
        payload: &[u8],
    ) {
        let out = &mut self.out;
        out.packets += 1;
        if out.seq.push(sequence_number) == Arrival::Duplicate {
            return;
        }
        if let Some(last) = out.last_arrival_ns {
            out.longest_gap_ns = out.longest_gap_ns.max(now.saturating_sub(last));
        }
        out.last_arrival_ns = Some(now);
        let live_from = clock.live_from(now);
        let is_video = self.kind == RtpCodecKind::Video;
        let keyframe = is_video && keyframe_start(self.codec, payload);
        if keyframe {
            out.keyframes += 1;
            if let Some(join_us) = clock.first_keyframe(now) {
                ctx.join.record(clock.id, join_us);
            }
        }
        match self.format.and_then(|f| payload::find(f, payload)) {
            Some(m) => {
                out.min_index = Some(out.min_index.map_or(m.index, |i| i.min(m.index)));
                out.max_index = Some(out.max_index.map_or(m.index, |i| i.max(m.index)));
                if m.sent_ns >= live_from {
                    out.live += 1;
                    let latency_us = now.saturating_sub(m.sent_ns) / 1000;
                    self.latencies.push(&ctx.latency, clock.id, latency_us);
                    if m.sent_ns >= live_from + SETTLE.as_nanos() as u64 {
                        self.settled_latencies
                            .push(&ctx.latency_settled, clock.id, latency_us);
                    }
                    let skew = if is_video {
                        &ctx.skew_video
                    } else {
                        &ctx.skew_audio
                    };
                    skew.record(m.index, now);
                }
            }
            None => out.no_marker += 1,
        }
    }

    /// The track's result, once its last latency samples are in the shared histogram.
    pub fn finish(mut self, ctx: &ViewerContext, clock: &ViewerClock) -> TrackResult {
        self.latencies.flush(&ctx.latency, clock.id);
        self.settled_latencies.flush(&ctx.latency_settled, clock.id);
        self.out
    }
}

/// Why a viewer did not connect.
#[derive(Debug)]
pub(crate) enum SetupError {
    Peer(PeerError),
    Signal(SignalError),
    Stopped,
}

impl SetupError {
    pub(crate) fn kind(&self) -> String {
        match self {
            SetupError::Peer(e) => e.kind(),
            SetupError::Signal(e) => format!("WHEP: {}", e.kind()),
            SetupError::Stopped => "not connected before the end of the run".into(),
        }
    }

    pub(crate) fn detail(&self) -> String {
        match self {
            SetupError::Peer(e) => e.to_string(),
            SetupError::Signal(e) => e.to_string(),
            SetupError::Stopped => self.kind(),
        }
    }
}

/// Runs viewer `id` against `edge` (base URL) until `ctx.stop`, then leaves (WHEP DELETE,
/// close) and returns what it saw.
pub async fn run_viewer(ctx: Arc<ViewerContext>, id: usize, edge: reqwest::Url) -> ViewerResult {
    ctx.counters.started.fetch_add(1, Ordering::Relaxed);
    let mut result = ViewerResult::new(id, &edge);
    let mut location = None;
    let peer = tokio::select! {
        p = Peer::new(&ctx.factory) => p.map_err(SetupError::Peer),
        _ = ctx.stop.cancelled() => Err(SetupError::Stopped),
    };
    let outcome = match peer {
        Ok(mut peer) => {
            let negotiated = tokio::select! {
                r = negotiate(&ctx, &mut peer, &edge, &mut location, &mut result) => r,
                _ = ctx.stop.cancelled() => Err(SetupError::Stopped),
            };
            match negotiated {
                Ok(post_start_ns) => {
                    result.connected = true;
                    ctx.counters.connected.fetch_add(1, Ordering::Relaxed);
                    result.index_at_connect = (
                        ctx.publisher.video_next.load(Ordering::Relaxed),
                        ctx.publisher.audio_next.load(Ordering::Relaxed),
                    );
                    watch(&ctx, &mut peer, post_start_ns, &mut result).await;
                    Ok(peer)
                }
                Err(e) => Err((e, Some(peer))),
            }
        }
        Err(e) => Err((e, None)),
    };
    let peer = match outcome {
        Ok(peer) => Some(peer),
        Err((e, peer)) => {
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            result.error = Some(e.kind());
            result.error_detail = Some(e.detail());
            peer
        }
    };
    if let Some(location) = location {
        let _ = signal::delete(&ctx.client, &location).await;
    }
    if let Some(peer) = peer {
        let _ = peer.pc.close().await;
    }
    result
}

/// Offers, POSTs to the edge's WHEP endpoint, applies the answer and waits for the connection.
/// Returns when the POST started; `location` is set as soon as the edge accepted.
async fn negotiate(
    ctx: &ViewerContext,
    peer: &mut Peer,
    edge: &reqwest::Url,
    location: &mut Option<reqwest::Url>,
    result: &mut ViewerResult,
) -> Result<u64, SetupError> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        peer.pc
            .add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| SetupError::Peer(PeerError::webrtc("add_transceiver")(e)))?;
    }
    let offer = peer.offer(GATHER_TIMEOUT).await.map_err(SetupError::Peer)?;
    let (answer, post_start_ns) = post_whep(ctx, edge, &offer, location, result).await?;
    if ctx.tcp {
        peer.apply_answer_tcp(answer).await
    } else {
        peer.apply_answer(answer).await
    }
    .map_err(SetupError::Peer)?;
    peer.connected(CONNECT_TIMEOUT)
        .await
        .map_err(SetupError::Peer)?;
    ctx.join_connected
        .record(result.id, now_ns().saturating_sub(post_start_ns) / 1000);
    Ok(post_start_ns)
}

/// `sdp` without its RTX payload types (RFC 4588): our viewers repair loss by NACK and count
/// what arrives on the media SSRC, so they are not to be sent retransmissions on a stream of
/// their own.
pub(crate) fn without_rtx(sdp: &str) -> String {
    let rtx: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter(|l| l.to_ascii_lowercase().contains(" rtx/"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end();
        let names_rtx = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"].iter().any(|prefix| {
            body.strip_prefix(prefix)
                .and_then(|rest| rest.split(' ').next())
                .is_some_and(|pt| rtx.contains(&pt))
        });
        if names_rtx {
            continue;
        }
        if body.starts_with("m=video ") {
            let kept: Vec<&str> = body
                .split(' ')
                .enumerate()
                .filter(|(i, f)| *i < 3 || !rtx.contains(f))
                .map(|(_, f)| f)
                .collect();
            out.push_str(&kept.join(" "));
            out.push_str(&line[body.len()..]);
            continue;
        }
        out.push_str(line);
    }
    out
}

/// POSTs `offer` to the edge's WHEP endpoint for the room (either engine). Notes the redirects
/// followed in `result` and sets `location` as soon as the edge accepted; returns the SDP answer
/// and when the POST started.
pub(crate) async fn post_whep(
    ctx: &ViewerContext,
    edge: &reqwest::Url,
    offer: &str,
    location: &mut Option<reqwest::Url>,
    result: &mut ViewerResult,
) -> Result<(String, u64), SetupError> {
    let url = whep_url(ctx, edge)?;
    let post_start_ns = now_ns();
    let offer = without_rtx(offer);
    let accepted = signal::post_offer(&ctx.client, url, &offer)
        .await
        .map_err(SetupError::Signal)?;
    result.redirects = accepted.redirects;
    *location = Some(accepted.location);
    ctx.join_answer
        .record(result.id, now_ns().saturating_sub(post_start_ns) / 1000);
    Ok((accepted.answer, post_start_ns))
}

/// The edge's WHEP endpoint for the room, with the edge URL's query string (a placement hint,
/// `?region=eu-west&zone=a`, or a layer, `?layer=low`).
fn whep_url(ctx: &ViewerContext, edge: &reqwest::Url) -> Result<reqwest::Url, SetupError> {
    let mut url = edge.join(&format!("whep/{}", ctx.room)).map_err(|e| {
        SetupError::Signal(SignalError::Url {
            url: edge.to_string(),
            reason: e.to_string(),
        })
    })?;
    url.set_query(edge.query());
    Ok(url)
}

/// Receives until `ctx.stop`: a reader task per track, the connection watched for failure.
async fn watch(
    ctx: &Arc<ViewerContext>,
    peer: &mut Peer,
    post_start_ns: u64,
    result: &mut ViewerResult,
) {
    let clock = Arc::new(ViewerClock::new(result.id, post_start_ns));
    let mut readers = Vec::new();
    let mut state = peer.state.clone();
    let mut watching_state = true;
    loop {
        tokio::select! {
            Some(track) = peer.tracks.recv() => {
                readers.push(tokio::spawn(read_track(ctx.clone(), clock.clone(), track)));
            }
            _ = gone(&mut state), if watching_state => {
                watching_state = false;
                result.disconnected = true;
                ctx.counters.disconnected.fetch_add(1, Ordering::Relaxed);
            }
            _ = ctx.stop.cancelled() => break,
        }
    }
    for reader in readers {
        if let Ok((kind, track)) = reader.await {
            match kind {
                RtpCodecKind::Video => result.video = Some(track),
                _ => result.audio = Some(track),
            }
        }
    }
    result.join_us = clock.join_us();
}

async fn read_track(
    ctx: Arc<ViewerContext>,
    clock: Arc<ViewerClock>,
    track: Arc<dyn TrackRemote>,
) -> (RtpCodecKind, TrackResult) {
    let kind = track.kind().await;
    let mime = match track.ssrcs().await.first() {
        Some(&ssrc) => track
            .codec(ssrc)
            .await
            .map(|c| c.mime_type)
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut counter = TrackCounter::new(kind, &mime);
    loop {
        let event = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => break,
            e = track.poll() => e,
        };
        let packet = match event {
            Some(TrackRemoteEvent::OnRtpPacket(p)) => p,
            Some(TrackRemoteEvent::OnEnded) | None => break,
            Some(_) => continue,
        };
        ctx.counters.packets.fetch_add(1, Ordering::Relaxed);
        counter.packet(
            &ctx,
            &clock,
            now_ns(),
            packet.header.sequence_number,
            &packet.payload,
        );
    }
    (kind, counter.finish(&ctx, &clock))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_offer_without_rtx_keeps_everything_else() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\na=rtpmap:96 VP8/90000\r\n\
                   a=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
                   a=rtcp-fb:97 nack\r\na=rtpmap:98 H264/90000\r\n";
        assert_eq!(
            super::without_rtx(sdp),
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 98\r\na=rtpmap:96 VP8/90000\r\n\
             a=rtcp-fb:96 nack\r\na=rtpmap:98 H264/90000\r\n"
        );
    }
}
