//! An own-SRTP viewer's transport-wide congestion control feedback (`--viewer-twcc`): the
//! transport-wide sequence number of each packet it decrypts and when it arrived, reported
//! every [`TWCC_EVERY`] as a browser does, so the edge keeps a bandwidth estimate per viewer
//! (`media::bwe`) while the viewers cost the load generator no more than its own SRTP.

use cascade_core::media::bwe::twcc_feedback;
use rtc::peer_connection::RTCPeerConnection;
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use std::time::{Duration, Instant};

/// How often a viewer sends its feedback (Chromium: about every 100 ms at these rates).
pub(super) const TWCC_EVERY: Duration = Duration::from_millis(100);
/// Packets one feedback covers at most: a longer span (an outage) starts over after it.
const MAX_SPAN: u16 = 2048;

/// One viewer's record of arrivals since its last feedback.
pub(super) struct Twcc {
    /// The one-byte header extension id the edge numbers packets under.
    id: u8,
    epoch: Instant,
    /// (transport-wide sequence number, arrival in ms after `epoch`) since the last feedback.
    arrivals: Vec<(u16, f64)>,
    /// The first number the next feedback reports (the one after the last reported).
    next_base: Option<u16>,
    count: u8,
    /// Scratch: the next feedback's slots, arrived or lost.
    slots: Vec<Option<f64>>,
    pub(super) next_at: Instant,
}

impl Twcc {
    /// For a session whose receivers negotiated the extension with `TRANSPORT_CC_URI`.
    pub(super) fn negotiated(pc: &mut RTCPeerConnection, now: Instant) -> Option<Self> {
        let receivers: Vec<_> = pc.get_receivers().collect();
        let id = receivers.into_iter().find_map(|r| {
            pc.rtp_receiver(r)?
                .get_parameters()
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == TRANSPORT_CC_URI)
                .and_then(|e| u8::try_from(e.id).ok())
        })?;
        Some(Self::new(id, now))
    }

    fn new(id: u8, now: Instant) -> Self {
        Self {
            id,
            epoch: now,
            arrivals: Vec::with_capacity(256),
            next_base: None,
            count: 0,
            slots: Vec::with_capacity(256),
            next_at: now + TWCC_EVERY,
        }
    }

    /// Notes a decrypted RTP packet that arrived at `at`.
    pub(super) fn arrived(&mut self, plain: &[u8], at: Instant) {
        if let Some(seq) = extension_u16(plain, self.id) {
            let ms = at.saturating_duration_since(self.epoch).as_secs_f64() * 1e3;
            self.arrivals.push((seq, ms));
        }
    }

    /// The feedback due now, marshalled, if any packet arrived since the last one.
    pub(super) fn feedback(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Option<Vec<u8>> {
        use rtc::shared::marshal::Marshal;
        if self.arrivals.is_empty() {
            return None;
        }
        // The first feedback starts at the earliest number that arrived.
        let first = self.arrivals[0].0;
        let base = self.next_base.unwrap_or_else(|| {
            self.arrivals
                .iter()
                .map(|a| a.0)
                .min_by_key(|&s| s.wrapping_sub(first) as i16)
                .unwrap_or(first)
        });
        // Late packets (before `base`, already reported lost) and ones beyond the span drop.
        let span = self
            .arrivals
            .iter()
            .map(|a| a.0.wrapping_sub(base))
            .filter(|&d| d < MAX_SPAN)
            .max()?;
        self.slots.clear();
        self.slots.resize(usize::from(span) + 1, None);
        for &(seq, ms) in &self.arrivals {
            let d = seq.wrapping_sub(base);
            if d <= span {
                self.slots[usize::from(d)] = Some(ms);
            }
        }
        self.arrivals.clear();
        self.next_base = Some(base.wrapping_add(span).wrapping_add(1));
        let fb = twcc_feedback(sender_ssrc, media_ssrc, base, &self.slots, self.count);
        self.count = self.count.wrapping_add(1);
        fb.marshal().ok().map(|b| b.to_vec())
    }
}

/// The value of one-byte header extension `id` (RFC 8285) of a plain RTP packet, if it carries
/// one of two bytes.
fn extension_u16(packet: &[u8], id: u8) -> Option<u16> {
    if packet.len() < 12 || packet[0] & 0x10 == 0 {
        return None;
    }
    let start = 12 + 4 * usize::from(packet[0] & 0x0f);
    let head = packet.get(start..start + 4)?;
    if head[0..2] != [0xbe, 0xde] {
        return None;
    }
    let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let block = packet.get(start + 4..start + 4 + 4 * words)?;
    let mut i = 0;
    while i < block.len() {
        let b = block[i];
        if b == 0 {
            i += 1;
            continue;
        }
        let (eid, len) = (b >> 4, usize::from(b & 0x0f) + 1);
        if eid == 15 {
            return None;
        }
        let value = block.get(i + 1..i + 1 + len)?;
        if eid == id && len == 2 {
            return Some(u16::from_be_bytes([value[0], value[1]]));
        }
        i += 1 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> Vec<u8> {
        let mut p = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        // One-byte extensions: a 1-byte one (id 1), then ours (id 3, two bytes), padding.
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x10, 0xaa, 0x31]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        p.extend_from_slice(b"payload");
        p
    }

    #[test]
    fn the_extension_is_found_among_others() {
        assert_eq!(extension_u16(&packet(513), 3), Some(513));
        assert_eq!(extension_u16(&packet(513), 4), None);
        assert_eq!(extension_u16(&packet(513)[..20], 3), None);
    }

    #[test]
    fn feedback_covers_what_arrived_and_what_did_not() {
        use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
        use rtc::shared::marshal::Unmarshal;
        let t0 = Instant::now();
        let mut twcc = Twcc::new(3, t0);
        for (seq, ms) in [(65534u16, 1), (65535, 2), (1, 4)] {
            twcc.arrived(&packet(seq), t0 + Duration::from_millis(ms));
        }
        let bytes = twcc.feedback(9, 7).expect("a feedback");
        let fb = TransportLayerCc::unmarshal(&mut bytes.as_slice()).expect("well formed");
        assert_eq!(
            (fb.base_sequence_number, fb.packet_status_count),
            (65534, 4)
        );
        assert_eq!(fb.recv_deltas.len(), 3, "one lost (0) between");
        // The next one starts after the last reported.
        twcc.arrived(&packet(2), t0 + Duration::from_millis(5));
        let bytes = twcc.feedback(9, 7).expect("a feedback");
        let fb = TransportLayerCc::unmarshal(&mut bytes.as_slice()).expect("well formed");
        assert_eq!((fb.base_sequence_number, fb.packet_status_count), (2, 1));
    }
}
