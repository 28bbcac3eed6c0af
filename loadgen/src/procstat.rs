//! CPU and memory of processes (the nodes under test, and the load generator itself), read from
//! `/proc/PID/stat` and `/proc/PID/status` once a second; and where UDP datagrams were dropped
//! because a socket's receive buffer was full, per process (`/proc/net/udp`, whose `drops`
//! column counts per socket, matched to a process by the socket inodes in `/proc/PID/fd`) and
//! machine-wide (`/proc/net/snmp`). That tells a server that did not send from a receiver that
//! could not keep up.

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use cascade_core::obs::procstat::{cpu_percent, parse_cpu_ticks, parse_rss_kib};

/// Shortest interval a CPU sample is taken over.
const MIN_INTERVAL_S: f64 = 0.5;

/// One socket's line of `/proc/net/udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketLine {
    pub inode: u64,
    /// Bytes waiting in the receive queue.
    pub rx_queue: u64,
    /// Datagrams dropped (receive buffer full) since the socket was created.
    pub drops: u64,
}

/// Reads `/proc/net/udp` (or `udp6`); lines that do not parse are skipped.
pub fn parse_net_udp(text: &str) -> Vec<UdpSocketLine> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let rx_queue = f.get(4)?.split(':').nth(1)?;
            Some(UdpSocketLine {
                inode: f.get(9)?.parse().ok()?,
                rx_queue: u64::from_str_radix(rx_queue, 16).ok()?,
                drops: f.get(12)?.parse().ok()?,
            })
        })
        .collect()
}

/// Machine-wide UDP counters from `/proc/net/snmp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UdpCounters {
    pub in_datagrams: u64,
    pub out_datagrams: u64,
    /// Datagrams dropped because a receive buffer was full.
    pub rcvbuf_errors: u64,
    pub sndbuf_errors: u64,
}

/// Reads the `Udp:` lines of `/proc/net/snmp` (a header line of names, then one of values).
pub fn parse_snmp_udp(text: &str) -> Option<UdpCounters> {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = udp.next()?.split_whitespace().skip(1).collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().skip(1).collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some(UdpCounters {
        in_datagrams: get("InDatagrams")?,
        out_datagrams: get("OutDatagrams")?,
        rcvbuf_errors: get("RcvbufErrors")?,
        sndbuf_errors: get("SndbufErrors").unwrap_or(0),
    })
}

/// The machine's UDP counters now.
pub fn udp_counters() -> Option<UdpCounters> {
    parse_snmp_udp(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// Every UDP socket on the machine (IPv4 and IPv6), by inode.
pub fn udp_sockets() -> HashMap<u64, UdpSocketLine> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| parse_net_udp(&text))
        .map(|l| (l.inode, l))
        .collect()
}

