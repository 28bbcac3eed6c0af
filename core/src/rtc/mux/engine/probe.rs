//! A mux viewer's retransmission stream (RTX, RFC 4588) and the link probes sent on it.
//!
//! A viewer held on a low simulcast layer is sent less than its link may take, so its estimate
//! (`media::bwe`) cannot tell whether the next layer would fit. A probe answers that without
//! risking the picture: for [`PROBE_DURATION`] the viewer is also sent padding-only packets on
//! its RTX stream (which its receiver counts in its TWCC feedback and then drops), at the rate
//! the next layer would add. If what arrived kept up with what was sent, the link carries the
//! next layer: the estimate restarts from there and the layer policy may move up. If not, the
//! next probe waits twice as long (up to [`PROBE_MAX_WAIT`]).

use super::*;
use crate::media::bwe::ProbePart;
use crate::media::layers::need_bps;

/// How long a probe sends padding: its first half drains the link's token bucket (an access
/// link lets a burst through at once: the network lab's 400 kbit/s link, 16 KB), its second
/// half is measured.
const PROBE_DURATION: Duration = Duration::from_millis(600);
/// Padding is sent at this many times what the next layer would add, so that a bucket drains
/// within the first half and a link that cannot carry the layer shows it.
const PROBE_INTENSITY: f64 = 1.5;
/// How long after a probe its feedback is awaited before it is judged.
const PROBE_SETTLE: Duration = Duration::from_millis(300);
/// Waits between probes: the first, and the longest after failures.
const PROBE_MIN_WAIT: Duration = Duration::from_secs(1);
const PROBE_MAX_WAIT: Duration = Duration::from_secs(4);
/// A probe succeeds when its padding arrived at this share of the rate it left at, with at
/// most [`PROBE_MAX_LOSS`] of it lost, and the estimate did not back off meanwhile (a queue
/// grew).
const PROBE_DELIVERED: f64 = 0.85;
const PROBE_MAX_LOSS: f64 = 0.05;
/// ...if its measured packets left at no less than this share of the rate asked for (fewer
/// reported packets over a longer span: the feedback missed part of it).
const PROBE_SENT: f64 = 0.7;
/// How long a passed probe vouches for the estimate (the layer policy holds an upgrade for a
/// second first).
const PROBE_VOUCHES: Duration = Duration::from_secs(3);
/// Padding per probe packet: the most one RTP packet's padding count can say.
const PAD: u8 = 255;

/// A leg's retransmission stream.
#[derive(Debug, Clone, Copy)]
pub(in crate::rtc::mux) struct Rtx {
    pub(in crate::rtc::mux) ssrc: u32,
    /// The payload type the viewer gave RTX of the leg's codec; 0 until negotiated.
    pt: u8,
    seq: u16,
}

impl Rtx {
    /// A stream declared in the answer (SSRC `ssrc`), its payload type not yet known.
    pub(in crate::rtc::mux) fn unnegotiated(ssrc: u32) -> Self {
        Self {
            ssrc,
            pt: 0,
            seq: rand::random::<u16>() & 0x7fff,
        }
    }

    /// The stream with the payload type the answer gave it; `None` if the viewer took none.
    pub(in crate::rtc::mux) fn negotiated(self, pt: Option<u8>) -> Option<Self> {
        pt.map(|pt| Self { pt, ..self })
    }

    /// The header of the next packet on the stream, at timestamp `ts`.
    fn next_header(&mut self, ts: u32) -> rtc::rtp::header::Header {
        self.seq = self.seq.wrapping_add(1);
        rtc::rtp::header::Header {
            version: 2,
            payload_type: self.pt,
            sequence_number: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            ..Default::default()
        }
    }

    /// `packet` (as it was sent to the viewer) as a retransmission: on this stream, its payload
    /// led by its sequence number (RFC 4588 §4).
    pub(in crate::rtc::mux) fn wrap(&mut self, packet: &Packet) -> Packet {
        let mut payload = BytesMut::with_capacity(2 + packet.payload.len());
        payload.extend_from_slice(&packet.header.sequence_number.to_be_bytes());
        payload.extend_from_slice(&packet.payload);
        let mut header = self.next_header(packet.header.timestamp);
        header.marker = packet.header.marker;
        Packet {
            header,
            payload: payload.freeze(),
        }
    }
}

/// A viewer's probing: the probe under way, and when the next may start.
#[derive(Debug)]
pub(in crate::rtc::mux) struct Probing {
    probe: Option<Probe>,
    next: Instant,
    wait: Duration,
    /// When the last probe passed, until a layer switch spends it.
    passed: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    /// The rate of padding, bits per second, and the estimate to restart from if it gets
    /// through.
    bps: f64,
    target: f64,
    started: Instant,
    until: Instant,
    /// Padding bytes sent so far, and the packets of its measured half.
    sent: f64,
    measured: u32,
}

