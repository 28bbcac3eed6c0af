//! The publisher: one real WebRTC peer that publishes synthetic VP8 and Opus to an origin by
//! WHIP, paced by a timer, answering keyframe requests (PLI/FIR) with a keyframe on the next
//! frame.
//!
//! It runs on its own thread with its own single-threaded runtime (its peer connection's driver
//! included), so thousands of viewer tasks on the main runtime cannot delay its pacing: what
//! the viewers measure is the SFU's delay plus their own, not the publisher's.

use crate::marker::{MARKER_LEN, Marker, OPUS_TOC, now_ns};
use crate::media::{MAX_PAYLOAD, MediaPlan, OPUS_PTIME, VideoSource};
use crate::peer::{Peer, PeerError};
use crate::signal::{self, SignalError};
use crate::vp8;
use bytes::{BufMut, BytesMut};
use cascade_core::rtc::events::gone;
use cascade_core::rtc::pc::{MediaSettings, PcFactory};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::{Header, Packet};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpSender;

const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and what to publish.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub origin: reqwest::Url,
    /// Origins to publish to again, in turn (the first origin included after them), when the
    /// connection fails: the same room, continuing the broadcast. Empty: no republishing.
    pub failover: Vec<reqwest::Url>,
    pub room: String,
    pub plan: MediaPlan,
    pub bind_ip: IpAddr,
    /// Bearer token for the WHIP requests (`--token`).
    pub token: Option<String>,
    /// Video in three simulcast layers ([`LAYERS`]) instead of one.
    pub simulcast: bool,
}

/// The simulcast layers (`--simulcast`), lowest first: RID and share of the video bitrate in
/// percent (Chromium's for a 1280x720 camera: 200 and 700 kbit/s below 2.5 Mbit/s). The top
/// layer is the stream of the plan, the one viewers' markers and counters follow.
pub const LAYERS: [(&str, usize); 3] = [("l", 8), ("m", 28), ("h", 100)];

/// Marker indexes of the lower layers' packets start here, apart from the top layer's.
const LOWER_INDEX: u32 = 1 << 31;

/// Counters the publisher updates as it sends; viewers read the next indexes.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Index the next video packet will carry = video packets sent so far.
    pub video_next: AtomicU32,
    pub audio_next: AtomicU32,
    pub frames: AtomicU64,
    pub keyframes: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub write_errors: AtomicU64,
    /// Video frames whose timer tick came more than one frame interval late.
    pub late_frames: AtomicU64,
    /// Times the publisher published again after its connection failed.
    pub republishes: AtomicU32,
    /// The video index of the first packet sent after the last republish, plus one (0: none).
    pub republished_at: AtomicU32,
}