/// Inodes of the sockets process `pid` holds open.
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
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
    /// CPU ticks at the start and the end of the run's steady state (`run`: every viewer
    /// joined and settled, until the run's deadline).
    steady_from: Option<(u64, Instant)>,
    steady_to: Option<(u64, Instant)>,
    /// Highest drop count seen per UDP socket inode (a socket's count survives until it closes).
    udp_drops: HashMap<u64, u64>,
    udp_sockets_max: usize,
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
            steady_from: None,
            steady_to: None,
            udp_drops: HashMap::new(),
            udp_sockets_max: 0,
        }
    }

    /// Notes the receive-buffer drops of this process's UDP sockets, from a [`udp_sockets`]
    /// snapshot.
    pub fn sample_udp(&mut self, sockets: &HashMap<u64, UdpSocketLine>) {
        if self.gone {
            return;
        }
        let mine = socket_inodes(self.pid);
        let mut count = 0;
        for inode in mine {
            if let Some(line) = sockets.get(&inode) {
                count += 1;
                let seen = self.udp_drops.entry(inode).or_insert(0);
                *seen = (*seen).max(line.drops);
            }
        }
        self.udp_sockets_max = self.udp_sockets_max.max(count);
    }

    /// UDP datagrams dropped on this process's sockets so far.
    pub fn udp_drops(&self) -> u64 {
        self.udp_drops.values().sum()
    }

    /// The process's CPU ticks (user and system) now.
    fn ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        parse_cpu_ticks(&stat)
    }

    /// Notes where the run's steady state starts (`from`) or ends.
    pub fn mark_steady(&mut self, from: bool) {
        let Some(ticks) = self.ticks() else {
            return;
        };
        let mark = Some((ticks, Instant::now()));
        if from {
            self.steady_from = mark;
        } else {
            self.steady_to = mark;
        }
    }

    /// CPU (100 = one core) between the two steady-state marks.
    fn steady_cpu(&self) -> Option<f64> {
        let ((t0, at0), (t1, at1)) = (self.steady_from?, self.steady_to?);
        let wall = at1.checked_duration_since(at0)?.as_secs_f64();
        (wall >= MIN_INTERVAL_S).then(|| cpu_percent(t1.saturating_sub(t0), wall))
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
                // Ticks are 10 ms: over a short interval one tick reads as a large percentage.
                if wall < MIN_INTERVAL_S {
                    return;
                }
                {
                    let cpu = cpu_percent(ticks.saturating_sub(last_ticks), wall);
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
            cpu_steady_pct: self.steady_cpu(),
            rss_avg_mib: avg(&rss_mib),
            rss_max_mib: max(&rss_mib),
            udp_sockets_max: self.udp_sockets_max,
            udp_rcvbuf_drops: self.udp_drops(),
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
    /// Average over the run's steady state only (every viewer joined and settled; see
    /// `report::Steady`): what forwarding costs, without the joins.
    pub cpu_steady_pct: Option<f64>,
    pub rss_avg_mib: Option<f64>,
    pub rss_max_mib: Option<f64>,
    /// Most UDP sockets it held at once.
    pub udp_sockets_max: usize,
    /// Datagrams dropped on its UDP sockets because their receive buffer was full: it did not
    /// read fast enough.
    pub udp_rcvbuf_drops: u64,
    /// The process was gone before the end of the run.
    pub exited: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_udp_socket_drops_and_machine_counters() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            60: 0100007F:BA3A 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 43607 2 00000000232df56a 17\n\
            72: 0100007F:BA46 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 49526 2 00000000d8593a76 0\n\
            garbage line\n";
        assert_eq!(
            parse_net_udp(table),
            vec![
                UdpSocketLine {
                    inode: 43607,
                    rx_queue: 0x340,
                    drops: 17
                },
                UdpSocketLine {
                    inode: 49526,
                    rx_queue: 0,
                    drops: 0
                },
            ]
        );
        let snmp = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 2 3 20 3 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(
            parse_snmp_udp(snmp),
            Some(UdpCounters {
                in_datagrams: 10,
                out_datagrams: 20,
                rcvbuf_errors: 3,
                sndbuf_errors: 0
            })
        );
        for bad in ["", "Udp:", "Udp: A B\nUdp: x y", "Udp: InDatagrams\n"] {
            assert_eq!(parse_snmp_udp(bad), None, "{bad:?}");
            assert!(parse_net_udp(bad).is_empty());
        }
    }

    #[test]
    fn finds_this_process_sockets() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut me = ProcWatch::new(std::process::id());
        let all = udp_sockets();
        assert!(
            socket_inodes(std::process::id())
                .iter()
                .any(|i| all.contains_key(i))
        );
        me.sample_udp(&all);
        assert!(me.report().udp_sockets_max >= 1);
        drop(socket);
    }

    #[test]
    fn samples_this_process() {
        let mut me = ProcWatch::new(std::process::id());
        me.sample();
        // Burn a little CPU so the second sample has something to measure; little enough that a
        // busy machine still takes the next sample within the minimum interval.
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        me.sample(); // too soon: not a sample
        std::thread::sleep(std::time::Duration::from_millis(600));
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
