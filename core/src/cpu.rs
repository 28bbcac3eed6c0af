//! This process's CPU use, from `/proc/self/stat` (Linux), computed between two reads at least
//! a second apart (readers within that second get the previous value); `None` where `/proc` is
//! not readable. Also the parser the load generator uses for other processes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc/PID/stat`: Linux reports CPU times in `USER_HZ`, which is
/// 100 on every architecture it exports to user space.
pub const TICKS_PER_SECOND: f64 = 100.0;
/// Shortest interval a CPU sample is taken over (ticks are 10 ms: over a short interval one
/// tick reads as a large percentage).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// User plus system CPU time, in clock ticks, from the text of `/proc/PID/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

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
                let pct = ticks.saturating_sub(before) as f64 / TICKS_PER_SECOND / secs * 100.0;
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

    const STAT: &str = "4242 (cascade edge) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
        250 75 0 0 20 0 9 0 12345 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn reads_cpu_ticks_even_with_spaces_and_parens_in_the_name() {
        assert_eq!(parse_cpu_ticks(STAT), Some(325));
        let odd = STAT.replace("(cascade edge)", "(a) b) c)");
        assert_eq!(parse_cpu_ticks(&odd), Some(325));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for text in [
            "",
            ")",
            "(",
            "1 (x)",
            "1 (x) S 1 2 3",
            "1 (x) S a b c d e f g h i j k l m n",
            "\u{0}\u{1}))) ((",
        ] {
            assert_eq!(parse_cpu_ticks(text), None, "{text:?}");
        }
    }

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
