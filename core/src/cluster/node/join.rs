//! Joins: where a new session goes, publishing (claiming the room in the routing store,
//! taking over one whose owner is dead, resuming one whose publisher left) and subscribing
//! (reserving a room, pulling it when this node does not hold it), and letting rooms go.

use super::{Node, SessionKind, heartbeat::reachable};
use crate::cluster::placement::{self, Placement};
use crate::cluster::routing::{Role, RoomClaim};
use crate::error::{Error, Result};
use crate::media::room::{EndReason, Room};
use crate::rtc::negotiate::Offer;
use crate::rtc::session::{self, SessionHandle};
use std::sync::Arc;
use std::time::Duration;

impl Node {
    /// Where a new viewer of `room_id` should go (see [`placement`]). Asks the routing store
    /// only when the answer may not be "here": an edge that does not hold the room, or a node
    /// that is draining or full. When the store cannot answer, a node that could serve the
    /// viewer anyway does; one that would need the store to find the room fails with
    /// [`Error::Routing`] (503).
    pub async fn place_viewer(&self, room_id: &str) -> Result<Placement> {
        let me = self.info();
        let carries = self.room(room_id).is_some_and(|r| !r.is_ended());
        let open = placement::has_room(&me);
        if open && (self.role() == Role::Origin || carries) {
            return Ok(Placement::Here);
        }
        let lookup = async {
            let nodes = self.routing.nodes().await?;
            let links = self.routing.links(room_id).await?;
            Ok::<_, crate::cluster::routing::RoutingError>((nodes, links))
        };
        match lookup.await {
            Ok((nodes, links)) => Ok(placement::place_viewer(&me, carries, &nodes, &links)),
            Err(e) if open && self.config.upstream.is_some() => {
                tracing::debug!(room = room_id, error = %e, "placement lookup failed; serving here");
                Ok(Placement::Here)
            }
            Err(e) => Err(Error::Routing(e.to_string())),
        }
    }

    /// Where a new publisher of a room should go (see [`placement`]).
    pub async fn place_publisher(&self) -> Result<Placement> {
        let me = self.info();
        if placement::has_room(&me) {
            return Ok(Placement::Here);
        }
        let nodes = self
            .routing
            .nodes()
            .await
            .map_err(|e| Error::Routing(e.to_string()))?;
        Ok(placement::place_publisher(&me, &nodes))
    }

    /// WHIP: starts a publisher session for `room_id`. Returns the session id and SDP answer.
    pub async fn publish(self: &Arc<Self>, room_id: &str, offer: &str) -> Result<(String, String)> {
        if self.role() != Role::Origin {
            return Err(Error::NotFound(format!(
                "this node ({}) is an edge: publish to an origin's /whip/{room_id}",
                self.id()
            )));
        }
        let offer = &Offer::parse(offer)?;
        // A room whose publisher vanished is resumed by the next one: its viewers stay.
        let (room, resumed) = {
            let mut state = self.state();
            match state.rooms.get(room_id) {
                Some(room) if !room.relayed && !room.is_ended() && room.resume() => {
                    (room.clone(), true)
                }
                Some(_) => {
                    return Err(Error::Conflict(format!(
                        "room {room_id} is already being published"
                    )));
                }
                None => {
                    let room = Room::with_traffic(room_id, false, self.metrics.traffic.clone());
                    state.rooms.insert(room_id.to_owned(), room.clone());
                    (room, false)
                }
            }
        };
        if !resumed {
            let claim = match self.claim(room_id).await {
                Ok(Some(claim)) => claim,
                Ok(None) => {
                    self.state().rooms.remove(room_id);
                    return Err(Error::Conflict(format!(
                        "room {room_id} is already being published on another origin"
                    )));
                }
                Err(e) => {
                    self.state().rooms.remove(room_id);
                    return Err(Error::Routing(e.to_string()));
                }
            };
            self.state().claims.insert(room_id.to_owned(), claim);
        }
        let handle = self.new_handle(room_id);
        match session::publish(
            &self.factory,
            room.clone(),
            offer,
            handle.cancel.clone(),
            handle.finished.clone(),
        )
        .await
        {
            Ok(answer) => {
                tracing::info!(room = room_id, session = %handle.id, resumed, "publisher joined");
                self.track_session(handle.clone(), SessionKind::Publisher, room);
                Ok((handle.id, answer))
            }
            Err(e) if resumed => {
                room.replace_sources();
                self.clone().await_publisher(room);
                Err(e)
            }
            Err(e) => {
                room.end(EndReason {
                    not_found: false,
                    message: "publish failed".into(),
                });
                self.forget_room(&room).await;
                Err(e)
            }
        }
    }

