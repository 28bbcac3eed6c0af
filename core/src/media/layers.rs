//! Simulcast layers: a publisher's video track sent as several encodings (RFC 8853 `a=rid`),
//! each a room track of its own, and which of them a subscriber is sent.
//!
//! Each layer is a [`crate::media::room::RoomTrack`] with its own fan-out, keyframe cache and
//! keyframe requests (to that layer's SSRC), carrying a [`Layer`] that names its group (the
//! publisher's track it belongs to) and its RID. A relay link carries every layer, so an edge
//! holds them all; a viewer is sent one layer of each group, chosen at its join by
//! [`LayerChoice`]. Layers are ranked by the bytes each has brought so far: the top layer is
//! the one with the most, whatever its RID is called (publishers name them `h`/`m`/`l`,
//! `q`/`h`/`f`, `0`/`1`/`2`...).

use std::time::{Duration, Instant};

/// A room track that is one simulcast layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The group: the layers of one publisher track share it (a number unique in the room, kept
    /// by relay links so every node of the tree groups alike).
    pub group: u32,
    /// The RTP stream id (`a=rid`) the publisher gave the layer.
    pub rid: String,
}

/// Which layer of each simulcast group a subscriber is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LayerChoice {
    /// Every layer, each as a track of its own: a relay link to another node.
    All,
    /// The layer with the most bytes: the best picture (a viewer's default).
    #[default]
    Top,
    /// The middle one by bytes (with two layers, the top one).
    Middle,
    /// The layer with the fewest bytes: thumbnails, small players, slow links.
    Bottom,
    /// The layer with this RID; the top one when the room has no such layer.
    Rid(String),
}

impl LayerChoice {
    /// Reads a WHEP `layer` query parameter: `high`, `mid`, `low`, or a RID (1 to 16 letters,
    /// digits, `-` or `_`, RFC 8851's `rid-id` characters).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "high" | "top" => Ok(Self::Top),
            "mid" | "middle" => Ok(Self::Middle),
            "low" | "bottom" => Ok(Self::Bottom),
            rid if !rid.is_empty()
                && rid.len() <= 16
                && rid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(Self::Rid(rid.to_owned()))
            }
            _ => Err(format!(
                "layer must be high, mid, low or a RID of 1 to 16 letters, digits, '-' or '_', \
                 not {s:?}"
            )),
        }
    }

    /// Of a group's layers, given as `(rid, bytes so far)`, the index of the one to send; `None`
    /// only for an empty group. [`LayerChoice::All`] is not a choice of one: it answers the top.
    pub fn pick(&self, layers: &[(&str, u64)]) -> Option<usize> {
        if layers.is_empty() {
            return None;
        }
        // By bytes, most first; the earlier layer first on a tie, so the answer is stable.
        let mut ranked: Vec<usize> = (0..layers.len()).collect();
        ranked.sort_by(|&a, &b| layers[b].1.cmp(&layers[a].1).then(a.cmp(&b)));
        Some(match self {
            Self::All | Self::Top => ranked[0],
            Self::Middle => ranked[(ranked.len() - 1) / 2],
            Self::Bottom => ranked[ranked.len() - 1],
            Self::Rid(rid) => layers
                .iter()
                .position(|(r, _)| r == rid)
                .unwrap_or(ranked[0]),
        })
    }
}

impl LayerChoice {
    /// The highest layer a viewer may be sent, as an index into its group's layers ranked from
    /// the lowest bitrate up (`rids[i]` is layer `i`'s RID): the one it asked for, or the top.
    pub fn cap(&self, rids: &[&str]) -> usize {
        let top = rids.len().saturating_sub(1);
        match self {
            Self::All | Self::Top => top,
            Self::Middle => top - top / 2,
            Self::Bottom => 0,
            Self::Rid(rid) => rids.iter().position(|r| r == rid).unwrap_or(top),
        }
    }
}

