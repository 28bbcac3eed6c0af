//! What a light viewer that decrypts its own media needs besides SRTP: the RTP header's layout
//! (to find the payload) and when to NACK which lost packet (RFC 4585), as webrtc-rs's NACK
//! generator would for the core: each lost packet asked for again every [`RETRY`], at most
//! [`MAX_NACKS`] times, while it is within [`SPAN`] of the newest.

use crate::seq::SeqTracker;
use std::time::{Duration, Instant};

/// How far behind the newest packet a loss is still asked for (about 0.9 s of the reference
/// stream's video; an edge keeps more than that to resend).
pub const SPAN: u64 = 256;
/// Times one lost packet is asked for (as the nodes' and the core viewers' NACK generators).
pub const MAX_NACKS: u8 = 3;
/// Time between two requests for the same packet.
pub const RETRY: Duration = Duration::from_millis(100);
/// Packets pending at most (a longer outage is not repaired packet by packet).
const MAX_PENDING: usize = 256;

/// The SSRC of an RTP (or SRTP) datagram, whose header is in the clear; `None` for RTCP (RFC
/// 5761 §4: its packet types 192-223 in the second byte) and anything else.
pub fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 || (192..=223).contains(&datagram[1]) {
        return None;
    }
    Some(u32::from_be_bytes([
        datagram[8],
        datagram[9],
        datagram[10],
        datagram[11],
    ]))
}

/// The plain RTP packet's SSRC, sequence number and payload (CSRCs, header extension and
/// padding skipped); `None` when it is not a well-formed RTP packet.
pub fn rtp_parts(packet: &[u8]) -> Option<(u32, u16, &[u8])> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(packet[0] & 0x0f);
    let mut start = 12 + 4 * csrcs;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    let payload = packet.get(start..end)?;
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    Some((ssrc, seq, payload))
}

/// One lost packet: its extended number, how often it was asked for, and when last.
#[derive(Debug, Clone, Copy)]
struct Pending {
    ext: u64,
    sent: u8,
    last: Option<Instant>,
}

/// The losses of one stream being asked for.
#[derive(Debug, Default)]
pub struct Nacks {
    /// Oldest first.
    pending: Vec<Pending>,
    /// The stream's losses so far when last looked at: unchanged, with nothing pending,
    /// there is nothing new to look for.
    lost: u64,
}

impl Nacks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends to `out` the sequence numbers to ask for now, given what `seq` has received.
    /// Allocates only when more packets are pending than ever before.
    pub fn due(&mut self, seq: &SeqTracker, now: Instant, out: &mut Vec<u16>) {
        if self.pending.is_empty() && seq.lost() == self.lost {
            return;
        }
        self.lost = seq.lost();
        // What arrived (or fell out of the span) is no longer pending.
        self.pending.retain(|p| seq.is_missing(p.ext, SPAN));
        // New losses, oldest first, after the ones already pending (which are older or equal).
        let newest = self.pending.last().map_or(0, |p| p.ext);
        for ext in seq.missing(SPAN).filter(|&e| e > newest) {
            if self.pending.len() == MAX_PENDING {
                break;
            }
            self.pending.push(Pending {
                ext,
                sent: 0,
                last: None,
            });
        }
        for p in &mut self.pending {
            if p.sent < MAX_NACKS && p.last.is_none_or(|t| now.duration_since(t) >= RETRY) {
                p.sent += 1;
                p.last = Some(now);
                out.push(p.ext as u16);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(seqs: impl IntoIterator<Item = u16>) -> SeqTracker {
        let mut t = SeqTracker::new();
        for s in seqs {
            t.push(s);
        }
        t
    }

    #[test]
    fn a_loss_is_asked_for_at_most_three_times_spaced_by_the_retry_time() {
        let t = tracker([10, 11, 13, 14]);
        let mut nacks = Nacks::new();
        let t0 = Instant::now();
        let mut out = Vec::new();
        nacks.due(&t, t0, &mut out);
        assert_eq!(out, vec![12]);
        out.clear();
        nacks.due(&t, t0 + RETRY / 2, &mut out);
        assert!(out.is_empty(), "not again before the retry time");
        for k in 1..=3u32 {
            nacks.due(&t, t0 + RETRY * k, &mut out);
        }
        assert_eq!(out, vec![12, 12], "three requests in all");
    }

    #[test]
    fn a_packet_that_arrives_is_no_longer_asked_for_and_new_losses_follow_old_ones() {
        let mut t = tracker([65534, 1, 2]); // 65535 and 0 lost
        let mut nacks = Nacks::new();
        let t0 = Instant::now();
        let mut out = Vec::new();
        nacks.due(&t, t0, &mut out);
        assert_eq!(out, vec![65535, 0]);
        t.push(0);
        t.push(5); // 3 and 4 lost
        out.clear();
        nacks.due(&t, t0 + RETRY, &mut out);
        assert_eq!(out, vec![65535, 3, 4]);
    }

    #[test]
    fn losses_beyond_the_span_are_given_up() {
        let t = tracker([0, 2, 2 + SPAN as u16 + 10]);
        let mut nacks = Nacks::new();
        let mut out = Vec::new();
        nacks.due(&t, Instant::now(), &mut out);
        assert!(!out.contains(&1), "packet 1 is too old to ask for");
        assert_eq!(out.len(), SPAN as usize, "the span's worth of the new gap");
    }

    #[test]
    fn rtp_parts_skips_csrcs_extension_and_padding_and_refuses_garbage() {
        // V=2, P=1, X=1, CC=1; seq 0x0102; SSRC 0xaabbccdd; one CSRC; a one-word extension;
        // payload "hi"; two bytes of padding.
        let mut p = vec![0xb1, 96, 0x01, 0x02, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
        p.extend_from_slice(&[0, 0, 0, 9]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        p.extend_from_slice(b"hi");
        p.extend_from_slice(&[0, 2]);
        assert_eq!(rtp_parts(&p), Some((0xaabb_ccdd, 0x0102, &b"hi"[..])));
        assert_eq!(rtp_parts(&p[..11]), None);
        assert_eq!(rtp_parts(&p[..18]), None, "extension cut short");
        let mut bad_padding = p.clone();
        *bad_padding.last_mut().unwrap() = 200;
        assert_eq!(rtp_parts(&bad_padding), None);
        assert_eq!(rtp_parts(&[0x40; 20]), None, "not version 2");
        assert_eq!(rtp_ssrc(&p), Some(0xaabb_ccdd));
        let mut rtcp = p.clone();
        rtcp[1] = 200;
        assert_eq!(rtp_ssrc(&rtcp), None, "RTCP");
        assert_eq!(rtp_ssrc(&p[..11]), None);
    }
}