/// What the publisher did, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherReport {
    pub video_packets: u32,
    pub audio_packets: u32,
    pub frames: u64,
    pub keyframes: u64,
    /// PLI/FIR received from the origin.
    pub keyframe_requests: u64,
    pub payload_bytes: u64,
    pub write_errors: u64,
    pub late_frames: u64,
    pub video_payload_type: u8,
    pub audio_payload_type: u8,
    /// Times it published again (to the next origin) after its connection failed.
    pub republishes: u32,
    /// The first video index sent after the last republish.
    pub republished_at_video_index: Option<u32>,
    /// Set when the publisher's connection failed during the run (and was not re-made).
    pub error: Option<String>,
}

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("WHIP: {0}")]
    Signal(#[from] SignalError),
    #[error("no negotiated payload type for {0}")]
    NoPayloadType(&'static str),
    #[error("the publisher thread could not start: {0}")]
    Thread(String),
}

/// A running publisher.
pub struct Publisher {
    pub stats: Arc<PublisherStats>,
    /// Stops sending media; the session stays up.
    stop_media: CancellationToken,
    /// Ends the WHIP session and the peer connection.
    teardown: CancellationToken,
    report: Option<oneshot::Receiver<PublisherReport>>,
    /// Fires if sending ends on its own (connection failed).
    pub ended: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Publisher {
    /// Starts the publisher thread and waits until it is connected and sending.
    pub async fn start(config: PublisherConfig) -> Result<Self, PublishError> {
        let stats = Arc::new(PublisherStats::default());
        let stop_media = CancellationToken::new();
        let teardown = CancellationToken::new();
        let ended = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (report_tx, report_rx) = oneshot::channel();
        let thread = {
            let (stats, stop_media, teardown, ended) = (
                stats.clone(),
                stop_media.clone(),
                teardown.clone(),
                ended.clone(),
            );
            std::thread::Builder::new()
                .name("publisher".into())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = ready_tx.send(Err(PublishError::Thread(e.to_string())));
                            return;
                        }
                    };
                    runtime.block_on(run(
                        config, stats, stop_media, teardown, ended, ready_tx, report_tx,
                    ));
                })
                .map_err(|e| PublishError::Thread(e.to_string()))?
        };
        match ready_rx.await {
            Ok(Ok(())) => Ok(Self {
                stats,
                stop_media,
                teardown,
                report: Some(report_rx),
                ended,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(PublishError::Thread("publisher thread ended".into())),
        }
    }

    /// Stops sending media and returns what was sent. The WHIP session stays up until
    /// [`Publisher::finish`], so viewers can drain.
    pub async fn stop_media(&mut self) -> Option<PublisherReport> {
        self.stop_media.cancel();
        match self.report.take() {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    }

    /// Ends the WHIP session (DELETE) and closes the peer connection.
    pub fn finish(mut self) {
        self.stop_media.cancel();
        self.teardown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A track sending `encodings`: an SSRC each, and a RID each where there are several.
fn track(
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    encodings: &[(u32, &str)],
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "cascade-loadgen".to_owned(),
        format!("loadgen-{kind}"),
        format!("loadgen {kind}"),
        kind,
        encodings
            .iter()
            .map(|&(ssrc, rid)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.to_owned(),
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect(),
    )))
}

/// The id the answer gave header extension `uri` (RID, RFC 8852; MID, RFC 8843), if it took
/// it.
async fn extension_id(sender: &Arc<dyn RtpSender>, uri: &str) -> Option<u8> {
    sender.get_parameters().await.ok().and_then(|p| {
        p.rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == uri)
            .and_then(|e| u8::try_from(e.id).ok())
    })
}

async fn payload_type(sender: &Arc<dyn RtpSender>, mime: &'static str) -> Option<u8> {
    sender.get_parameters().await.ok().and_then(|p| {
        p.rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            .map(|c| c.payload_type)
    })
}

