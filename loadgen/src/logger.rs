//! A small `log` sink for webrtc-rs: prints warnings and errors to stderr up to a cap, and
//! counts the one error that matters to a measurement, "Failed to send RtpPacket to track
//! remote": the peer connection's driver dropped a received packet because our reader task was
//! behind (its queue holds 256 events). Such a drop is the load generator's own overload, not
//! loss in the server, and the report says so.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::sync::atomic::{AtomicU64, Ordering};

/// Log lines printed at most; the rest are counted.
const MAX_PRINTED: u64 = 50;

static CLIENT_DROPS: AtomicU64 = AtomicU64::new(0);
static PRINTED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

const DROP_MESSAGE: &str = "Failed to send RtpPacket to track remote";

/// Whether formatting `args` would start with `prefix`, without allocating.
fn starts_with(args: &std::fmt::Arguments<'_>, prefix: &str) -> bool {
    struct Prefix<'a> {
        rest: &'a str,
        matched: bool,
    }
    impl std::fmt::Write for Prefix<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let n = s.len().min(self.rest.len());
            if s.as_bytes()[..n] != self.rest.as_bytes()[..n] {
                return Err(std::fmt::Error);
            }
            self.rest = &self.rest[n..];
            if self.rest.is_empty() {
                self.matched = true;
                // Stop formatting: the answer is known.
                return Err(std::fmt::Error);
            }
            Ok(())
        }
    }
    let mut p = Prefix {
        rest: prefix,
        matched: false,
    };
    let _ = std::fmt::write(&mut p, *args);
    p.matched
}

struct Sink {
    level: LevelFilter,
}

impl Log for Sink {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if record.level() == Level::Error && starts_with(record.args(), DROP_MESSAGE) {
            CLIENT_DROPS.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !self.enabled(record.metadata()) {
            return;
        }
        if PRINTED.fetch_add(1, Ordering::Relaxed) < MAX_PRINTED {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        } else {
            SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Installs the sink. `LOADGEN_LOG` (`error`, `warn`, `info`, `debug`, `trace`, `off`) sets what
/// is printed; the default is `error` (webrtc-rs warns about routine things at scale, such as
/// an edge's connectivity checks arriving before a viewer has applied the answer). Received
/// packet drops are counted whatever the level.
pub fn init() {
    let level = std::env::var("LOADGEN_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LevelFilter::Error);
    if log::set_boxed_logger(Box::new(Sink { level })).is_ok() {
        // Errors must reach the sink to be counted even when printing is off.
        log::set_max_level(level.max(LevelFilter::Error));
    }
}

/// Received packets webrtc-rs dropped before our reader got them (see the module docs).
pub fn client_drops() -> u64 {
    CLIENT_DROPS.load(Ordering::Relaxed)
}

/// Log lines not printed because of the cap.
pub fn suppressed() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_check_on_formatted_messages() {
        let id = 3;
        assert!(starts_with(
            &format_args!("Failed to send RtpPacket to track remote {id}: Full(..)"),
            DROP_MESSAGE
        ));
        assert!(starts_with(&format_args!("{DROP_MESSAGE}"), DROP_MESSAGE));
        assert!(!starts_with(
            &format_args!("Failed to send {id}"),
            DROP_MESSAGE
        ));
        assert!(!starts_with(&format_args!("Failed"), DROP_MESSAGE));
        assert!(!starts_with(&format_args!(""), DROP_MESSAGE));
    }
}
