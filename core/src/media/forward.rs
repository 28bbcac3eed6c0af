//! The media core's forwarding decisions, as plain values: no I/O, no clock, no locks.
//!
//! - [`Rewriter`]: maps one source stream onto one outgoing stream (SSRC, payload type,
//!   sequence numbers, timestamps). Its state is [`RewriterState`], which can be saved and
//!   restored, so a subscriber can switch sources (failover) and the receiver still sees one
//!   continuous stream.
//! - [`keyframe_start`]: whether a packet begins a keyframe (VP8, H.264), so a new subscriber can
//!   start on a decodable picture.
//! - [`KeyframeCache`]: the packets since the last keyframe began, so a viewer that joins
//!   mid-stream is sent a picture at once instead of waiting for the publisher's next keyframe.
//!
//! Everything here takes `now` (a [`Duration`] since an arbitrary epoch) where time matters, and
//! is unit-tested with a virtual clock.

use rtc::rtp::Packet;
use std::time::Duration;

/// The codecs whose keyframes we can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    H264,
    Opus,
    /// A codec we forward without looking inside (VP9, AV1, G.711...).
    Other,
}

impl Codec {
    /// Maps a MIME type (`video/VP8`, case-insensitive) onto a codec.
    pub fn from_mime(mime: &str) -> Self {
        let lower = mime.to_ascii_lowercase();
        match lower.as_str() {
            "video/vp8" => Codec::Vp8,
            "video/h264" => Codec::H264,
            "audio/opus" => Codec::Opus,
            _ => Codec::Other,
        }
    }

    /// Whether a subscriber must wait for a keyframe before it is sent this codec's packets.
    pub fn needs_keyframe(self) -> bool {
        matches!(self, Codec::Vp8 | Codec::H264)
    }
}

/// Whether `payload` (an RTP payload of `codec`) is the first packet of a keyframe.
///
/// Malformed payloads answer `false`; this never panics on outside bytes.
pub fn keyframe_start(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => vp8_keyframe_start(payload),
        Codec::H264 => h264_keyframe_start(payload),
        Codec::Opus | Codec::Other => false,
    }
}

/// RFC 7741: the payload descriptor, then the VP8 payload header whose first bit (P) is 0 on a
/// key frame. Only the packet that starts partition 0 carries that header.
fn vp8_keyframe_start(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&ext) = payload.get(at) else {
            return false;
        };
        at += 1;
        if ext & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    payload.get(at).is_some_and(|header| header & 0x01 == 0)
}

/// RFC 6184: a keyframe starts with an SPS (7) or an IDR slice (5), alone, inside a STAP-A (24),
/// or as the first fragment of an FU-A (28).
fn h264_keyframe_start(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    let is_key = |nal_type: u8| nal_type == IDR || nal_type == SPS;
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        24 => {
            // STAP-A: [header][size:2][nal]...
            let mut at = 1;
            while at + 2 < payload.len() {
                let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                let Some(&nal) = payload.get(at + 2) else {
                    return false;
                };
                if size == 0 {
                    return false;
                }
                if is_key(nal & 0x1f) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        nal_type => is_key(nal_type),
    }
}

/// Where a [`Rewriter`] stands: everything needed to continue the outgoing stream from another
/// source, or in another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewriterState {
    /// The outgoing stream's SSRC.
    pub ssrc: u32,
    /// The outgoing payload type.
    pub payload_type: u8,
    /// Added (wrapping) to a source sequence number to get the outgoing one.
    pub seq_offset: u16,
    /// Added (wrapping) to a source timestamp to get the outgoing one.
    pub ts_offset: u32,
    /// The highest source sequence number forwarded, if any.
    pub last_in_seq: Option<u16>,
    /// Which of the `REORDER_WINDOW` source sequence numbers up to `last_in_seq` were forwarded
    /// (bit `i` of word `i / 64` is `last_in_seq - i`): a retransmission that arrives late is
    /// forwarded once, a duplicate is not.
    pub window: [u64; WINDOW_WORDS],
    /// How many source sequence numbers, up to `last_in_seq`, the window covers since the first
    /// packet forwarded under the current mapping (at most [`REORDER_WINDOW`]): the window's
    /// older bits stand for packets from before it, counted as seen but never sent.
    pub span: u16,
    /// The last outgoing sequence number and timestamp, if any.
    pub last_out: Option<(u16, u32)>,
    /// Set by [`Rewriter::switch_source`]: the next packet re-bases the offsets.
    pub rebase: bool,
    /// How far after the old source's last timestamp the re-based stream continues.
    pub switch_gap: u32,
    /// The source sends RED (`media::red`) and the receiver takes its primary blocks alone.
    pub red_primary: bool,
}

