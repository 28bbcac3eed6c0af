//! A mux viewer's simulcast layer, chosen from its bandwidth estimate (`media::bwe`) by
//! `media::layers::LayerPolicy` and switched on the mux's batched path.
//!
//! A switch is a change of feed: the leg joins the target layer's feed as well (its entry there
//! waits) and the target layer is asked for a keyframe; the first keyframe of the target that
//! reaches the leg moves it over (`Engine::forward`), the leg pauses and resumes at that keyframe
//! like a change of source (sequence numbers without a gap, timestamps a frame on), and it leaves
//! the old feed after the batch. Until then it is sent the old layer: nothing stalls.

use super::probe::{PROBE_INTENSITY, PROBE_MAX_WAIT};
use super::*;
use crate::media::layers::{LIVE_BPS, LayerChoice, LayerPolicy, MAX_LAYERS, Upgrade, need_bps};

/// How often a viewer's layers are reconsidered.
const ADAPT_INTERVAL: Duration = Duration::from_millis(250);
/// How often each layer's bitrate is sampled, and the weight of a new sample.
const RATE_SAMPLE: Duration = Duration::from_millis(500);
const RATE_WEIGHT: f64 = 0.3;

/// A simulcast leg's layers: which it may be switched to and what it asked for.
pub(in crate::rtc::mux) struct LegLayers {
    /// The group's layers, as the room had them when the viewer joined.
    tracks: Vec<Arc<RoomTrack>>,
    /// The highest layer the viewer asked for (`?layer=` on the WHEP URL): a cap.
    choice: LayerChoice,
    /// The layer being switched to: the leg is on its feed too, waiting for its keyframe.
    pub(super) pending: Option<Arc<RoomTrack>>,
    policy: LayerPolicy,
    rates: Rates,
    /// Scratch: layer indexes, ranked from the lowest bitrate up.
    ranked: Vec<usize>,
}

/// Gives each simulcast leg of a new viewer its group's layers (`room` is the room's tracks),
/// capped by what it asked for.
pub(in crate::rtc::mux) fn give_layers(
    legs: &mut [MuxLeg],
    room: &[Arc<RoomTrack>],
    choice: &LayerChoice,
    now: Instant,
) {
    if *choice == LayerChoice::All {
        return;
    }
    for leg in legs {
        let Some(layer) = &leg.track.layer else {
            continue;
        };
        let tracks: Vec<Arc<RoomTrack>> = room
            .iter()
            .filter(|t| {
                t.kind == leg.track.kind && t.layer.as_ref().is_some_and(|l| l.group == layer.group)
            })
            .take(MAX_LAYERS)
            .cloned()
            .collect();
        if tracks.len() < 2 || !tracks.iter().any(|t| Arc::ptr_eq(t, &leg.track)) {
            continue;
        }
        leg.layers = Some(Box::new(LegLayers {
            rates: Rates::new(&tracks, now),
            tracks,
            choice: choice.clone(),
            pending: None,
            policy: LayerPolicy::default(),
            ranked: Vec::with_capacity(MAX_LAYERS),
        }));
    }
}

/// Room tracks' bitrates (up to [`MAX_LAYERS`]), sampled from their byte counters.
pub(super) struct Rates {
    /// Each track's bytes at the last sample, and its bitrate (smoothed).
    bytes: [u64; MAX_LAYERS],
    pub(super) bps: [f64; MAX_LAYERS],
    sampled: Instant,
}

impl Rates {
    pub(super) fn new(tracks: &[Arc<RoomTrack>], now: Instant) -> Self {
        let mut bytes = [0; MAX_LAYERS];
        let mut bps = [0.0; MAX_LAYERS];
        for ((b, r), t) in bytes.iter_mut().zip(&mut bps).zip(tracks) {
            *b = t.stats.bytes_in.load(Ordering::Relaxed);
            // A layer paused upstream (nothing here took it) counts at what it brought.
            *r = t.held_bps().unwrap_or(0.0);
        }
        Self {
            bytes,
            bps,
            sampled: now,
        }
    }

