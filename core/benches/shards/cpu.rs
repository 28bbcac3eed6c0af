//! CPU time from `/proc`: each thread's time on a CPU (`/proc/self/task/*/schedstat`, in
//! nanoseconds) by thread name, the process's (`/proc/self/stat`, user + system, in clock
//! ticks) and the machine's busy time (`/proc/stat`), to see what else ran.

use std::time::Duration;

/// Linux's USER_HZ on every architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// A snapshot of the CPU time spent so far.
pub struct Snapshot {
    /// (thread id, name, time on a CPU).
    pub threads: Vec<(u32, String, Duration)>,
    pub process: Duration,
    /// The machine's busy and total jiffies, over all its CPUs.
    pub machine: (u64, u64),
}

pub fn snapshot() -> Snapshot {
    let mut threads = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let path = entry.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            threads.push((tid, name.trim().to_owned(), Duration::from_nanos(ns)));
        }
    }
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // After the command's closing parenthesis: state is field 0, utime 11, stime 12.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .map_or(Duration::ZERO, |t| {
            Duration::from_secs_f64(t as f64 / TICKS_PER_SECOND)
        });
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3)? + v.get(4)?;
            Some((total - idle, total))
        })
        .unwrap_or((0, 0));
    Snapshot {
        threads,
        process,
        machine,
    }
}

/// CPU time between two snapshots: per thread whose name starts with `prefix` (busiest first),
/// for the process, and the machine's busy share (0..1 of all its CPUs).
pub struct Spent {
    pub threads: Vec<(String, Duration)>,
    pub process: Duration,
    pub machine_busy: f64,
}

pub fn spent(before: &Snapshot, after: &Snapshot) -> Spent {
    let mut threads: Vec<(String, Duration)> = after
        .threads
        .iter()
        .map(|(tid, name, t)| {
            let was = before
                .threads
                .iter()
                .find(|(b, _, _)| b == tid)
                .map_or(Duration::ZERO, |(_, _, t)| *t);
            (name.clone(), t.saturating_sub(was))
        })
        .collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.1));
    let (busy, total) = (
        after.machine.0.saturating_sub(before.machine.0),
        after.machine.1.saturating_sub(before.machine.1),
    );
    Spent {
        threads,
        process: after.process.saturating_sub(before.process),
        machine_busy: if total == 0 {
            0.0
        } else {
            busy as f64 / total as f64
        },
    }
}

impl Spent {
    /// Time of the threads whose name starts with `prefix`.
    pub fn of(&self, prefix: &str) -> Duration {
        self.threads
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| *t)
            .sum()
    }

    /// Each thread's time whose name starts with `prefix`, busiest first.
    pub fn each(&self, prefix: &str) -> Vec<Duration> {
        self.threads
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    }
}
