//! The stream the shards forward: a room with one VP8 and one Opus track, fed by a paced
//! publisher thread as `cascade-loadgen run` publishes (2.5 Mbit/s of video payload at 30 frames a
//! second, a keyframe four times a frame's average every 2 s or when asked for, 48 kbit/s of
//! Opus in 20 ms packets).
//!
//! A room binds a source through webrtc-rs's `TrackRemote` (the node's relay link or publisher
//! peer connection). `SyntheticTrack` is one whose packets come from the publisher thread
//! over a channel; the room's own pump task reads it, as it reads a real one.

use bytes::Bytes;
use cascade_core::media::room::{Room, RoomTrack};
use cascade_core::media::synthetic::SyntheticTrack;
use rtc::rtp::Packet;
use rtc::rtp::header::Header;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const VIDEO_SSRC: u32 = 0x1111_0001;
const AUDIO_SSRC: u32 = 0x2222_0002;
const VIDEO_KBPS: usize = 2500;
const AUDIO_KBPS: usize = 48;
const FPS: u32 = 30;
const GOP_FRAMES: usize = 60;
const KEYFRAME_FACTOR: usize = 4;
const MAX_PAYLOAD: usize = 1200;
const OPUS_PTIME: Duration = Duration::from_millis(20);

/// VP8 payloads (RFC 7741): a keyframe's first packet (descriptor S=1, then P=0), a delta
/// frame's first packet (P=1), and any later packet of a frame (S=0).
static KEY_START: [u8; MAX_PAYLOAD] = payload([0x10, 0x00, 0x9d, 0x01, 0x2a]);
static DELTA_START: [u8; MAX_PAYLOAD] = payload([0x10, 0x01, 0, 0, 0]);
static REST: [u8; MAX_PAYLOAD] = payload([0x00, 0x5a, 0x5a, 0x5a, 0x5a]);
static OPUS: [u8; MAX_PAYLOAD] = payload([0x78, 0x5a, 0x5a, 0x5a, 0x5a]);

const fn payload(head: [u8; 5]) -> [u8; MAX_PAYLOAD] {
    let mut p = [0x5a; MAX_PAYLOAD];
    let mut i = 0;
    while i < head.len() {
        p[i] = head[i];
        i += 1;
    }
    p
}

/// The room's feed: its publisher thread runs until [`Feed::stop`].
pub struct Feed {
    /// Packets the publisher has sent (video and audio).
    pub published: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Feed {
    /// A room whose two tracks are bound and fed from now on. Call inside the runtime: the
    /// room's pump tasks are spawned on it.
    pub async fn start(room: Arc<Room>) -> Self {
        let wants_key = Arc::new(AtomicBool::new(true));
        let (video_tx, video_rx) = mpsc::unbounded_channel();
        let (audio_tx, audio_rx) = mpsc::unbounded_channel();
        let video = SyntheticTrack::new(
            RtpCodecKind::Video,
            RTCRtpCodec {
                mime_type: "video/VP8".into(),
                clock_rate: 90_000,
                ..Default::default()
            },
            VIDEO_SSRC,
            video_rx,
            wants_key.clone(),
        );
        let audio = SyntheticTrack::new(
            RtpCodecKind::Audio,
            RTCRtpCodec {
                mime_type: "audio/opus".into(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                ..Default::default()
            },
            AUDIO_SSRC,
            audio_rx,
            Arc::new(AtomicBool::new(false)),
        );
        room.expect_tracks(2);
        let bound: Vec<Option<Arc<RoomTrack>>> = vec![
            room.add_track(Arc::new(video), None).await,
            room.add_track(Arc::new(audio), None).await,
        ];
        assert!(bound.iter().all(Option::is_some), "a track was not bound");
        let published = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (published, stop) = (published.clone(), stop.clone());
            std::thread::Builder::new()
                .name("publisher".into())
                .spawn(move || publish(&video_tx, &audio_tx, &wants_key, &published, &stop))
                .expect("publisher thread")
        };
        Self {
            published,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Packets per second the publisher sends, on average over a group of pictures.
    pub fn packets_per_second() -> f64 {
        let (key, delta) = frame_sizes();
        let per_gop = key.div_ceil(MAX_PAYLOAD) + delta.div_ceil(MAX_PAYLOAD) * (GOP_FRAMES - 1);
        per_gop as f64 / GOP_FRAMES as f64 * f64::from(FPS) + 1.0 / OPUS_PTIME.as_secs_f64()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keyframe and delta frame sizes for the bitrate (as `cascade-loadgen`'s `MediaPlan`).
fn frame_sizes() -> (usize, usize) {
    let avg = VIDEO_KBPS * 1000 / 8 / FPS as usize;
    let key = avg * KEYFRAME_FACTOR;
    (key, (avg * GOP_FRAMES - key) / (GOP_FRAMES - 1))
}

/// The publisher: each frame's packets back to back at its time, an Opus packet every 20 ms.
fn publish(
    video: &mpsc::UnboundedSender<Packet>,
    audio: &mpsc::UnboundedSender<Packet>,
    wants_key: &AtomicBool,
    published: &AtomicU64,
    stop: &AtomicBool,
) {
    let (key_size, delta_size) = frame_sizes();
    let opus_size = AUDIO_KBPS * 1000 / 8 * OPUS_PTIME.as_millis() as usize / 1000;
    let frame_interval = Duration::from_secs(1) / FPS;
    let start = Instant::now();
    let (mut frame, mut opus) = (0u64, 0u64);
    let (mut vseq, mut aseq) = (0u16, 0u16);
    let mut since_key = GOP_FRAMES;
    while !stop.load(Ordering::Relaxed) {
        let next_frame = start + frame_interval * frame as u32;
        let next_opus = start + OPUS_PTIME * opus as u32;
        let at = next_frame.min(next_opus);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if next_opus <= next_frame {
            let packet = rtp(
                AUDIO_SSRC,
                111,
                aseq,
                (opus * 960) as u32,
                true,
                &OPUS[..opus_size],
            );
            aseq = aseq.wrapping_add(1);
            opus += 1;
            if audio.send(packet).is_err() {
                return;
            }
            published.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let key = since_key >= GOP_FRAMES || wants_key.swap(false, Ordering::Relaxed);
        since_key = if key { 1 } else { since_key + 1 };
        let size = if key { key_size } else { delta_size };
        let n = size.div_ceil(MAX_PAYLOAD);
        let ts = (frame * u64::from(90_000 / FPS)) as u32;
        for i in 0..n {
            // Split evenly, as libwebrtc's packetizer does: sizes differ by a byte at most.
            let len = size / n + usize::from(i < size % n);
            let body = match (i, key) {
                (0, true) => &KEY_START[..len],
                (0, false) => &DELTA_START[..len],
                _ => &REST[..len],
            };
            if video
                .send(rtp(VIDEO_SSRC, 96, vseq, ts, i + 1 == n, body))
                .is_err()
            {
                return;
            }
            vseq = vseq.wrapping_add(1);
        }
        published.fetch_add(n as u64, Ordering::Relaxed);
        frame += 1;
    }
}

fn rtp(ssrc: u32, pt: u8, seq: u16, ts: u32, marker: bool, body: &'static [u8]) -> Packet {
    Packet {
        header: Header {
            version: 2,
            marker,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        },
        payload: Bytes::from_static(body),
    }
}