impl Probing {
    pub(in crate::rtc::mux) fn new(now: Instant) -> Self {
        Self {
            probe: None,
            next: now + PROBE_MIN_WAIT,
            wait: PROBE_MIN_WAIT,
            passed: None,
        }
    }

    /// Whether a probe passed lately (and no switch has spent it since).
    pub(in crate::rtc::mux) fn vouches(&self, now: Instant) -> bool {
        self.passed
            .is_some_and(|t| now.saturating_duration_since(t) < PROBE_VOUCHES)
    }

    /// A switch was made on the probe's word.
    pub(in crate::rtc::mux) fn spent(&mut self) {
        self.passed = None;
    }

    /// Whether padding is being sent (the engine's timer then calls [`Engine::pad`]).
    pub(in crate::rtc::mux) fn sending(&self, now: Instant) -> bool {
        self.probe.is_some_and(|p| now < p.until)
    }
}

impl Engine {
    /// For viewer `key`: judges a finished probe, or starts one towards `target` (what the
    /// next layer up needs; `current` is what the viewer's layer needs now) if it is time.
    pub(super) fn probe(&mut self, key: usize, target: Option<(f64, f64)>, now: Instant) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        let probing = &mut viewer.probing;
        if let Some(p) = probing.probe {
            if now < p.until + PROBE_SETTLE {
                return;
            }
            probing.probe = None;
            let result = viewer.bwe.probe_result();
            // The padding's packets arrived as fast as they left (a bottleneck spreads them),
            // and they left at close to the rate asked for (a busy engine sends late).
            let passed = result.is_some_and(|r| {
                r.loss <= PROBE_MAX_LOSS
                    && r.delivered_bps >= PROBE_DELIVERED * r.sent_bps
                    && r.sent_bps >= PROBE_SENT * p.bps
                    && !r.backed_off
            });
            tracing::debug!(
                viewer = viewer.id,
                probe_bps = p.bps,
                target = p.target,
                sent_bytes = p.sent,
                measured = p.measured,
                ?result,
                passed,
                "link probe"
            );
            if passed {
                viewer.bwe.restart(p.target);
                probing.passed = Some(now);
                probing.wait = PROBE_MIN_WAIT;
            } else {
                probing.wait = (probing.wait * 2).min(PROBE_MAX_WAIT);
            }
            probing.next = now + probing.wait;
            return;
        }
        let Some((target, current)) = target else {
            return;
        };
        if now < probing.next
            || probing.vouches(now)
            || !viewer.legs.iter().any(|l| l.rtx.is_some())
        {
            return;
        }
        viewer.bwe.probe_started();
        let bps = ((target - current) * PROBE_INTENSITY).max(need_bps(0.0));
        probing.probe = Some(Probe {
            bps,
            target,
            started: now,
            until: now + PROBE_DURATION,
            sent: 0.0,
            measured: 0,
        });
    }

    /// Sends viewer `key` the padding its probe is due by `now`.
    pub(super) fn pad(&mut self, key: usize, now: Instant) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        let (Some(p), Some(to), Some(protector)) = (
            viewer.probing.probe.as_mut(),
            viewer.media_to,
            viewer.protector.as_mut(),
        ) else {
            return;
        };
        let Some(leg) = viewer.legs.iter_mut().find(|l| l.rtx.is_some()) else {
            return;
        };
        let due = p.bps / 8.0 * now.saturating_duration_since(p.started).as_secs_f64();
        let ts = leg
            .forward
            .rewriter()
            .state()
            .last_out
            .map_or(0, |(_, ts)| ts);
        let rtx = leg.rtx.as_mut().expect("found with one");
        while p.sent < due {
            let packet = Packet {
                header: rtx.next_header(ts),
                payload: bytes::Bytes::new(),
            };
            let twcc = twcc_ext(viewer.twcc_id, &viewer.bwe);
            if !out_pad(&mut self.out, to, protector, &packet, twcc) {
                break;
            }
            let size = wire_size(&packet, PAD, twcc.is_some());
            let part = if now < p.started + PROBE_DURATION / 2 {
                ProbePart::Warmup
            } else {
                p.measured += 1;
                ProbePart::Measured
            };
            viewer.bwe.sent(size, now, part);
            p.sent += size as f64;
        }
    }
}

fn out_pad(
    out: &mut Out,
    to: MediaTo,
    protector: &mut Protector,
    packet: &Packet,
    twcc: Option<TwccExt>,
) -> bool {
    out.push_with(to, |buf| {
        protector.protect_twcc_into(packet, PAD, twcc, buf)
    })
}
