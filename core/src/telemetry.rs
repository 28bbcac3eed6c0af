//! Logging: `tracing` with an `RUST_LOG`-style filter, as text or JSON; webrtc-rs's `log`
//! records are bridged into it. The per-packet path logs at `trace` at most, and no secret
//! (token, key) is ever a field.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests, the demo's several nodes) are no-ops.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,webrtc=warn,rtc=warn,rtc_ice=warn,rtc_dtls=warn,h2=warn,tower=warn,hyper=warn",
        )
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // `try_init` also bridges the `log` crate (tracing-log), which webrtc-rs logs through.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
