//! What the publisher sends, decided without I/O: frame sizes that give the requested bitrate
//! with a real group-of-pictures shape (a large keyframe every interval, smaller frames between,
//! an early keyframe when one is requested), and Opus packet sizes.

use crate::marker::MARKER_LEN;
use crate::vp8;
use std::time::Duration;

/// A keyframe is this many times an average frame (when the group of pictures is long enough),
/// about what a real-time VP8 encoder produces.
const KEYFRAME_FACTOR: usize = 4;
/// The largest RTP payload we send.
pub const MAX_PAYLOAD: usize = 1200;
/// Opus packet duration.
pub const OPUS_PTIME: Duration = Duration::from_millis(20);
/// Video picture size written into keyframe headers.
pub const WIDTH: u16 = 1280;
pub const HEIGHT: u16 = 720;

/// The publisher's media, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlan {
    pub fps: u32,
    /// Frames from one scheduled keyframe to the next.
    pub gop_frames: usize,
    pub keyframe_size: usize,
    pub delta_size: usize,
    /// Bytes of each Opus payload (TOC, marker, filler).
    pub opus_size: usize,
}

impl MediaPlan {
    /// `video_kbps` and `audio_kbps` count RTP payload bytes (headers and SRTP excluded).
    pub fn new(video_kbps: u32, fps: u32, audio_kbps: u32, keyframe_interval: Duration) -> Self {
        let fps = fps.max(1);
        let avg = (video_kbps as usize * 1000 / 8 / fps as usize).max(1);
        let gop_frames =
            ((keyframe_interval.as_secs_f64() * f64::from(fps)).round() as usize).max(1);
        let (keyframe_size, delta_size) = if gop_frames == 1 {
            (avg, avg)
        } else {
            let gop_bytes = avg * gop_frames;
            let key = (avg * KEYFRAME_FACTOR).min(gop_bytes / 2);
            (key, (gop_bytes - key) / (gop_frames - 1))
        };
        let per_packet = audio_kbps as usize * 1000 / 8 * OPUS_PTIME.as_millis() as usize / 1000;
        Self {
            fps,
            gop_frames,
            keyframe_size,
            delta_size,
            opus_size: per_packet.max(1 + MARKER_LEN),
        }
    }

    /// The same stream at `percent` of its video bitrate (a lower simulcast layer).
    pub fn scaled(&self, percent: usize) -> Self {
        Self {
            keyframe_size: (self.keyframe_size * percent / 100).max(1),
            delta_size: (self.delta_size * percent / 100).max(1),
            ..self.clone()
        }
    }

    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.fps))
    }

    /// RTP timestamp step per frame (90 kHz clock).
    pub fn frame_ticks(&self) -> u32 {
        90_000 / self.fps
    }

    /// Video packets per second, on average over a group of pictures.
    pub fn video_packets_per_second(&self) -> f64 {
        let key = self.keyframe_size.div_ceil(MAX_PAYLOAD);
        let delta = self.delta_size.div_ceil(MAX_PAYLOAD);
        let per_gop = key + delta * (self.gop_frames - 1);
        per_gop as f64 / self.gop_frames as f64 * f64::from(self.fps)
    }

    pub fn audio_packets_per_second(&self) -> f64 {
        1.0 / OPUS_PTIME.as_secs_f64()
    }
}

/// Decides each next video frame: keyframe on schedule or on request, sizes from the plan.
#[derive(Debug, Clone)]
pub struct VideoSource {
    plan: MediaPlan,
    since_keyframe: usize,
    picture_id: u16,
    started: bool,
}

impl VideoSource {
    pub fn new(plan: MediaPlan) -> Self {
        Self {
            plan,
            since_keyframe: 0,
            picture_id: 0,
            started: false,
        }
    }

