//! Placement: the driver of the node's admission machine
//! ([`crate::cluster::decide::admission`]). A join is decided at once when the answer is
//! "here" with no store read; otherwise the room's links (for a viewer) and the few nodes the
//! decision can choose from (the least-loaded with room in each of the viewer's tiers, and the
//! room's carriers: see `registry`) are read from the store and handed to the machine. A join
//! taken here holds a [`Slot`] of the node's
//! capacity from the decision on, so two joins racing for the last slot cannot both get it.
//!
//! The slot goes from placement to the session without passing through the caller:
//! [`Node::place_viewer`] and [`Node::place_publisher`] leave it with the node, and the
//! [`Node::subscribe`] or [`Node::publish`] that follows (at once, with no await in between)
//! takes it. A session keeps it until it ends (a session that does not connect within
//! `--connect-timeout` is closed, so a flood of offers that never connect holds slots for that
//! long at most); an origin's publisher hands it to its room's claim, which keeps it until the
//! room is forgotten. A relay link takes one in [`Node::subscribe`] itself (relay links are
//! never refused, only counted). Dropping a slot frees it (`Leave`).

use super::Node;
use crate::cluster::decide::admission::{
    Admission, AdmissionAction, AdmissionEvent, AdmissionSettings, Candidate, Join, NodeRole,
    RefuseReason, Ticket,
};
use crate::cluster::locality::{Locality, tier};
use crate::cluster::placement::Placement;
use crate::cluster::routing::{Link, NodeInfo, Role};
use crate::cluster::settings::NodeSettings;
use crate::error::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a slot left by placement waits for its session before it is freed: only a caller
/// that places a join and then never starts it leaves one behind.
const HANDOFF_TTL: Duration = Duration::from_secs(10);

/// Which session a slot left by placement is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Handoff {
    Publisher,
    Viewer(String),
}

/// The node's admission machine, and the slots placement left for the sessions that follow.
#[derive(Debug)]
pub(super) struct Admitter {
    machine: Arc<Mutex<Admission>>,
    handoff: Mutex<HashMap<Handoff, VecDeque<(Instant, Slot)>>>,
}

/// One admitted join's place in the node's capacity; dropping it tells the machine the join
/// left (which frees the slot, or forgets a join still waiting for its lookup).
#[derive(Debug)]
pub(super) struct Slot {
    ticket: Ticket,
    machine: Arc<Mutex<Admission>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let event = AdmissionEvent::Leave(self.ticket);
        lock(&self.machine).handle(event, Instant::now());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Admitter {
    pub(super) fn new(config: &NodeSettings) -> Self {
        let role = match config.role {
            Role::Origin => NodeRole::Origin,
            Role::Edge => NodeRole::Edge,
        };
        let machine = Admission::new(AdmissionSettings {
            node_id: config.node_id.clone(),
            role,
            capacity: config.capacity,
            serves_without_store: config.upstream.is_some(),
        });
        Self {
            machine: Arc::new(Mutex::new(machine)),
            handoff: Mutex::default(),
        }
    }

    /// The node takes no new sessions from now on.
    pub(super) fn drain(&self) {
        self.handle(AdmissionEvent::Drain);
    }

    /// Slots taken: the load the node registers.
    pub(super) fn load(&self) -> u32 {
        lock(&self.machine).load()
    }

    /// Feeds the machine one event; returns its decision, if any (a join, a lookup's answer
    /// each get exactly one).
    fn handle(&self, event: AdmissionEvent) -> Option<AdmissionAction> {
        lock(&self.machine).handle(event, Instant::now()).pop()
    }

    /// A join's ticket as a slot (which sends `Leave` when dropped).
    fn slot(&self, action: &AdmissionAction) -> Slot {
        let ticket = match action {
            AdmissionAction::LookUp(t)
            | AdmissionAction::Admit(t)
            | AdmissionAction::Redirect(t, _)
            | AdmissionAction::Refuse(t, _) => *t,
        };
        let machine = self.machine.clone();
        Slot { ticket, machine }
    }

    /// Leaves an admitted join's slot for the session that follows.
    fn leave_for(&self, to: Handoff, slot: Slot) {
        let now = Instant::now();
        let mut handoff = lock(&self.handoff);
        for slots in handoff.values_mut() {
            slots.retain(|(at, _)| now.duration_since(*at) < HANDOFF_TTL);
        }
        handoff.retain(|_, slots| !slots.is_empty());
        handoff.entry(to).or_default().push_back((now, slot));
    }

    /// Whether `join`'s lookup needs the least-loaded nodes, not only the room's carriers.
    fn needs_least_loaded(&self, join: Join) -> bool {
        lock(&self.machine).needs_least_loaded(join)
    }

    /// A relay link's slot: always granted, and counted in the load.
    pub(super) fn relay_slot(&self) -> Option<Slot> {
        let action = self.handle(AdmissionEvent::Join(Join::Relay))?;
        Some(self.slot(&action))
    }

    /// The slot placement left for this session; `None` when the session was not placed (it
    /// is then not counted).
    pub(super) fn take(&self, from: &Handoff) -> Option<Slot> {
        let mut handoff = lock(&self.handoff);
        let slots = handoff.get_mut(from)?;
        let slot = slots.pop_front().map(|(_, slot)| slot);
        if slots.is_empty() {
            handoff.remove(from);
        }
        slot
    }
}

impl Node {
    /// Where a new viewer of `room_id` should go. Asks the routing store only when the answer
    /// may not be "here": an edge that does not hold the room, or a node that is draining or
    /// full. When the store cannot answer, a node that could serve the viewer anyway (an edge
    /// with `--upstream`) does; one that would need the store to find the room fails with
    /// [`Error::Routing`] (503). A viewer placed here holds a slot from now on: the
    /// [`Node::subscribe`] that follows takes it over. `near` is the viewer's region and zone
    /// hint (empty: none): an edge of a nearer tier than this node is preferred (see
    /// [`crate::cluster::decide::admission`]), so a hint this node does not match costs a
    /// store read.
    pub async fn place_viewer(&self, room_id: &str, near: &Locality) -> Result<Placement> {
        let carries_room = self.room(room_id).is_some_and(|r| !r.is_ended());
        let mine = &self.config.locality;
        let tier = tier(near, mine.region.as_deref(), mine.zone.as_deref());
        let to = Handoff::Viewer(room_id.to_owned());
        let join = Join::Viewer { carries_room, tier };
        self.place(join, Some(room_id), near, to).await
    }

