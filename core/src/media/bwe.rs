//! A viewer's send-side bandwidth estimate, from its transport-wide congestion control feedback
//! (TWCC, draft-holmer-rmcat-transport-wide-cc-extensions-01) and, where a client sends it, its
//! REMB (draft-alvestrand-rmcat-remb).
//!
//! The algorithm is webrtc-rs's Google Congestion Control ([`Gcc`]: the delay gradient of packet
//! groups through a trendline filter and an adaptive threshold driving AIMD, and a loss-based half;
//! the lower of the two wins). What is ours is the record of what was sent and the join of
//! feedback to it: a ring indexed by transport-wide sequence number, so the per-packet path
//! writes one slot and allocates nothing (the crate's own `History` keeps three hash maps).
//!
//! What the link delivered bounds the capacity a viewer's layer is chosen and its repair paced
//! by ([`Bwe::capacity_at`], which says for how long): when, in half a second of sends, it lost
//! a quarter of the bytes or more from its first loss on (a bottleneck dropped what it could
//! not carry), the capacity is at most what got through from then on. [`Gcc`]'s loss half grows
//! its target by 5 % every 200 ms of a clean link, however little the viewer is sent, so after
//! a while on a free link it stands far above anything sent; on a sudden drop (a Wi-Fi link
//! filling up) it took three seconds and more to come down through that, the viewer's picture
//! frozen meanwhile. Now the first half second of evidence moves the viewer down. [`Gcc`] itself is
//! left to come down on its own: restarted that low, its loss half cut on through the queue
//! the old layer left behind, below what the new layer needs, and the video gate
//! (`rtc::mux::engine::gate`) paused a viewer the link could carry.
//!
//! A probe ([`Bwe::probe_result`]) answers what [`Gcc`] cannot while a viewer is sent less than
//! its link takes: how much more would get through. [`Gcc`] only grows its target by 8 % a second
//! from what it last saw delivered, so a viewer held on a low simulcast layer would take half a
//! minute to earn the top one back after its link recovered.

use rtc::interceptor::{BandwidthEstimator, Gcc, PacketReport, convert_twcc};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    SymbolTypeTcc, TransportLayerCc,
};
use std::time::{Duration, Instant};

/// Packets remembered for feedback to name: a second and more of a 5 Mbit/s stream, where
/// browsers send feedback every 50 to 100 ms.
const RING: usize = 1024;
/// Where an estimate starts, before any feedback: high enough that a viewer starts on the
/// layer its request allows and drops at the first sign of congestion (downgrades are fast,
/// upgrades slow).
pub const INITIAL_BPS: f64 = 10_000_000.0;
/// The floor: below it a viewer gets audio and the lowest layer anyway.
const MIN_BPS: f64 = 50_000.0;
const MAX_BPS: f64 = 100_000_000.0;
/// A REMB holds for this long unless renewed (browsers send one a second or more often).
const REMB_TTL: Duration = Duration::from_secs(3);
/// The span of sends a delivery window covers ([`Bwe::overloaded`]).
const WINDOW: Duration = Duration::from_secs(1);
/// A window older than this says nothing of the link now.
const WINDOW_TTL: Duration = Duration::from_secs(3);
/// A link that lost this share of a window's packets, or delivered them this much slower than
/// they were sent (its queue grew by the rest), did not carry what it was sent.
const OVERLOAD_LOSS: f64 = 0.05;
const OVERLOAD_DELIVERY: f64 = 0.8;
/// The span of sends in which a link's loss can bound its capacity ([`Bwe::capacity_at`]), and
/// the shortest lossy part of it, and fewest packets in that part, that can: a few per cent of
/// random loss makes a quarter of 50 packets' bytes lost about once in 10^5 such samples.
const SHORT_WINDOW: Duration = Duration::from_millis(500);
const LOSSY_SPAN: Duration = Duration::from_millis(250);
const MIN_REPORTED: u64 = 50;
/// The share of the lossy part's bytes that must arrive for it not to bound the capacity.
const LOSSY_SHARE: f64 = 0.75;
/// How long a lossy link's capacity bounds it at least.
const CAP_TTL: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    /// Which packet the slot holds: its number among all packets sent (the transport-wide
    /// sequence number is its low 16 bits). `u64::MAX`: empty, or already reported.
    id: u64,
    /// When it left, in microseconds after [`Bwe::epoch`].
    micros: u64,
    size: u32,
    probe: ProbePart,
}