    /// Folds each track's bytes since the last sample into its bitrate.
    pub(super) fn sample(&mut self, tracks: &[Arc<RoomTrack>], now: Instant) {
        let elapsed = now.saturating_duration_since(self.sampled);
        if elapsed < RATE_SAMPLE {
            return;
        }
        self.sampled = now;
        for (i, t) in tracks.iter().take(MAX_LAYERS).enumerate() {
            let bytes = t.stats.bytes_in.load(Ordering::Relaxed);
            let bps = bytes.saturating_sub(self.bytes[i]) as f64 * 8.0 / elapsed.as_secs_f64();
            self.bytes[i] = bytes;
            if let Some(held) = t.held_bps() {
                self.bps[i] = held;
                continue;
            }
            self.bps[i] = if self.bps[i] == 0.0 {
                bps
            } else {
                self.bps[i] + RATE_WEIGHT * (bps - self.bps[i])
            };
        }
    }
}

impl LegLayers {
    /// The layer the leg should be on, given `current` (its track, or the one it is switching
    /// to) and the estimate; `None` to stay. And, when it stays, what a probe for the next
    /// layer up would aim at (`engine::probe`).
    fn target(
        &mut self,
        current: &Arc<RoomTrack>,
        estimate: f64,
        upgrade: Upgrade,
        now: Instant,
    ) -> (Option<Arc<RoomTrack>>, Option<ProbeAim>) {
        self.rates.sample(&self.tracks, now);
        let rates = self.rates.bps;
        self.ranked.clear();
        self.ranked
            .extend((0..self.tracks.len()).filter(|&i| rates[i] >= LIVE_BPS));
        self.ranked
            .sort_by(|&a, &b| rates[a].total_cmp(&rates[b]).then(a.cmp(&b)));
        if self.ranked.is_empty() {
            return (None, None);
        }
        let rids: [&str; MAX_LAYERS] = std::array::from_fn(|k| {
            self.ranked
                .get(k)
                .and_then(|&i| self.tracks[i].layer.as_ref())
                .map_or("", |l| l.rid.as_str())
        });
        let cap = self.choice.cap(&rids[..self.ranked.len()]);
        let ranked_rates: [f64; MAX_LAYERS] =
            std::array::from_fn(|k| self.ranked.get(k).map_or(0.0, |&i| rates[i]));
        let rates = &ranked_rates[..self.ranked.len()];
        let Some(at) = self
            .ranked
            .iter()
            .position(|&i| Arc::ptr_eq(&self.tracks[i], current))
        else {
            // Its layer stopped: the best live one it may have, at once.
            let to = self.ranked[cap.min(self.ranked.len() - 1)];
            return (Some(self.tracks[to].clone()), None);
        };
        if let Some(to) = self.policy.decide(rates, at, cap, estimate, upgrade, now) {
            let track = &self.tracks[self.ranked[to]];
            if !Arc::ptr_eq(track, current) {
                return (Some(track.clone()), None);
            }
        }
        let probe = self
            .policy
            .next_need(rates, at, cap, now)
            .map(|(target, failures)| ProbeAim {
                target,
                current: need_bps(rates[at]),
                failures,
                intensity: PROBE_INTENSITY,
                max_wait: PROBE_MAX_WAIT,
                step: None,
            });
        (None, probe)
    }
}