    /// Where a new publisher should go: here unless this origin is draining or full, then the
    /// least-loaded origin with room. A publisher placed here holds a slot from now on: the
    /// [`Node::publish`] that follows takes it over.
    pub async fn place_publisher(&self) -> Result<Placement> {
        let anywhere = Locality::default();
        self.place(Join::Publisher, None, &anywhere, Handoff::Publisher)
            .await
    }

    /// One placement decision. When the answer may not be "here", the room's links and the
    /// few nodes the decision can choose from (see `registry`) are read from the store.
    async fn place(
        &self,
        join: Join,
        room: Option<&str>,
        near: &Locality,
        to: Handoff,
    ) -> Result<Placement> {
        if self.is_draining() {
            // Shutting down without a drain, or a drain under way: no new session here.
            self.admission.drain();
        }
        let unanswered = || Error::Internal("admission answered nothing".into());
        let action = self.admission.handle(AdmissionEvent::Join(join));
        let action = action.ok_or_else(unanswered)?;
        // The slot stands for the join from now on; while its lookup is out too, so that a
        // join dropped meanwhile is forgotten.
        let slot = self.admission.slot(&action);
        let ticket = match action {
            AdmissionAction::LookUp(ticket) => ticket,
            action => return Ok(self.placed(action, slot, &[], to)),
        };
        let role = match join {
            Join::Publisher => Role::Origin,
            Join::Viewer { .. } | Join::Relay => Role::Edge,
        };
        let least_loaded = self.admission.needs_least_loaded(join);
        let lookup = async {
            let links = match room {
                Some(room) => self.routing.links(room).await?,
                None => Vec::new(),
            };
            let carriers: Vec<String> = links.iter().map(|l| l.edge_id.clone()).collect();
            let nodes = match (least_loaded, carriers.is_empty()) {
                (true, _) => self.placement_nodes(role, near, carriers).await?,
                (false, false) => self.named_nodes(carriers).await?,
                // Nobody carries the room and only a carrier could take the viewer: here.
                (false, true) => Vec::new(),
            };
            Ok::<_, crate::cluster::routing::RoutingError>((nodes, links))
        };
        let (event, nodes, error) = match lookup.await {
            Ok((nodes, links)) => {
                let candidates = nodes.iter().map(|n| candidate(n, &links, near)).collect();
                (AdmissionEvent::LookedUp(ticket, candidates), nodes, None)
            }
            Err(e) => {
                tracing::debug!(room, error = %e, "placement lookup failed");
                (AdmissionEvent::LookUpFailed(ticket), Vec::new(), Some(e))
            }
        };
        match self.admission.handle(event).ok_or_else(unanswered)? {
            AdmissionAction::Refuse(_, RefuseReason::StoreUnavailable) => {
                drop(slot);
                let e = error.map_or_else(|| "routing store unavailable".into(), |e| e.to_string());
                Err(Error::Routing(e))
            }
            action => Ok(self.placed(action, slot, &nodes, to)),
        }
    }

    /// The placement a decision makes; a join admitted here leaves its slot for its session.
    fn placed(
        &self,
        action: AdmissionAction,
        slot: Slot,
        nodes: &[NodeInfo],
        to: Handoff,
    ) -> Placement {
        match action {
            AdmissionAction::Admit(_) => {
                self.admission.leave_for(to, slot);
                Placement::Here
            }
            AdmissionAction::Redirect(_, id) => match nodes.iter().find(|n| n.id == id) {
                Some(node) => Placement::Redirect(node.clone()),
                None => Placement::Refuse { draining: false },
            },
            AdmissionAction::Refuse(_, reason) => Placement::Refuse {
                draining: reason == RefuseReason::Draining,
            },
            AdmissionAction::LookUp(_) => Placement::Refuse { draining: false },
        }
    }
}

/// Another node as the admission machine sees it, for a join whose hint is `near`.
fn candidate(node: &NodeInfo, links: &[Link], near: &Locality) -> Candidate {
    Candidate {
        id: node.id.clone(),
        role: match node.role {
            Role::Origin => NodeRole::Origin,
            Role::Edge => NodeRole::Edge,
        },
        load: node.load,
        capacity: node.capacity,
        draining: node.draining,
        carries_room: links.iter().any(|l| l.edge_id == node.id),
        tier: tier(near, node.region.as_deref(), node.zone.as_deref()),
    }
}