/// Which part of a probe a packet belongs to, if any. A probe's first half drains what the
/// link's token buckets let through at once; only its second half is measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProbePart {
    #[default]
    None,
    Warmup,
    Measured,
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeResult {
    /// What arrived over the probe's packets' span, in bits per second.
    pub delivered_bps: f64,
    /// The same packets as they left: their bytes over their departures' span.
    pub sent_bps: f64,
    /// Whether the estimate came down while the probe was out (it made a queue grow).
    pub backed_off: bool,
    /// How many of its measured packets the feedback reported (arrived or lost).
    pub reported: u64,
    /// Of the probe's packets, the share the receiver reported lost.
    pub loss: f64,
}

/// One viewer's estimate.
pub struct Bwe {
    epoch: Instant,
    next_id: u64,
    ring: Box<[Sent]>,
    gcc: Gcc,
    remb: Option<(f64, Instant)>,
    /// Scratch for one feedback's reports (kept, so a feedback allocates only its parsing).
    reports: Vec<PacketReport>,
    /// The probe being measured: the ids of its first and last packets, once sent.
    probe: Option<(u64, u64)>,
    probe_seen: Tally,
    /// The packets of the current delivery window, and what the last full one found.
    window: Tally,
    last_window: Option<(Delivery, Instant)>,
    /// The packets of the current short window (see the module documentation), and what the
    /// last lossy one carried.
    short: Tally,
    lossy_cap: Option<(f64, Instant)>,
    feedbacks: u64,
    /// Set when the estimate came down (congestion: a queue grew, or loss), until
    /// [`Bwe::probe_result`] reads it.
    backed_off: bool,
}

/// What the feedback said of a run of packets.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    bytes: u64,
    /// Bytes of the packets reported lost.
    lost_bytes: u64,
    /// The departure of the first one lost, and the bytes of those that arrived from then on.
    first_lost: Option<u64>,
    bytes_after_loss: u64,
    arrived_after_loss: u64,
    arrived: u64,
    lost: u64,
    /// Whether any of them was a probe's (sent above what the viewer takes, to test the link).
    probed: bool,
    first_arrival: Option<Duration>,
    last_arrival: Option<Duration>,
    /// Departures of the arrived ones, in microseconds after [`Bwe::epoch`].
    first_departure: Option<u64>,
    last_departure: Option<u64>,
    /// The departures of all the reported ones, arrived or lost.
    first_reported: Option<u64>,
    last_reported: Option<u64>,
}

/// How a run of packets went through the link.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Delivery {
    /// Their bytes over their arrivals' span, in bits per second.
    delivered_bps: f64,
    /// The same bytes over their departures' span.
    sent_bps: f64,
    /// The share of them reported lost, and how many were reported.
    loss: f64,
    reported: u64,
}

fn departures(first: Option<u64>, last: Option<u64>) -> Duration {
    match (first, last) {
        (Some(first), Some(last)) => Duration::from_micros(last.saturating_sub(first)),
        _ => Duration::ZERO,
    }
}

impl Tally {
    /// Counts a packet of `size` bytes that left at `departure` (microseconds after the
    /// epoch) and arrived at `arrival` on the receiver's clock, or was lost (`arrived` false).
    fn add(&mut self, size: u32, departure: u64, arrived: bool, arrival: Option<Duration>) {
        self.first_reported = Some(self.first_reported.map_or(departure, |f| f.min(departure)));
        self.last_reported = Some(self.last_reported.map_or(departure, |l| l.max(departure)));
        if !arrived {
            self.lost += 1;
            self.lost_bytes += u64::from(size);
            self.first_lost.get_or_insert(departure);
            return;
        }
        self.arrived += 1;
        self.bytes += u64::from(size);
        if self.first_lost.is_some_and(|f| departure >= f) {
            self.bytes_after_loss += u64::from(size);
            self.arrived_after_loss += 1;
        }
        self.first_departure = Some(self.first_departure.map_or(departure, |f| f.min(departure)));
        self.last_departure = Some(self.last_departure.map_or(departure, |l| l.max(departure)));
        if let Some(at) = arrival {
            self.first_arrival = Some(self.first_arrival.map_or(at, |f| f.min(at)));
            self.last_arrival = Some(self.last_arrival.map_or(at, |l| l.max(at)));
        }
    }

