//! The relay puller: an edge's room fed from an upstream node over relay links, failing over
//! to another source of the room when a link breaks, while its subscribers stay attached.
//!
//! One task per relayed room drives the room's upstream machine
//! ([`crate::cluster::decide::upstream`]): it carries out `ChooseUpstream` (the store read and
//! [`crate::cluster::placement::choose_upstream`]) and `Connect` (describe, offer, subscribe)
//! as the one piece of work in flight, runs the link once the machine has it `Linked`, and
//! feeds back what came of them, the machine's ticks, and the room ending or the node
//! stopping. The link's refresher in the store and the `failover` span are the driver's.
//!
//! The routing store says who owns the room. A link to the owner (or an attempt at one) is
//! given up as soon as the store names another owner: the owner hung past its lease and an
//! origin took the room over, so the edge follows the new owner at once rather than wait on a
//! process that still accepts connections but answers nothing (keep-alive pings and call
//! deadlines catch that too, later).

use super::Node;
use crate::cluster::decide::upstream::{
    Candidates, EndReason as Why, Source, Upstream, UpstreamAction, UpstreamEvent,
    UpstreamSettings, UpstreamState,
};
use crate::cluster::relay_client as relay;
use crate::cluster::routing::Link;
use crate::error::{Error, Result};
use crate::media::MediaKind;
use crate::media::layers::Layer;
use crate::media::room::upstream::{LayerDemand, LayerSample};
use crate::media::room::{EndReason, Room};
use crate::rtc::session::{UpstreamEnd, UpstreamPeer};
use cascade_proto::relay::v1::SubscribeEvent;
use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

impl Node {
    /// Where to pull `room_id` from: the room's owner as the routing store knows it, or an edge
    /// that carries it (a bounded relay tree, one copy per region: an edge of this node's
    /// region that carries the room comes first). Edges in `avoid` (their link to us just broke)
    /// are not chosen; the owner always may be, since nothing else has the room when it comes
    /// back. Returns the owner and the source.
    pub async fn upstream_for(&self, room_id: &str, avoid: &[String]) -> Result<(String, Source)> {
        let owner = self
            .routing
            .room_owner(room_id)
            .await
            .map_err(|e| Error::Routing(e.to_string()))?
            .ok_or_else(|| Error::NotFound(format!("room {room_id} is not being published")))?;
        if owner == self.id() {
            return Err(Error::NotFound(format!(
                "room {room_id} is not being published"
            )));
        }
        // A bounded relay tree: the origin feeds at most `max_fanout` edges per room, further
        // edges pull from an edge that carries it.
        let routing = |e: crate::cluster::routing::RoutingError| Error::Routing(e.to_string());
        let mut links = self.routing.links(room_id).await.map_err(routing)?;
        let mut ids: Vec<String> = links.iter().map(|l| l.edge_id.clone()).collect();
        ids.push(owner.clone());
        let mut nodes = self.named_nodes(ids).await.map_err(routing)?;
        links.retain(|l| !avoid.contains(&l.edge_id));
        nodes.retain(|n| n.id == owner || !avoid.contains(&n.id));
        let upstream = crate::cluster::placement::choose_upstream(
            self.id(),
            self.config.locality.region.as_deref(),
            &owner,
            &links,
            &nodes,
            self.config.max_fanout,
            self.config.max_depth,
        );
        let node = nodes
            .into_iter()
            .find(|n| n.id == upstream)
            .ok_or_else(|| {
                Error::Unavailable(format!("upstream {upstream} of room {room_id} is gone"))
            })?;
        let source = Source {
            id: upstream,
            url: node.grpc_url,
        };
        Ok((owner, source))
    }