/// Words of the reorder window.
pub const WINDOW_WORDS: usize = 8;
/// How far behind the newest packet a late packet (a retransmission, a reordering) may be and
/// still be forwarded: 512 packets, over a second of a 2.5 Mbps stream.
pub const REORDER_WINDOW: u16 = (WINDOW_WORDS * 64) as u16;

/// What the rewriter did with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten in place; send it.
    Forward,
    /// A duplicate, or older than the reorder window; drop it.
    Stale,
}

/// Maps one source stream onto one outgoing stream.
///
/// Sequence numbers are continuous for the receiver as long as the source's are: a packet lost
/// upstream stays a gap (so the receiver can NACK it); a late packet (a retransmission that
/// repairs the gap) is forwarded with the same mapping; a duplicate, or a packet older than the
/// reorder window, is dropped. Packets are rewritten in place: no allocation.
#[derive(Debug, Clone)]
pub struct Rewriter {
    state: RewriterState,
}

/// How far ahead in timestamp units a new source starts after the last packet of the old one:
/// one video frame at 90 kHz / 30 fps, and close to one 20 ms audio frame at 48 kHz.
const SWITCH_TS_GAP: u32 = 3000;

impl Rewriter {
    /// A rewriter that writes `ssrc` and `payload_type` and starts at `initial_seq`.
    pub fn new(ssrc: u32, payload_type: u8, initial_seq: u16) -> Self {
        Self {
            state: RewriterState {
                ssrc,
                payload_type,
                seq_offset: initial_seq,
                ts_offset: 0,
                last_in_seq: None,
                window: [0; WINDOW_WORDS],
                span: 0,
                last_out: None,
                rebase: true,
                switch_gap: SWITCH_TS_GAP,
                red_primary: false,
            },
        }
    }

    /// Continues from a saved state.
    pub fn restore(state: RewriterState) -> Self {
        Self { state }
    }

    /// The state to save.
    pub fn state(&self) -> RewriterState {
        self.state
    }

    /// The next packet comes from a new source (another upstream, a republished stream): its
    /// sequence numbers and timestamps are unrelated to the old ones, so re-base the offsets to
    /// continue the outgoing stream where it stopped.
    /// `elapsed` is how far (in timestamp units) the new source's first packet should come
    /// after the old source's last; at least one frame's worth is used.
    pub fn switch_source(&mut self, elapsed: u32) {
        self.state.rebase = true;
        self.state.last_in_seq = None;
        self.state.switch_gap = elapsed.max(SWITCH_TS_GAP);
    }

    /// Rewrites `packet` for the outgoing stream.
    pub fn rewrite(&mut self, packet: &mut Packet) -> Verdict {
        let header = &mut packet.header;
        let s = &mut self.state;
        // Packets from before the first one forwarded count as seen. After a switch they would
        // map onto numbers the receiver already has; at the start (a keyframe, for video) they
        // belong to an earlier picture the receiver cannot use, and would number below its
        // first packet: holes it would NACK for ever (a late retransmission did exactly that).
        let mut before_first_seen = false;
        if s.rebase {
            s.rebase = false;
            before_first_seen = true;
            match s.last_out {
                Some((seq, ts)) => {
                    s.seq_offset = seq.wrapping_add(1).wrapping_sub(header.sequence_number);
                    s.ts_offset = ts.wrapping_add(s.switch_gap).wrapping_sub(header.timestamp);
                }
                None => {
                    // `seq_offset` holds the initial sequence number until the first packet.
                    s.seq_offset = s.seq_offset.wrapping_sub(header.sequence_number);
                    s.ts_offset = 0;
                }
            }
        } else if let Some(last) = s.last_in_seq {
            let ahead = header.sequence_number.wrapping_sub(last);
            if ahead == 0 {
                return Verdict::Stale;
            }
            if ahead < 0x8000 {
                shift_window(&mut s.window, ahead);
                s.window[0] |= 1;
                s.span = s.span.saturating_add(ahead).min(REORDER_WINDOW);
                s.last_in_seq = Some(header.sequence_number);
            } else {
                let behind = last.wrapping_sub(header.sequence_number);
                if behind >= REORDER_WINDOW {
                    return Verdict::Stale;
                }
                let (word, bit) = (usize::from(behind / 64), behind % 64);
                if s.window[word] & (1 << bit) != 0 {
                    return Verdict::Stale;
                }
                s.window[word] |= 1 << bit;
                // A late packet: same mapping, and the newest stays the newest.
                self.rewrite_again(packet);
                return Verdict::Forward;
            }
        }
        if s.last_in_seq.is_none() {
            s.window = if before_first_seen {
                [u64::MAX; WINDOW_WORDS]
            } else {
                [0; WINDOW_WORDS]
            };
            s.window[0] |= 1;
            s.span = 1;
            s.last_in_seq = Some(header.sequence_number);
        }
        self.rewrite_again(packet);
        let header = &packet.header;
        self.state.last_out = Some((header.sequence_number, header.timestamp));
        Verdict::Forward
    }
}

