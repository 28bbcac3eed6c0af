//! The server-to-server relay, negotiated over gRPC (`proto/cascade/relay/v1/relay.proto`).
//!
//! The upstream side ([`RelayService`]) answers `DescribeRoom` from the rooms the node holds
//! (pulling them itself if it is an edge with an upstream of its own) and turns `Subscribe`
//! into a subscriber session, exactly like a WHEP viewer's, whose lifetime is the call's: the
//! stream's first event is the SDP answer, a later one says the room ended, and when the caller
//! drops the call the session is cancelled. The downstream side is [`connect`], [`describe`],
//! [`subscribe`] and [`wait_end`], used by [`crate::cluster::node::Node`] to pull a room.

use crate::cluster::node::{Node, SessionKind};
use crate::error::Result;
use crate::media::layers::Layer;
use crate::media::room::RoomTrack;
use cascade_proto::relay::v1::relay_server::Relay;
use cascade_proto::relay::v1::{
    Answer, DescribeRoomRequest, PauseLayersReply, PauseLayersRequest, RoomDescription, RoomEnded,
    SubscribeEvent, SubscribeRequest, TrackDescription, subscribe_event,
};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub use cascade_proto::relay::v1::relay_server::RelayServer;

/// How long a room may take to become ready before `DescribeRoom` answers with what it has.
const DESCRIBE_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `DescribeRoom` keeps the room on this node for the `Subscribe` that follows.
const DESCRIBE_HOLD: Duration = Duration::from_secs(10);
/// Layers a `PauseLayers` may name (browsers send three per track).
const MAX_PAUSED_LAYERS: usize = 64;

/// The relay service one node offers to its downstream nodes.
#[derive(Debug, Clone)]
pub struct RelayService {
    node: Arc<Node>,
}

impl RelayService {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

fn describe_track(track: &RoomTrack) -> TrackDescription {
    TrackDescription {
        kind: track.kind.as_str().to_owned(),
        mime_type: track.codec.mime_type.clone(),
        clock_rate: track.codec.clock_rate,
        channels: u32::from(track.codec.channels),
        sdp_fmtp_line: track.codec.sdp_fmtp_line.clone(),
        rid: track
            .layer
            .as_ref()
            .map(|l| l.rid.clone())
            .unwrap_or_default(),
        group: track.layer.as_ref().map_or(0, |l| l.group),
    }
}

type EventStream = Pin<Box<dyn futures::Stream<Item = Result<SubscribeEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Relay for RelayService {
    async fn describe_room(
        &self,
        request: Request<DescribeRoomRequest>,
    ) -> Result<Response<RoomDescription>, Status> {
        let span = crate::obs::trace_ctx::server_span(
            tracing::info_span!("relay.describe_room", otel.kind = "server", room = tracing::field::Empty, node = %self.node.id()),
            request.metadata(),
        );
        let room_id = request.into_inner().room;
        span.record("room", room_id.as_str());
        self.describe_room_inner(room_id).instrument(span).await
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let span = crate::obs::trace_ctx::server_span(
            tracing::info_span!("relay.subscribe", otel.kind = "server", room = tracing::field::Empty, node = %self.node.id(), downstream = tracing::field::Empty),
            request.metadata(),
        );
        let req = request.into_inner();
        span.record("room", req.room.as_str());
        span.record("downstream", req.node_id.as_str());
        self.subscribe_inner(req).instrument(span).await
    }

    async fn pause_layers(
        &self,
        request: Request<PauseLayersRequest>,
    ) -> Result<Response<PauseLayersReply>, Status> {
        let req = request.into_inner();
        crate::media::RoomId::validate(&req.room)?;
        if req.layers.len() > MAX_PAUSED_LAYERS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_PAUSED_LAYERS} layers, not {}",
                req.layers.len()
            )));
        }
        let mut layers = Vec::with_capacity(req.layers.len());
        for l in req.layers {
            crate::media::layers::LayerChoice::parse(&l.rid).map_err(Status::invalid_argument)?;
            layers.push(Layer {
                group: l.group,
                rid: l.rid,
            });
        }
        let link = self
            .node
            .relay_link(&req.room, &req.link_id)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no relay link {} in room {}",
                    req.link_id, req.room
                ))
            })?;
        let paused = self.node.room(&req.room).map_or(0, |r| {
            r.tracks()
                .iter()
                .filter(|t| t.layer.as_ref().is_some_and(|l| layers.contains(l)))
                .count()
        });
        tracing::debug!(room = %req.room, link = %req.link_id, ?layers, "relay link's paused layers");
        link.paused_layers.send_replace(layers);
        Ok(Response::new(PauseLayersReply {
            paused: paused as u32,
        }))
    }
}

impl RelayService {
    async fn describe_room_inner(
        &self,
        room_id: String,
    ) -> Result<Response<RoomDescription>, Status> {
        crate::media::RoomId::validate(&room_id)?;
        // A node that does not hold the room pulls it from its own upstream, and keeps it long
        // enough for the caller's Subscribe.
        let room = match self.node.room(&room_id) {
            Some(room) => room,
            None => self.node.hold_room(&room_id, DESCRIBE_HOLD)?,
        };
        let tracks = room
            .ready(DESCRIBE_READY_TIMEOUT)
            .await
            .map_err(|r| Status::not_found(r.message))?;
        Ok(Response::new(RoomDescription {
            room: room_id,
            origin_node_id: self.node.id().to_owned(),
            tracks: tracks.iter().map(|t| describe_track(t)).collect(),
        }))
    }

    async fn subscribe_inner(
        &self,
        req: SubscribeRequest,
    ) -> Result<Response<EventStream>, Status> {
        crate::media::RoomId::validate(&req.room)?;
        tracing::info!(room = %req.room, downstream = %req.node_id, "relay subscribe");
        let (handle, answer) = self
            .node
            .subscribe(
                &req.room,
                &req.offer_sdp,
                SessionKind::Relay,
                crate::media::layers::LayerChoice::All,
            )
            .await?;
        let tracks = self
            .node
            .room(&req.room)
            .map(|r| r.tracks().iter().map(|t| describe_track(t)).collect())
            .unwrap_or_default();
        let (tx, rx) = mpsc::channel(4);
        let _ = tx
            .send(Ok(SubscribeEvent {
                event: Some(subscribe_event::Event::Answer(Answer {
                    sdp: answer,
                    link_id: handle.id.clone(),
                    tracks,
                })),
            }))
            .await;
        let room = self.node.room(&req.room);
        let shutdown = self.node.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                // The downstream node dropped the call: the link is over.
                _ = tx.closed() => handle.cancel.cancel(),
                _ = handle.finished.cancelled() => {
                    // "The room ended" only when it did; a link that ends for another reason
                    // (this node going away, the peer connection failing) is a broken call,
                    // and the downstream node fails over to another source.
                    let ended = room.and_then(|r| r.end_reason()).filter(|_| !shutdown.is_cancelled());
                    let event = match ended {
                        Some(r) => Ok(SubscribeEvent {
                            event: Some(subscribe_event::Event::Ended(RoomEnded { reason: r.message })),
                        }),
                        None => Err(Status::unavailable("relay session ended")),
                    };
                    let _ = tx.send(event).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
