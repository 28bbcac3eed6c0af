//! Simulcast layers paused upstream. An edge holds every layer of a relayed room, but sends
//! each viewer one; a layer nothing here takes (no viewer is on it, no downstream relay link
//! carries it) need not cross the relay link. The node that pulls the room asks its upstream to
//! stop sending such a layer (`Relay.PauseLayers`) and to send it again as soon as a subscriber
//! attaches to it, from the upstream's next keyframe of it.
//!
//! [`UpstreamPause`] is a layer track's side: whether it is paused upstream, the bitrate it
//! brought before (the viewers' layer policy keeps ranking and probing a paused layer by it),
//! and the room's wake-up when a subscriber attaches to a paused layer. [`LayerDemand`] decides
//! which layers to pause: plain state, fed samples of each layer's subscribers and bytes.
//!
//! A group's lowest layer is never paused: a viewer's link that stops carrying its layer falls
//! back to it at once (a downgrade waits for no round trip upstream), and it is the cheapest.

use super::{Room, RoomTrack};
use crate::media::layers::{LIVE_BPS, Layer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a layer goes without subscribers before it is paused upstream: a viewer that moves
/// between layers with its link's ups and downs does not pause and resume it each time.
pub const PAUSE_AFTER: Duration = Duration::from_secs(10);
/// The weight of a new bitrate sample.
const RATE_WEIGHT: f64 = 0.3;

/// One layer track's pause upstream.
#[derive(Debug)]
pub(super) struct UpstreamPause {
    paused: AtomicBool,
    /// The bitrate (`f64` bits) the layer brought before it was paused.
    held_bps: AtomicU64,
    /// The room's: woken when a subscriber attaches to a paused layer.
    demand: Arc<Notify>,
}

impl UpstreamPause {
    pub(super) fn new(demand: Arc<Notify>) -> Self {
        Self {
            paused: AtomicBool::new(false),
            held_bps: AtomicU64::new(0),
            demand,
        }
    }

    /// A subscriber attached: if the layer is paused upstream, the room's puller is woken.
    pub(super) fn wanted(&self) {
        if self.paused.load(Ordering::Acquire) {
            self.demand.notify_one();
        }
    }
}

impl RoomTrack {
    /// Whether the upstream was asked to stop sending this layer.
    pub fn paused_upstream(&self) -> bool {
        self.upstream.paused.load(Ordering::Acquire)
    }

    /// While the layer is paused upstream, the bitrate it brought before.
    pub fn held_bps(&self) -> Option<f64> {
        self.paused_upstream()
            .then(|| f64::from_bits(self.upstream.held_bps.load(Ordering::Relaxed)))
    }

    /// The layer is paused upstream from now on; it brought `bps` before. Its cached pictures
    /// go: a subscriber that attaches meanwhile asks for a fresh keyframe instead.
    pub fn pause_upstream(&self, bps: f64) {
        self.upstream
            .held_bps
            .store(bps.to_bits(), Ordering::Relaxed);
        self.upstream.paused.store(true, Ordering::Release);
        self.fanout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear_cache();
    }

    /// The layer flows from upstream again (or the link that paused it is gone).
    pub fn resume_upstream(&self) {
        self.upstream.paused.store(false, Ordering::Release);
    }
}

impl Room {
    /// Resolves when a subscriber attached to a layer paused upstream (at once if one did since
    /// the last call).
    pub async fn layer_wanted(&self) {
        self.demand.notified().await;
    }
}

/// One layer as [`LayerDemand`] samples it.
#[derive(Debug, Clone, Copy)]
pub struct LayerSample<'a> {
    pub layer: &'a Layer,
    /// Subscribers attached to it here.
    pub subscribers: usize,
    /// Its bytes so far.
    pub bytes_in: u64,
}

#[derive(Debug, Clone)]
struct Demand {
    layer: Layer,
    bytes: u64,
    sampled: Instant,
    bps: f64,
    /// Since when it has had no subscribers.
    idle_since: Option<Instant>,
    paused: bool,
}

/// Which layers of a relayed room to pause upstream: a layer with no subscribers for
/// [`PAUSE_AFTER`], other than its group's lowest live layer; resumed as soon as one attaches.
#[derive(Debug, Clone, Default)]
pub struct LayerDemand {
    layers: Vec<Demand>,
}

