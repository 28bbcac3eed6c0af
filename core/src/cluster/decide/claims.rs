//! One room's claim in the routing store (`SET NX PX` with a token, renewed every heartbeat,
//! released by compare-and-delete): whether this node owns the room.
//!
//! Unclaimed → Claiming → Held; when another node holds the room: Probing its owner → its
//! registration expired: TakingOver → Held, registered: refused. Held is renewed every
//! `renew_every` by compare-and-extend on the token; a claim the store lost is claimed again
//! with a new token (Reclaiming); one found taken by another node is given up (Lost), so two
//! nodes that both see the store never both act as the owner.
//!
//! An owner is dead when its lease in the store ran out, and only then: never because a TCP
//! connect to it succeeded or failed. A hung process (SIGSTOP, a stuck runtime) still has its
//! port accepted by the kernel, so it would pass such a probe forever; an owner we merely cannot
//! reach (a partition between origins) would fail one while it still serves its room. Its lease
//! is what every node sees the same way: a hung owner stops renewing and is dead within one
//! lease; when it wakes, its renewal finds the token gone and another node's claim in its place,
//! and it gives the room up rather than take it back.
//!
//! The driver keeps a [`Claim`] per published room, performs each [`ClaimAction`] and answers
//! it with the event its doc names, tells the join `Owned` or `Refused`, stops acting as the
//! owner on `GiveUp`, ticks at [`Claim::poll_timeout`], drops it once [`Claim::is_done`].

use std::time::{Duration, Instant};

/// Proof of owning a room: only the holder of the token may renew or release the claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub String);

/// What a node does when its claim's lease ran out without a renewal (the store unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    /// Keep serving and renewing (today: a store failure ends nothing); given up if found taken.
    KeepServing,
    /// Give the room up at the lease's end: another node may own it by now.
    GiveUp,
}

/// What a claim is told at start.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSettings {
    /// This node's id, as claims in the store name their owner.
    pub node_id: String,
    /// How long a claim lives in the store without a renewal.
    pub lease: Duration,
    /// How often a held claim is renewed.
    pub renew_every: Duration,
    /// What a claim that ran out without renewal does.
    pub on_lapse: Lapse,
}

impl ClaimSettings {
    /// Today's settings: renewed three times a lease, lapsed claims kept.
    pub fn new(node_id: impl Into<String>, lease: Duration) -> Self {
        Self {
            node_id: node_id.into(),
            lease,
            renew_every: lease / 3,
            on_lapse: Lapse::KeepServing,
        }
    }
}

/// What the store answered a `TryClaim`, `TakeOver` or `Reclaim` ([`ClaimAction`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimAnswer {
    /// The room is ours, under this token.
    Won(ClaimToken),
    /// Another claim holds it: its owner's node id (read with `room_owner` after a refusal).
    HeldBy(String),
    /// Refused, yet nobody held it when the owner was read (released in between).
    Free,
    /// The store could not be asked.
    Failed,
}

/// What the driver found out about a room's owner ([`ClaimAction::ProbeOwner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerHealth {
    /// Its registration is gone from the store: its lease expired.
    LeaseExpired,
    /// Registered: it renewed its lease within the last lease.
    Live,
    /// The store could not be read: the join is refused (`503`), nothing is taken over.
    Unknown,
}

/// An input to [`Claim::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimEvent {
    /// A publisher wants the room here: claim it.
    Claim,
    /// The answer to a `TryClaim`, `TakeOver` or `Reclaim` ([`ClaimAction`]).
    Claimed(ClaimAnswer),
    /// The answer to [`ClaimAction::ProbeOwner`].
    OwnerProbed {
        /// The owner probed.
        owner: String,
        /// What was found.
        health: OwnerHealth,
    },
    /// [`ClaimAction::Renew`] answered: extended by a lease from when it was asked.
    Renewed,
    /// [`ClaimAction::Renew`] answered: the token lost the room (expired, store emptied).
    RenewLost,
    /// [`ClaimAction::Renew`] failed: the store could not be asked.
    RenewFailed,
    /// The room is over here: let the claim go.
    Release,
    /// Time passed (sent at [`Claim::poll_timeout`]).
    Tick,
}

/// An output of [`Claim::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimAction {
    /// `claim_room` (`SET NX PX`), and on refusal `room_owner`: answer [`ClaimEvent::Claimed`].
    TryClaim,
    /// Read this owner's registration (its lease): answer `OwnerProbed`.
    ProbeOwner(String),
    /// `take_over_room` from this dead owner: answer `Claimed`.
    TakeOver(String),
    /// `renew_room` with this token: answer [`ClaimEvent::Renewed`].
    Renew(ClaimToken),
    /// `claim_room` again, for a claim the store lost: answer [`ClaimEvent::Claimed`].
    Reclaim,
    /// `release_room` (compare-and-delete) with this token; not answered.
    Release(ClaimToken),
    /// The room is this node's: accept its publisher.
    Owned,
    /// The room is not this node's: `409` when a live owner holds it, `503` when `None`.
    Refused(Option<String>),
    /// This node no longer owns the room it served: stop acting as its owner (no split
    /// brain). Who holds it now, when known (`None`: the lease ran out unrenewed).
    GiveUp(Option<String>),
}

