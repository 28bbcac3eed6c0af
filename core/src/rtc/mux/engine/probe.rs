//! A mux viewer's retransmission stream (RTX, RFC 4588) and the link probes sent on it.
//!
//! A viewer held on a low simulcast layer is sent less than its link may take, so its estimate
//! (`media::bwe`) cannot tell whether the next layer would fit. A probe answers that without
//! risking the picture: for [`PROBE_DURATION`] the viewer is also sent padding-only packets on
//! its RTX stream (which its receiver counts in its TWCC feedback and then drops), at the rate
//! the next layer would add. If what arrived kept up with what was sent, the link carries the
//! next layer: the estimate restarts from there, the layer policy may move up, and the probe for
//! the layer above may follow at once. If not, the next probe waits twice as long (up to
//! [`PROBE_MAX_WAIT`]).

use super::*;
use crate::media::bwe::ProbePart;
use crate::media::layers::need_bps;

/// How long a probe sends padding: its first half drains the link's token bucket (an access
/// link lets a burst through at once: the network lab's 400 kbit/s link, 16 KB), its second
/// half is measured. After an upgrade to the layer failed (a bigger bucket than the first half
/// drained let a probe through), each probe for it is twice as long, up to
/// [`PROBE_MAX_DURATION`].
const PROBE_DURATION: Duration = Duration::from_millis(600);
const PROBE_MAX_DURATION: Duration = Duration::from_millis(2_400);
/// Padding is sent at this many times what the next layer would add, so that a bucket drains
/// within the first half and a link that cannot carry the layer shows it.
pub(super) const PROBE_INTENSITY: f64 = 1.5;
/// How long after a probe its feedback is awaited before it is judged.
const PROBE_SETTLE: Duration = Duration::from_millis(300);
/// Waits between probes: the first, and the longest after failures.
const PROBE_MIN_WAIT: Duration = Duration::from_secs(1);
pub(super) const PROBE_MAX_WAIT: Duration = Duration::from_secs(4);
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
/// The most a stepped probe (`ProbeAim::step`) doubles its step to, after passes in a row.
const PROBE_MAX_STEP: f64 = 2.0;

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
    /// The longest wait after failures, as the last probe's aim said.
    max_wait: Duration,
    /// What the link was last seen to carry, all told (bits per second), and the share above
    /// it the next stepped probe asks for (doubled after each pass, from the aim's step after
    /// a failure).
    ceiling: Option<f64>,
    step: Option<f64>,
}

/// What a probe for a viewer's next layer up aims at (`LegLayers::target`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::rtc::mux) struct ProbeAim {
    /// What the estimate must reach for the next layer, and what the current one needs (bits
    /// per second): the probe sends the difference.
    pub(in crate::rtc::mux) target: f64,
    pub(in crate::rtc::mux) current: f64,
    /// Upgrades to the next layer that failed since the viewer last proved it.
    pub(in crate::rtc::mux) failures: u32,
    /// Padding per bit per second the next layer adds; the longest wait after failed probes.
    pub(in crate::rtc::mux) intensity: f64,
    pub(in crate::rtc::mux) max_wait: Duration,
    /// For a target far above what the link was last seen to carry: probe in steps, the first
    /// this share above it (what a link cannot take is lost, the viewer's audio with it, so a
    /// step asks for little more than the link took).
    pub(in crate::rtc::mux) step: Option<f64>,
}

impl ProbeAim {
    /// The rate of padding (bits per second) for the probe, given what the link was last seen
    /// to carry and the step the last stepped probe reached; and, if the padding is held to a
    /// step above that ceiling, short of the target, that step.
    fn padding(&self, ceiling: Option<f64>, reached: Option<f64>) -> (f64, Option<f64>) {
        let full = ((self.target - self.current) * self.intensity).max(need_bps(0.0));
        let step = self.step.map(|s| reached.unwrap_or(s));
        match (ceiling, step) {
            (Some(ceiling), Some(step)) if ceiling * (1.0 + step) - self.current < full => (
                (ceiling * (1.0 + step) - self.current).max(need_bps(0.0)),
                Some(step),
            ),
            _ => (full, None),
        }
    }

