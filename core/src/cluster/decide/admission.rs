//! Admission: whether a new session is taken here, sent to another node (`307`) or refused
//! (`503`), with a slot reserved for each one taken so two joins racing for the last slot
//! cannot both get it.
//!
//! The rules are today's placement's (`placement::place_viewer`, `place_publisher`), over a
//! snapshot of the other nodes that the driver reads from the routing store only when the
//! answer may not be "here":
//!
//! 1. A node that is draining or full sends a viewer to the least-loaded edge with room that
//!    carries the room, else to the least-loaded edge with room, else refuses it; a publisher
//!    to the least-loaded origin with room, else refuses it.
//! 2. An edge that does not carry the room sends a viewer to an edge with room that does.
//! 3. A relay link (a downstream node's `Subscribe`) is always taken, and counted: the
//!    downstream node chose this node by the relay tree's rule (`--max-edge-fanout` links per
//!    room at most), and refusing the link would end the room for the viewers that node has
//!    already admitted. Its slot makes the node full sooner for new viewers and publishers.
//! 4. Otherwise the node takes it.
//!
//! A viewer with a region or zone hint ranks the nodes by [`Tier`] (its region and zone, its
//! region, any; `crate::cluster::locality::tier`) and the rules above apply within each tier,
//! nearest first: an edge with room in a tier nearer than this node's takes the viewer (one that
//! carries the room first), whatever this node could do; in this node's own tier rules 1, 2
//! and 4 apply among that tier's edges; a node that is draining or full then looks in the
//! farther tiers. Without a hint every node is [`Tier::Best`]: the rules as they were.
//!
//! "Least loaded" compares `load / capacity`; ties go to the smaller id. A node's load is its
//! reservations: every session it serves (publishers, viewers, relay links), whatever its
//! role, since each one costs it a peer connection and its media. A reservation is taken in
//! the same step as the decision, so the last slot goes to exactly one join; a session that
//! never connects gives its slot back after the connect timeout (the driver's `Leave`).
//!
//! The driver sends [`AdmissionEvent::Join`] for each new session, answers
//! [`AdmissionAction::LookUp`] with the nodes the decision can choose from: the least-loaded
//! with room in each of the viewer's tiers and the room's carriers, or the carriers alone
//! where [`Admission::needs_least_loaded`] says they are all it can pick
//! ([`AdmissionEvent::LookedUp`], or
//! [`AdmissionEvent::LookUpFailed`]), serves, redirects or refuses as told, sends
//! [`AdmissionEvent::Leave`] when a session admitted ends (or fails to start), and registers
//! [`Admission::load`] as the node's load. Nothing here waits on time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// A node's role, as far as admission cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Takes publishers (and viewers, and relay links).
    Origin,
    /// Takes relayed rooms' viewers (and relay links to edges below it).
    Edge,
}

/// How near a node is to a viewer, by the viewer's region and zone hint; nearer sorts first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// In the hinted region and zone (every node, when the viewer gave no hint).
    #[default]
    Best,
    /// In the hinted region, another zone.
    Region,
    /// Elsewhere, or the node's place is unknown.
    Any,
}

impl Tier {
    /// Every tier, nearest first.
    pub const ALL: [Tier; 3] = [Tier::Best, Tier::Region, Tier::Any];
}

/// Another node, as the routing store shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its id (the driver maps it to its URL for the redirect).
    pub id: String,
    /// Its role.
    pub role: NodeRole,
    /// Sessions it holds, of the kind its capacity counts.
    pub load: u32,
    /// Sessions it takes at most.
    pub capacity: u32,
    /// Whether it is draining.
    pub draining: bool,
    /// Whether it carries the room asked for (a link in the store).
    pub carries_room: bool,
    /// How near it is to the viewer asking (always [`Tier::Best`] for a publisher).
    pub tier: Tier,
}

impl Candidate {
    fn has_room(&self) -> bool {
        !self.draining && self.load < self.capacity
    }
}

/// What an admission machine is told at start.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionSettings {
    /// This node's id.
    pub node_id: String,
    /// Its role.
    pub role: NodeRole,
    /// Sessions it takes at most (`--capacity`).
    pub capacity: u32,
    /// Whether it can serve a viewer without the store (`--upstream` is set).
    pub serves_without_store: bool,
}