    /// The span of the reported packets' departures.
    fn reported_span(&self) -> Duration {
        departures(self.first_reported, self.last_reported)
    }

    /// What the run carried; `None` until two packets arrived at distinct times.
    fn delivery(&self) -> Option<Delivery> {
        let reported = self.arrived + self.lost;
        let span = match (self.first_arrival, self.last_arrival) {
            (Some(first), Some(last)) if last > first => last - first,
            _ => return None,
        };
        let sent_span = departures(self.first_departure, self.last_departure);
        if sent_span.is_zero() {
            return None;
        }
        // Each span runs from the first packet to the last: the first packet's bytes came
        // before it.
        let bytes = self.bytes as f64 * (self.arrived - 1) as f64 / self.arrived as f64;
        Some(Delivery {
            delivered_bps: bytes * 8.0 / span.as_secs_f64(),
            sent_bps: bytes * 8.0 / sent_span.as_secs_f64(),
            loss: self.lost as f64 / reported as f64,
            reported,
        })
    }

    /// From its first loss on, what got through of a run that from then on lost more than
    /// `1 - share` of its bytes, in bits per second over the span it was sent in (a link that
    /// dropped in the middle of the run is measured after the drop); `None` for a run that lost
    /// less, one with a probe's packets in it, or one whose lossy part is too short to say
    /// (under [`LOSSY_SPAN`] or `min` packets).
    fn lossy_carried(&self, share: f64, min: u64) -> Option<f64> {
        let first = self.first_lost?;
        let span = departures(Some(first), self.last_reported);
        let offered = self.bytes_after_loss + self.lost_bytes;
        (!self.probed
            && self.arrived_after_loss + self.lost >= min
            && span >= LOSSY_SPAN
            && (self.bytes_after_loss as f64) < offered as f64 * share)
            .then(|| self.bytes_after_loss as f64 * 8.0 / span.as_secs_f64())
    }
}

impl std::fmt::Debug for Bwe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bwe")
            .field("estimate_bps", &self.estimate_at(Instant::now()))
            .field("feedbacks", &self.feedbacks)
            .finish()
    }
}

impl Default for Bwe {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Bwe {
    pub fn new(now: Instant) -> Self {
        Self {
            epoch: now,
            next_id: 0,
            ring: vec![
                Sent {
                    id: u64::MAX,
                    ..Default::default()
                };
                RING
            ]
            .into_boxed_slice(),
            gcc: Gcc::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            remb: None,
            reports: Vec::new(),
            probe: None,
            probe_seen: Tally::default(),
            window: Tally::default(),
            last_window: None,
            short: Tally::default(),
            lossy_cap: None,
            feedbacks: 0,
            backed_off: false,
        }
    }

    /// The transport-wide sequence number the next packet [`Bwe::sent`] records carries.
    pub fn next_seq(&self) -> u16 {
        self.next_id as u16
    }

    /// Records a packet of `size` bytes leaving at `now` (`probe`: sent to probe the link);
    /// returns the transport-wide sequence number it carries ([`Bwe::next_seq`] before).
    pub fn sent(&mut self, size: usize, now: Instant, probe: ProbePart) -> u16 {
        let id = self.next_id;
        self.next_id += 1;
        self.ring[id as usize % RING] = Sent {
            id,
            micros: now.saturating_duration_since(self.epoch).as_micros() as u64,
            size: size as u32,
            probe,
        };
        if probe == ProbePart::Measured {
            self.probe = Some(match self.probe {
                Some((first, _)) => (first, id),
                None => (id, id),
            });
        }
        id as u16
    }