/// Everything set up before media flows.
struct Session {
    peer: Peer,
    location: reqwest::Url,
    video: Arc<TrackLocalStaticRTP>,
    audio: Arc<TrackLocalStaticRTP>,
    video_ssrc: u32,
    /// With simulcast: the lower layers' SSRCs and RIDs, lowest first, and the RID extension's
    /// id (every layer's packets carry their RID).
    lower: Vec<(u32, &'static str, usize)>,
    rid_ext: Option<u8>,
    /// With simulcast: the MID extension's id and the video section's MID.
    mid_ext: Option<(u8, bytes::Bytes)>,
    audio_ssrc: u32,
    video_pt: u8,
    audio_pt: u8,
}

async fn connect(
    config: &PublisherConfig,
    origin: &reqwest::Url,
    client: &reqwest::Client,
) -> Result<Session, PublishError> {
    let factory = PcFactory::new(MediaSettings {
        bind_ip: config.bind_ip,
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: None,
    });
    let mut peer = Peer::new(&factory).await?;
    let video_ssrc = rand::random::<u32>();
    let audio_ssrc = rand::random::<u32>();
    let lower: Vec<(u32, &'static str, usize)> = if config.simulcast {
        LAYERS[..LAYERS.len() - 1]
            .iter()
            .map(|&(rid, share)| (rand::random::<u32>(), rid, share))
            .collect()
    } else {
        Vec::new()
    };
    let mut encodings: Vec<(u32, &str)> = lower.iter().map(|&(ssrc, rid, _)| (ssrc, rid)).collect();
    encodings.push((video_ssrc, if config.simulcast { LAYERS[2].0 } else { "" }));
    let video = track(
        RtpCodecKind::Video,
        RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
        &encodings,
    );
    let audio = track(
        RtpCodecKind::Audio,
        RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        &[(audio_ssrc, "")],
    );
    let mut senders = Vec::new();
    for t in [video.clone(), audio.clone()] {
        let transceiver = peer
            .pc
            .add_transceiver_from_track(
                t,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(PeerError::webrtc("add_transceiver_from_track"))?;
        senders.push(
            transceiver
                .sender()
                .await
                .map_err(PeerError::webrtc("sender"))?,
        );
    }
    let offer = peer.offer(GATHER_TIMEOUT).await?;
    // Simulcast layers' SSRCs are not in the offer: their packets name their section by MID.
    let video_mid = offer
        .split("m=video")
        .nth(1)
        .and_then(|section| section.lines().find_map(|l| l.strip_prefix("a=mid:")))
        .map(|mid| bytes::Bytes::copy_from_slice(mid.trim().as_bytes()));
    let url = origin
        .join(&format!("whip/{}", config.room))
        .map_err(|e| SignalError::Url {
            url: origin.to_string(),
            reason: e.to_string(),
        })?;
    let accepted = signal::post_offer(client, url, &offer).await?;
    let session = async {
        peer.apply_answer(accepted.answer).await?;
        peer.connected(CONNECT_TIMEOUT).await?;
        let mut pts = Vec::new();
        for (sender, mime) in senders.iter().zip([MIME_TYPE_VP8, MIME_TYPE_OPUS]) {
            let pt = match sender {
                Some(s) => payload_type(s, mime).await,
                None => None,
            };
            pts.push(pt.ok_or(PublishError::NoPayloadType(mime))?);
        }
        let (rid_ext, mid_ext) = match (&senders[0], config.simulcast) {
            (Some(s), true) => (
                extension_id(s, rtc::sdp::extmap::SDES_RTP_STREAM_ID_URI).await,
                extension_id(s, rtc::sdp::extmap::SDES_MID_URI)
                    .await
                    .zip(video_mid),
            ),
            _ => (None, None),
        };
        Ok::<_, PublishError>((pts, rid_ext, mid_ext))
    }
    .await;
    match session {
        Ok((pts, rid_ext, mid_ext)) => Ok(Session {
            peer,
            location: accepted.location,
            video,
            audio,
            video_ssrc,
            lower,
            rid_ext,
            mid_ext,
            audio_ssrc,
            video_pt: pts[0],
            audio_pt: pts[1],
        }),
        Err(e) => {
            let _ = signal::delete(client, &accepted.location).await;
            let _ = peer.pc.close().await;
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    config: PublisherConfig,
    stats: Arc<PublisherStats>,
    stop_media: CancellationToken,
    teardown: CancellationToken,
    ended: CancellationToken,
    ready: oneshot::Sender<Result<(), PublishError>>,
    report: oneshot::Sender<PublisherReport>,
) {
    let client = match signal::client(config.token.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(PublishError::Thread(e.to_string())));
            return;
        }
    };
    let mut session = match connect(&config, &config.origin, &client).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));