/// Where a room's claim stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimState {
    /// Not claimed, nothing asked.
    Unclaimed,
    /// A [`ClaimAction::TryClaim`] is out.
    Claiming {
        /// When it was sent: a claim won runs a lease from then at the latest.
        sent_at: Instant,
        /// Whether the first try found the room [`ClaimAnswer::Free`].
        retried: bool,
    },
    /// Held by this owner, being probed.
    Probing(String),
    /// A [`ClaimAction::TakeOver`] from `owner` is out.
    TakingOver {
        /// The owner found dead.
        owner: String,
        /// When it was sent.
        sent_at: Instant,
    },
    /// Owned.
    Held(Holding),
    /// The store lost the claim; claiming it again.
    Reclaiming {
        /// When the [`ClaimAction::Reclaim`] now out was sent.
        in_flight: Option<Instant>,
        /// When to try again after a failure.
        retry_at: Instant,
    },
    /// Given up ([`ClaimAction::GiveUp`]) to this owner, when known.
    Lost(Option<String>),
    /// Let go; a claim sent at this time is still out (a win is released on arrival).
    Released(Option<Instant>),
}

/// A claim held: the store holds it at least until `renewed_at + lease`.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    /// The claim's token.
    pub token: ClaimToken,
    /// When the last successful claim or renewal was sent.
    pub renewed_at: Instant,
    /// When the next renewal is due.
    pub next_renew: Instant,
    /// When the renewal now out was sent.
    pub renewing: Option<Instant>,
}

/// One room's claim.
#[derive(Debug, Clone)]
pub struct Claim {
    settings: ClaimSettings,
    state: ClaimState,
}

impl Claim {
    /// An unclaimed room.
    pub fn new(settings: ClaimSettings) -> Self {
        let state = ClaimState::Unclaimed;
        Self { settings, state }
    }

    /// Where the claim stands.
    pub fn state(&self) -> &ClaimState {
        &self.state
    }

    /// Whether the driver may drop this claim: never claimed, or released with nothing out.
    pub fn is_done(&self) -> bool {
        [ClaimState::Unclaimed, ClaimState::Released(None)].contains(&self.state)
    }