impl Rewriter {
    /// The source sequence number of the packet this rewriter sent as `out_seq`, if it did so
    /// under its current mapping (since its last change of source) and the packet is within the
    /// reorder window: what a NACK for `out_seq` asks for, in the source's numbers.
    pub fn source_of(&self, out_seq: u16) -> Option<u16> {
        let s = &self.state;
        let last = s.last_in_seq?;
        let source = out_seq.wrapping_sub(s.seq_offset);
        let behind = last.wrapping_sub(source);
        if behind >= s.span {
            return None;
        }
        let (word, bit) = (usize::from(behind / 64), behind % 64);
        (s.window[word] & (1 << bit) != 0).then_some(source)
    }

    /// Applies the current mapping to `packet` (SSRC, payload type, sequence number,
    /// timestamp): what [`Self::rewrite`] does to a packet it forwards, and so a copy of a packet
    /// it already forwarded comes out as it was sent (a retransmission).
    pub fn rewrite_again(&self, packet: &mut Packet) {
        let s = &self.state;
        let header = &mut packet.header;
        header.sequence_number = header.sequence_number.wrapping_add(s.seq_offset);
        header.timestamp = header.timestamp.wrapping_add(s.ts_offset);
        header.ssrc = s.ssrc;
        header.payload_type = s.payload_type;
        if s.red_primary {
            // Malformed RED leaves nothing to play: an empty payload, which receivers conceal.
            let at = crate::media::red::primary_offset(&packet.payload);
            packet.payload = packet.payload.slice(at.unwrap_or(packet.payload.len())..);
        }
    }
}

/// Moves the reorder window `by` packets forward (the newest packet is bit 0).
fn shift_window(window: &mut [u64; WINDOW_WORDS], by: u16) {
    let by = usize::from(by);
    if by >= WINDOW_WORDS * 64 {
        *window = [0; WINDOW_WORDS];
        return;
    }
    let (words, bits) = (by / 64, by % 64);
    for i in (0..WINDOW_WORDS).rev() {
        let mut v = if i >= words {
            window[i - words] << bits
        } else {
            0
        };
        if bits > 0 && i > words {
            v |= window[i - words - 1] >> (64 - bits);
        }
        window[i] = v;
    }
}

/// Removes the header extensions a packet came with: their ids were negotiated with the sender,
/// not with our receivers, and webrtc-rs drops a packet whose extension ids the receiver did not
/// negotiate. Keeps the vector's capacity, so a packet reused later does not allocate.
pub fn strip_extensions(packet: &mut Packet) {
    packet.header.extension = false;
    packet.header.extension_profile = 0;
    packet.header.extensions.clear();
    packet.header.extensions_padding = 0;
}