/// What a viewer's link is thought to carry besides its video layer: audio, RTCP, headers.
const OTHER_BPS: f64 = 64_000.0;
/// A layer's packets on the wire weigh this much more than its payload.
const OVERHEAD: f64 = 1.1;
/// An upgrade needs the estimate this far above what the next layer needs...
const UP_MARGIN: f64 = 1.15;
/// ...for this long.
const UP_HOLD: Duration = Duration::from_secs(1);
/// An upgrade undone within this long failed: the layer is not tried again for a while.
const FAILED_WITHIN: Duration = Duration::from_secs(5);
/// How long a failed layer waits, doubling with each failure up to [`MAX_BACKOFF`]...
const FIRST_BACKOFF: Duration = Duration::from_secs(4);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// ...until the viewer has stayed on it this long.
const PROVEN_AFTER: Duration = Duration::from_secs(20);
/// A layer bringing less than this is not live: it is not sent (a publisher stops a layer its
/// own uplink cannot carry), nor paused upstream.
pub const LIVE_BPS: f64 = 8_000.0;
/// Layers per group the policy tracks (browsers send three; more are served as the top).
pub const MAX_LAYERS: usize = 4;

/// How far a viewer's estimate is believed above what it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// Not at all: an upgrade waits for a probe's word.
    No,
    /// Once it has held for [`UP_HOLD`] (no way to probe: each upgrade is a trial).
    Held,
    /// At once: a probe just showed the link carries it.
    Now,
}

/// What a viewer's link needs to carry layer `rate` (bits per second).
pub fn need_bps(rate: f64) -> f64 {
    rate * OVERHEAD + OTHER_BPS
}

/// How a viewer's simulcast layer follows its bandwidth estimate: down at once, to the highest
/// layer the estimate carries, when it cannot carry the current one; up one layer at a time,
/// once the estimate has carried the next one with [`UP_MARGIN`] to spare for [`UP_HOLD`]. An
/// upgrade undone within [`FAILED_WITHIN`] is not tried again for [`FIRST_BACKOFF`], doubling
/// with each failure (a link that cannot take the layer is not made to freeze again and again).
/// Plain state; the caller says what time it is and what each layer brings now.
#[derive(Debug, Clone, Default)]
pub struct LayerPolicy {
    above_since: Option<Instant>,
    upgraded: Option<(usize, Instant)>,
    blocked_until: [Option<Instant>; MAX_LAYERS],
    backoff: [Duration; MAX_LAYERS],
    /// Upgrades to each layer that failed since the viewer last proved it.
    failures: [u32; MAX_LAYERS],
}