    /// Folds in a TWCC feedback received at `now`.
    pub fn on_twcc(&mut self, feedback: &TransportLayerCc, now: Instant) {
        self.feedbacks += 1;
        self.reports.clear();
        let Some(newest) = self.next_id.checked_sub(1) else {
            return;
        };
        for ack in convert_twcc(feedback) {
            // The newest packet sent with these low 16 bits; older ones have left the ring.
            let back = u64::from((newest as u16).wrapping_sub(ack.sequence_number));
            let Some(id) = newest.checked_sub(back) else {
                continue;
            };
            let slot = &mut self.ring[id as usize % RING];
            if slot.id != id {
                continue;
            }
            let sent = *slot;
            slot.id = u64::MAX;
            // Only the current probe's: a late report of an earlier one's would stretch the span.
            let current = self
                .probe
                .is_some_and(|(first, last)| (first..=last).contains(&id));
            if sent.probe == ProbePart::Measured && current {
                self.probe_seen
                    .add(sent.size, sent.micros, ack.arrived, ack.arrival);
            }
            self.window
                .add(sent.size, sent.micros, ack.arrived, ack.arrival);
            self.short
                .add(sent.size, sent.micros, ack.arrived, ack.arrival);
            self.short.probed |= sent.probe != ProbePart::None;
            self.reports.push(PacketReport {
                ssrc: 0,
                id,
                rtp_sequence_number: 0,
                is_twcc: true,
                twcc_sequence_number: ack.sequence_number,
                size: sent.size as usize,
                arrived: ack.arrived,
                departure: self.epoch + Duration::from_micros(sent.micros),
                arrival: ack.arrival,
                ecn: Ecn::default(),
            });
        }
        self.reports.sort_unstable_by_key(|r| r.id);
        if self.window.reported_span() >= WINDOW {
            let w = std::mem::take(&mut self.window);
            // At most one arrived (or all at one instant): its loss says what it carried.
            let delivery = w.delivery().unwrap_or(Delivery {
                delivered_bps: 0.0,
                sent_bps: 0.0,
                loss: w.lost as f64 / (w.arrived + w.lost).max(1) as f64,
                reported: w.arrived + w.lost,
            });
            self.last_window = Some((delivery, now));
        }
        let before = self.gcc.target_bitrate();
        self.gcc.on_reports(now, &self.reports);
        // The link lost a quarter of the bytes it was offered or more since its first loss:
        // what got through is its capacity, whatever the estimate grew to. Random loss of a few
        // per cent is no such sign, nor a probe (meant to overshoot; `probe_result` judges
        // it); a queue that grows without loss is the delay half's to see.
        let lossy = self.short.lossy_carried(LOSSY_SHARE, MIN_REPORTED);
        if lossy.is_some() || self.short.reported_span() >= SHORT_WINDOW {
            self.short = Tally::default();
        }
        if let Some(carried) = lossy {
            tracing::debug!(
                carried,
                estimate = self.gcc.target_bitrate(),
                "a lossy link's capacity"
            );
            self.lossy_cap = Some((carried.max(MIN_BPS), now));
        }
        if self.gcc.target_bitrate() < before * 0.95 {
            self.backed_off = true;
        }
    }

    /// Starts the estimate again from `bps`: a probe showed the link carries that much more
    /// than it was being sent, which the delay and loss halves cannot learn while the sender
    /// sends less.
    pub fn restart(&mut self, bps: f64) {
        self.gcc = Gcc::new(bps, MIN_BPS, MAX_BPS);
        self.lossy_cap = None;
    }

    /// Notes a REMB: the receiver's own estimate caps ours while it is fresh.
    pub fn on_remb(&mut self, bps: f64, now: Instant) {
        if bps.is_finite() && bps > 0.0 {
            self.remb = Some((bps, now));
        }
    }

    /// Whether the receiver has sent any TWCC feedback (without it, only a REMB can say).
    pub fn has_feedback(&self) -> bool {
        self.feedbacks > 0
    }

