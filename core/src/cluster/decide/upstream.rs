//! An edge's upstream for one relayed room: where it pulls the room from, and the failover
//! to another source when that link breaks while the room's viewers stay attached.
//!
//! Idle → Starting (choosing, then connecting) → Linked; a link that breaks once up →
//! FailingOver: the room's sources are marked lost, and every 100 ms doubling to 1 s another
//! upstream is chosen (avoiding the ones whose links just broke; never the room's owner,
//! which alone has the room when it comes back) and connected, until a link is up again
//! (Linked) or `failover_timeout` passes (Ended). A first link that cannot be set up ends the
//! room at once.
//!
//! The driver performs each [`UpstreamAction`]: [`UpstreamAction::ChooseUpstream`] reads the
//! room's owner, links and the live nodes and runs `placement::choose_upstream` over them
//! (without the avoided edges), answering [`UpstreamEvent::Candidates`];
//! [`UpstreamAction::Connect`] sets up the relay link (describe, offer, subscribe) and answers
//! [`UpstreamEvent::LinkUp`] or [`UpstreamEvent::LinkBroke`], the latter again whenever a link
//! that was up breaks. It sends [`UpstreamEvent::Tick`] at [`Upstream::poll_timeout`].

use std::time::{Duration, Instant};

/// The first wait before looking for a new upstream; it doubles after each failed attempt.
pub const RETRY_MIN: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(1);

/// A node to pull the room from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its node id (for a configured upstream, its URL until the link names its node).
    pub id: String,
    /// Its relay (gRPC) URL.
    pub url: String,
}

/// What an upstream machine is told at start.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSettings {
    /// This node's id.
    pub node_id: String,
    /// The upstream URL given at start (`--upstream`): used instead of the routing store.
    pub configured: Option<String>,
    /// How long a room waits for a new source when its link broke (`--failover-timeout`).
    pub failover_timeout: Duration,
}

/// The driver's answer to [`UpstreamAction::ChooseUpstream`].
#[derive(Debug, Clone, PartialEq)]
pub enum Candidates {
    /// The room's owner, and the source placement chose (the owner, or an edge carrying it).
    Chosen {
        /// The room's owner.
        owner: String,
        /// The source chosen.
        source: Source,
    },
    /// The store knows no owner of the room: it is not being published.
    NoOwner,
    /// The store could not be read, or the chosen node has left the registry.
    Unavailable(String),
}

/// Why the room ends here.
#[derive(Debug, Clone, PartialEq)]
pub enum EndReason {
    /// Nobody publishes the room (`404`).
    NotPublished,
    /// The first link could not be set up.
    NoUpstream(String),
    /// The link broke and no other source was found within the failover timeout.
    FailoverTimeout,
    /// The room is over: its upstream said so, its last subscriber left, or the node stops.
    Over,
}

/// An input to [`Upstream::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// The room is wanted here: find it a source.
    Start,
    /// The answer to [`UpstreamAction::ChooseUpstream`].
    Candidates(Candidates),
    /// The link to this upstream is up (the id the upstream gave, for a configured URL).
    LinkUp(String),
    /// The link to this upstream broke, or could not be set up.
    LinkBroke(String),
    /// The room is over (upstream said so, last subscriber left, node stopping).
    RoomOver,
    /// Time passed (sent at [`Upstream::poll_timeout`]).
    Tick,
}

/// An output of [`Upstream::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamAction {
    /// Choose a source without these edges (the owner stays eligible): answer `Candidates`.
    ChooseUpstream {
        /// Edges whose links broke since the last link was up.
        avoid: Vec<String>,
    },
    /// Set up a relay link from this source: answer `LinkUp` or `LinkBroke`.
    Connect(Source),
    /// Mark the room's tracks as waiting for new sources; their viewers stay attached.
    MarkSourcesLost,
    /// End the room (its viewers are told) and remove its link from the store.
    EndRoom(EndReason),
}

/// The attempt at a source under way.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Waiting until this time before the next attempt.
    Waiting(Instant),
    /// A [`UpstreamAction::ChooseUpstream`] is out.
    Choosing,
    /// A [`UpstreamAction::Connect`] to this node is out.
    Connecting(String),
}

/// Where a relayed room's upstream stands.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamState {
    /// Not started.
    Idle,
    /// Looking for the first source: a failure ends the room.
    Starting(Attempt),
    /// Fed from this upstream.
    Linked(String),
    /// The link broke at `since`; looking for another source.
    FailingOver {
        /// When the link broke.
        since: Instant,
        /// Edges whose links broke since then.
        avoid: Vec<String>,
        /// The attempt under way.
        attempt: Attempt,
    },
    /// Over, for this reason.
    Ended(EndReason),
}

/// One relayed room's upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    settings: UpstreamSettings,
    state: UpstreamState,
    /// The wait after the next failed attempt.
    backoff: Duration,
}

impl Upstream {
    /// A room not yet pulled.
    pub fn new(settings: UpstreamSettings) -> Self {
        let (state, backoff) = (UpstreamState::Idle, RETRY_MIN);
        Self {
            settings,
            state,
            backoff,
        }
    }

    /// Where the upstream stands.
    pub fn state(&self) -> &UpstreamState {
        &self.state
    }