/// Names one join from [`AdmissionEvent::Join`] to its [`AdmissionEvent::Leave`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// What kind of session asks to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// A WHEP viewer; whether this node holds the room now, and how near it is to the viewer.
    Viewer {
        /// Whether this node holds the room.
        carries_room: bool,
        /// This node's tier for this viewer ([`Tier::Best`] without a hint).
        tier: Tier,
    },
    /// A WHIP publisher.
    Publisher,
    /// A downstream node's relay link (`Subscribe`).
    Relay,
}

/// Why a join is refused (`503` + `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// This node is draining and no other has room.
    Draining,
    /// This node is full and no other has room.
    Full,
    /// The routing store could not be read, and this node cannot serve without it.
    StoreUnavailable,
}

/// An input to [`Admission::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum AdmissionEvent {
    /// A new session asks to join.
    Join(Join),
    /// The answer to [`AdmissionAction::LookUp`]: the live nodes (this one may be among them).
    LookedUp(Ticket, Vec<Candidate>),
    /// [`AdmissionAction::LookUp`] failed: the store could not be read.
    LookUpFailed(Ticket),
    /// A session admitted has ended, or failed to start; its slot is free again.
    Leave(Ticket),
    /// The node is draining: it takes no new session.
    Drain,
    /// Time passed (nothing here waits on time; kept for the common surface).
    Tick,
}

/// An output of [`Admission::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum AdmissionAction {
    /// Read the live nodes and the room's links: answer `LookedUp` or `LookUpFailed`.
    LookUp(Ticket),
    /// Serve it here; its slot is reserved until [`AdmissionEvent::Leave`].
    Admit(Ticket),
    /// Send it to this node (`307`).
    Redirect(Ticket, String),
    /// Refuse it (`503`).
    Refuse(Ticket, RefuseReason),
}

/// A node's admission of new sessions.
#[derive(Debug, Clone)]
pub struct Admission {
    settings: AdmissionSettings,
    draining: bool,
    next: u64,
    /// Joins waiting for a lookup.
    pending: BTreeMap<Ticket, Join>,
    /// Joins admitted that count against the capacity.
    slots: BTreeSet<Ticket>,
}

impl Admission {
    /// A node with every slot free.
    pub fn new(settings: AdmissionSettings) -> Self {
        Self {
            settings,
            draining: false,
            next: 0,
            pending: BTreeMap::new(),
            slots: BTreeSet::new(),
        }
    }

