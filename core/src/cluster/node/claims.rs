//! Room claims: the driver of each published room's claim machine
//! ([`crate::cluster::decide::claims`]). The machine decides; this file asks the routing
//! store, probes owners, and answers the join that waits for the claim.
//!
//! Events come from three places: the publish (`Claim`), the heartbeat (`Tick`, after each
//! healthy heartbeat) and `forget_room` (`Release`). Whoever feeds an event carries out the
//! actions it leads to, answering each ask, until nothing is left to do; an answer that
//! decides a join (`Owned`, `Refused`) goes to the join waiting for it, whoever found it.

use super::{Node, State, admit::Slot};
use crate::cluster::decide::claims::{
    Claim, ClaimAction, ClaimAnswer, ClaimEvent, ClaimSettings, ClaimToken, OwnerHealth,
};
use crate::cluster::routing::RoomClaim;
use crate::error::{Error, Result};
use crate::media::room::{EndReason, Room};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// One room's claim, and what hangs on it.
#[derive(Debug)]
pub(super) struct ClaimEntry {
    machine: Claim,
    /// The room the claim is for (a room of the same name published later is another one).
    room: Arc<Room>,
    /// The publish waiting to hear whether the room is ours.
    waiter: Option<oneshot::Sender<Result<()>>>,
    /// The last store failure, for the `503` a join refused without an owner gets.
    error: Option<String>,
    /// The room's slot of this origin's capacity: rooms owned are what it counts.
    slot: Option<Slot>,
}

impl Node {
    fn claim_settings(&self) -> ClaimSettings {
        ClaimSettings::new(self.id(), self.config.lease)
    }