    /// When the driver should send [`UpstreamEvent::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let UpstreamState::FailingOver { since, attempt, .. } = &self.state else {
            return None;
        };
        let deadline = *since + self.settings.failover_timeout;
        match attempt {
            Attempt::Waiting(at) => Some(deadline.min(*at)),
            _ => Some(deadline),
        }
    }

    /// Takes one event; returns the actions it calls for, in order.
    pub fn handle(&mut self, event: UpstreamEvent, now: Instant) -> Vec<UpstreamAction> {
        use {Attempt as T, UpstreamEvent as E, UpstreamState as S};
        let connecting = self.connecting().cloned();
        match (&self.state, event) {
            (S::Ended(_), _) => vec![],
            (_, E::RoomOver) => self.end(EndReason::Over),
            (S::Idle, E::Start) => {
                let (attempt, action) = self.attempt();
                self.state = S::Starting(attempt);
                vec![action]
            }
            (S::Starting(T::Choosing), E::Candidates(c)) => match self.validate(c) {
                Ok(source) => self.connect(source),
                Err(reason) => self.end(reason),
            },
            (S::FailingOver { attempt, .. }, E::Candidates(c)) if *attempt == T::Choosing => {
                match self.validate(c) {
                    Ok(source) => self.connect(source),
                    Err(_) => self.retry_later(now),
                }
            }
            // The id the link reports: a configured URL's node is known only now.
            (_, E::LinkUp(upstream)) if connecting.is_some() => {
                self.state = S::Linked(upstream);
                self.backoff = RETRY_MIN;
                vec![]
            }
            (S::Starting(_), E::LinkBroke(b)) if connecting.as_ref() == Some(&b) => {
                self.end(EndReason::NoUpstream(format!("relay link to {b} failed")))
            }
            (S::FailingOver { .. }, E::LinkBroke(b)) if connecting.as_ref() == Some(&b) => {
                if let S::FailingOver { avoid, .. } = &mut self.state {
                    avoid.push(b);
                }
                self.retry_later(now)
            }
            (S::Linked(up), E::LinkBroke(b)) if *up == b => {
                self.state = S::FailingOver {
                    since: now,
                    avoid: vec![b],
                    attempt: T::Waiting(now + RETRY_MIN),
                };
                self.backoff = (RETRY_MIN * 2).min(RETRY_MAX);
                vec![UpstreamAction::MarkSourcesLost]
            }
            (S::FailingOver { .. }, E::Tick) => self.tick(now),
            // Stale answers (for an attempt given up), nothing due, a second start.
            _ => vec![],
        }
    }

    fn tick(&mut self, now: Instant) -> Vec<UpstreamAction> {
        let UpstreamState::FailingOver { since, attempt, .. } = &self.state else {
            return vec![];
        };
        if now >= *since + self.settings.failover_timeout {
            return self.end(EndReason::FailoverTimeout);
        }
        if !matches!(attempt, Attempt::Waiting(at) if now >= *at) {
            return vec![];
        }
        let (next, action) = self.attempt();
        if let UpstreamState::FailingOver { attempt, .. } = &mut self.state {
            *attempt = next;
        }
        vec![action]
    }

    /// The next attempt: the configured upstream at once, else a choice.
    fn attempt(&self) -> (Attempt, UpstreamAction) {
        if let Some(url) = &self.settings.configured {
            let source = Source {
                id: url.clone(),
                url: url.clone(),
            };
            return (
                Attempt::Connecting(url.clone()),
                UpstreamAction::Connect(source),
            );
        }
        let avoid = match &self.state {
            UpstreamState::FailingOver { avoid, .. } => avoid.clone(),
            _ => vec![],
        };
        (Attempt::Choosing, UpstreamAction::ChooseUpstream { avoid })
    }

    /// The source to connect to, or why there is none. The owner may always be chosen; an
    /// avoided edge may not (the driver should not have chosen it).
    fn validate(&self, candidates: Candidates) -> Result<Source, EndReason> {
        let avoid: &[String] = match &self.state {
            UpstreamState::FailingOver { avoid, .. } => avoid,
            _ => &[],
        };
        match candidates {
            Candidates::Chosen { owner, .. } if owner == self.settings.node_id => {
                Err(EndReason::NotPublished)
            }
            Candidates::Chosen { owner, source }
                if source.id == owner || !avoid.contains(&source.id) =>
            {
                Ok(source)
            }
            Candidates::Chosen { source, .. } => {
                Err(EndReason::NoUpstream(format!("{} is avoided", source.id)))
            }
            Candidates::NoOwner => Err(EndReason::NotPublished),
            Candidates::Unavailable(why) => Err(EndReason::NoUpstream(why)),
        }
    }

    fn connecting(&self) -> Option<&String> {
        match &self.state {
            UpstreamState::Starting(Attempt::Connecting(u))
            | UpstreamState::FailingOver {
                attempt: Attempt::Connecting(u),
                ..
            } => Some(u),
            _ => None,
        }
    }

    fn connect(&mut self, source: Source) -> Vec<UpstreamAction> {
        let connecting = Attempt::Connecting(source.id.clone());
        match &mut self.state {
            UpstreamState::Starting(attempt) | UpstreamState::FailingOver { attempt, .. } => {
                *attempt = connecting;
            }
            _ => return vec![],
        }
        vec![UpstreamAction::Connect(source)]
    }

    /// An attempt during failover failed: wait, doubling the wait each time, unless the
    /// failover timed out.
    fn retry_later(&mut self, now: Instant) -> Vec<UpstreamAction> {
        let UpstreamState::FailingOver { since, attempt, .. } = &mut self.state else {
            return vec![];
        };
        if now >= *since + self.settings.failover_timeout {
            return self.end(EndReason::FailoverTimeout);
        }
        *attempt = Attempt::Waiting(now + self.backoff);
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
        vec![]
    }

    fn end(&mut self, reason: EndReason) -> Vec<UpstreamAction> {
        self.state = UpstreamState::Ended(reason.clone());
        vec![UpstreamAction::EndRoom(reason)]
    }
}

#[cfg(test)]
mod tests;
