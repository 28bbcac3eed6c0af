//! Sequence continuity of one received RTP stream: losses, reorders and duplicates, with the
//! 16-bit sequence number extended across wraps (RFC 3550 A.1 style, plus a 1024-packet window
//! so a late packet is told from a duplicate: as far back as webrtc-rs's NACK responder keeps
//! packets to retransmit).

/// Extended sequence numbers start this far up, so one from before the first packet seen never
/// goes below zero.
const EXT_BASE: u64 = 1 << 32;
/// Packets behind the highest one whose arrival is remembered.
const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What one packet was, relative to those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The first packet of the stream.
    First,
    /// The next one after the highest so far.
    InOrder,
    /// Ahead of the highest so far by more than one: this many are missing (for now).
    Gap(u64),
    /// Older than the highest so far and not seen before: it fills a gap.
    Late,
    /// Seen before.
    Duplicate,
}

/// Counters of one stream's sequence numbers. Small (a few words) and allocation-free.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// Extended number of the first packet (lowest seen, once late packets are in).
    first: u64,
    /// Extended number of the highest packet seen; 0 before the first packet.
    highest: u64,
    /// Bit `k` (word `k / 64`, bit `k % 64`) set: packet `highest - k` was received.
    window: [u64; WORDS],
    /// Distinct packets received.
    received: u64,
    duplicates: u64,
    /// Packets that arrived after a higher-numbered one.
    reordered: u64,
    /// Times the stream jumped ahead (a gap opened), and packets skipped by those jumps.
    gap_events: u64,
    gap_packets: u64,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one packet's sequence number.
    pub fn push(&mut self, seq: u16) -> Arrival {
        if self.highest == 0 {
            let ext = EXT_BASE + u64::from(seq);
            self.first = ext;
            self.highest = ext;
            self.window = [0; WORDS];
            self.window[0] = 1;
            self.received = 1;
            return Arrival::First;
        }
        // Signed distance on the 16-bit circle from the highest seen.
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        if delta > 0 {
            let d = delta as u64;
            shift(&mut self.window, d);
            self.window[0] |= 1;
            self.highest += d;
            self.received += 1;
            if d == 1 {
                Arrival::InOrder
            } else {
                self.gap_events += 1;
                self.gap_packets += d - 1;
                Arrival::Gap(d - 1)
            }
        } else if delta == 0 {
            self.duplicates += 1;
            Arrival::Duplicate
        } else {
            let back = delta.unsigned_abs();
            let ext = self.highest - back;
            if back < WINDOW {
                let (word, bit) = ((back / 64) as usize, back % 64);
                if self.window[word] & (1 << bit) != 0 {
                    self.duplicates += 1;
                    return Arrival::Duplicate;
                }
                self.window[word] |= 1 << bit;
            }
            // Beyond the window we cannot tell; a duplicate that late is far less likely than a
            // late packet, so it is counted as one.
            self.first = self.first.min(ext);
            self.received += 1;
            self.reordered += 1;
            Arrival::Late
        }
    }

    /// Extended numbers of the packets up to `span` behind the highest (and not before the
    /// first) that have not arrived, oldest first.
    pub fn missing(&self, span: u64) -> impl Iterator<Item = u64> + '_ {
        let back = if self.highest == 0 {
            0
        } else {
            (self.highest - self.first).min(span).min(WINDOW - 1)
        };
        (1..=back)
            .rev()
            .filter(move |&k| self.window[(k / 64) as usize] & (1 << (k % 64)) == 0)
            .map(move |k| self.highest - k)
    }

    /// Whether packet `ext` (extended) is within `span` behind the highest and has not arrived.
    pub fn is_missing(&self, ext: u64, span: u64) -> bool {
        let Some(k) = self.highest.checked_sub(ext) else {
            return false;
        };
        k >= 1
            && k <= span.min(WINDOW - 1)
            && ext >= self.first
            && self.window[(k / 64) as usize] & (1 << (k % 64)) == 0
    }

    /// Packets from the first to the highest seen.
    pub fn expected(&self) -> u64 {
        if self.highest == 0 {
            0
        } else {
            self.highest - self.first + 1
        }
    }

    /// Distinct packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets between the first and the highest that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Jumps ahead seen (each may have been filled later by late packets).
    pub fn gap_events(&self) -> u64 {
        self.gap_events
    }

    /// Packets skipped by jumps ahead, before any late arrival filled them.
    pub fn gap_packets(&self) -> u64 {
        self.gap_packets
    }
}