    /// The estimate at `now`: what the link is thought to carry, in bits per second (a REMB
    /// older than [`REMB_TTL`] no longer counts).
    pub fn estimate_at(&self, now: Instant) -> f64 {
        let twcc = if self.feedbacks > 0 {
            self.gcc.target_bitrate()
        } else {
            INITIAL_BPS
        };
        match self.remb {
            Some((remb, at)) if now.saturating_duration_since(at) < REMB_TTL => twcc.min(remb),
            _ => twcc,
        }
    }

    /// What the viewer's link is thought to carry, for choosing its layer and pacing its
    /// repair: the estimate, at most what the link carried when it last lost a quarter of what
    /// it was sent. That bound holds for [`CAP_TTL`], and after it for as long as the estimate
    /// stands more than twice above it (it never came down through it), until a probe passes
    /// ([`Bwe::restart`]).
    pub fn capacity_at(&self, now: Instant) -> f64 {
        let estimate = self.estimate_at(now);
        match self.lossy_cap {
            Some((cap, at))
                if now.saturating_duration_since(at) < CAP_TTL || estimate > 2.0 * cap =>
            {
                estimate.min(cap)
            }
            _ => estimate,
        }
    }

    /// The loss the receiver reported recently (0 to 1), if any feedback came.
    pub fn loss(&self) -> Option<f64> {
        self.gcc.stats().packet_loss
    }

    /// Whether the link failed to carry what it was sent over the last second or so of
    /// feedback: lost a share of it, or delivered it clearly slower than it left (a queue
    /// grew). An estimate that came down without this (the delay half reacting to a receiver's
    /// or the sender's own scheduling hiccup) is not enough to take something away from a
    /// viewer that cannot be given back without a visible gap.
    pub fn overloaded(&self, now: Instant) -> bool {
        self.last_window.is_some_and(|(d, at)| {
            now.saturating_duration_since(at) < WINDOW_TTL
                && (d.loss >= OVERLOAD_LOSS || d.delivered_bps < d.sent_bps * OVERLOAD_DELIVERY)
        })
    }

    /// Starts watching for a back-off, as a probe begins.
    pub fn probe_started(&mut self) {
        self.backed_off = false;
        self.probe_seen = Tally::default();
    }

