//! Bitrates from running byte counters, computed when status is read (nothing on the packet
//! path).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest interval a bitrate is computed over.
const RATE_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A byte counter's recent rate, computed between two status reads at least a second apart
/// (readers within that second get the previous value). No work on the packet path.
#[derive(Debug, Default)]
pub struct RateMeter {
    last: Mutex<Option<(Instant, u64, Option<u64>)>>,
}

impl RateMeter {
    /// Bits per second of `bytes_now` (a running byte count) since the previous sample.
    pub fn bitrate(&self, bytes_now: u64) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some((at, _, bps)) if now.duration_since(at) < RATE_MIN_INTERVAL => bps,
            Some((at, bytes, _)) => {
                let secs = now.duration_since(at).as_secs_f64();
                let bps = (bytes_now.saturating_sub(bytes) as f64 * 8.0 / secs) as u64;
                *last = Some((now, bytes_now, Some(bps)));
                Some(bps)
            }
            None => {
                *last = Some((now, bytes_now, None));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_needs_two_reads_a_second_apart() {
        let m = RateMeter::default();
        assert_eq!(m.bitrate(0), None);
        assert_eq!(m.bitrate(1000), None);
    }
}
