//! [`KeyframeLimiter`]: rate-limits the keyframe requests a track sends upstream, since every
//! viewer's PLI would otherwise reach the publisher. A plain value: it takes `now` (a
//! [`Duration`] since an arbitrary epoch) and is unit-tested with a virtual clock; the caller
//! (`room::RoomTrack::request_keyframe`) sends and defers.

use std::time::Duration;

/// Lets one keyframe request through per `interval`; a request that comes within it is not
/// lost but deferred to the interval's end (one deferred request covers all that come in the
/// meantime). A subscriber that joined just after the last request was answered still gets its
/// keyframe: the request it needs is the one a plain limiter would drop.
#[derive(Debug, Clone)]
pub struct KeyframeLimiter {
    interval: Duration,
    last: Option<Duration>,
    deferred: bool,
    /// The track's keyframe count at the last request deferred or covered: the deferred
    /// request goes only if no keyframe came after it.
    asked_at_keyframe: u64,
}

/// What to do with one keyframe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeAsk {
    /// Send it now.
    Now,
    /// Send it after this long, then call [`KeyframeLimiter::fire`].
    Later(Duration),
    /// A deferred request already covers it.
    Covered,
}

impl KeyframeLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            deferred: false,
            asked_at_keyframe: 0,
        }
    }

    /// Forgets the last request: the next one goes (a new source has not been asked yet), and a
    /// deferred one no longer does.
    pub fn reset(&mut self) {
        self.last = None;
        self.deferred = false;
    }

    /// What to do with a request made at `now`, when the track has brought `keyframes`.
    pub fn ask(&mut self, now: Duration, keyframes: u64) -> KeyframeAsk {
        match self.last {
            Some(last) if now.saturating_sub(last) < self.interval => {
                self.asked_at_keyframe = keyframes;
                if self.deferred {
                    KeyframeAsk::Covered
                } else {
                    self.deferred = true;
                    KeyframeAsk::Later(last + self.interval - now)
                }
            }
            _ => {
                self.last = Some(now);
                self.deferred = false;
                KeyframeAsk::Now
            }
        }
    }

    /// A deferred request fell due at `now`, the track having brought `keyframes`: whether it
    /// still goes (not after a reset, nor when a request went in the meantime, nor when a
    /// keyframe came after the last request it covers: that answered them all).
    pub fn fire(&mut self, now: Duration, keyframes: u64) -> bool {
        if !self.deferred {
            return false;
        }
        self.deferred = false;
        self.last = Some(now);
        keyframes == self.asked_at_keyframe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_lets_one_request_through_per_interval_and_defers_the_rest() {
        let mut limiter = KeyframeLimiter::new(Duration::from_millis(500));
        let ms = Duration::from_millis;
        assert_eq!(limiter.ask(ms(0), 0), KeyframeAsk::Now);
        // A request within the interval goes at its end; later ones ride on it.
        assert_eq!(limiter.ask(ms(100), 0), KeyframeAsk::Later(ms(400)));
        assert_eq!(limiter.ask(ms(499), 0), KeyframeAsk::Covered);
        assert!(limiter.fire(ms(500), 0));
        // The deferred request counts as the interval's one.
        assert_eq!(limiter.ask(ms(900), 0), KeyframeAsk::Later(ms(100)));
        assert!(limiter.fire(ms(1000), 0));
        assert!(!limiter.fire(ms(1001), 0), "fired once");
        assert_eq!(limiter.ask(ms(2000), 0), KeyframeAsk::Now);
    }

    #[test]
    fn a_reset_sends_the_next_request_now_and_drops_a_deferred_one() {
        let mut limiter = KeyframeLimiter::new(Duration::from_millis(500));
        let ms = Duration::from_millis;
        assert_eq!(limiter.ask(ms(0), 0), KeyframeAsk::Now);
        assert_eq!(limiter.ask(ms(10), 0), KeyframeAsk::Later(ms(490)));
        limiter.reset();
        assert_eq!(limiter.ask(ms(20), 0), KeyframeAsk::Now);
        assert!(
            !limiter.fire(ms(500), 0),
            "the new source was asked at once"
        );
    }

    #[test]
    fn a_keyframe_after_the_last_covered_request_answers_the_deferred_one() {
        let mut limiter = KeyframeLimiter::new(Duration::from_millis(500));
        let ms = Duration::from_millis;
        assert_eq!(limiter.ask(ms(0), 0), KeyframeAsk::Now);
        assert_eq!(limiter.ask(ms(100), 0), KeyframeAsk::Later(ms(400)));
        // A keyframe came, then another request: that one still needs a keyframe.
        assert_eq!(limiter.ask(ms(200), 1), KeyframeAsk::Covered);
        assert!(limiter.fire(ms(500), 1));
        // A keyframe after the last request answered it: nothing goes.
        assert_eq!(limiter.ask(ms(600), 1), KeyframeAsk::Later(ms(400)));
        assert!(!limiter.fire(ms(1000), 2));
    }
}
