//! CPU time and memory of a process, from the text of `/proc/PID/stat` and `/proc/PID/status`.
//! Pure parsers (the node's `/metrics` reads its own process at scrape time; `cascade-loadgen`
//! samples the nodes under test).

/// Clock ticks per second in `/proc/PID/stat`: Linux reports CPU times in `USER_HZ`, which is
/// 100 on every architecture it exports to user space.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// CPU use in percent (100 = one core busy) of `ticks` clock ticks spent over `seconds` of wall
/// time.
pub fn cpu_percent(ticks: u64, seconds: f64) -> f64 {
    ticks as f64 / TICKS_PER_SECOND / seconds * 100.0
}

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
    fn reads_this_process() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_cpu_ticks(&stat).is_some(), "{stat}");
        assert!(parse_rss_kib(&status).unwrap() > 0, "{status}");
    }
}