    /// How long the probe sends padding.
    fn duration(&self) -> Duration {
        (PROBE_DURATION * 2u32.saturating_pow(self.failures.min(4))).min(PROBE_MAX_DURATION)
    }
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    /// The rate of padding, bits per second, and the estimate to restart from if it gets
    /// through.
    bps: f64,
    target: f64,
    /// What the viewer is sent besides, bits per second; and, if the padding was held below
    /// what the target needs (a step above the ceiling), that step: then a pass only raises
    /// the ceiling.
    current: f64,
    step: Option<f64>,
    started: Instant,
    /// When its measured half begins, and when it ends.
    measured_from: Instant,
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
            max_wait: PROBE_MAX_WAIT,
            ceiling: None,
            step: None,
        }
    }

    /// The link was seen to carry no more than `bps` (bits per second, all told).
    pub(in crate::rtc::mux) fn seen_carrying(&mut self, bps: f64) {
        self.ceiling = Some(bps);
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
    /// For viewer `key`: judges a finished probe, or starts one for the next layer up (`aim`)
    /// if it is time.
    pub(super) fn probe(&mut self, key: usize, aim: Option<ProbeAim>, now: Instant) {
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
                step = ?p.step,
                sent_bytes = p.sent,
                measured = p.measured,
                ?result,
                passed,
                "link probe"
            );
            probing.next = now;
            if let Some(step) = p.step.filter(|_| passed) {
                probing.ceiling = Some(p.current + p.bps);
                probing.step = Some((step * 2.0).min(PROBE_MAX_STEP));
                probing.wait = PROBE_MIN_WAIT;
                probing.next = now + probing.wait;
            } else if passed {
                viewer.bwe.restart(p.target);
                probing.passed = Some(now);
                probing.ceiling = None;
                probing.step = None;
                // The probe for the layer above may start as soon as the viewer switched on
                // this one's word (`vouches` holds it until then): a link that recovered
                // climbs without a pause on each layer.
                probing.wait = PROBE_MIN_WAIT;
            } else {
                probing.step = None;
                if let Some(r) = result.filter(|r| r.delivered_bps > 0.0) {
                    probing.ceiling = Some(p.current + r.delivered_bps.min(p.bps));
                }
                probing.wait = (probing.wait * 2).min(probing.max_wait);
                probing.next = now + probing.wait;
            }
            return;
        }
        let Some(aim) = aim else {
            return;
        };
        if now < probing.next
            || probing.vouches(now)
            || !viewer.legs.iter().any(|l| l.rtx.is_some())
        {
            return;
        }
        viewer.bwe.probe_started();
        let (bps, step) = aim.padding(probing.ceiling, probing.step);
        let duration = aim.duration();
        probing.max_wait = aim.max_wait;
        probing.probe = Some(Probe {
            bps,
            target: aim.target,
            current: aim.current,
            step,
            started: now,
            measured_from: now + duration / 2,
            until: now + duration,
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
            let part = if now < p.measured_from {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_for_a_layer_that_failed_is_longer() {
        let aim = |failures| ProbeAim {
            target: 700_000.0,
            current: 230_000.0,
            failures,
            intensity: PROBE_INTENSITY,
            max_wait: PROBE_MAX_WAIT,
            step: None,
        };
        assert_eq!(aim(0).duration(), PROBE_DURATION);
        assert_eq!(aim(1).duration(), PROBE_DURATION * 2);
        assert_eq!(aim(2).duration(), PROBE_MAX_DURATION);
        assert_eq!(aim(u32::MAX).duration(), PROBE_MAX_DURATION);
    }

    #[test]
    fn a_far_target_is_probed_in_steps_above_what_the_link_carried() {
        // A paused video of 2 Mbit/s, the viewer sent 64 kbit/s of audio.
        let aim = ProbeAim {
            target: 2_000_000.0,
            current: 64_000.0,
            failures: 0,
            intensity: 1.0,
            max_wait: PROBE_MAX_WAIT,
            step: Some(0.25),
        };
        // Nothing seen yet: the whole way at once.
        assert_eq!(aim.padding(None, None), (1_936_000.0, None));
        // The link carried 300 kbit/s: a quarter above it, all told.
        assert_eq!(aim.padding(Some(300_000.0), None), (311_000.0, Some(0.25)));
        // After passes the step has grown; the last step is the target itself.
        assert_eq!(
            aim.padding(Some(600_000.0), Some(1.0)),
            (1_136_000.0, Some(1.0))
        );
        assert_eq!(
            aim.padding(Some(1_200_000.0), Some(2.0)),
            (1_936_000.0, None)
        );
        // A layer's probe is not stepped, whatever the ceiling.
        let layer = ProbeAim { step: None, ..aim };
        assert_eq!(
            layer.padding(Some(300_000.0), Some(0.25)),
            (1_936_000.0, None)
        );
    }
}