    /// Slots taken: the load this node registers.
    pub fn load(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Whether this node takes new sessions at all.
    pub fn has_room(&self) -> bool {
        !self.draining && self.load() < self.settings.capacity
    }

    /// Whether the lookup for `join` needs the least-loaded nodes with room, or the room's
    /// carriers are all the decision can choose from: an edge with room asked for a viewer of
    /// its own best tier sends it to a carrier or serves it (rule 2), so the registry's
    /// least-loaded lists need not be read. Should the node fill up before the lookup's
    /// answer, such a viewer goes to a carrier with room or is refused (`503`; the retry
    /// reads everything).
    pub fn needs_least_loaded(&self, join: Join) -> bool {
        match join {
            Join::Viewer { tier, .. } => {
                !(self.has_room() && tier == Tier::Best && self.settings.role == NodeRole::Edge)
            }
            Join::Publisher => true,
            Join::Relay => false,
        }
    }

    /// Always `None`: admission waits on nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Takes one event; returns the actions it calls for, in order.
    pub fn handle(&mut self, event: AdmissionEvent, _now: Instant) -> Vec<AdmissionAction> {
        match event {
            AdmissionEvent::Join(join) => {
                let ticket = Ticket(self.next);
                self.next += 1;
                // A viewer needs no lookup when this node holds its room (or is an origin) and
                // nobody can be nearer to it.
                let here = self.has_room()
                    && match join {
                        Join::Publisher | Join::Relay => true,
                        Join::Viewer { carries_room, tier } => {
                            tier == Tier::Best
                                && (carries_room || self.settings.role == NodeRole::Origin)
                        }
                    };
                if here || join == Join::Relay {
                    return vec![self.admit(ticket, join)];
                }
                self.pending.insert(ticket, join);
                vec![AdmissionAction::LookUp(ticket)]
            }
            AdmissionEvent::LookedUp(ticket, nodes) => {
                let Some(join) = self.pending.remove(&ticket) else {
                    return vec![];
                };
                let choice = match join {
                    Join::Publisher => self.place_publisher(&nodes),
                    Join::Viewer { carries_room, tier } => {
                        self.place_viewer(carries_room, tier, &nodes)
                    }
                    Join::Relay => Ok(None),
                };
                vec![match choice {
                    Ok(None) => self.admit(ticket, join),
                    Ok(Some(node)) => AdmissionAction::Redirect(ticket, node),
                    Err(reason) => AdmissionAction::Refuse(ticket, reason),
                }]
            }
            AdmissionEvent::LookUpFailed(ticket) => match self.pending.remove(&ticket) {
                // Without the store, a viewer this node can serve is served here, near or not.
                Some(join @ Join::Viewer { .. }) if self.serves_alone(join) => {
                    vec![self.admit(ticket, join)]
                }
                Some(_) => {
                    let reason = RefuseReason::StoreUnavailable;
                    vec![AdmissionAction::Refuse(ticket, reason)]
                }
                None => vec![],
            },
            AdmissionEvent::Leave(ticket) => {
                self.pending.remove(&ticket);
                self.slots.remove(&ticket);
                vec![]
            }
            AdmissionEvent::Drain => {
                self.draining = true;
                vec![]
            }
            AdmissionEvent::Tick => vec![],
        }
    }

    /// Admits a join, reserving its slot.
    fn admit(&mut self, ticket: Ticket, _join: Join) -> AdmissionAction {
        self.slots.insert(ticket);
        AdmissionAction::Admit(ticket)
    }

    /// Whether this node can take a viewer when the other nodes cannot be read: it has room,
    /// and holds the room, or is an origin, or an edge with `--upstream`.
    fn serves_alone(&self, join: Join) -> bool {
        self.has_room()
            && match join {
                Join::Publisher | Join::Relay => true,
                Join::Viewer { carries_room, .. } => {
                    carries_room
                        || self.settings.role == NodeRole::Origin
                        || self.settings.serves_without_store
                }
            }
    }

    fn refusal(&self) -> RefuseReason {
        if self.draining {
            RefuseReason::Draining
        } else {
            RefuseReason::Full
        }
    }

    /// A viewer's place, tier by tier, nearest first (see the module's rules).
    fn place_viewer(&self, carries_room: bool, mine: Tier, nodes: &[Candidate]) -> Placement {
        let me = &self.settings.node_id;
        let others = |tier: Tier| {
            nodes
                .iter()
                .filter(move |n| n.id != *me && n.has_room())
                .filter(move |n| n.role == NodeRole::Edge && n.tier == tier)
        };
        let carriers = |tier: Tier| others(tier).filter(|n| n.carries_room);
        for tier in Tier::ALL {
            if tier == mine && self.has_room() {
                if self.settings.role == NodeRole::Edge && !carries_room {
                    return Ok(least_loaded(carriers(tier)));
                }
                return Ok(None);
            }
            // A nearer tier than this node's, or this node cannot take the viewer: any edge
            // with room, one that carries the room first.
            if let Some(to) = least_loaded(carriers(tier)).or_else(|| least_loaded(others(tier))) {
                return Ok(Some(to));
            }
        }
        Err(self.refusal())
    }

    fn place_publisher(&self, nodes: &[Candidate]) -> Placement {
        if self.has_room() {
            return Ok(None);
        }
        let me = &self.settings.node_id;
        let origins = nodes
            .iter()
            .filter(|n| n.id != *me && n.role == NodeRole::Origin && n.has_room());
        least_loaded(origins)
            .map(Some)
            .ok_or_else(|| self.refusal())
    }
}

/// Where a join goes: `Ok(None)` here, `Ok(Some(id))` that node, `Err` refused.
type Placement = Result<Option<String>, RefuseReason>;

/// The node with the smallest `load / capacity` (compared without floats), ties to the
/// smaller id so every node picks the same one.
fn least_loaded<'a>(nodes: impl Iterator<Item = &'a Candidate>) -> Option<String> {
    let key = |n: &Candidate| (u64::from(n.load), u64::from(n.capacity.max(1)));
    nodes
        .min_by(|a, b| {
            let ((la, ca), (lb, cb)) = (key(a), key(b));
            (la * cb).cmp(&(lb * ca)).then_with(|| a.id.cmp(&b.id))
        })
        .map(|n| n.id.clone())
}

#[cfg(test)]
mod tests;