    /// When the driver should send [`ClaimEvent::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            ClaimState::Held(h) => {
                let renew = h.renewing.is_none().then_some(h.next_renew);
                let lapse = (self.settings.on_lapse == Lapse::GiveUp)
                    .then(|| h.renewed_at + self.settings.lease);
                renew.into_iter().chain(lapse).min()
            }
            ClaimState::Reclaiming {
                in_flight: None,
                retry_at,
            } => Some(*retry_at),
            _ => None,
        }
    }

    /// Takes one event; returns the actions it calls for, in order.
    pub fn handle(&mut self, event: ClaimEvent, now: Instant) -> Vec<ClaimAction> {
        use {ClaimAction as A, ClaimEvent as E, ClaimState as S};
        let state = std::mem::replace(&mut self.state, S::Unclaimed);
        let (next, actions) = match (state, event) {
            (S::Held(h), E::Release) => (S::Released(None), vec![A::Release(h.token)]),
            (state, E::Release) => (S::Released(in_flight(&state)), vec![]),
            (state @ (S::Held(_) | S::Reclaiming { .. }), E::Claim) => (state, vec![A::Owned]),
            // The claim still out answers this one.
            (S::Released(Some(sent_at)), E::Claim) => (claiming(sent_at, false), vec![]),
            (S::Unclaimed | S::Lost(_) | S::Released(None), E::Claim) => {
                (claiming(now, false), vec![A::TryClaim])
            }
            (state, E::Claimed(answer)) => self.claimed(state, answer, now),
            (S::Probing(owner), E::OwnerProbed { owner: o, health }) if o == owner => {
                self.probed(owner, health, now)
            }
            (S::Held(h), e @ (E::Renewed | E::RenewLost | E::RenewFailed)) => {
                self.renewed(h, e, now)
            }
            (state, E::Tick) => self.tick(state, now),
            // A claim under way, a stale answer, nothing due.
            (state, _) => (state, vec![]),
        };
        self.state = next;
        actions
    }

    fn held(&self, token: ClaimToken, renewed_at: Instant) -> ClaimState {
        let next_renew = renewed_at + self.settings.renew_every;
        ClaimState::Held(Holding {
            token,
            renewed_at,
            next_renew,
            renewing: None,
        })
    }

    fn claimed(&self, state: ClaimState, answer: ClaimAnswer, now: Instant) -> Step {
        use ClaimAnswer::{Failed, Free, HeldBy, Won};
        use {ClaimAction as A, ClaimState as S};
        let Some(sent_at) = in_flight(&state) else {
            return (state, vec![]); // nothing was asked: a stray answer
        };
        match (state, answer) {
            // Released while the claim was out: a late win is let go at once.
            (S::Released(_), Won(token)) => (S::Released(None), vec![A::Release(token)]),
            (S::Released(_), _) => (S::Released(None), vec![]),
            (S::Reclaiming { .. }, Won(token)) => (self.held(token, sent_at), vec![]),
            (_, Won(token)) => (self.held(token, sent_at), vec![A::Owned]),
            // A claim under our own id is a previous run of this node: nobody serves it.
            (S::Claiming { .. } | S::Reclaiming { .. }, HeldBy(owner))
                if owner == self.settings.node_id =>
            {
                taking_over(owner, now)
            }
            (S::Claiming { .. }, HeldBy(owner)) => {
                let probe = A::ProbeOwner(owner.clone());
                (S::Probing(owner), vec![probe])
            }
            (S::Reclaiming { .. }, HeldBy(owner)) => {
                (S::Lost(Some(owner.clone())), vec![A::GiveUp(Some(owner))])
            }
            (S::Claiming { retried: false, .. }, Free) => (claiming(now, true), vec![A::TryClaim]),
            (S::Reclaiming { .. }, Free) => (reclaiming(Some(now), now), vec![A::Reclaim]),
            // The claim is gone from the store and cannot be made again: lapsed.
            (S::Reclaiming { .. }, Failed) if self.settings.on_lapse == Lapse::GiveUp => {
                (S::Lost(None), vec![A::GiveUp(None)])
            }
            (S::Reclaiming { .. }, Failed) => {
                (reclaiming(None, now + self.settings.renew_every), vec![])
            }
            (_, HeldBy(owner)) => (S::Unclaimed, vec![A::Refused(Some(owner))]),
            (_, Free | Failed) => (S::Unclaimed, vec![A::Refused(None)]),
        }
    }

    fn probed(&self, owner: String, health: OwnerHealth, now: Instant) -> Step {
        match health {
            OwnerHealth::LeaseExpired => taking_over(owner, now),
            OwnerHealth::Live => (
                ClaimState::Unclaimed,
                vec![ClaimAction::Refused(Some(owner))],
            ),
            OwnerHealth::Unknown => (ClaimState::Unclaimed, vec![ClaimAction::Refused(None)]),
        }
    }

    fn renewed(&self, mut h: Holding, answer: ClaimEvent, now: Instant) -> Step {
        let Some(sent_at) = h.renewing.take() else {
            return (ClaimState::Held(h), vec![]); // nothing was asked
        };
        match answer {
            ClaimEvent::Renewed => (self.held(h.token, sent_at), vec![]),
            // Tried again next period, as long as the lease lasts (see `Lapse`).
            ClaimEvent::RenewFailed => {
                h.next_renew = now + self.settings.renew_every;
                (ClaimState::Held(h), vec![])
            }
            _ => (reclaiming(Some(now), now), vec![ClaimAction::Reclaim]),
        }
    }

    fn tick(&self, state: ClaimState, now: Instant) -> Step {
        let mut h = match state {
            ClaimState::Held(h) => h,
            ClaimState::Reclaiming {
                in_flight: None,
                retry_at,
            } if now >= retry_at => {
                return (reclaiming(Some(now), retry_at), vec![ClaimAction::Reclaim]);
            }
            state => return (state, vec![]),
        };
        if self.settings.on_lapse == Lapse::GiveUp && now >= h.renewed_at + self.settings.lease {
            // Should the store see us again, the claim goes rather than outlive the room.
            let actions = vec![ClaimAction::Release(h.token), ClaimAction::GiveUp(None)];
            return (ClaimState::Lost(None), actions);
        }
        if h.renewing.is_some() || now < h.next_renew {
            return (ClaimState::Held(h), vec![]);
        }
        h.renewing = Some(now);
        let action = ClaimAction::Renew(h.token.clone());
        (ClaimState::Held(h), vec![action])
    }
}

/// A state and the actions that led to it.
type Step = (ClaimState, Vec<ClaimAction>);

fn taking_over(owner: String, sent_at: Instant) -> Step {
    let action = ClaimAction::TakeOver(owner.clone());
    (ClaimState::TakingOver { owner, sent_at }, vec![action])
}

fn claiming(sent_at: Instant, retried: bool) -> ClaimState {
    ClaimState::Claiming { sent_at, retried }
}

fn reclaiming(in_flight: Option<Instant>, retry_at: Instant) -> ClaimState {
    ClaimState::Reclaiming {
        in_flight,
        retry_at,
    }
}

/// When the claim now out (a claim, take-over or reclaim) was sent.
fn in_flight(state: &ClaimState) -> Option<Instant> {
    match state {
        ClaimState::Claiming { sent_at, .. } | ClaimState::TakingOver { sent_at, .. } => {
            Some(*sent_at)
        }
        ClaimState::Reclaiming { in_flight, .. } | ClaimState::Released(in_flight) => *in_flight,
        _ => None,
    }
}

#[cfg(test)]
mod tests;
