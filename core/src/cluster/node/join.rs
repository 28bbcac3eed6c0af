//! Joins: publishing (claiming the room, see `claims`; resuming one whose publisher left) and
//! subscribing (reserving a room, pulling it when this node does not hold it, see `pull`),
//! and letting rooms go. Where a join goes is decided before, by placement (`admit`).

use super::{Node, SessionKind, admit::Handoff};
use crate::cluster::routing::Role;
use crate::error::{Error, Result};
use crate::media::layers::LayerChoice;
use crate::media::room::{EndReason, Room};
use crate::rtc::negotiate::Offer;
use crate::rtc::session::{self, SessionHandle};
use std::sync::Arc;
use std::time::Duration;

/// A publisher session [`Node::publish`] started.
#[derive(Debug)]
pub struct Published {
    /// The session (its `connected` fires once ICE and DTLS are done).
    pub handle: SessionHandle,
    /// The SDP answer.
    pub answer: String,
    /// Whether it took over a live room whose publisher had dropped (and kept its viewers).
    pub resumed: bool,
}

impl Node {
    /// WHIP: starts a publisher session for `room_id`. Takes over the slot
    /// [`Node::place_publisher`] reserved, when it was called just before. A room whose
    /// publisher dropped is taken over (resumed) by whoever publishes it next: the caller
    /// decides who may (with `--auth-secret`, a token for the room); each one is counted in
    /// `cascade_room_takeovers_total`.
    pub async fn publish(self: &Arc<Self>, room_id: &str, offer: &str) -> Result<Published> {
        let slot = self.admission.take(&Handoff::Publisher);
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
        if resumed {
            // The room kept its slot (and its claim) while it waited for its publisher.
            drop(slot);
        } else if let Err(e) = self.claim(&room, slot).await {
            self.state().rooms.remove(room_id);
            return Err(e);
        }
        let handle = self.new_handle(room_id);
        match session::publish(
            &self.factory,
            room.clone(),
            offer,
            handle.cancel.clone(),
            handle.finished.clone(),
            handle.connected.clone(),
            handle.transport.clone(),
        )
        .await
        {
            Ok(answer) => {
                tracing::info!(room = room_id, session = %handle.id, resumed, "publisher joined");
                if resumed {
                    self.metrics.room_takeovers.inc();
                }
                self.track_session(handle.clone(), SessionKind::Publisher, room, None);
                Ok(Published {
                    handle,
                    answer,
                    resumed,
                })
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

    /// The control plane's half of [`Node::publish`], with no media session: takes the slot
    /// [`Node::place_publisher`] reserved and claims `room_id` for this origin through the
    /// same claim machine (renewed by the heartbeat, released by [`Node::close_room`]). For
    /// simulations of the control plane that run many nodes in one process without media
    /// (`cascade-loadgen cluster-sim`). Fails as `publish` does: [`Error::Conflict`] when a
    /// live origin holds the room, [`Error::Routing`] when the store cannot be asked.
    pub async fn open_room(self: &Arc<Self>, room_id: &str) -> Result<()> {
        let slot = self.admission.take(&Handoff::Publisher);
        if self.role() != Role::Origin {
            return Err(Error::NotFound(format!("{} is an edge", self.id())));
        }
        let room = {
            let mut state = self.state();
            if state.rooms.contains_key(room_id) {
                return Err(Error::Conflict(format!(
                    "room {room_id} is already being published"
                )));
            }
            let room = Room::with_traffic(room_id, false, self.metrics.traffic.clone());
            state.rooms.insert(room_id.to_owned(), room.clone());
            room
        };
        if let Err(e) = self.claim(&room, slot).await {
            self.state().rooms.remove(room_id);
            return Err(e);
        }
        Ok(())
    }

    /// Ends a room [`Node::open_room`] opened and releases its claim; false when this node
    /// holds no such room.
    pub async fn close_room(&self, room_id: &str) -> bool {
        let Some(room) = self.room(room_id) else {
            return false;
        };
        room.end(EndReason {
            not_found: false,
            message: "room closed".into(),
        });
        self.forget_room(&room).await;
        true
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
    /// the room from upstream first when this node does not hold it. A viewer takes over the
    /// slot [`Node::place_viewer`] reserved, when it was called just before; it frees the slot
    /// when it fails to start or ends. `layers` is a viewer's choice of simulcast layer (a relay
    /// link is sent every layer).
    pub async fn subscribe(
        self: &Arc<Self>,
        room_id: &str,
        offer: &str,
        kind: SessionKind,
        layers: LayerChoice,
    ) -> Result<(SessionHandle, String)> {
        let slot = match kind {
            SessionKind::Viewer => self.admission.take(&Handoff::Viewer(room_id.to_owned())),
            SessionKind::Relay => self.admission.relay_slot(),
            SessionKind::Publisher => None,
        };
        let mut offer = Offer::parse(offer)?;
        // A relay link carries every simulcast layer; a viewer is sent the one it chose.
        offer.layers = match kind {
            SessionKind::Relay => LayerChoice::All,
            _ => layers,
        };
        let offer = &offer;
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
                    handle.connected.clone(),
                    handle.transport.clone(),
                )
                .await
            }
            _ => session::subscribe(&self.factory, room.clone(), offer, &handle).await,
        };
        match joined {
            Ok(answer) => {
                tracing::info!(room = room_id, session = %handle.id, ?kind, "subscriber joined");
                // A downstream node held the room for this link (`hold_room`): the link keeps
                // it now, and the room counts one reservation for it, not two.
                if matches!(kind, SessionKind::Relay) && room.take_hold() {
                    self.release_room(&room).await;
                }
                self.track_session(handle.clone(), kind, room, slot);
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
        // The reservation just taken is the hold.
        room.mark_hold();
        let node = self.clone();
        let held = room.clone();
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            if held.take_hold() {
                node.release_room(&held).await;
            }
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

    /// Forgets an origin room: out of the map, its slot freed, its claim released (in the
    /// routing store too).
    pub(super) async fn forget_room(&self, room: &Arc<Room>) {
        let release = {
            let mut state = self.state();
            if state
                .rooms
                .get(&room.id)
                .is_some_and(|r| Arc::ptr_eq(r, room))
            {
                state.rooms.remove(&room.id);
            }
            self.release_claim(&mut state, room)
        };
        self.carry_out_claim(&room.id, release).await;
    }
}