/// Moves the window `by` packets forward (bit 0 is the newest).
fn shift(window: &mut [u64; WORDS], by: u64) {
    if by >= WINDOW {
        *window = [0; WORDS];
        return;
    }
    let (words, bits) = ((by / 64) as usize, by % 64);
    for i in (0..WORDS).rev() {
        let src = i.checked_sub(words);
        let hi = src.map_or(0, |s| window[s] << bits);
        let lo = match src.and_then(|s| s.checked_sub(1)) {
            Some(s) if bits > 0 => window[s] >> (64 - bits),
            _ => 0,
        };
        window[i] = hi | lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: &[u16]) -> SeqTracker {
        let mut t = SeqTracker::new();
        for &s in seqs {
            t.push(s);
        }
        t
    }

    #[test]
    fn continuous_stream_across_the_wrap() {
        let seqs: Vec<u16> = (0..1000u32).map(|i| (65000 + i) as u16).collect();
        let t = feed(&seqs);
        assert_eq!(t.expected(), 1000);
        assert_eq!(t.received(), 1000);
        assert_eq!(t.lost(), 0);
        assert_eq!((t.reordered(), t.duplicates(), t.gap_events()), (0, 0, 0));
    }

    #[test]
    fn missing_packets_are_listed_oldest_first_within_the_span() {
        let mut t = SeqTracker::new();
        for s in [65533u16, 65535, 2, 3, 5] {
            t.push(s);
        }
        let missing: Vec<u16> = t.missing(100).map(|e| e as u16).collect();
        assert_eq!(missing, vec![65534, 0, 1, 4]);
        let near: Vec<u16> = t.missing(3).map(|e| e as u16).collect();
        assert_eq!(near, vec![4]);
        let four = t.missing(100).last().unwrap();
        assert!(t.is_missing(four, 100));
        t.push(4);
        assert!(!t.is_missing(four, 100));
        assert_eq!(t.missing(100).count(), 3);
        assert_eq!(SeqTracker::new().missing(100).count(), 0);
    }

    #[test]
    fn counts_losses_with_wrap() {
        let mut t = SeqTracker::new();
        assert_eq!(t.push(65534), Arrival::First);
        assert_eq!(t.push(65535), Arrival::InOrder);
        assert_eq!(t.push(2), Arrival::Gap(2)); // 0 and 1 missing
        assert_eq!(t.push(3), Arrival::InOrder);
        assert_eq!(t.expected(), 6);
        assert_eq!(t.lost(), 2);
        assert_eq!(t.gap_events(), 1);
        assert_eq!(t.gap_packets(), 2);
    }

    #[test]
    fn late_packets_fill_gaps_and_duplicates_are_not_counted_twice() {
        let mut t = SeqTracker::new();
        t.push(65535);
        assert_eq!(t.push(1), Arrival::Gap(1));
        assert_eq!(t.push(0), Arrival::Late);
        assert_eq!(t.push(0), Arrival::Duplicate);
        assert_eq!(t.push(1), Arrival::Duplicate);
        assert_eq!(t.expected(), 3);
        assert_eq!(t.received(), 3);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.reordered(), 1);
        assert_eq!(t.duplicates(), 2);
    }

    #[test]
    fn a_packet_from_before_the_first_extends_the_stream() {
        let mut t = SeqTracker::new();
        t.push(10);
        t.push(11);
        assert_eq!(t.push(9), Arrival::Late);
        assert_eq!(t.expected(), 3);
        assert_eq!(t.lost(), 0);
        // Also across the wrap.
        let mut t = SeqTracker::new();
        t.push(0);
        assert_eq!(t.push(65535), Arrival::Late);
        assert_eq!(t.expected(), 2);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn big_jumps_clear_the_window() {
        let mut t = SeqTracker::new();
        t.push(0);
        assert_eq!(t.push(3000), Arrival::Gap(2999));
        assert_eq!(t.lost(), 2999);
        // 500 is outside the window: counted late, not duplicate.
        assert_eq!(t.push(500), Arrival::Late);
        assert_eq!(t.lost(), 2998);
        t.push(3001);
        assert_eq!(t.expected(), 3002);
    }

    #[test]
    fn duplicates_are_recognised_across_the_whole_window() {
        for back in [1u16, 63, 64, 65, 127, 128, 500, 1000, 1023] {
            let mut t = SeqTracker::new();
            for s in 0..=2000u16 {
                t.push(s);
            }
            assert_eq!(t.push(2000 - back), Arrival::Duplicate, "{back} behind");
            // After more advances by odd amounts the old bit is still where it should be.
            t.push(2003);
            t.push(2010);
            let again = 2000 - back;
            let expect = if 2010 - again < 1024 {
                Arrival::Duplicate
            } else {
                Arrival::Late
            };
            assert_eq!(t.push(again), expect, "{back} behind, after shifting");
            assert_eq!(t.push(2001), Arrival::Late);
            assert_eq!(t.push(2001), Arrival::Duplicate);
        }
    }

    #[test]
    fn many_wraps() {
        let mut t = SeqTracker::new();
        for i in 0..300_000u32 {
            if i % 1000 == 7 {
                continue; // one loss per thousand
            }
            t.push(i as u16);
        }
        assert_eq!(t.expected(), 300_000);
        assert_eq!(t.lost(), 300);
        assert_eq!(t.gap_events(), 300);
    }

    #[test]
    fn any_sequence_is_handled() {
        // Arbitrary input must never panic or underflow.
        let mut t = SeqTracker::new();
        let mut x = 12345u32;
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            t.push((x >> 16) as u16);
            assert!(t.lost() <= t.expected());
        }
    }
}