    /// Claims a room for this origin's publisher, which holds `slot` of its capacity. A room
    /// still claimed by an origin whose registration expired (dead or hung for a whole lease:
    /// see [`crate::cluster::decide::claims`]) is taken over, so its publisher can come back
    /// here without waiting for the claim to run out too. Fails with
    /// [`Error::Conflict`] (409) when a live origin holds it, [`Error::Routing`] (503) when
    /// the store cannot be asked.
    pub(super) async fn claim(&self, room: &Arc<Room>, slot: Option<Slot>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state();
            let settings = self.claim_settings();
            let entry = state
                .claims
                .entry(room.id.clone())
                .or_insert_with(|| ClaimEntry {
                    machine: Claim::new(settings),
                    room: room.clone(),
                    waiter: None,
                    error: None,
                    slot: None,
                });
            entry.room = room.clone();
            entry.waiter = Some(tx);
            entry.slot = slot;
        }
        self.drive_claim(&room.id, ClaimEvent::Claim).await;
        rx.await
            .unwrap_or_else(|_| Err(Error::Routing("the room's claim was dropped".into())))
    }

    /// Ticks every room's claim. The renewals due go to the store as one batch
    /// (`renew_rooms`: a round trip per few hundred rooms, not one per room), and each room's
    /// machine hears its own answer; anything else a tick calls for (a reclaim to retry) and
    /// what the answers lead to are carried out room by room.
    pub(super) async fn tick_claims(&self) {
        let mut renewals: Vec<RoomClaim> = Vec::new();
        let mut other: Vec<(String, Vec<ClaimAction>)> = Vec::new();
        {
            let mut state = self.state();
            let rooms: Vec<String> = state.claims.keys().cloned().collect();
            for room in rooms {
                let mut rest = Vec::new();
                for action in handle(&mut state, &room, ClaimEvent::Tick) {
                    match action {
                        ClaimAction::Renew(token) => renewals.push(self.room_claim(&room, token)),
                        action => rest.push(action),
                    }
                }
                if !rest.is_empty() {
                    other.push((room, rest));
                }
            }
        }
        if !renewals.is_empty() {
            let answers = match self.routing.renew_rooms(&renewals, self.config.lease).await {
                Ok(renewed) => renewed
                    .into_iter()
                    .map(|ok| {
                        if ok {
                            ClaimEvent::Renewed
                        } else {
                            ClaimEvent::RenewLost
                        }
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(rooms = renewals.len(), error = %e, "room lease renewals failed");
                    vec![ClaimEvent::RenewFailed; renewals.len()]
                }
            };
            for (claim, answer) in renewals.iter().zip(answers) {
                let actions = handle(&mut self.state(), &claim.room, answer);
                self.carry_out_claim(&claim.room, actions).await;
            }
        }
        for (room, actions) in other {
            self.carry_out_claim(&room, actions).await;
        }
    }

    /// Lets a room's claim go, if it is this room's (under the caller's lock, so that a publish
    /// of the same name that follows finds the claim released); frees the room's slot.
    /// Returns what the release calls for, to carry out with [`Node::carry_out_claim`].
    pub(super) fn release_claim(&self, state: &mut State, room: &Arc<Room>) -> Vec<ClaimAction> {
        match state.claims.get_mut(&room.id) {
            Some(entry) if Arc::ptr_eq(&entry.room, room) => entry.slot = None,
            _ => return Vec::new(),
        }
        handle(state, &room.id, ClaimEvent::Release)
    }

    /// Feeds one event to a room's claim and carries out what follows.
    async fn drive_claim(&self, room: &str, event: ClaimEvent) {
        let actions = handle(&mut self.state(), room, event);
        self.carry_out_claim(room, actions).await;
    }

    /// Carries out a claim's actions, feeding each answer back, until none is left.
    pub(super) async fn carry_out_claim(&self, room: &str, actions: Vec<ClaimAction>) {
        let mut todo = VecDeque::from(actions);
        while let Some(action) = todo.pop_front() {
            let answer = match action {
                ClaimAction::TryClaim => ClaimEvent::Claimed(self.try_claim(room).await),
                ClaimAction::Reclaim => {
                    let answer = self.try_claim(room).await;
                    match &answer {
                        ClaimAnswer::Won(_) => {
                            tracing::info!(room, "room claim had expired; claimed again");
                        }
                        ClaimAnswer::Failed => {
                            tracing::warn!(room, "could not claim room again");
                        }
                        _ => {}
                    }
                    ClaimEvent::Claimed(answer)
                }
                ClaimAction::ProbeOwner(owner) => {
                    let health = self.probe_owner(room, &owner).await;
                    ClaimEvent::OwnerProbed { owner, health }
                }
                ClaimAction::TakeOver(owner) => {
                    ClaimEvent::Claimed(self.take_over(room, &owner).await)
                }
                ClaimAction::Renew(token) => self.renew(room, token).await,
                ClaimAction::Release(token) => {
                    let claim = self.room_claim(room, token);
                    if let Err(e) = self.routing.release_room(&claim).await {
                        tracing::warn!(room, error = %e, "could not release room claim");
                    }
                    continue;
                }
                ClaimAction::GiveUp(owner) => {
                    self.give_up(room, owner);
                    continue;
                }
                // Delivered to the waiting join by `handle`.
                ClaimAction::Owned | ClaimAction::Refused(_) => continue,
            };
            todo.extend(handle(&mut self.state(), room, answer));
        }
    }

    fn room_claim(&self, room: &str, token: ClaimToken) -> RoomClaim {
        RoomClaim {
            room: room.to_owned(),
            node_id: self.id().to_owned(),
            token: token.0,
        }
    }

    /// `claim_room`, and on refusal `room_owner`.
    async fn try_claim(&self, room: &str) -> ClaimAnswer {
        let claimed = self
            .routing
            .claim_room(room, self.id(), self.config.lease)
            .await;
        match claimed {
            Ok(Some(claim)) => ClaimAnswer::Won(ClaimToken(claim.token)),
            Ok(None) => self.owner(room).await,
            Err(e) => self.store_failed(room, &e),
        }
    }

    /// Who holds a room we could not claim.
    async fn owner(&self, room: &str) -> ClaimAnswer {
        match self.routing.room_owner(room).await {
            Ok(Some(owner)) => ClaimAnswer::HeldBy(owner),
            Ok(None) => ClaimAnswer::Free,
            Err(e) => self.store_failed(room, &e),
        }
    }

    fn store_failed(&self, room: &str, e: &dyn std::fmt::Display) -> ClaimAnswer {
        if let Some(entry) = self.state().claims.get_mut(room) {
            entry.error = Some(e.to_string());
        }
        ClaimAnswer::Failed
    }

    /// Whether the owner's registration (its lease) is still in the store. Nothing else is
    /// asked of it: a hung origin's port still accepts connections.
    async fn probe_owner(&self, room: &str, owner: &str) -> OwnerHealth {
        match self.routing.node(owner).await {
            Ok(None) => OwnerHealth::LeaseExpired,
            Ok(Some(_)) => OwnerHealth::Live,
            Err(e) => {
                self.store_failed(room, &e);
                OwnerHealth::Unknown
            }
        }
    }

    async fn take_over(&self, room: &str, owner: &str) -> ClaimAnswer {
        let taken = self
            .routing
            .take_over_room(room, owner, self.id(), self.config.lease)
            .await;
        match taken {
            Ok(Some(claim)) => {
                tracing::info!(room, from = %owner, "took over the room of an origin whose lease expired");
                ClaimAnswer::Won(ClaimToken(claim.token))
            }
            // Another origin was quicker: who, for the 409.
            Ok(None) => self.owner(room).await,
            Err(e) => self.store_failed(room, &e),
        }
    }

    async fn renew(&self, room: &str, token: ClaimToken) -> ClaimEvent {
        let claim = self.room_claim(room, token);
        match self.routing.renew_room(&claim, self.config.lease).await {
            Ok(true) => ClaimEvent::Renewed,
            Ok(false) => ClaimEvent::RenewLost,
            Err(e) => {
                tracing::warn!(room, error = %e, "room lease renewal failed");
                ClaimEvent::RenewFailed
            }
        }
    }

    /// This origin no longer owns a room it serves: the room ends (its publisher and viewers
    /// with it), so that two origins never both serve it.
    fn give_up(&self, room: &str, owner: Option<String>) {
        let Some(room) = self.state().claims.get(room).map(|e| e.room.clone()) else {
            return;
        };
        let message = match &owner {
            Some(owner) => format!("room taken over by origin {owner}"),
            None => "room claim lapsed".to_owned(),
        };
        // Said as what it is: this origin's lease on the room is lost (it hung, or the store
        // lost it while another origin claimed the room), so it must not serve it on.
        tracing::warn!(room = %room.id, owner = ?owner, "room lease lost to another origin; giving the room up here");
        room.end(EndReason {
            not_found: false,
            message,
        });
    }
}

/// Feeds one event to a room's claim (if it has one) under the node's lock. The join waiting
/// on the claim hears `Owned` or `Refused` here; a claim with nothing left to do is dropped,
/// with its slot. Returns the other actions, to carry out.
fn handle(state: &mut State, room: &str, event: ClaimEvent) -> Vec<ClaimAction> {
    let Some(entry) = state.claims.get_mut(room) else {
        return Vec::new();
    };
    let actions = entry.machine.handle(event, Instant::now());
    for action in &actions {
        let answer = match action {
            ClaimAction::Owned => Ok(()),
            ClaimAction::Refused(Some(_)) => Err(Error::Conflict(format!(
                "room {room} is already being published on another origin"
            ))),
            ClaimAction::Refused(None) => Err(Error::Routing(
                entry
                    .error
                    .take()
                    .unwrap_or_else(|| "routing store unavailable".into()),
            )),
            _ => continue,
        };
        if let Some(waiter) = entry.waiter.take() {
            let _ = waiter.send(answer);
        }
    }
    if entry.machine.is_done() {
        state.claims.remove(room);
    }
    actions
}