    /// Pulls a room over relay links and feeds it until the room ends. A link that breaks after
    /// it was up (its upstream died, its peer connection failed) is replaced by one from another
    /// source of the room while the room's subscribers stay attached: their streams continue
    /// (see [`Room::replace_sources`]). The room ends when no source is found within
    /// `--failover-timeout` (even with an attempt still under way), or when the first link
    /// cannot be set up at all.
    pub(super) async fn pull(self: Arc<Self>, room: Arc<Room>) {
        let settings = UpstreamSettings {
            node_id: self.id().to_owned(),
            configured: self.config.upstream.clone(),
            failover_timeout: self.config.failover_timeout,
        };
        let mut puller = Puller {
            machine: Upstream::new(settings),
            node: self,
            room,
            work: None,
            ready: None,
            owner: None,
            failover: None,
            error: None,
            over: None,
        };
        let mut actions = puller.machine.handle(UpstreamEvent::Start, Instant::now());
        loop {
            for action in actions {
                if let Some(why) = puller.carry_out(action) {
                    return puller.end(why).await;
                }
            }
            if let Some(link) = puller.ready.take() {
                puller.run_or_close(link);
            }
            let event = puller.next_event().await;
            actions = puller.machine.handle(event, Instant::now());
        }
    }
}

/// What a piece of the puller's work came to.
enum Done {
    /// `ChooseUpstream`: the room's owner and the source chosen, or why there is none.
    Chosen(Result<(String, Source)>),
    /// `Connect` to the source with this id: the link, answered, or why not.
    Connected(String, Result<Box<ReadyLink>>),
    /// A link that was up, from this upstream, is over.
    Ran(String, Result<Pulled>),
}

type Work = Pin<Box<dyn Future<Output = Done> + Send>>;

/// A relay link whose call the upstream answered: ready to feed the room.
struct ReadyLink {
    peer: UpstreamPeer,
    answer: String,
    events: tonic::Streaming<SubscribeEvent>,
    /// The client the link was opened with, and the id the upstream gave it: the layers nothing
    /// here takes are paused on it ([`steer_layers`]).
    client: relay::Client,
    link_id: String,
    /// The upstream's node id (for a configured URL, the id the upstream gave).
    upstream: String,
    /// The room's owner, when the link is to it: the link ends when the store names another.
    owner: Option<String>,
    /// What the upstream described each of its tracks as (by its index): a simulcast layer or
    /// not.
    layers: Vec<Option<Layer>>,
}

impl ReadyLink {
    /// Closes a link the room no longer wants (it ended while the link was being set up).
    async fn close(self, room: Arc<Room>) {
        tracing::debug!(room = %room.id, upstream = %self.upstream, "relay link up after the room ended; closing it");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let _ = self.peer.run(&self.answer, room, cancel, Vec::new()).await;
    }
}

/// How one relay link of a room ended.
#[derive(Debug)]
enum Pulled {
    /// The room is over: its upstream said so, it ended here, or the node is going away.
    Over(String),
    /// The link broke, for this reason; the room goes on without a source until another link
    /// is up.
    Lost(String),
}

/// A room's search for a new upstream after its link broke, as the driver traces it.
struct Failover {
    /// When the link broke.
    since: Instant,
    /// The `failover` span the attempts run in.
    span: tracing::Span,
}

/// The driver of one relayed room's upstream machine.
struct Puller {
    machine: Upstream,
    node: Arc<Node>,
    room: Arc<Room>,
    /// The choice or link attempt under way, or the link running.
    work: Option<Work>,
    /// A link just answered, until the machine has taken it (`LinkUp`).
    ready: Option<ReadyLink>,
    /// The room's owner, when the last choice was the owner itself.
    owner: Option<String>,
    failover: Option<Failover>,
    /// Why the last attempt failed, for the room's end reason.
    error: Option<Error>,
    /// Why the room is over, when a link's end said.
    over: Option<EndReason>,
}

