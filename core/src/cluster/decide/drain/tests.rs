//! Drains driven by hand, time moved by adding durations.

use super::*;
use DrainAction::{AnnounceDraining, RefuseNewSessions, Shutdown};
use DrainEvent::{DrainRequested, SessionsChanged, Tick};

const TIMEOUT: Duration = Duration::from_secs(30);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn serving_with(sessions: usize, now: Instant) -> Drain {
    let mut drain = Drain::new(TIMEOUT);
    assert_eq!(drain.handle(SessionsChanged(sessions), now), []);
    drain
}

#[test]
fn a_drain_with_sessions_left_waits_and_shuts_down_when_the_last_leaves() {
    let t0 = Instant::now();
    let mut drain = serving_with(2, t0);
    let started = drain.handle(DrainRequested, t0);
    assert_eq!(started, [RefuseNewSessions, AnnounceDraining]);
    assert!(!drain.accepts_sessions());
    assert_eq!(drain.poll_timeout(), Some(t0 + TIMEOUT));
    assert_eq!(drain.handle(Tick, t0 + secs(5)), []);
    assert_eq!(drain.handle(SessionsChanged(1), t0 + secs(6)), []);
    assert_eq!(drain.handle(SessionsChanged(0), t0 + secs(7)), [Shutdown]);
    assert_eq!(drain.state(), DrainState::Stopped);
    assert_eq!(drain.poll_timeout(), None);
}

#[test]
fn a_drain_with_sessions_left_shuts_down_at_the_deadline() {
    let t0 = Instant::now();
    let mut drain = serving_with(3, t0);
    drain.handle(DrainRequested, t0);
    assert_eq!(drain.handle(SessionsChanged(2), t0 + secs(10)), []);
    assert_eq!(
        drain.handle(Tick, t0 + TIMEOUT - Duration::from_millis(1)),
        []
    );
    assert_eq!(drain.handle(Tick, t0 + TIMEOUT), [Shutdown]);
    assert_eq!(drain.handle(SessionsChanged(0), t0 + TIMEOUT), [], "once");
}

#[test]
fn a_node_with_no_sessions_stops_as_soon_as_it_drains() {
    let t0 = Instant::now();
    let mut drain = Drain::new(TIMEOUT);
    let actions = drain.handle(DrainRequested, t0);
    assert_eq!(actions, [RefuseNewSessions, AnnounceDraining, Shutdown]);
}

#[test]
fn drain_is_idempotent_and_a_second_signal_stops_at_once() {
    let t0 = Instant::now();
    let mut drain = serving_with(1, t0);
    drain.handle(DrainRequested, t0);
    assert_eq!(drain.handle(DrainRequested, t0 + secs(1)), []);
    assert_eq!(
        drain.poll_timeout(),
        Some(t0 + TIMEOUT),
        "the first deadline holds"
    );
    assert_eq!(
        drain.handle(DrainEvent::ShutdownRequested, t0 + secs(2)),
        [Shutdown]
    );
    assert_eq!(drain.handle(DrainRequested, t0 + secs(3)), []);
}

#[test]
fn a_serving_node_ignores_ticks_and_session_counts() {
    let t0 = Instant::now();
    let mut drain = serving_with(0, t0);
    assert_eq!(drain.handle(Tick, t0 + secs(100)), []);
    assert!(drain.accepts_sessions());
    assert_eq!(drain.poll_timeout(), None);
}