impl Engine {
    /// Reconsiders the simulcast layers of viewer `key`, if it is time.
    pub(super) fn adapt(&mut self, key: usize, now: Instant) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        if viewer.next_adapt > now || viewer.protector.is_none() {
            return;
        }
        keep_asking(viewer, now);
        if !viewer.catch_up.is_empty() {
            return;
        }
        viewer.next_adapt = now + ADAPT_INTERVAL;
        // Layers and repair follow what a lossy link showed it carries (`Bwe::capacity_at`):
        // a viewer moves down sooner than the estimate comes down, and its link is not flooded
        // with resent packets on the share of an estimate it cannot carry. The gate keeps to
        // the estimate.
        let estimate = viewer.bwe.estimate_at(now);
        let capacity = viewer.bwe.capacity_at(now);
        if viewer.bwe.has_feedback() {
            viewer.transport.set_estimate(estimate);
            viewer.retransmit_budget.fit_estimate(capacity);
        }
        let mut probe = None;
        let mut switching = false;
        // Above what the viewer is sent, the estimate is a guess: an upgrade needs a probe's
        // word for it, where the viewer has a stream to probe on.
        let upgrade = if viewer.probing.vouches(now) {
            Upgrade::Now
        } else if viewer.legs.iter().any(|l| l.rtx.is_some()) {
            Upgrade::No
        } else {
            Upgrade::Held
        };
        for leg in 0..viewer.legs.len() {
            let viewer = &mut self.viewers[key];
            let l = &mut viewer.legs[leg];
            let Some(layers) = l.layers.as_mut() else {
                continue;
            };
            switching |= layers.pending.is_some();
            let current = layers.pending.clone().unwrap_or_else(|| l.track.clone());
            let (to, wants) = layers.target(&current, capacity, upgrade, now);
            probe = probe.or(wants);
            if let Some(to) = to {
                switching = true;
                viewer.probing.spent();
                tracing::debug!(
                    viewer = viewer.id,
                    from = ?current.layer.as_ref().map(|l| &l.rid),
                    to = ?to.layer.as_ref().map(|l| &l.rid),
                    estimate,
                    "switching simulcast layer"
                );
                self.switch_to(key, leg, to);
            }
        }
        let gate = self.gate(key, estimate, upgrade, now);
        // No probing while a switch is under way: the estimate is about to be tested anyway.
        self.probe(key, probe.or(gate).filter(|_| !switching), now);
    }

    /// Starts moving leg `leg` of viewer `key` to layer `to`: it waits on `to`'s feed for a
    /// keyframe (requested now). Back to its own layer: the wait is called off.
    fn switch_to(&mut self, key: usize, leg: usize, to: Arc<RoomTrack>) {
        let l = &mut self.viewers[key].legs[leg];
        let Some(layers) = l.layers.as_mut() else {
            return;
        };
        let stay = Arc::ptr_eq(&to, &l.track);
        if let Some(old) = layers.pending.take() {
            self.leave_feed(key, leg, &old);
        }
        if stay {
            return;
        }
        let traffic = self.viewers[key].traffic.clone();
        let feed_id = self.feed_for(&to, traffic);
        if let Some(feed) = self.feeds.get_mut(&feed_id) {
            feed.legs.push((key, leg));
        }
        if let Some(layers) = self.viewers[key].legs[leg].layers.as_mut() {
            layers.pending = Some(to.clone());
        }
        tokio::spawn(async move { to.request_keyframe().await });
    }

    /// Takes leg `leg` of viewer `key` off the feed of `track` (dropping the feed when it was
    /// the last), as a viewer leaves or a leg switches layers.
    pub(super) fn leave_feed(&mut self, key: usize, leg: usize, track: &Arc<RoomTrack>) {
        let track_key = Arc::as_ptr(track) as usize;
        let Some(&feed_id) = self.feed_of_track.get(&track_key) else {
            return;
        };
        let Some(feed) = self.feeds.get_mut(&feed_id) else {
            return;
        };
        feed.legs.retain(|&l| l != (key, leg));
        if feed.legs.is_empty() {
            // Dropping the feed detaches it from the room track.
            self.feeds.remove(&feed_id);
            self.feed_of_track.remove(&track_key);
        }
    }

    /// Moves leg `leg` of viewer `key` onto the layer it was waiting for, at that layer's
    /// keyframe: it pauses (so the next packet, this keyframe, re-bases its numbering) and
    /// leaves its old layer's feed after the batch (`Engine::switched`).
    pub(super) fn complete_switch(
        viewer: &mut Viewer,
        key: usize,
        leg: usize,
        switched: &mut Vec<Switched>,
    ) {
        let l = &mut viewer.legs[leg];
        let Some(to) = l.layers.as_mut().and_then(|layers| layers.pending.take()) else {
            return;
        };
        if let Some(layer) = &to.layer {
            tracing::debug!(viewer = viewer.id, to = %layer.rid, "switched simulcast layer");
            viewer.transport.set_layer(&layer.rid);
        }
        let from = std::mem::replace(&mut l.track, to);
        l.forward.pause();
        switched.push((key, leg, from));
    }

    /// What [`Engine::complete_switch`] left for after the batch: legs leave their old layers.
    pub(super) fn leave_switched(&mut self) {
        let mut switched = std::mem::take(&mut self.switched);
        for (key, leg, from) in switched.drain(..) {
            self.leave_feed(key, leg, &from);
        }
        self.switched = switched;
    }
}

/// A leg that switched layers in a batch (viewer key, leg), and the layer it left.
pub(super) type Switched = (usize, usize, Arc<RoomTrack>);

/// Whether `leg` waits on the feed of the room track at `feed_track` to switch to it.
pub(super) fn waits_for(leg: &MuxLeg, feed_track: usize) -> bool {
    leg.layers
        .as_ref()
        .and_then(|l| l.pending.as_ref())
        .is_some_and(|p| Arc::as_ptr(p) as usize == feed_track)
}
