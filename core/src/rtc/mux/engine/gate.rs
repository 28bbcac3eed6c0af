//! A viewer's video paused while its link cannot carry it, for a publisher that sends one
//! layer (no simulcast): there is no lower layer to switch to, and a link that cannot carry the
//! video makes it a frozen, loss-riddled picture that also drowns the audio.
//!
//! The gate is a layer switch whose layer below is "no video": the same
//! `media::layers::LayerPolicy` shuts it at once when the viewer's estimate (`media::bwe`) falls
//! below what the video needs while the link is seen failing to carry what it is sent (losing
//! it, or queueing it), and opens it again only when a probe (`engine::probe`) showed
//! the link carries the video (or, for a viewer without RTX to probe on, once the estimate held
//! above it), backing off after a reopening that failed. While shut the viewer's video leg is
//! paused (`Leg::pause`): its audio goes on, its player holds the last picture. Opening asks the
//! publisher for a keyframe and the leg resumes at it, its numbering continuous.

use super::layers::Rates;
use super::*;
use crate::media::layers::LIVE_BPS;
use crate::media::layers::{LayerPolicy, Upgrade, need_bps};

/// Padding of a probe for reopening, per bit the video would add: the gap from audio alone to
/// the video is wide, so the probe asks for no more than it (a layer's probe asks 1.5 times).
const PROBE_INTENSITY: f64 = 1.0;
/// The longest wait between probes of a link that keeps failing them.
const PROBE_MAX_WAIT: Duration = Duration::from_secs(8);
/// Probes for opening go in steps from what the link carried, the first this share above it:
/// within what a link's queue absorbs, so a probe that fails costs no audio.
const PROBE_STEP: f64 = 0.25;

/// A single-layer video leg's gate.
pub(in crate::rtc::mux) struct VideoGate {
    policy: LayerPolicy,
    rates: Rates,
}

/// Gives each video leg of a new viewer that has no simulcast layers a gate.
pub(in crate::rtc::mux) fn give_gates(legs: &mut [MuxLeg], now: Instant) {
    for leg in legs {
        if leg.layers.is_none() && leg.forward.needs_keyframe() {
            leg.gate = Some(Box::new(VideoGate {
                policy: LayerPolicy::default(),
                rates: Rates::new(std::slice::from_ref(&leg.track), now),
            }));
        }
    }
}

impl VideoGate {
    /// Whether the video of `track` should now be shut (`Some(true)`) or opened
    /// (`Some(false)`), given whether it is `shut`, the estimate and whether the link was seen
    /// `overloaded` (`Bwe::overloaded`); and, while it stays shut, what a probe for opening it
    /// aims at.
    fn decide(
        &mut self,
        track: &Arc<RoomTrack>,
        shut: bool,
        estimate: f64,
        overloaded: bool,
        upgrade: Upgrade,
        now: Instant,
    ) -> (Option<bool>, Option<ProbeAim>) {
        self.rates.sample(std::slice::from_ref(track), now);
        let rate = self.rates.bps[0];
        if rate < LIVE_BPS {
            // Nothing to weigh: the publisher sends no video (or not yet).
            return (None, None);
        }
        let rates = [0.0, rate];
        // An estimate that came down while the link delivered what it was sent (the delay
        // half's answer to a scheduling hiccup) does not shut the video: that costs the
        // viewer a frozen picture until a probe and a keyframe, for nothing.
        let estimate = if shut || overloaded {
            estimate
        } else {
            estimate.max(need_bps(rate))
        };
        let current = usize::from(!shut);
        let to = self
            .policy
            .decide(&rates, current, 1, estimate, upgrade, now)
            .filter(|&to| to != current);
        if let Some(to) = to {
            return (Some(to == 0), None);
        }
        let aim = shut
            .then(|| self.policy.next_need(&rates, 0, 1, now))
            .flatten()
            .map(|(target, failures)| ProbeAim {
                target,
                current: need_bps(0.0),
                failures,
                intensity: PROBE_INTENSITY,
                max_wait: PROBE_MAX_WAIT,
                step: Some(PROBE_STEP),
            });
        (None, aim)
    }
}

impl Engine {
    /// Shuts or opens the video gates of viewer `key` (`estimate` and `upgrade` as for its
    /// layers); what a probe for opening one would aim at.
    pub(super) fn gate(
        &mut self,
        key: usize,
        estimate: f64,
        upgrade: Upgrade,
        now: Instant,
    ) -> Option<ProbeAim> {
        let viewer = self.viewers.get_mut(key)?;
        if !viewer.bwe.has_feedback() {
            // No word from the viewer on its link: nothing to shut the video for.
            return None;
        }
        let overloaded = viewer.bwe.overloaded(now);
        let mut aim = None;
        for l in viewer.legs.iter_mut() {
            let Some(gate) = l.gate.as_mut() else {
                continue;
            };
            let (shut, wants) =
                gate.decide(&l.track, l.video_off, estimate, overloaded, upgrade, now);
            aim = aim.or(wants);
            let Some(shut) = shut else {
                continue;
            };
            tracing::debug!(
                viewer = viewer.id,
                shut,
                estimate,
                "video gate: the link {} the video",
                if shut { "cannot carry" } else { "carries" }
            );
            l.video_off = shut;
            viewer.transport.set_video_paused(shut);
            viewer.probing.spent();
            if shut {
                // Probes for opening it start from what the link was found to carry.
                viewer.probing.seen_carrying(estimate);
            }
            if !shut {
                // The leg was paused: it resumes at the next keyframe.
                let track = l.track.clone();
                tokio::spawn(async move { track.request_keyframe().await });
            }
        }
        aim
    }
}