    /// Ends the current probe: what its packets' feedback says so far, `None` if none of them
    /// was reported yet (or none was sent).
    pub fn probe_result(&mut self) -> Option<ProbeResult> {
        let t = std::mem::take(&mut self.probe_seen);
        let backed_off = std::mem::take(&mut self.backed_off);
        self.probe.take()?;
        let d = t.delivery()?;
        Some(ProbeResult {
            delivered_bps: d.delivered_bps,
            sent_bps: d.sent_bps,
            backed_off,
            loss: d.loss,
            reported: d.reported,
        })
    }
}

/// A TWCC feedback as a receiver writes it, for the packets numbered from `base`, each arrived
/// at a time in ms on the receiver's clock or lost: reference time in 64 ms ticks, deltas in
/// 250 µs units from it, two-bit status vectors. For receivers that are not a WebRTC core (the
/// load generator's own-SRTP viewers) and for tests.
pub fn twcc_feedback(
    sender_ssrc: u32,
    media_ssrc: u32,
    base: u16,
    arrivals: &[Option<f64>],
    count: u8,
) -> TransportLayerCc {
    let first = arrivals.iter().flatten().copied().fold(f64::MAX, f64::min);
    let ticks = if first == f64::MAX {
        0.0
    } else {
        (first / 64.0).floor()
    };
    let reference = ticks as u32 & 0x00ff_ffff;
    let mut at = ticks * 64.0;
    let mut symbols = Vec::with_capacity(arrivals.len());
    let mut recv_deltas = Vec::with_capacity(arrivals.len());
    for a in arrivals {
        match a {
            Some(ms) => {
                let units = ((ms - at) * 4.0).round() as i64;
                at += units as f64 / 4.0;
                let typ = if (0..=255).contains(&units) {
                    SymbolTypeTcc::PacketReceivedSmallDelta
                } else {
                    SymbolTypeTcc::PacketReceivedLargeDelta
                };
                symbols.push(typ);
                recv_deltas.push(RecvDelta {
                    type_tcc_packet: typ,
                    delta: units * 250,
                });
            }
            None => symbols.push(SymbolTypeTcc::PacketNotReceived),
        }
    }
    let packet_chunks = symbols
        .chunks(7)
        .map(|c| {
            let mut list = c.to_vec();
            list.resize(7, SymbolTypeTcc::PacketNotReceived);
            PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::TwoBit,
                symbol_list: list,
            })
        })
        .collect();
    TransportLayerCc {
        sender_ssrc,
        media_ssrc,
        base_sequence_number: base,
        packet_status_count: arrivals.len() as u16,
        reference_time: reference,
        fb_pkt_count: count,
        packet_chunks,
        recv_deltas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver's feedback for packets from `base`, each arrived at a time in ms or lost.
    fn feedback(base: u16, arrivals: &[Option<f64>]) -> TransportLayerCc {
        twcc_feedback(1, 2, base, arrivals, 0)
    }

    /// Sends `n` packets of `size` bytes at `bps`, from `start`; returns the next send time.
    fn send(bwe: &mut Bwe, n: usize, size: usize, bps: f64, start: Instant) -> (Vec<u16>, Instant) {
        let gap = Duration::from_secs_f64(size as f64 * 8.0 / bps);
        let mut at = start;
        let seqs = (0..n)
            .map(|_| {
                let s = bwe.sent(size, at, ProbePart::None);
                at += gap;
                s
            })
            .collect();
        (seqs, at)
    }

    #[test]
    fn without_feedback_the_estimate_is_the_optimistic_start() {
        let bwe = Bwe::default();
        assert_eq!(bwe.estimate_at(Instant::now()), INITIAL_BPS);
        assert!(!bwe.has_feedback());
    }

    /// A link that takes 400 kbit/s is sent 2 Mbit/s: each packet arrives later than the one
    /// before by more than it left (the queue grows), and the estimate comes down to about what
    /// arrives.
    #[test]
    fn a_growing_queue_brings_the_estimate_down_to_what_arrives() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(t0);
        let (mut at, mut sending) = (t0, t0);
        // 1200-byte packets: 4.8 ms apart at 2 Mbit/s, 24 ms apart at 400 kbit/s.
        let mut arrival = 10.0;
        // Feedback every 5 packets, about every 120 ms of arrivals, as a browser sends it.
        for _ in 0..80 {
            let (seqs, next) = send(&mut bwe, 5, 1200, 2_000_000.0, sending);
            sending = next;
            let arrivals: Vec<Option<f64>> = seqs
                .iter()
                .map(|_| {
                    arrival += 24.0;
                    Some(arrival)
                })
                .collect();
            // The receiver reports them as they arrive.
            at = t0 + Duration::from_secs_f64((arrival + 5.0) / 1000.0);
            bwe.on_twcc(&feedback(seqs[0], &arrivals), at);
        }
        let estimate = bwe.estimate_at(at);
        assert!(
            estimate < 600_000.0,
            "a 400 kbit/s link is estimated at {estimate} bit/s"
        );
        assert!(estimate > 150_000.0, "too low: {estimate}");
    }

    /// Half the packets lost: the loss-based half takes the estimate down; a clean link that
    /// delivers as sent keeps it high.
    #[test]
    fn heavy_loss_brings_it_down_and_a_clean_link_does_not() {
        let t0 = Instant::now();
        let (mut lossy, mut clean) = (Bwe::new(t0), Bwe::new(t0));
        let mut at = t0;
        let mut arrival = 10.0;
        for _ in 0..30 {
            let (seqs, next) = send(&mut lossy, 20, 1000, 1_000_000.0, at);
            let (seqs2, _) = send(&mut clean, 20, 1000, 1_000_000.0, at);
            at = next;
            // Arrivals spaced as they were sent (8 ms apart).
            let times: Vec<f64> = (0..20)
                .map(|_| {
                    arrival += 8.0;
                    arrival
                })
                .collect();
            let lossy_arrivals: Vec<Option<f64>> = times
                .iter()
                .enumerate()
                .map(|(i, &t)| (i % 2 == 0).then_some(t))
                .collect();
            let clean_arrivals: Vec<Option<f64>> = times.iter().map(|&t| Some(t)).collect();
            lossy.on_twcc(&feedback(seqs[0], &lossy_arrivals), at);
            clean.on_twcc(&feedback(seqs2[0], &clean_arrivals), at);
        }
        assert!(
            lossy.estimate_at(at) < 1_000_000.0,
            "{}",
            lossy.estimate_at(at)
        );
        assert!(
            clean.estimate_at(at) > 1_000_000.0,
            "{}",
            clean.estimate_at(at)
        );
        assert!(lossy.loss().unwrap_or(0.0) > 0.3);
    }

    #[test]
    fn a_fresh_remb_caps_the_estimate_and_a_stale_one_does_not() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(t0);
        bwe.on_remb(300_000.0, t0);
        assert_eq!(bwe.estimate_at(t0), 300_000.0);
        assert_eq!(bwe.estimate_at(t0 + REMB_TTL * 2), INITIAL_BPS);
        bwe.on_remb(f64::NAN, t0);
        bwe.on_remb(-1.0, t0);
        assert_eq!(bwe.estimate_at(t0), 300_000.0);
    }

    /// Feedback naming packets never sent, or long gone from the ring, is ignored.
    #[test]
    fn feedback_for_unknown_packets_changes_nothing() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(t0);
        bwe.on_twcc(&feedback(500, &[Some(1.0), Some(2.0), None]), t0);
        assert!(bwe.reports.is_empty());
        let (_, at) = send(&mut bwe, RING * 3, 100, 1_000_000.0, t0);
        bwe.on_twcc(&feedback(0, &[Some(1.0), Some(2.0)]), at);
        assert!(bwe.reports.is_empty(), "slot 0 holds a newer packet");
    }

    /// A probe's packets, all delivered over 100 ms: the probe measured what they carried.
    #[test]
    fn a_probe_measures_what_arrived() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(t0);
        let seqs: Vec<u16> = (0..11u32)
            .map(|i| bwe.sent(1250, t0 + Duration::from_millis(5) * i, ProbePart::Measured))
            .collect();
        // 11 packets, 10 ms apart on arrival: 10 x 1250 B over 100 ms after the first.
        let arrivals: Vec<Option<f64>> = (0..11).map(|i| Some(5.0 + 10.0 * f64::from(i))).collect();
        bwe.on_twcc(&feedback(seqs[0], &arrivals), t0);
        let result = bwe.probe_result().expect("a result");
        assert!(
            (950_000.0..1_200_000.0).contains(&result.delivered_bps),
            "{result:?}"
        );
        // Sent 5 ms apart: twice as fast as it arrived (the link's bottleneck spread them).
        assert!(
            (1_900_000.0..2_100_000.0).contains(&result.sent_bps),
            "{result:?}"
        );
        assert_eq!(result.loss, 0.0);
        assert_eq!(bwe.probe_result(), None, "taken once");
    }

    /// 2 Mbit/s of 1000-byte packets through a link that carries `link_bps` with 200 ms of
    /// queue (a token bucket: what would wait longer is dropped) and loses every `nth` packet
    /// besides (0: none), for `secs` from `start`, feedback every 100 ms; returns when the last
    /// feedback came. `clock` is the link's: when its queue empties, in ms after `t0`.
    fn through_link(
        bwe: &mut Bwe,
        t0: Instant,
        start: Instant,
        secs: u32,
        link_bps: f64,
        nth: u32,
        clock: &mut f64,
    ) -> Instant {
        let mut at = start;
        let mut k = 0u32;
        for _ in 0..secs * 10 {
            let (seqs, next) = send(bwe, 25, 1000, 2_000_000.0, at);
            let arrivals: Vec<Option<f64>> = (0..seqs.len())
                .map(|i| {
                    k += 1;
                    let departure = (at - t0).as_secs_f64() * 1000.0 + i as f64 * 4.0;
                    let done = clock.max(departure) + 8000.0 / link_bps * 1000.0;
                    if done - departure > 200.0 || (nth > 0 && k.is_multiple_of(nth)) {
                        return None;
                    }
                    *clock = done;
                    Some(done + 20.0)
                })
                .collect();
            at = next;
            bwe.on_twcc(
                &feedback(seqs[0], &arrivals),
                at + Duration::from_millis(25),
            );
        }
        at + Duration::from_millis(25)
    }

    /// A viewer watches over a free link long enough for the loss half's target to climb far
    /// above what it is sent; then its link drops to 400 kbit/s. Within a second of feedback the
    /// capacity a layer is chosen by is down to what the link carries. The same viewer with 5 %
    /// random loss on the free link keeps its estimate above what it is sent.
    #[test]
    fn a_link_that_drops_brings_the_estimate_down_within_its_first_windows() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(t0);
        let mut clock = 0.0;
        let at = through_link(&mut bwe, t0, t0, 20, 100_000_000.0, 0, &mut clock);
        let free = bwe.estimate_at(at);
        assert!(free > 2_000_000.0, "the free link: {free}");
        // Still sent 2 Mbit/s (a viewer not yet moved down): a second of it.
        let after = through_link(&mut bwe, t0, at, 1, 400_000.0, 0, &mut clock);
        let dropped = bwe.capacity_at(after);
        assert!(
            dropped < 500_000.0,
            "a 400 kbit/s link is estimated at {dropped} bit/s 1 s after it dropped (from {free})"
        );

        let mut lossy = Bwe::new(t0);
        let mut clock = 0.0;
        let at = through_link(&mut lossy, t0, t0, 20, 100_000_000.0, 20, &mut clock);
        assert!(
            lossy.capacity_at(at) > 2_000_000.0,
            "5 % random loss is no capacity: {}",
            lossy.capacity_at(at)
        );
        assert_eq!(
            bwe.capacity_at(after + CAP_TTL),
            dropped,
            "the bound holds while the estimate stands far above it"
        );
        bwe.restart(1_000_000.0);
        assert_eq!(
            bwe.capacity_at(after),
            1_000_000.0,
            "a passed probe lifts it"
        );
    }

    /// Feeds `bwe` 3 s of 1000-byte packets sent at 800 kbit/s (10 ms apart), each arriving
    /// `arrival(i)` ms after the start or lost; feedback every 10 packets. Returns the time
    /// the last feedback came.
    fn deliver(bwe: &mut Bwe, t0: Instant, arrival: impl Fn(u32) -> Option<f64>) -> Instant {
        let mut at = t0;
        for round in 0..30u32 {
            let (seqs, next) = send(bwe, 10, 1000, 800_000.0, at);
            at = next;
            let arrivals: Vec<Option<f64>> = (0..10).map(|i| arrival(round * 10 + i)).collect();
            bwe.on_twcc(&feedback(seqs[0], &arrivals), at);
        }
        at
    }

    /// Packets that arrive as they were sent, even with jitter, are carried; a fifth of them
    /// lost, or arriving at half the pace they left, are not; nor is a link that lost them all.
    #[test]
    fn overload_is_loss_or_a_growing_queue_not_jitter() {
        let t0 = Instant::now();
        let mut clean = Bwe::new(t0);
        let at = deliver(&mut clean, t0, |i| {
            Some(20.0 + 10.0 * f64::from(i) + f64::from(i % 3) * 4.0)
        });
        assert!(!clean.overloaded(at));
        assert!(
            !Bwe::new(t0).overloaded(at),
            "no feedback yet: nothing seen"
        );

        let mut lossy = Bwe::new(t0);
        let at = deliver(&mut lossy, t0, |i| {
            (i % 5 != 0).then(|| 20.0 + 10.0 * f64::from(i))
        });
        assert!(lossy.overloaded(at));
        assert!(
            !lossy.overloaded(at + WINDOW_TTL),
            "an old window says nothing"
        );

        let mut queued = Bwe::new(t0);
        let at = deliver(&mut queued, t0, |i| Some(20.0 + 20.0 * f64::from(i)));
        assert!(queued.overloaded(at));

        let mut dark = Bwe::new(t0);
        let at = deliver(&mut dark, t0, |_| None);
        assert!(dark.overloaded(at));
    }
}