impl Puller {
    /// Carries out one action; the reason when it ends the room.
    fn carry_out(&mut self, action: UpstreamAction) -> Option<Why> {
        let span = self.span();
        let (node, room) = (self.node.clone(), self.room.id.clone());
        match action {
            UpstreamAction::ChooseUpstream { avoid } => {
                let choose = async move { Done::Chosen(node.upstream_for(&room, &avoid).await) };
                self.work = Some(Box::pin(choose.instrument(span)));
            }
            UpstreamAction::Connect(source) => {
                let first = matches!(self.machine.state(), UpstreamState::Starting(_));
                let room = self.room.clone();
                let owner = self.owner.take().filter(|o| *o == source.id);
                let connect = async move {
                    let id = source.id.clone();
                    let link = connect(&node, &room, source, first, owner).await;
                    Done::Connected(id, link.map(Box::new))
                };
                self.work = Some(Box::pin(connect.instrument(span)));
            }
            UpstreamAction::MarkSourcesLost => {
                self.room.replace_sources();
            }
            UpstreamAction::EndRoom(why) => return Some(why),
        }
        None
    }

    /// The span an attempt runs in: the failover's, during one.
    fn span(&self) -> tracing::Span {
        self.failover
            .as_ref()
            .map_or_else(tracing::Span::none, |f| f.span.clone())
    }

    /// Waits for the next event for the machine: work done, its tick, the room ending or the
    /// node stopping (both reach a running link through the link itself).
    async fn next_event(&mut self) -> UpstreamEvent {
        let linked = matches!(self.machine.state(), UpstreamState::Linked(_));
        let timeout = self.machine.poll_timeout();
        let (work, room, shutdown) = (&mut self.work, &self.room, &self.node.shutdown);
        let done = async {
            match work.as_mut() {
                Some(work) => work.await,
                None => pending().await,
            }
        };
        let tick = async {
            match timeout {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => pending().await,
            }
        };
        let done = tokio::select! {
            done = done => done,
            () = tick => return UpstreamEvent::Tick,
            () = room.ended(), if !linked => return UpstreamEvent::RoomOver,
            () = shutdown.cancelled(), if !linked => return UpstreamEvent::RoomOver,
        };
        self.work = None;
        self.on_done(done)
    }

    /// The event a piece of finished work makes.
    fn on_done(&mut self, done: Done) -> UpstreamEvent {
        match done {
            Done::Chosen(Ok((owner, source))) => {
                self.owner = Some(owner.clone());
                UpstreamEvent::Candidates(Candidates::Chosen { owner, source })
            }
            Done::Chosen(Err(e)) => {
                let candidates = match &e {
                    Error::NotFound(_) => Candidates::NoOwner,
                    e => Candidates::Unavailable(e.to_string()),
                };
                self.failed(None, e);
                UpstreamEvent::Candidates(candidates)
            }
            Done::Connected(_, Ok(link)) => {
                let up = UpstreamEvent::LinkUp(link.upstream.clone());
                self.ready = Some(*link);
                up
            }
            Done::Connected(tried, Err(e)) => {
                self.failed(Some(&tried), e);
                UpstreamEvent::LinkBroke(tried)
            }
            Done::Ran(upstream, Ok(Pulled::Lost(why))) => {
                tracing::warn!(room = %self.room.id, %upstream, %why, "relay link lost; failing over");
                let (room, node) = (&self.room.id, self.node.id());
                self.failover = Some(Failover {
                    since: Instant::now(),
                    span: crate::obs::telemetry::failover_span(room, node, &upstream),
                });
                UpstreamEvent::LinkBroke(upstream)
            }
            Done::Ran(_, Ok(Pulled::Over(why))) => {
                self.over = Some(EndReason {
                    not_found: false,
                    message: why,
                });
                UpstreamEvent::RoomOver
            }
            Done::Ran(_, Err(e)) => {
                self.over = Some(end_reason(e));
                UpstreamEvent::RoomOver
            }
        }
    }

    /// An attempt failed: logged during a failover, kept for the room's end reason.
    fn failed(&mut self, tried: Option<&str>, e: Error) {
        if let Some(failover) = &self.failover {
            let _enter = failover.span.enter();
            tracing::info!(room = %self.room.id, upstream = ?tried, error = %e, "no new upstream yet");
        }
        self.error = Some(e);
    }