/// Whether sequence number `a` comes before `b` (RFC 3550 wrap-around).
fn seq_older(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

/// The packets of one track since its last keyframe began, for subscribers that join now.
#[derive(Debug)]
pub struct KeyframeCache {
    packets: Vec<Packet>,
    /// False until a keyframe starts, and after the group of pictures outgrew `capacity`.
    valid: bool,
    capacity: usize,
}

impl KeyframeCache {
    /// Holds at most `capacity` packets (a long group of pictures invalidates the cache, and a
    /// joining viewer then asks for a new keyframe instead). The room for them is taken at the
    /// first packet, once: a track that never pushes (audio) costs nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            packets: Vec::new(),
            valid: false,
            capacity,
        }
    }

    /// Records a packet the track forwarded. Packets are kept before any keyframe too (not
    /// given out): when a keyframe's first packet is lost and arrives late (resent after a
    /// NACK), the rest of its picture and what followed came first, and belong to it.
    pub fn push(&mut self, packet: &Packet, keyframe_start: bool) {
        if self.packets.capacity() == 0 {
            // A keyframe start may make it one over capacity before it is cleared.
            self.packets.reserve_exact(self.capacity + 1);
        }
        let seq = packet.header.sequence_number;
        if keyframe_start {
            let first = self.packets.first().map(|p| &p.header);
            let same_frame =
                self.valid && first.is_some_and(|f| f.timestamp == packet.header.timestamp);
            if same_frame {
                // Another start of the held keyframe (some codecs mark several), or a repeat.
                if self.packets.iter().any(|p| p.header.sequence_number == seq) {
                    return;
                }
                if first.is_some_and(|f| seq_older(seq, f.sequence_number)) {
                    self.packets.insert(0, packet.clone());
                } else {
                    self.packets.push(packet.clone());
                }
            } else {
                if self.valid && first.is_some_and(|f| seq_older(seq, f.sequence_number)) {
                    // The start of a keyframe older than the one held: stale.
                    return;
                }
                // A new group of pictures: what is held from before it goes; what is newer
                // arrived before its late first packet and stays, after it.
                self.packets
                    .retain(|p| !seq_older(p.header.sequence_number, seq));
                self.packets.insert(0, packet.clone());
                self.valid = true;
            }
            if self.packets.len() > self.capacity {
                self.clear();
            }
            return;
        }
        if self.packets.len() >= self.capacity {
            // A group of pictures longer than the cache (a joining viewer then asks for a new
            // keyframe instead), or that long a wait for the first keyframe: start over.
            self.clear();
        }
        self.packets.push(packet.clone());
    }

    /// The packets a joining subscriber should be sent first, oldest first; empty when no
    /// complete start of a picture is held.
    pub fn snapshot(&self) -> &[Packet] {
        if self.valid { &self.packets } else { &[] }
    }

    /// The held packet with sequence number `seq`, if any (for a NACK the history could not
    /// answer: a packet of a joining viewer's catch-up).
    pub fn get(&self, seq: u16) -> Option<&Packet> {
        self.packets
            .iter()
            .rev()
            .find(|p| p.header.sequence_number == seq)
    }

    /// Forgets everything: the source changed, its old keyframe is no start for the new one.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.valid = false;
    }

    /// Whether a joining subscriber can start from this cache.
    pub fn is_valid(&self) -> bool {
        self.valid && !self.packets.is_empty()
    }
}

/// One track as one subscriber receives it: where its stream starts (a decoder needs a keyframe
/// first), which of the track's sources it follows, and the rewrite onto the subscriber's SSRC,
/// payload type and numbering. Plain state; the caller says what time it is.
#[derive(Debug, Clone)]
pub struct Leg {
    rewriter: Rewriter,
    needs_keyframe: bool,
    started: bool,
    /// Set by [`Leg::pause`] (and a change of source): the packet that starts the leg again
    /// re-bases the rewriter.
    resume: bool,
    /// The room track's source the last packet came from.
    source: Option<u32>,
    /// When the last packet went out, to keep timestamps in step with the clock across a change
    /// of source.
    last_sent: Option<std::time::Instant>,
    clock_rate: u32,
}

impl Leg {
    /// Whether the leg has begun (at a keyframe, for video): until then it forwards nothing.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The room track's source the leg's current mapping is for.
    pub fn source(&self) -> Option<u32> {
        self.source
    }

    /// The rewriter (for retransmissions: [`Rewriter::source_of`], [`Rewriter::rewrite_again`]).
    pub fn rewriter(&self) -> &Rewriter {
        &self.rewriter
    }

    pub fn new(rewriter: Rewriter, codec: Codec, clock_rate: u32) -> Self {
        Self {
            rewriter,
            needs_keyframe: codec.needs_keyframe(),
            started: false,
            resume: false,
            source: None,
            last_sent: None,
            clock_rate,
        }
    }

    /// Sets the outgoing payload type (known once negotiation is done) and whether the
    /// subscriber takes a RED source's primary blocks alone.
    pub fn set_payload_type(&mut self, payload_type: u8, red_primary: bool) {
        let mut state = self.rewriter.state();
        state.payload_type = payload_type;
        state.red_primary = red_primary;
        self.rewriter = Rewriter::restore(state);
    }

    /// Decides whether `packet`, from the track's source number `source`, goes to this
    /// subscriber at `now`, and if so rewrites it in place. A change of source re-bases the
    /// rewriter (the idle time advances the timestamps) and waits for the new source's keyframe.
    pub fn forward(
        &mut self,
        packet: &mut Packet,
        source: u32,
        keyframe: bool,
        now: std::time::Instant,
    ) -> bool {
        if self.source != Some(source) {
            if self.source.is_some() {
                self.pause();
            }
            self.source = Some(source);
        }
        if !self.started {
            if self.needs_keyframe && !keyframe {
                return false;
            }
            if self.resume {
                self.resume = false;
                let idle = self.last_sent.map_or(Duration::ZERO, |t| now - t);
                let ticks = idle.as_secs_f64() * f64::from(self.clock_rate);
                // Capped well below half the timestamp space, so it always reads as "later".
                self.rewriter
                    .switch_source(ticks.min(f64::from(1u32 << 30)) as u32);
            }
            self.started = true;
        }
        if self.rewriter.rewrite(packet) == Verdict::Forward {
            self.last_sent = Some(now);
            true
        } else {
            false
        }
    }

