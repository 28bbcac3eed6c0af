//! CPU and memory of processes (the nodes under test, and the load generator itself), read from
//! `/proc/PID/stat` and `/proc/PID/status` once a second.

use serde::Serialize;
use std::time::Instant;

/// Clock ticks per second in `/proc/PID/stat`: Linux reports CPU times in `USER_HZ`, which is
/// 100 on every architecture it exports to user space.
const TICKS_PER_SECOND: f64 = 100.0;

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

/// Resident set size in KiB from the text of `/proc/PID/status` (`VmRSS:  1234 kB`).
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One process followed over the run.
#[derive(Debug)]
pub struct ProcWatch {
    pub pid: u32,
    pub name: String,
    last: Option<(u64, Instant)>,
    cpu_samples: Vec<f64>,
    rss_samples: Vec<u64>,
    /// The latest CPU% sample (100 = one core busy).
    pub latest_cpu: Option<f64>,
    pub latest_rss_kib: Option<u64>,
    gone: bool,
}

impl ProcWatch {
    pub fn new(pid: u32) -> Self {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into());
        Self {
            pid,
            name,
            last: None,
            cpu_samples: Vec::new(),
            rss_samples: Vec::new(),
            latest_cpu: None,
            latest_rss_kib: None,
            gone: false,
        }
    }

    /// Takes one sample. A process that went away stops being sampled.
    pub fn sample(&mut self) {
        if self.gone {
            return;
        }
        let now = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid));
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid));
        let (Ok(stat), Ok(status)) = (stat, status) else {
            self.gone = true;
            return;
        };
        if let Some(ticks) = parse_cpu_ticks(&stat) {
            if let Some((last_ticks, last_at)) = self.last {
                let wall = now.duration_since(last_at).as_secs_f64();
                if wall > 0.0 {
                    let cpu =
                        ticks.saturating_sub(last_ticks) as f64 / TICKS_PER_SECOND / wall * 100.0;
                    self.cpu_samples.push(cpu);
                    self.latest_cpu = Some(cpu);
                }
            }
            self.last = Some((ticks, now));
        }
        if let Some(rss) = parse_rss_kib(&status) {
            self.rss_samples.push(rss);
            self.latest_rss_kib = Some(rss);
        }
    }

    pub fn report(&self) -> ProcReport {
        let avg = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
        let rss_mib: Vec<f64> = self
            .rss_samples
            .iter()
            .map(|k| *k as f64 / 1024.0)
            .collect();
        ProcReport {
            pid: self.pid,
            name: self.name.clone(),
            samples: self.cpu_samples.len(),
            cpu_avg_pct: avg(&self.cpu_samples),
            cpu_max_pct: max(&self.cpu_samples),
            rss_avg_mib: avg(&rss_mib),
            rss_max_mib: max(&rss_mib),
            exited: self.gone,
        }
    }
}

/// CPU (100 = one core) and memory of one process over the run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcReport {
    pub pid: u32,
    pub name: String,
    pub samples: usize,
    pub cpu_avg_pct: Option<f64>,
    pub cpu_max_pct: Option<f64>,
    pub rss_avg_mib: Option<f64>,
    pub rss_max_mib: Option<f64>,
    /// The process was gone before the end of the run.
    pub exited: bool,
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
    fn reads_rss() {
        let status = "Name:\tcascade-edge\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status), Some(20480));
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
            "VmRSS:",
            "VmRSS: lots kB",
            "\u{0}\u{1}))) ((",
        ] {
            assert_eq!(parse_cpu_ticks(text), None, "{text:?}");
            assert_eq!(parse_rss_kib(text), None, "{text:?}");
        }
    }

    #[test]
    fn samples_this_process() {
        let mut me = ProcWatch::new(std::process::id());
        me.sample();
        // Burn a little CPU so the second sample has something to measure.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        std::thread::sleep(std::time::Duration::from_millis(20));
        me.sample();
        let r = me.report();
        assert_eq!(r.samples, 1);
        assert!(r.cpu_avg_pct.is_some());
        assert!(r.rss_max_mib.unwrap() > 1.0);
        assert!(!r.exited);
        let mut gone = ProcWatch::new(u32::MAX);
        gone.sample();
        assert!(gone.report().exited);
    }
}