    /// The next frame. `keyframe_requested`: a receiver asked for one (PLI/FIR); the schedule
    /// restarts from it, as an encoder's does.
    pub fn next_frame(&mut self, keyframe_requested: bool) -> vp8::Frame {
        let keyframe =
            !self.started || keyframe_requested || self.since_keyframe >= self.plan.gop_frames;
        self.started = true;
        if keyframe {
            self.since_keyframe = 0;
        }
        self.since_keyframe += 1;
        let frame = vp8::Frame {
            keyframe,
            picture_id: self.picture_id,
            size: if keyframe {
                self.plan.keyframe_size
            } else {
                self.plan.delta_size
            },
            width: WIDTH,
            height: HEIGHT,
        };
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_of_pictures_has_the_requested_bitrate() {
        let plan = MediaPlan::new(2500, 30, 48, Duration::from_secs(2));
        assert_eq!(plan.gop_frames, 60);
        let mut source = VideoSource::new(plan.clone());
        // Ten seconds: five groups of pictures.
        let bytes: usize = (0..30 * 10).map(|_| source.next_frame(false).size).sum();
        let kbps = bytes as f64 * 8.0 / 10.0 / 1000.0;
        assert!((kbps - 2500.0).abs() < 5.0, "{kbps}");
        assert!(plan.keyframe_size > 3 * plan.delta_size);
        assert_eq!(plan.opus_size, 120);
        // 2500 kbps at 30 fps is about 260 packets a second.
        let pps = plan.video_packets_per_second();
        assert!((240.0..300.0).contains(&pps), "{pps}");
    }

    #[test]
    fn keyframes_on_schedule_and_on_request() {
        let plan = MediaPlan::new(1000, 10, 32, Duration::from_secs(1));
        let mut source = VideoSource::new(plan);
        let keys: Vec<bool> = (0..25).map(|_| source.next_frame(false).keyframe).collect();
        let at: Vec<usize> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.then_some(i))
            .collect();
        assert_eq!(at, vec![0, 10, 20]);
        // A request gives a keyframe at once and restarts the schedule.
        let mut source = VideoSource::new(MediaPlan::new(1000, 10, 32, Duration::from_secs(1)));
        for _ in 0..3 {
            source.next_frame(false);
        }
        assert!(source.next_frame(true).keyframe);
        let next: Vec<bool> = (0..10).map(|_| source.next_frame(false).keyframe).collect();
        assert_eq!(next.iter().position(|k| *k), Some(9));
    }

    #[test]
    fn degenerate_settings_stay_sane() {
        let plan = MediaPlan::new(0, 0, 0, Duration::ZERO);
        assert_eq!(plan.fps, 1);
        assert_eq!(plan.gop_frames, 1);
        assert!(plan.opus_size > MARKER_LEN);
        let mut source = VideoSource::new(plan);
        assert!(source.next_frame(false).keyframe);
        assert!(source.next_frame(false).keyframe);
        // Picture ids wrap at 15 bits.
        let mut source = VideoSource::new(MediaPlan::new(100, 30, 8, Duration::from_secs(1)));
        let last = (0..0x8001)
            .map(|_| source.next_frame(false).picture_id)
            .last();
        assert_eq!(last, Some(0));
    }

    /// A lower simulcast layer: the same pictures at a share of the bytes, never empty.
    #[test]
    fn a_scaled_plan_keeps_the_pictures_and_shares_the_bytes() {
        let plan = MediaPlan::new(2500, 30, 48, Duration::from_secs(2));
        let low = plan.scaled(8);
        assert_eq!((low.fps, low.gop_frames), (plan.fps, plan.gop_frames));
        assert_eq!(low.keyframe_size, plan.keyframe_size * 8 / 100);
        assert_eq!(low.delta_size, plan.delta_size * 8 / 100);
        assert_eq!(low.opus_size, plan.opus_size);
        let tiny = MediaPlan::new(1, 30, 8, Duration::from_secs(1)).scaled(1);
        assert!(tiny.keyframe_size >= 1 && tiny.delta_size >= 1);
    }
}