impl LayerPolicy {
    /// The layer to be on, given the layers' bitrates from the lowest up (`rates`, bits per
    /// second), the one the viewer is on (`current`), the highest it may have (`cap`) and the
    /// estimate; `None` to stay. `upgrade` says how far the estimate is to be believed above
    /// what the viewer is sent.
    pub fn decide(
        &mut self,
        rates: &[f64],
        current: usize,
        cap: usize,
        estimate: f64,
        upgrade: Upgrade,
        now: Instant,
    ) -> Option<usize> {
        let n = rates.len().min(MAX_LAYERS);
        if n == 0 {
            return None;
        }
        let cap = cap.min(n - 1);
        let current = current.min(n - 1);
        if let Some((to, at)) = self.upgraded
            && to == current
            && now.saturating_duration_since(at) >= PROVEN_AFTER
        {
            self.backoff[to] = Duration::ZERO;
            self.failures[to] = 0;
        }
        if current > 0 && estimate < need_bps(rates[current]) {
            self.above_since = None;
            if let Some((to, at)) = self.upgraded
                && to == current
                && now.saturating_duration_since(at) < FAILED_WITHIN
            {
                let backoff = (self.backoff[to] * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                self.backoff[to] = backoff;
                self.blocked_until[to] = Some(now + backoff);
                self.failures[to] = self.failures[to].saturating_add(1);
            }
            self.upgraded = None;
            let to = (0..current)
                .rev()
                .find(|&i| need_bps(rates[i]) <= estimate)
                .unwrap_or(0);
            return Some(to.min(cap));
        }
        if current > cap {
            self.above_since = None;
            return Some(cap);
        }
        if current < cap {
            let next = current + 1;
            let allowed =
                upgrade != Upgrade::No && self.blocked_until[next].is_none_or(|t| now >= t);
            if allowed && estimate >= need_bps(rates[next]) * UP_MARGIN {
                let since = *self.above_since.get_or_insert(now);
                if upgrade == Upgrade::Now || now.saturating_duration_since(since) >= UP_HOLD {
                    self.above_since = None;
                    self.upgraded = Some((next, now));
                    return Some(next);
                }
            } else {
                self.above_since = None;
            }
        }
        None
    }

    /// What the estimate must reach for the next layer up from `current` to be tried, if one
    /// may be tried now (below `cap`, not waiting after a failure): the rate a probe aims at,
    /// and how many upgrades to that layer failed since the viewer last proved it (a probe
    /// that passed before an upgrade that failed was fooled: the next is to be longer).
    pub fn next_need(
        &self,
        rates: &[f64],
        current: usize,
        cap: usize,
        now: Instant,
    ) -> Option<(f64, u32)> {
        let n = rates.len().min(MAX_LAYERS);
        let next = current + 1;
        (next <= cap.min(n.saturating_sub(1)) && self.blocked_until[next].is_none_or(|t| now >= t))
            .then(|| (need_bps(rates[next]) * UP_MARGIN, self.failures[next]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_ranked_by_bytes_whatever_their_names() {
        let layers = [("q", 100), ("h", 400), ("f", 1600)];
        assert_eq!(LayerChoice::Top.pick(&layers), Some(2));
        assert_eq!(LayerChoice::Middle.pick(&layers), Some(1));
        assert_eq!(LayerChoice::Bottom.pick(&layers), Some(0));
        assert_eq!(LayerChoice::Rid("h".into()).pick(&layers), Some(1));
        assert_eq!(LayerChoice::Rid("x".into()).pick(&layers), Some(2));
        // Two layers: the middle is the top one.
        assert_eq!(LayerChoice::Middle.pick(&[("a", 5), ("b", 9)]), Some(1));
        // Before any bytes, the first layer, the same each time.
        assert_eq!(LayerChoice::Top.pick(&[("a", 0), ("b", 0)]), Some(0));
        assert_eq!(LayerChoice::Top.pick(&[]), None);
    }

    #[test]
    fn the_query_parameter_is_checked() {
        assert_eq!(LayerChoice::parse("high"), Ok(LayerChoice::Top));
        assert_eq!(LayerChoice::parse("mid"), Ok(LayerChoice::Middle));
        assert_eq!(LayerChoice::parse("low"), Ok(LayerChoice::Bottom));
        assert_eq!(LayerChoice::parse("f"), Ok(LayerChoice::Rid("f".into())));
        for bad in ["", "a b", "x".repeat(17).as_str(), "é", "h;m"] {
            assert!(LayerChoice::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cap_is_the_layer_asked_for_ranked_from_the_lowest() {
        let rids = ["q", "h", "f"];
        assert_eq!(LayerChoice::Top.cap(&rids), 2);
        assert_eq!(LayerChoice::Middle.cap(&rids), 1);
        assert_eq!(LayerChoice::Bottom.cap(&rids), 0);
        assert_eq!(LayerChoice::Rid("h".into()).cap(&rids), 1);
        assert_eq!(LayerChoice::Rid("x".into()).cap(&rids), 2);
        assert_eq!(LayerChoice::Middle.cap(&["a", "b"]), 1);
        assert_eq!(LayerChoice::Top.cap(&[]), 0);
    }

    const RATES: [f64; 3] = [150_000.0, 500_000.0, 2_000_000.0];

    #[test]
    fn down_at_once_to_the_highest_layer_the_estimate_carries() {
        let t0 = Instant::now();
        let mut p = LayerPolicy::default();
        assert_eq!(
            p.decide(&RATES, 2, 2, 10e6, Upgrade::Held, t0),
            None,
            "carried: stay"
        );
        assert_eq!(
            p.decide(&RATES, 2, 2, 700_000.0, Upgrade::Held, t0),
            Some(1)
        );
        assert_eq!(
            p.decide(&RATES, 2, 2, 300_000.0, Upgrade::Held, t0),
            Some(0)
        );
        assert_eq!(
            p.decide(&RATES, 2, 2, 10_000.0, Upgrade::Held, t0),
            Some(0),
            "the lowest at worst"
        );
        assert_eq!(p.decide(&RATES, 0, 2, 10_000.0, Upgrade::Held, t0), None);
    }

    #[test]
    fn up_one_layer_at_a_time_after_the_estimate_held() {
        let t0 = Instant::now();
        let mut p = LayerPolicy::default();
        let plenty = 5e6;
        assert_eq!(p.decide(&RATES, 0, 2, plenty, Upgrade::Held, t0), None);
        assert_eq!(
            p.decide(&RATES, 0, 2, plenty, Upgrade::Held, t0 + UP_HOLD / 2),
            None
        );
        assert_eq!(
            p.decide(&RATES, 0, 2, plenty, Upgrade::Held, t0 + UP_HOLD),
            Some(1)
        );
        // A dip resets the hold.
        let t1 = t0 + UP_HOLD * 2;
        assert_eq!(p.decide(&RATES, 1, 2, plenty, Upgrade::Held, t1), None);
        assert_eq!(
            p.decide(&RATES, 1, 2, 800_000.0, Upgrade::Held, t1 + UP_HOLD / 2),
            None
        );
        assert_eq!(
            p.decide(&RATES, 1, 2, plenty, Upgrade::Held, t1 + UP_HOLD),
            None
        );
        assert_eq!(
            p.decide(&RATES, 1, 2, plenty, Upgrade::Held, t1 + UP_HOLD * 2),
            Some(2)
        );
        // Never above the cap; brought down to a lowered one.
        assert_eq!(
            p.decide(&RATES, 0, 0, plenty, Upgrade::Held, t1 + UP_HOLD * 9),
            None
        );
        assert_eq!(p.decide(&RATES, 2, 1, plenty, Upgrade::Held, t1), Some(1));
    }

    #[test]
    fn no_upgrade_unless_the_estimate_is_vouched_for() {
        let t0 = Instant::now();
        let mut p = LayerPolicy::default();
        for i in 0..10u32 {
            let now = t0 + UP_HOLD * i;
            assert_eq!(p.decide(&RATES, 0, 2, 5e6, Upgrade::No, now), None);
        }
        assert_eq!(
            p.decide(&RATES, 2, 2, 300_000.0, Upgrade::No, t0),
            Some(0),
            "down still"
        );
        // A probe's word: up at once, no hold.
        assert_eq!(p.decide(&RATES, 0, 2, 5e6, Upgrade::Now, t0), Some(1));
    }

    #[test]
    fn a_failed_upgrade_waits_longer_each_time_until_one_holds() {
        let t0 = Instant::now();
        let mut p = LayerPolicy::default();
        let (plenty, tight) = (5e6, 300_000.0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..3 {
            // Up to layer 1 as soon as allowed, then it fails at once.
            let since = now;
            loop {
                if p.decide(&RATES, 0, 2, plenty, Upgrade::Held, now) == Some(1) {
                    break;
                }
                now += Duration::from_millis(250);
            }
            waits.push(now - since);
            assert_eq!(p.decide(&RATES, 1, 2, tight, Upgrade::Held, now), Some(0));
            assert!(p.next_need(&RATES, 0, 2, now).is_none(), "blocked");
        }
        // Once allowed again, a probe for it is told it failed three times.
        assert_eq!(
            p.next_need(&RATES, 0, 2, now + MAX_BACKOFF),
            Some((need_bps(RATES[1]) * UP_MARGIN, 3))
        );
        assert!(
            waits[1] >= FIRST_BACKOFF && waits[2] >= FIRST_BACKOFF * 2,
            "{waits:?}"
        );
        // Once it held for long enough, a failure starts from the first backoff again.
        loop {
            if p.decide(&RATES, 0, 2, plenty, Upgrade::Held, now) == Some(1) {
                break;
            }
            now += Duration::from_millis(250);
        }
        now += PROVEN_AFTER;
        assert_eq!(p.decide(&RATES, 1, 2, 900_000.0, Upgrade::Held, now), None);
        assert_eq!(p.backoff[1], Duration::ZERO);
        assert_eq!(p.failures[1], 0, "proven");
        assert_eq!(
            p.next_need(&RATES, 1, 2, now),
            Some((need_bps(RATES[2]) * UP_MARGIN, 0))
        );
    }
}
