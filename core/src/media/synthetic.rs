//! A remote track whose packets come from a channel, not from a peer connection (feature
//! `test-support`): a room binds it through webrtc-rs's `TrackRemote` and its pump task reads
//! it as it reads a real one. Benchmarks feed it from a paced publisher; unit tests keep it
//! silent.

use rtc::media_stream::{
    MediaStreamId, MediaStreamTrackId, MediaStreamTrackState, MediaTrackCapabilities,
    MediaTrackConstraints, MediaTrackSettings,
};
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RtpStreamId, SSRC};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// A remote track of one stream: its packets are what `packets` receives; a keyframe request
/// (any RTCP written to it) sets `wants_key`.
pub struct SyntheticTrack {
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
    packets: tokio::sync::Mutex<mpsc::UnboundedReceiver<Packet>>,
    wants_key: Arc<AtomicBool>,
}

impl SyntheticTrack {
    pub fn new(
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        ssrc: u32,
        packets: mpsc::UnboundedReceiver<Packet>,
        wants_key: Arc<AtomicBool>,
    ) -> Self {
        Self {
            kind,
            codec,
            ssrc,
            packets: tokio::sync::Mutex::new(packets),
            wants_key,
        }
    }
}

#[async_trait::async_trait]
impl Track for SyntheticTrack {
    async fn stream_id(&self) -> MediaStreamId {
        "synthetic".into()
    }
    async fn track_id(&self) -> MediaStreamTrackId {
        format!("{:?}-{}", self.kind, self.ssrc)
    }
    async fn label(&self) -> String {
        String::new()
    }
    async fn kind(&self) -> RtpCodecKind {
        self.kind
    }
    async fn rid(&self, _ssrc: SSRC) -> Option<RtpStreamId> {
        None
    }
    async fn codec(&self, _ssrc: SSRC) -> Option<RTCRtpCodec> {
        Some(self.codec.clone())
    }
    async fn ssrcs(&self) -> Vec<SSRC> {
        vec![self.ssrc]
    }
    async fn enabled(&self) -> bool {
        true
    }
    async fn set_enabled(&self, _enabled: bool) {}
    async fn muted(&self) -> bool {
        false
    }
    async fn set_muted(&self, _muted: bool) {}
    async fn ready_state(&self) -> MediaStreamTrackState {
        MediaStreamTrackState::default()
    }
    async fn stop(&self) {}
    async fn get_capabilities(&self) -> MediaTrackCapabilities {
        MediaTrackCapabilities::default()
    }
    async fn get_constraints(&self) -> MediaTrackConstraints {
        MediaTrackConstraints::default()
    }
    async fn get_settings(&self) -> MediaTrackSettings {
        MediaTrackSettings::default()
    }
    async fn apply_constraints(&self, _constraints: Option<MediaTrackConstraints>) {}
    async fn codings(&self) -> Vec<RTCRtpEncodingParameters> {
        Vec::new()
    }
    async fn add_coding(&self, _coding: RTCRtpEncodingParameters) {}
}

#[async_trait::async_trait]
impl TrackRemote for SyntheticTrack {
    async fn write_rtcp(
        &self,
        _packets: Vec<Box<dyn rtc::rtcp::Packet>>,
    ) -> webrtc::error::Result<()> {
        // Only keyframe requests reach a source (`RoomTrack::request_keyframe`).
        self.wants_key.store(true, Ordering::Relaxed);
        Ok(())
    }
    async fn poll(&self) -> Option<TrackRemoteEvent> {
        let packet = self.packets.lock().await.recv().await?;
        Some(TrackRemoteEvent::OnRtpPacket(packet))
    }
}