    /// Runs a link the machine took as its upstream; closes one it did not.
    fn run_or_close(&mut self, link: ReadyLink) {
        let taken = matches!(self.machine.state(), UpstreamState::Linked(u) if *u == link.upstream);
        if !taken {
            tokio::spawn(link.close(self.room.clone()));
            return;
        }
        let (room, upstream) = (&self.room.id, &link.upstream);
        match self.failover.take() {
            Some(failover) => {
                tracing::info!(
                    room = %room, upstream = %upstream,
                    after_ms = failover.since.elapsed().as_millis() as u64,
                    "relay link up again: failed over"
                );
                failover.span.record("to", upstream.as_str());
                // The link runs in the span it was set up in, as the attempt did.
                let run = run(self.node.clone(), self.room.clone(), link);
                self.work = Some(Box::pin(run.instrument(failover.span)));
            }
            None => {
                tracing::info!(room = %room, upstream = %upstream, "relay link up");
                self.work = Some(Box::pin(run(self.node.clone(), self.room.clone(), link)));
            }
        }
    }

    /// Ends the room: out of the node's map, its viewers told, its link out of the store. A
    /// link still being set up is closed when it comes up.
    async fn end(mut self, why: Why) {
        let room = &self.room;
        let reason = match why {
            Why::Over => self
                .over
                .take()
                .or_else(|| room.end_reason())
                .unwrap_or(EndReason {
                    not_found: false,
                    message: "node shutting down".into(),
                }),
            Why::NotPublished => self.error.take().map_or_else(
                || EndReason {
                    not_found: true,
                    message: format!("room {} is not being published", room.id),
                },
                end_reason,
            ),
            Why::NoUpstream(why) => self.error.take().map_or(
                EndReason {
                    not_found: false,
                    message: why,
                },
                end_reason,
            ),
            Why::FailoverTimeout => EndReason {
                not_found: false,
                message: format!(
                    "upstream lost and no other source within {} s",
                    self.node.config.failover_timeout.as_secs()
                ),
            },
        };
        {
            let mut state = self.node.state();
            if state
                .rooms
                .get(&room.id)
                .is_some_and(|r| Arc::ptr_eq(r, room))
            {
                state.rooms.remove(&room.id);
            }
        }
        room.end(reason);
        if let Some(work) = self.work.take() {
            let room = room.clone();
            tokio::spawn(async move {
                if let Done::Connected(_, Ok(link)) = work.await {
                    link.close(room).await;
                }
            });
        }
        if let Some(link) = self.ready.take() {
            tokio::spawn(link.close(room.clone()));
        }
        if let Err(e) = self
            .node
            .routing
            .remove_link(&room.id, self.node.id())
            .await
        {
            tracing::debug!(error = %e, "could not remove link");
        }
    }
}