    // Keyframe requests from the origin: the next frame is a keyframe.
    let keyframe_wanted = Arc::new(AtomicBool::new(false));
    // Where to publish again when the connection fails: the failover origins, then the first.
    let mut next_origins = config
        .failover
        .iter()
        .chain(std::iter::once(&config.origin))
        .cycle()
        .take(if config.failover.is_empty() {
            0
        } else {
            usize::MAX
        });
    let error = loop {
        let feedback_stop = teardown.child_token();
        let feedback = spawn_feedback(&session, &keyframe_wanted, &stats, &feedback_stop);
        let mut state = session.peer.state.clone();
        let failed = tokio::select! {
            _ = send_media(&session, &config.plan, &stats, &keyframe_wanted, &stop_media) => false,
            _ = gone(&mut state) => true,
        };
        feedback_stop.cancel();
        let _ = feedback.await;
        if !failed {
            break None;
        }
        // The origin is gone or unreachable: no DELETE (a live origin would end the room).
        let _ = session.peer.pc.close().await;
        let mut again = None;
        while !stop_media.is_cancelled() {
            let Some(origin) = next_origins.next() else {
                break;
            };
            match connect(&config, origin, &client).await {
                Ok(s) => {
                    again = Some(s);
                    break;
                }
                Err(e) => {
                    eprintln!("republishing to {origin} failed ({e}); trying the next origin");
                    tokio::select! {
                        _ = tokio::time::sleep(REPUBLISH_RETRY) => {}
                        _ = stop_media.cancelled() => {}
                    }
                }
            }
        }
        match again {
            Some(s) => {
                session = s;
                stats.republishes.fetch_add(1, Ordering::Relaxed);
                let next = stats.video_next.load(Ordering::Relaxed);
                stats.republished_at.store(next + 1, Ordering::Relaxed);
                // The new session's viewers start from a keyframe.
                keyframe_wanted.store(true, Ordering::Relaxed);
            }
            None => break Some("the publisher's peer connection failed".to_owned()),
        }
    };
    if error.is_some() {
        ended.cancel();
    }
    let republished_at = stats.republished_at.load(Ordering::Relaxed);
    let _ = report.send(PublisherReport {
        video_packets: stats.video_next.load(Ordering::Relaxed),
        audio_packets: stats.audio_next.load(Ordering::Relaxed),
        frames: stats.frames.load(Ordering::Relaxed),
        keyframes: stats.keyframes.load(Ordering::Relaxed),
        keyframe_requests: stats.keyframe_requests.load(Ordering::Relaxed),
        payload_bytes: stats.payload_bytes.load(Ordering::Relaxed),
        write_errors: stats.write_errors.load(Ordering::Relaxed),
        late_frames: stats.late_frames.load(Ordering::Relaxed),
        video_payload_type: session.video_pt,
        audio_payload_type: session.audio_pt,
        republishes: stats.republishes.load(Ordering::Relaxed),
        republished_at_video_index: republished_at.checked_sub(1),
        error,
    });
    teardown.cancelled().await;
    let _ = signal::delete(&client, &session.location).await;
    let _ = session.peer.pc.close().await;
}

/// How long the publisher waits before trying the next origin.
const REPUBLISH_RETRY: Duration = Duration::from_millis(250);

/// Keyframe requests (PLI/FIR) from the origin: the next frame is a keyframe.
fn spawn_feedback(
    session: &Session,
    wanted: &Arc<AtomicBool>,
    stats: &Arc<PublisherStats>,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (video, wanted, stats, stop) = (
        session.video.clone(),
        wanted.clone(),
        stats.clone(),
        stop.clone(),
    );
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                e = video.poll() => e,
                _ = stop.cancelled() => None,
            };
            match event {
                Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                    let asks = packets.iter().any(|p| {
                        let any = p.as_any();
                        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                    });
                    if asks {
                        stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        wanted.store(true, Ordering::Relaxed);
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    })
}

