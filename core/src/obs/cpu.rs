//! This process's CPU use, from `/proc/self/stat` (Linux), computed between two reads at least
//! a second apart (readers within that second get the previous value); `None` where `/proc` is
//! not readable. The parsers are in [`crate::obs::procstat`].

use crate::obs::procstat::{cpu_percent, parse_cpu_ticks};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest interval a CPU sample is taken over (ticks are 10 ms: over a short interval one
/// tick reads as a large percentage).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// CPU percentage (100 = one core busy) between successive samples of a tick counter.
#[derive(Debug, Default)]
pub struct CpuMeter {
    /// The previous sample (when, ticks) and the percentage computed at it.
    last: Mutex<Option<(Instant, u64, Option<f64>)>>,
}

impl CpuMeter {
    /// The percentage since the previous sample, given the counter's value `ticks` at `now`.
    pub fn sample(&self, now: Instant, ticks: u64) -> Option<f64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some((at, _, pct)) if now.saturating_duration_since(at) < MIN_INTERVAL => pct,
            Some((at, before, _)) => {
                let secs = now.saturating_duration_since(at).as_secs_f64();
                let pct = cpu_percent(ticks.saturating_sub(before), secs);
                // One decimal is all a status needs.
                let pct = (pct * 10.0).round() / 10.0;
                *last = Some((now, ticks, Some(pct)));
                Some(pct)
            }
            None => {
                *last = Some((now, ticks, None));
                None
            }
        }
    }
}

/// This process's CPU percentage over the last interval between calls (at least a second);
/// `None` on the first call and where `/proc/self/stat` cannot be read.
pub fn process_cpu_percent() -> Option<f64> {
    static METER: CpuMeter = CpuMeter {
        last: Mutex::new(None),
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    METER.sample(Instant::now(), parse_cpu_ticks(&stat)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_between_samples_a_second_apart() {
        let meter = CpuMeter::default();
        let t0 = Instant::now();
        assert_eq!(meter.sample(t0, 1000), None);
        // Within the second: still nothing computed.
        assert_eq!(meter.sample(t0 + Duration::from_millis(500), 1010), None);
        // 50 ticks over 2 s = 0.25 s of CPU per second.
        assert_eq!(meter.sample(t0 + Duration::from_secs(2), 1050), Some(25.0));
        assert_eq!(
            meter.sample(t0 + Duration::from_millis(2500), 9999),
            Some(25.0)
        );
        // A counter that went backwards (cannot happen for one process) reads as idle.
        assert_eq!(meter.sample(t0 + Duration::from_secs(4), 10), Some(0.0));
    }

    #[test]
    fn this_process_is_measured_on_linux() {
        if std::fs::metadata("/proc/self/stat").is_ok() {
            assert!(
                parse_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").unwrap()).is_some()
            );
        }
    }
}
