//! Drain: a node stops taking sessions, keeps the ones it has until they leave or a deadline
//! passes, then shuts down.
//!
//! Serving → Draining (until `now + drain_timeout`) → Stopped. A drain asked for again (a
//! second `POST /drain`, a signal after the API call) changes nothing and calls for nothing:
//! drain is idempotent. A node with no sessions left stops at once.
//!
//! The driver reports the node's session count on every join and leave
//! ([`DrainEvent::SessionsChanged`]) and performs each [`DrainAction`]:
//! [`DrainAction::RefuseNewSessions`] (`/readyz` answers 503, joins are redirected or
//! refused), [`DrainAction::AnnounceDraining`] (re-register at once with `draining: true`,
//! leaving placement before the next heartbeat), [`DrainAction::Shutdown`] (close what is
//! left, remove the node's routing entries). It sends [`DrainEvent::Tick`] at
//! [`Drain::poll_timeout`].

use std::time::{Duration, Instant};

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainState {
    /// Taking sessions.
    Serving,
    /// Taking no new sessions; shutting down when the last leaves or at `deadline`.
    Draining {
        /// When the node shuts down whatever is left.
        deadline: Instant,
    },
    /// Shut down.
    Stopped,
}

/// An input to [`Drain::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum DrainEvent {
    /// Drain, from a signal or the API (`POST /v1/nodes/{id}/drain`).
    DrainRequested,
    /// The node now holds this many sessions (publishers, viewers, downstream relays).
    SessionsChanged(usize),
    /// Stop now, sessions or not (a second signal).
    ShutdownRequested,
    /// Time passed (sent at [`Drain::poll_timeout`]).
    Tick,
}

/// An output of [`Drain::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum DrainAction {
    /// Take no new sessions: `/readyz` 503, joins redirected or refused.
    RefuseNewSessions,
    /// Register `draining: true` in the routing store now, not at the next heartbeat.
    AnnounceDraining,
    /// Shut down: close the sessions left, remove the routing entries.
    Shutdown,
}

/// A node's drain.
#[derive(Debug, Clone)]
pub struct Drain {
    timeout: Duration,
    sessions: usize,
    state: DrainState,
}

impl Drain {
    /// A serving node with no sessions; a drain waits at most `timeout` (`--drain-timeout`).
    pub fn new(timeout: Duration) -> Self {
        let (sessions, state) = (0, DrainState::Serving);
        Self {
            timeout,
            sessions,
            state,
        }
    }

    /// Where the node stands.
    pub fn state(&self) -> DrainState {
        self.state
    }

    /// Whether new sessions are taken.
    pub fn accepts_sessions(&self) -> bool {
        self.state == DrainState::Serving
    }

    /// When the driver should send [`DrainEvent::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            DrainState::Draining { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Takes one event; returns the actions it calls for, in order.
    pub fn handle(&mut self, event: DrainEvent, now: Instant) -> Vec<DrainAction> {
        if let DrainEvent::SessionsChanged(n) = event {
            self.sessions = n;
        }
        match (self.state, event) {
            (DrainState::Stopped, _) => vec![],
            (DrainState::Serving, DrainEvent::DrainRequested) => {
                let deadline = now + self.timeout;
                self.state = DrainState::Draining { deadline };
                let mut actions = vec![DrainAction::RefuseNewSessions];
                actions.push(DrainAction::AnnounceDraining);
                actions.extend(self.stop_if(self.sessions == 0));
                actions
            }
            (_, DrainEvent::ShutdownRequested) => self.stop_if(true),
            (
                DrainState::Draining { deadline },
                DrainEvent::SessionsChanged(_) | DrainEvent::Tick,
            ) => self.stop_if(self.sessions == 0 || now >= deadline),
            // Serving as usual, or a drain asked again.
            _ => vec![],
        }
    }

    fn stop_if(&mut self, stop: bool) -> Vec<DrainAction> {
        if !stop {
            return vec![];
        }
        self.state = DrainState::Stopped;
        vec![DrainAction::Shutdown]
    }
}

#[cfg(test)]
mod tests;