/// Sets up a relay link to `source`: describe, offer, subscribe. The first link of a room
/// tells it how many tracks to expect. When `source` is the room's `owner`, the attempt is
/// given up as soon as the store names another owner (a hung owner accepts the connection and
/// answers nothing until the describe's deadline).
async fn connect(
    node: &Node,
    room: &Room,
    source: Source,
    first: bool,
    owner: Option<String>,
) -> Result<ReadyLink> {
    let described = async {
        let mut client = relay::connect(
            &source.url,
            node.config.credential.clone(),
            node.config.grpc_tls.as_deref(),
        )
        .await?;
        let description = relay::describe(&mut client, &room.id).await?;
        Ok::<_, Error>((client, description))
    };
    let (mut client, description) = match &owner {
        Some(owner) => tokio::select! {
            described = described => described?,
            moved = owner_moved(node, &room.id, owner) => {
                return Err(Error::Unavailable(format!(
                    "room {} moved from origin {owner} to {moved}",
                    room.id
                )));
            }
        },
        None => described.await?,
    };
    let kinds: Vec<MediaKind> = description
        .tracks
        .iter()
        .filter_map(|t| MediaKind::parse(&t.kind))
        .collect();
    let layers: Vec<Option<Layer>> = description
        .tracks
        .iter()
        .map(|t| {
            (!t.rid.is_empty()).then(|| Layer {
                group: t.group,
                rid: t.rid.clone(),
            })
        })
        .collect();
    if first {
        // A simulcast group counts as one track; its other layers may come a little later.
        let (mut groups, mut others, mut described_layers) = (Vec::new(), 0, 0);
        for t in &description.tracks {
            if MediaKind::parse(&t.kind).is_none() {
                continue;
            }
            if t.rid.is_empty() {
                others += 1;
            } else {
                described_layers += 1;
                if !groups.contains(&t.group) {
                    groups.push(t.group);
                }
            }
        }
        room.expect_layers(described_layers);
        room.expect_tracks(others + groups.len());
    }
    let (peer, offer) = UpstreamPeer::offer(&node.factory, &kinds).await?;
    let answered = relay::subscribe(&mut client, &room.id, node.id(), offer).await?;
    // A configured upstream is known by its URL until it names its node.
    let upstream = if node.config.upstream.as_deref() == Some(source.id.as_str()) {
        description.origin_node_id
    } else {
        source.id
    };
    Ok(ReadyLink {
        peer,
        answer: answered.sdp,
        events: answered.events,
        client,
        link_id: answered.link_id,
        upstream,
        owner,
        layers,
    })
}

/// Resolves with the room's new owner once the routing store names one other than `owner`:
/// `owner` lost the room (it hung or died past its lease and another origin claimed it).
/// Asked every heartbeat period; a store that cannot be read, or names nobody (the claim ran
/// out and nobody took the room yet), changes nothing.
async fn owner_moved(node: &Node, room: &str, owner: &str) -> String {
    loop {
        if let Ok(Some(now)) = node.routing.room_owner(room).await
            && now != owner
        {
            return now;
        }
        tokio::time::sleep(node.config.heartbeat()).await;
    }
}