    /// Whether the leg's codec can only start at a keyframe (video).
    pub fn needs_keyframe(&self) -> bool {
        self.needs_keyframe
    }

    /// Stops the leg until the next keyframe (for video; audio resumes with its next packet),
    /// as a change of source does: the outgoing stream then continues where it stopped, its
    /// sequence numbers without a gap and its timestamps advanced by the time it was paused.
    /// For a receiver that could not take what was sent (a full TCP connection).
    pub fn pause(&mut self) {
        if self.started {
            self.started = false;
            self.resume = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::rtp::header::Header;

    #[test]
    fn a_leg_starts_at_a_keyframe_and_waits_for_one_after_a_change_of_source() {
        let t0 = std::time::Instant::now();
        let mut leg = Leg::new(Rewriter::new(7, 100, 1000), Codec::Vp8, 90_000);
        // Before the first keyframe: nothing.
        assert!(!leg.forward(&mut packet(1, 0, b"x"), 0, false, t0));
        let mut key = packet(2, 3000, b"k");
        assert!(leg.forward(&mut key, 0, true, t0));
        assert_eq!((key.header.ssrc, key.header.payload_type), (7, 100));
        let mut next = packet(3, 6000, b"x");
        assert!(leg.forward(&mut next, 0, false, t0));
        let (seq, ts) = (next.header.sequence_number, next.header.timestamp);
        // Source 1 takes over 1 s later: its non-keyframes wait, its keyframe continues the
        // stream at the next sequence number, a second's worth of timestamps later.
        let t1 = t0 + Duration::from_secs(1);
        assert!(!leg.forward(&mut packet(500, 77, b"x"), 1, false, t1));
        let mut key = packet(501, 80, b"k");
        assert!(leg.forward(&mut key, 1, true, t1));
        assert_eq!(key.header.sequence_number, seq.wrapping_add(1));
        assert_eq!(key.header.timestamp, ts.wrapping_add(90_000));
        // Audio (no keyframes) starts at once.
        let mut audio = Leg::new(Rewriter::new(8, 111, 5), Codec::Opus, 48_000);
        assert!(audio.forward(&mut packet(9, 0, b"a"), 0, false, t0));
    }

    #[test]
    fn a_paused_leg_resumes_at_a_keyframe_without_a_gap() {
        let t0 = std::time::Instant::now();
        let mut leg = Leg::new(Rewriter::new(7, 100, 1000), Codec::Vp8, 90_000);
        assert!(leg.forward(&mut packet(1, 0, b"k"), 0, true, t0));
        let mut last = packet(2, 3000, b"x");
        assert!(leg.forward(&mut last, 0, false, t0));
        // Paused (its viewer's TCP connection is full): the source's packets 3 to 9 are
        // skipped, and so are its inter frames after.
        leg.pause();
        assert!(!leg.is_started());
        let t1 = t0 + Duration::from_millis(500);
        assert!(!leg.forward(&mut packet(10, 30_000, b"x"), 0, false, t1));
        // The keyframe that restarts it follows the last packet sent: no gap to NACK, and
        // timestamps half a second on.
        let mut key = packet(11, 33_000, b"k");
        assert!(leg.forward(&mut key, 0, true, t1));
        assert_eq!(
            key.header.sequence_number,
            last.header.sequence_number.wrapping_add(1)
        );
        assert_eq!(
            key.header.timestamp,
            last.header.timestamp.wrapping_add(45_000)
        );
        let mut next = packet(12, 36_000, b"x");
        assert!(leg.forward(&mut next, 0, false, t1));
        assert_eq!(
            next.header.sequence_number,
            key.header.sequence_number.wrapping_add(1)
        );
        assert_eq!(
            next.header.timestamp,
            key.header.timestamp.wrapping_add(3000)
        );
        // Pausing a leg that has not started changes nothing.
        let mut idle = Leg::new(Rewriter::new(9, 100, 1000), Codec::Vp8, 90_000);
        idle.pause();
        assert!(idle.forward(&mut packet(1, 0, b"k"), 0, true, t0));
    }

    fn packet(seq: u16, ts: u32, payload: &'static [u8]) -> Packet {
        Packet {
            header: Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 0xdead_beef,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn rewrites_ssrc_pt_and_starts_at_initial_sequence() {
        let mut rw = Rewriter::new(42, 100, 1000);
        let mut p = packet(65000, 123, b"x");
        assert_eq!(rw.rewrite(&mut p), Verdict::Forward);
        assert_eq!(
            (
                p.header.ssrc,
                p.header.payload_type,
                p.header.sequence_number
            ),
            (42, 100, 1000)
        );
        assert_eq!(p.header.timestamp, 123);
        let mut p = packet(65001, 3123, b"x");
        rw.rewrite(&mut p);
        assert_eq!(p.header.sequence_number, 1001);
    }

    #[test]
    fn sequence_wraps_and_gaps_are_kept() {
        let mut rw = Rewriter::new(1, 96, 65534);
        let out: Vec<u16> = [10u16, 11, 13, 14]
            .iter()
            .map(|&s| {
                let mut p = packet(s, 0, b"x");
                rw.rewrite(&mut p);
                p.header.sequence_number
            })
            .collect();
        assert_eq!(out, vec![65534, 65535, 1, 2], "the gap at 12 stays a gap");
    }

    #[test]
    fn duplicates_are_dropped_and_retransmissions_repair_gaps_once() {
        let mut rw = Rewriter::new(1, 96, 1000);
        let mut out = |seq: u16| {
            let mut p = packet(seq, u32::from(seq) * 10, b"x");
            (rw.rewrite(&mut p), p.header.sequence_number)
        };
        assert_eq!(out(100), (Verdict::Forward, 1000));
        assert_eq!(out(101), (Verdict::Forward, 1001));
        assert_eq!(out(101).0, Verdict::Stale, "duplicate of the newest");
        assert_eq!(
            out(104),
            (Verdict::Forward, 1004),
            "102 and 103 lost upstream"
        );
        assert_eq!(
            out(102),
            (Verdict::Forward, 1002),
            "retransmission fills the gap"
        );
        assert_eq!(
            out(102).0,
            Verdict::Stale,
            "a second retransmission is a duplicate"
        );
        assert_eq!(out(100).0, Verdict::Stale, "already forwarded");
        assert_eq!(
            out(99).0,
            Verdict::Stale,
            "from before the first packet forwarded: it would number below the receiver's first"
        );
        assert_eq!(
            out(105),
            (Verdict::Forward, 1005),
            "the newest stays the newest"
        );
        assert_eq!(out(103), (Verdict::Forward, 1003));
    }

    /// A NACKed outgoing number maps back to the source packet sent as it, and only to one that
    /// was sent under the current mapping: not a loss, not one from before the first packet,
    /// not one from before a change of source; and its copy is rewritten as it was sent.
    #[test]
    fn a_nacked_number_maps_back_to_the_source_packet_sent_as_it() {
        let mut rw = Rewriter::new(7, 96, 1000);
        for seq in [65534u16, 65535, 1, 2] {
            rw.rewrite(&mut packet(seq, u32::from(seq) * 10, b"x"));
        }
        // 0 was lost upstream; outgoing 1000..=1004 stand for 65534, 65535, (0), 1, 2.
        assert_eq!(rw.source_of(1000), Some(65534));
        assert_eq!(rw.source_of(1003), Some(1));
        assert_eq!(rw.source_of(1002), None, "never sent");
        assert_eq!(rw.source_of(999), None, "before the first packet");
        assert_eq!(rw.source_of(1005), None, "not sent yet");
        let mut again = packet(1, 10, b"x");
        rw.rewrite_again(&mut again);
        let mut first = packet(1, 10, b"x");
        let mut twin = Rewriter::new(7, 96, 1000);
        for seq in [65534u16, 65535] {
            twin.rewrite(&mut packet(seq, u32::from(seq) * 10, b"x"));
        }
        twin.rewrite(&mut first);
        assert_eq!(again.header, first.header, "rewritten as it was sent");
        // A late retransmission of 0 is forwarded, and then NACKs for it are answered.
        rw.rewrite(&mut packet(0, 0, b"x"));
        assert_eq!(rw.source_of(1002), Some(0));
        // After a change of source the old numbers map to nothing.
        rw.switch_source(3000);
        rw.rewrite(&mut packet(500, 0, b"x"));
        assert_eq!(rw.source_of(1005), Some(500));
        assert_eq!(rw.source_of(1004), None);
        assert_eq!(rw.source_of(1000), None);
    }

    #[test]
    fn packets_older_than_the_window_are_dropped_and_long_jumps_reset_it() {
        let mut rw = Rewriter::new(1, 96, 0);
        assert_eq!(rw.rewrite(&mut packet(1000, 0, b"x")), Verdict::Forward);
        assert_eq!(rw.rewrite(&mut packet(2000, 0, b"x")), Verdict::Forward);
        assert_eq!(rw.rewrite(&mut packet(1001, 0, b"x")), Verdict::Stale);
        assert_eq!(
            rw.rewrite(&mut packet(2000 - REORDER_WINDOW + 1, 0, b"x")),
            Verdict::Forward
        );
        // Wrapping around 65535 keeps working.
        let mut rw = Rewriter::new(1, 96, 0);
        for seq in [65534u16, 65535, 1, 0, 2] {
            assert_eq!(
                rw.rewrite(&mut packet(seq, 0, b"x")),
                Verdict::Forward,
                "{seq}"
            );
        }
        assert_eq!(rw.rewrite(&mut packet(0, 0, b"x")), Verdict::Stale);
    }

    #[test]
    fn switching_source_keeps_the_outgoing_stream_continuous() {
        let mut rw = Rewriter::new(7, 96, 500);
        let mut last = (0, 0);
        for i in 0..10u16 {
            let mut p = packet(2000 + i, 90_000 + u32::from(i) * 3000, b"x");
            rw.rewrite(&mut p);
            last = (p.header.sequence_number, p.header.timestamp);
        }
        // Save, restore elsewhere, switch to a source with unrelated numbering.
        let mut rw = Rewriter::restore(rw.state());
        rw.switch_source(0);
        let mut p = packet(40_000, 7, b"x");
        assert_eq!(rw.rewrite(&mut p), Verdict::Forward);
        assert_eq!(p.header.sequence_number, last.0 + 1);
        assert_eq!(p.header.timestamp, last.1 + SWITCH_TS_GAP);
        assert_eq!(p.header.ssrc, 7);
        let mut p = packet(40_001, 3007, b"x");
        rw.rewrite(&mut p);
        assert_eq!(p.header.sequence_number, last.0 + 2);
        assert_eq!(p.header.timestamp, last.1 + SWITCH_TS_GAP + 3000);
        // A second switch after two seconds of silence: timestamps advance by those seconds,
        // and the new source's old packets (its retransmissions) are not stale.
        rw.switch_source(180_000);
        let mut p = packet(5, 1, b"x");
        assert_eq!(rw.rewrite(&mut p), Verdict::Forward);
        assert_eq!(p.header.sequence_number, last.0 + 3);
        assert_eq!(p.header.timestamp, last.1 + SWITCH_TS_GAP + 3000 + 180_000);
        let mut p = packet(6, 2, b"x");
        assert_eq!(rw.rewrite(&mut p), Verdict::Forward);
        assert_eq!(p.header.sequence_number, last.0 + 4);
        // Older than the new source's first packet: it would reuse a number already sent.
        let mut p = packet(4, 0, b"x");
        assert_eq!(rw.rewrite(&mut p), Verdict::Stale);
    }

    #[test]
    fn vp8_keyframes_are_recognised() {
        // S=1, PID=0, no extension; P bit 0 -> key frame.
        assert!(keyframe_start(Codec::Vp8, &[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // Same, P bit 1 -> inter frame.
        assert!(!keyframe_start(Codec::Vp8, &[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!keyframe_start(Codec::Vp8, &[0x00, 0x00]));
        // Extended descriptor with 15-bit picture id, then a key frame header.
        assert!(keyframe_start(Codec::Vp8, &[0x90, 0x80, 0x81, 0x23, 0x00]));
        // Extended with TL0PICIDX and TID, inter frame.
        assert!(!keyframe_start(Codec::Vp8, &[0x90, 0x60, 0x01, 0x02, 0x01]));
    }

    #[test]
    fn h264_keyframes_are_recognised() {
        assert!(keyframe_start(Codec::H264, &[0x67, 0x42])); // SPS
        assert!(keyframe_start(Codec::H264, &[0x65, 0x88])); // IDR
        assert!(!keyframe_start(Codec::H264, &[0x41, 0x9a])); // non-IDR slice
        // STAP-A with SPS (size 2) then PPS (size 2).
        assert!(keyframe_start(
            Codec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]
        ));
        // FU-A start of an IDR, and a middle fragment.
        assert!(keyframe_start(Codec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!keyframe_start(Codec::H264, &[0x7c, 0x05, 0x00]));
    }

    #[test]
    fn garbage_never_panics_and_is_not_a_keyframe() {
        let mut seed = 0x1234_5678_u32;
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            for codec in [Codec::Vp8, Codec::H264, Codec::Opus, Codec::Other] {
                let _ = keyframe_start(codec, &bytes);
            }
        }
        assert!(!keyframe_start(Codec::Vp8, &[]));
        assert!(!keyframe_start(Codec::H264, &[0x78, 0x00]));
        assert!(!keyframe_start(Codec::H264, &[0x78, 0x00, 0x00, 0x65]));
    }

    #[test]
    fn cache_holds_the_group_of_pictures_since_the_last_keyframe() {
        let mut cache = KeyframeCache::new(8);
        cache.push(&packet(1, 0, b"d"), false);
        assert!(!cache.is_valid(), "nothing before the first keyframe");
        cache.push(&packet(2, 100, b"k"), true);
        cache.push(&packet(3, 100, b"k"), true); // second packet of the same key frame
        cache.push(&packet(4, 200, b"d"), false);
        let seqs: Vec<u16> = cache
            .snapshot()
            .iter()
            .map(|p| p.header.sequence_number)
            .collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        cache.push(&packet(5, 300, b"k"), true);
        assert_eq!(
            cache.snapshot().len(),
            1,
            "a new keyframe restarts the cache"
        );
    }

    #[test]
    fn a_keyframe_whose_first_packet_came_late_keeps_what_came_before_it() {
        let seqs = |cache: &KeyframeCache| -> Vec<u16> {
            cache
                .snapshot()
                .iter()
                .map(|p| p.header.sequence_number)
                .collect()
        };
        let mut cache = KeyframeCache::new(16);
        // The end of an old group of pictures, held.
        cache.push(&packet(8, 50, b"k"), true);
        cache.push(&packet(9, 60, b"d"), false);
        // Keyframe 10..=12 (timestamp 100): its first packet is lost; 11, 12 and the next frame
        // arrive, then 10, resent.
        cache.push(&packet(11, 100, b"k"), false);
        cache.push(&packet(12, 100, b"k"), false);
        cache.push(&packet(13, 200, b"d"), false);
        cache.push(&packet(10, 100, b"k"), true);
        assert_eq!(seqs(&cache), vec![10, 11, 12, 13]);
        cache.push(&packet(14, 300, b"d"), false);
        assert_eq!(seqs(&cache), vec![10, 11, 12, 13, 14]);
        // A repeat of the start changes nothing; the start of an older keyframe is stale.
        cache.push(&packet(10, 100, b"k"), true);
        cache.push(&packet(8, 50, b"k"), true);
        assert_eq!(seqs(&cache), vec![10, 11, 12, 13, 14]);

        // Before any keyframe at all (a relay link starting), across the wrap of numbers.
        let mut cache = KeyframeCache::new(16);
        cache.push(&packet(65534, 7, b"k"), false);
        cache.push(&packet(65535, 7, b"k"), false);
        assert!(!cache.is_valid());
        cache.push(&packet(0, 8, b"d"), false);
        cache.push(&packet(65533, 7, b"k"), true);
        assert_eq!(seqs(&cache), vec![65533, 65534, 65535, 0]);
    }

    #[test]
    fn a_held_packet_is_found_by_its_sequence_number() {
        let mut cache = KeyframeCache::new(8);
        cache.push(&packet(10, 0, b"k"), true);
        cache.push(&packet(11, 0, b"a"), false);
        cache.push(&packet(12, 1, b"b"), false);
        assert_eq!(cache.get(11).map(|p| &p.payload[..]), Some(&b"a"[..]));
        assert!(cache.get(9).is_none());
        assert!(cache.get(13).is_none());
    }

    #[test]
    fn cache_gives_up_on_a_long_group_of_pictures() {
        let mut cache = KeyframeCache::new(3);
        cache.push(&packet(1, 0, b"k"), true);
        for s in 2..=4 {
            cache.push(&packet(s, u32::from(s), b"d"), false);
        }
        assert!(!cache.is_valid());
        assert!(cache.snapshot().is_empty());
        cache.push(&packet(9, 9, b"k"), true);
        assert!(cache.is_valid());
    }

    #[test]
    fn stripping_extensions_clears_them() {
        let mut p = packet(1, 0, b"x");
        p.header.extension = true;
        p.header.extension_profile = 0xBEDE;
        p.header
            .set_extension(3, Bytes::from_static(&[1, 2]))
            .unwrap();
        strip_extensions(&mut p);
        assert!(!p.header.extension && p.header.extensions.is_empty());
    }
}