/// Sends until `stop`: a frame every frame interval, an Opus packet every 20 ms. A frame's
/// packets are written back to back, and `stop` is only looked at between ticks, so the last
/// frame is never cut in half and the sent counters match what went out.
async fn send_media(
    session: &Session,
    plan: &MediaPlan,
    stats: &PublisherStats,
    keyframe_wanted: &AtomicBool,
    stop: &CancellationToken,
) {
    let mut source = VideoSource::new(plan.clone());
    // The lower simulcast layers: a source, sequence number and timestamp each.
    let mut lower: Vec<_> = session
        .lower
        .iter()
        .map(|&(ssrc, rid, share)| {
            let source = VideoSource::new(plan.scaled(share));
            (
                ssrc,
                rid,
                source,
                rand::random::<u16>(),
                rand::random::<u32>(),
            )
        })
        .collect();
    let mut lower_index = LOWER_INDEX;
    let top_rid = if lower.is_empty() { "" } else { LAYERS[2].0 };
    let frame_interval = plan.frame_interval();
    let mut video_tick = tokio::time::interval(frame_interval);
    let mut audio_tick = tokio::time::interval(OPUS_PTIME);
    let mut video_seq = rand::random::<u16>();
    let mut video_ts = rand::random::<u32>();
    let mut audio_seq = rand::random::<u16>();
    let mut audio_ts = rand::random::<u32>();
    let mut audio_first = true;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            at = video_tick.tick() => {
                if at.elapsed() > frame_interval {
                    stats.late_frames.fetch_add(1, Ordering::Relaxed);
                }
                let keyframe = keyframe_wanted.swap(false, Ordering::Relaxed);
                let frame = source.next_frame(keyframe);
                let first_index = stats.video_next.load(Ordering::Relaxed);
                let payloads = vp8::packetize(&frame, MAX_PAYLOAD, first_index, now_ns());
                let count = payloads.len();
                let layer = Layer { ssrc: session.video_ssrc, rid: top_rid };
                write_frame(session, stats, payloads, &layer, &mut video_seq, video_ts).await;
                // Published after the whole frame is handed over, so a viewer reading it sees
                // only indexes that were really sent.
                stats.video_next.fetch_add(count as u32, Ordering::Relaxed);
                stats.frames.fetch_add(1, Ordering::Relaxed);
                if frame.keyframe {
                    stats.keyframes.fetch_add(1, Ordering::Relaxed);
                }
                video_ts = video_ts.wrapping_add(plan.frame_ticks());
                // The lower layers after the top one, whose packets carry the latency markers.
                for (ssrc, rid, source, seq, ts) in &mut lower {
                    let frame = source.next_frame(keyframe);
                    let payloads = vp8::packetize(&frame, MAX_PAYLOAD, lower_index, now_ns());
                    lower_index = lower_index.wrapping_add(payloads.len() as u32);
                    let layer = Layer { ssrc: *ssrc, rid };
                    write_frame(session, stats, payloads, &layer, seq, *ts).await;
                    *ts = ts.wrapping_add(plan.frame_ticks());
                }
            }
            _ = audio_tick.tick() => {
                let index = stats.audio_next.load(Ordering::Relaxed);
                let mut payload = BytesMut::with_capacity(plan.opus_size);
                payload.put_u8(OPUS_TOC);
                payload.put_slice(&Marker { sent_ns: now_ns(), index }.to_bytes());
                payload.resize(plan.opus_size.max(1 + MARKER_LEN), 0);
                stats.payload_bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
                let packet = Packet {
                    header: Header {
                        version: 2,
                        marker: audio_first,
                        payload_type: session.audio_pt,
                        sequence_number: audio_seq,
                        timestamp: audio_ts,
                        ssrc: session.audio_ssrc,
                        ..Default::default()
                    },
                    payload: payload.freeze(),
                };
                audio_first = false;
                audio_seq = audio_seq.wrapping_add(1);
                audio_ts = audio_ts.wrapping_add(960);
                if session.audio.write_rtp(packet).await.is_err() {
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                }
                stats.audio_next.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One video layer's stream as it goes out: its SSRC, and its RID (simulcast; with the MID,
/// in header extensions).
struct Layer {
    ssrc: u32,
    rid: &'static str,
}

/// Writes one frame's packets back to back on `layer`, numbering them from `seq`.
async fn write_frame(
    session: &Session,
    stats: &PublisherStats,
    payloads: Vec<bytes::Bytes>,
    layer: &Layer,
    seq: &mut u16,
    timestamp: u32,
) {
    let count = payloads.len();
    for (i, payload) in payloads.into_iter().enumerate() {
        stats
            .payload_bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let mut packet = Packet {
            header: Header {
                version: 2,
                marker: i + 1 == count,
                payload_type: session.video_pt,
                sequence_number: *seq,
                timestamp,
                ssrc: layer.ssrc,
                ..Default::default()
            },
            payload,
        };
        if let Some(id) = session.rid_ext.filter(|_| !layer.rid.is_empty()) {
            let rid = bytes::Bytes::from_static(layer.rid.as_bytes());
            let mid = session.mid_ext.clone();
            let set = packet
                .header
                .set_extension(id, rid)
                .and_then(|()| match mid {
                    Some((id, mid)) => packet.header.set_extension(id, mid),
                    None => Ok(()),
                });
            if set.is_err() {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        *seq = seq.wrapping_add(1);
        if session.video.write_rtp(packet).await.is_err() {
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