    /// Claims a room for this origin. A room still claimed by an origin that does not answer
    /// (it died; its claim has not expired yet) is taken over, so its publisher can come back
    /// here at once. `None` when a live origin holds it.
    pub(super) async fn claim(
        &self,
        room_id: &str,
    ) -> crate::cluster::routing::RoutingResult<Option<RoomClaim>> {
        let lease = self.config.lease;
        if let Some(claim) = self.routing.claim_room(room_id, self.id(), lease).await? {
            return Ok(Some(claim));
        }
        let Some(owner) = self.routing.room_owner(room_id).await? else {
            return self.routing.claim_room(room_id, self.id(), lease).await;
        };
        let alive = match self.routing.node(&owner).await? {
            _ if owner == self.id() => false,
            Some(node) => reachable(&node.grpc_url).await,
            None => false,
        };
        if alive {
            return Ok(None);
        }
        let claim = self
            .routing
            .take_over_room(room_id, &owner, self.id(), lease)
            .await?;
        if claim.is_some() {
            tracing::info!(room = room_id, from = %owner, "took over the room of an origin that does not answer");
        }
        Ok(claim)
    }

    /// Waits `--failover-timeout` for the publisher of an orphaned room to come back (to this
    /// origin: [`Node::publish`] resumes the room); ends the room if it does not.
    pub(super) fn await_publisher(self: Arc<Self>, room: Arc<Room>) {
        let outage = room.outages();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(self.config.failover_timeout) => {
                    if room.orphaned_since(outage) {
                        room.end(EndReason {
                            not_found: false,
                            message: "the publisher did not come back".into(),
                        });
                        self.forget_room(&room).await;
                    }
                }
                _ = room.ended() => {
                    if room.is_orphaned() {
                        self.forget_room(&room).await;
                    }
                }
            }
        });
    }

    /// WHEP, and the upstream end of a relay link: attaches a subscriber to `room_id`, pulling
    /// the room from upstream first when this node does not hold it.
    pub async fn subscribe(
        self: &Arc<Self>,
        room_id: &str,
        offer: &str,
        kind: SessionKind,
    ) -> Result<(SessionHandle, String)> {
        let offer = &Offer::parse(offer)?;
        let room = self.reserve_room(room_id)?;
        let handle = self.new_handle(room_id);
        let joined = match (kind, self.mux.get()) {
            (SessionKind::Viewer, Some(mux)) => {
                mux.subscribe(
                    &self.factory,
                    room.clone(),
                    offer,
                    handle.cancel.clone(),
                    handle.finished.clone(),
                )
                .await
            }
            _ => {
                session::subscribe(
                    &self.factory,
                    room.clone(),
                    offer,
                    handle.cancel.clone(),
                    handle.finished.clone(),
                )
                .await
            }
        };
        match joined {
            Ok(answer) => {
                tracing::info!(room = room_id, session = %handle.id, ?kind, "subscriber joined");
                self.track_session(handle.clone(), kind, room);
                Ok((handle, answer))
            }
            Err(e) => {
                self.release_room(&room).await;
                Err(e)
            }
        }
    }

    /// Takes a reservation on a room this node holds, or starts pulling it from upstream.
    /// Holds a room for `linger` (pulling it when this node does not carry it), so that a
    /// downstream node's `DescribeRoom` is answered and its `Subscribe`, which follows, finds
    /// the room still here: what lets a static `--upstream` chain of edges form a tree.
    pub fn hold_room(self: &Arc<Self>, room_id: &str, linger: Duration) -> Result<Arc<Room>> {
        let room = self.reserve_room(room_id)?;
        let node = self.clone();
        let held = room.clone();
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            node.release_room(&held).await;
        });
        Ok(room)
    }

    pub(super) fn reserve_room(self: &Arc<Self>, room_id: &str) -> Result<Arc<Room>> {
        let mut state = self.state();
        if let Some(room) = state.rooms.get(room_id)
            && !room.is_ended()
        {
            room.reserve();
            return Ok(room.clone());
        }
        let room = Room::with_traffic(room_id, true, self.metrics.traffic.clone());
        room.reserve();
        state.rooms.insert(room_id.to_owned(), room.clone());
        drop(state);
        let node = self.clone();
        let pulled = room.clone();
        // Part of the trace of the join that asked for the room, without holding its span open.
        tokio::spawn(crate::obs::trace_ctx::detach(async move {
            node.pull(pulled).await
        }));
        Ok(room)
    }

    /// Drops a reservation; the last one to leave a relayed room ends it, which tears down its
    /// relay link.
    pub(super) async fn release_room(&self, room: &Arc<Room>) {
        let last = {
            let mut state = self.state();
            let left = room.release();
            if left == 0 && room.relayed {
                if state
                    .rooms
                    .get(&room.id)
                    .is_some_and(|r| Arc::ptr_eq(r, room))
                {
                    state.rooms.remove(&room.id);
                }
                true
            } else {
                false
            }
        };
        if last {
            room.end(EndReason {
                not_found: false,
                message: "no subscribers left".into(),
            });
        }
    }

    /// Forgets an origin room: out of the map and out of the routing store.
    pub(super) async fn forget_room(&self, room: &Arc<Room>) {
        let claim = {
            let mut state = self.state();
            if state
                .rooms
                .get(&room.id)
                .is_some_and(|r| Arc::ptr_eq(r, room))
            {
                state.rooms.remove(&room.id);
            }
            state.claims.remove(&room.id)
        };
        if let Some(claim) = claim
            && let Err(e) = self.routing.release_room(&claim).await
        {
            tracing::warn!(room = %room.id, error = %e, "could not release room claim");
        }
    }
}