impl LayerDemand {
    /// Takes one sample of every layer track at `now`.
    pub fn update<'a>(&mut self, samples: impl IntoIterator<Item = LayerSample<'a>>, now: Instant) {
        for s in samples {
            let d = match self.layers.iter_mut().position(|d| d.layer == *s.layer) {
                Some(i) => &mut self.layers[i],
                None => {
                    self.layers.push(Demand {
                        layer: s.layer.clone(),
                        bytes: s.bytes_in,
                        sampled: now,
                        bps: 0.0,
                        idle_since: None,
                        paused: false,
                    });
                    self.layers.last_mut().expect("just pushed")
                }
            };
            let secs = now.saturating_duration_since(d.sampled).as_secs_f64();
            if secs > 0.0 {
                // A paused layer keeps the rate it had: nothing comes meanwhile.
                if !d.paused {
                    let bps = s.bytes_in.saturating_sub(d.bytes) as f64 * 8.0 / secs;
                    d.bps = if d.bps == 0.0 {
                        bps
                    } else {
                        d.bps + RATE_WEIGHT * (bps - d.bps)
                    };
                }
                d.bytes = s.bytes_in;
                d.sampled = now;
            }
            if s.subscribers > 0 {
                d.idle_since = None;
                d.paused = false;
            } else if d.idle_since.is_none() {
                d.idle_since = Some(now);
            }
        }
        for i in 0..self.layers.len() {
            let d = &self.layers[i];
            if d.paused || d.bps < LIVE_BPS {
                continue;
            }
            let idle = d
                .idle_since
                .is_some_and(|t| now.saturating_duration_since(t) >= PAUSE_AFTER);
            if idle && !self.lowest_live(i) {
                self.layers[i].paused = true;
            }
        }
    }

    /// Whether layer `i` is the lowest live layer of its group (or its group's only layer).
    fn lowest_live(&self, i: usize) -> bool {
        let me = &self.layers[i];
        !self.layers.iter().enumerate().any(|(j, d)| {
            j != i
                && d.layer.group == me.layer.group
                && d.bps >= LIVE_BPS
                && (d.bps, j) < (me.bps, i)
        })
    }

    /// The layers to pause now.
    pub fn paused(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|d| d.paused).map(|d| &d.layer)
    }

    /// The bitrate `layer` brought (while it flowed).
    pub fn bps(&self, layer: &Layer) -> f64 {
        self.layers
            .iter()
            .find(|d| d.layer == *layer)
            .map_or(0.0, |d| d.bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(rid: &str) -> Layer {
        Layer {
            group: 0,
            rid: rid.into(),
        }
    }

    /// Feeds `demand` one second of each layer at its rate (kbit/s) with these subscribers.
    fn second(
        demand: &mut LayerDemand,
        bytes: &mut [u64; 3],
        layers: &[Layer; 3],
        kbps: [u64; 3],
        subscribers: [usize; 3],
        now: Instant,
    ) {
        for (b, k) in bytes.iter_mut().zip(kbps) {
            *b += k * 1000 / 8;
        }
        demand.update(
            (0..3).map(|i| LayerSample {
                layer: &layers[i],
                subscribers: subscribers[i],
                bytes_in: bytes[i],
            }),
            now,
        );
    }

    fn paused(demand: &LayerDemand) -> Vec<&str> {
        demand.paused().map(|l| l.rid.as_str()).collect()
    }

    #[test]
    fn idle_upper_layers_pause_after_a_while_and_resume_when_wanted() {
        let layers = [layer("h"), layer("m"), layer("l")];
        let mut demand = LayerDemand::default();
        let mut bytes = [0; 3];
        let t0 = Instant::now();
        let rates = [2500, 600, 150];
        // Every viewer on the low layer.
        for s in 0..=PAUSE_AFTER.as_secs() {
            let now = t0 + Duration::from_secs(s);
            second(&mut demand, &mut bytes, &layers, rates, [0, 0, 3], now);
            if s < PAUSE_AFTER.as_secs() {
                assert!(paused(&demand).is_empty(), "at {s} s");
            }
        }
        assert_eq!(paused(&demand), ["h", "m"]);
        // Paused, they bring nothing; their rates are held.
        let later = t0 + PAUSE_AFTER + Duration::from_secs(5);
        second(
            &mut demand,
            &mut bytes,
            &layers,
            [0, 0, 150],
            [0, 0, 3],
            later,
        );
        assert_eq!(paused(&demand), ["h", "m"]);
        assert!((demand.bps(&layers[0]) - 2_500_000.0).abs() < 1.0);
        // A viewer moves up to the middle layer: resumed at once, the top stays paused.
        second(
            &mut demand,
            &mut bytes,
            &layers,
            [0, 0, 150],
            [0, 1, 2],
            later + Duration::from_millis(10),
        );
        assert_eq!(paused(&demand), ["h"]);
    }

    #[test]
    fn the_lowest_live_layer_is_never_paused() {
        let layers = [layer("h"), layer("m"), layer("l")];
        let mut demand = LayerDemand::default();
        let mut bytes = [0; 3];
        let t0 = Instant::now();
        // The publisher stopped its low layer (it brings nothing); every viewer on the top one.
        for s in 0..=2 * PAUSE_AFTER.as_secs() {
            let now = t0 + Duration::from_secs(s);
            second(
                &mut demand,
                &mut bytes,
                &layers,
                [2500, 600, 0],
                [4, 0, 0],
                now,
            );
        }
        assert!(
            paused(&demand).is_empty(),
            "the middle layer is the lowest live one: {:?}",
            paused(&demand)
        );
        // No subscribers at all: still the lowest stays.
        for s in 0..=2 * PAUSE_AFTER.as_secs() {
            let now = t0 + Duration::from_secs(100 + s);
            second(
                &mut demand,
                &mut bytes,
                &layers,
                [2500, 600, 0],
                [0, 0, 0],
                now,
            );
        }
        assert_eq!(paused(&demand), ["h"]);
    }

    #[test]
    fn a_layer_with_subscribers_is_not_paused() {
        let layers = [layer("h"), layer("m"), layer("l")];
        let mut demand = LayerDemand::default();
        let mut bytes = [0; 3];
        let t0 = Instant::now();
        for s in 0..=3 * PAUSE_AFTER.as_secs() {
            let now = t0 + Duration::from_secs(s);
            // A viewer on each, the top one's coming and going every few seconds.
            let top = usize::from(s % 8 < 4);
            second(
                &mut demand,
                &mut bytes,
                &layers,
                [2500, 600, 150],
                [top, 1, 1],
                now,
            );
            assert!(paused(&demand).is_empty(), "at {s} s");
        }
    }
}