/// Feeds the room from a link until it ends, keeping the link in the store meanwhile.
async fn run(node: Arc<Node>, room: Arc<Room>, link: ReadyLink) -> Done {
    let ReadyLink {
        peer,
        answer,
        mut events,
        client,
        link_id,
        upstream,
        owner,
        layers,
    } = link;
    let record = Link {
        room: room.id.clone(),
        edge_id: node.id().to_owned(),
        upstream_id: upstream.clone(),
    };
    let cancel = node.shutdown.child_token();
    let stop = cancel.clone();
    let watch_room = room.clone();
    // The upstream tells us when the room ends; a broken stream means the link is gone.
    let watcher = tokio::spawn(async move {
        let end = relay::wait_end(&mut events).await;
        if let relay::LinkEnd::RoomEnded(why) = &end {
            watch_room.end(EndReason {
                not_found: false,
                message: why.clone(),
            });
        }
        stop.cancel();
        end
    });
    // Written now and refreshed with every heartbeat until the link ends. A failure only
    // logs: the link runs without the store, and the next refresh writes it again.
    if let Err(e) = node.keep_link(record.clone()).await {
        tracing::debug!(error = %e, "could not record relay link");
    }
    // A link to the owner lasts as long as the store says it owns the room.
    let follower = owner.map(|owner| {
        let (node, room, stop) = (node.clone(), room.id.clone(), cancel.clone());
        tokio::spawn(async move {
            let moved = tokio::select! {
                moved = owner_moved(&node, &room, &owner) => moved,
                _ = stop.cancelled() => return None,
            };
            tracing::warn!(%room, from = %owner, to = %moved, "room's owner changed; leaving the old owner's link");
            stop.cancel();
            Some(moved)
        })
    });
    let steer = tokio::spawn(steer_layers(room.clone(), client, link_id, cancel.clone()));
    let end = peer
        .run(&answer, room.clone(), cancel.clone(), layers)
        .await;
    cancel.cancel();
    let _ = steer.await;
    node.drop_link(&record);
    let moved = match follower {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let call = if watcher.is_finished() {
        watcher.await.ok()
    } else {
        watcher.abort();
        None
    };
    tracing::info!(room = %room.id, %upstream, ?end, ?call, "relay link down");
    let over = |why: &str| {
        Pulled::Over(
            room.end_reason()
                .map_or_else(|| why.to_owned(), |r| r.message),
        )
    };
    let pulled = end.map(|end| match end {
        UpstreamEnd::RoomEnded => over("room ended"),
        _ if room.is_ended() => over("room ended"),
        _ if node.shutdown.is_cancelled() => over("node shutting down"),
        UpstreamEnd::Failed => Pulled::Lost("relay peer connection failed".into()),
        UpstreamEnd::Cancelled => Pulled::Lost(match (moved, call) {
            (Some(moved), _) => format!("the room's owner is now {moved}"),
            (None, Some(relay::LinkEnd::Broken(why) | relay::LinkEnd::RoomEnded(why))) => why,
            (None, None) => "relay call ended".into(),
        }),
    });
    Done::Ran(upstream, pulled)
}

/// How often a relayed room's layers are sampled for [`steer_layers`].
const STEER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Pauses, on the room's link to its upstream, the simulcast layers nothing here takes, and
/// resumes one as soon as a subscriber attaches to it ([`crate::media::room::upstream`]), until
/// `stop`. A pause is marked on the track before it is asked for, so that a subscriber that
/// attaches meanwhile wakes the loop; a request that fails is tried again at the next sample.
/// An upstream without `PauseLayers` carries every layer.
async fn steer_layers(
    room: Arc<Room>,
    mut client: relay::Client,
    link_id: String,
    stop: CancellationToken,
) {
    // The layers a link before this one paused flow again on this one.
    for track in room.tracks() {
        track.resume_upstream();
    }
    let mut demand = LayerDemand::default();
    let mut asked: Vec<Layer> = Vec::new();
    let mut tick = tokio::time::interval(STEER_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = room.layer_wanted() => {}
            () = stop.cancelled() => break,
        }
        let tracks = room.tracks();
        demand.update(
            tracks.iter().filter_map(|t| {
                Some(LayerSample {
                    layer: t.layer.as_ref()?,
                    subscribers: t.subscriber_count(),
                    bytes_in: t.stats.bytes_in.load(std::sync::atomic::Ordering::Relaxed),
                })
            }),
            Instant::now(),
        );
        let want: Vec<Layer> = demand.paused().cloned().collect();
        if want == asked {
            continue;
        }
        for track in &tracks {
            if let Some(l) = &track.layer
                && want.contains(l)
                && !track.paused_upstream()
            {
                track.pause_upstream(demand.bps(l));
            }
        }
        match relay::pause_layers(&mut client, &link_id, &room.id, &want).await {
            Ok(_) => {
                tracing::info!(room = %room.id, paused = ?want.iter().map(|l| &l.rid).collect::<Vec<_>>(), "layers paused upstream");
                for track in &tracks {
                    if track.layer.as_ref().is_some_and(|l| !want.contains(l)) {
                        track.resume_upstream();
                    }
                }
                asked = want;
            }
            Err(relay::RelayError::Status(s)) if s.code() == tonic::Code::Unimplemented => {
                tracing::info!(room = %room.id, "upstream cannot pause layers; it sends them all");
                break;
            }
            Err(e) => {
                tracing::debug!(room = %room.id, error = %e, "layers not paused upstream; trying again");
                for track in &tracks {
                    if track.layer.as_ref().is_some_and(|l| !asked.contains(l)) {
                        track.resume_upstream();
                    }
                }
            }
        }
    }
    for track in room.tracks() {
        track.resume_upstream();
    }
}

fn end_reason(e: Error) -> EndReason {
    match e {
        Error::NotFound(m) => EndReason {
            not_found: true,
            message: m,
        },
        e => EndReason {
            not_found: false,
            message: e.to_string(),
        },
    }
}
