//! The downstream side of the server-to-server relay (`proto/cascade/relay/v1/relay.proto`):
//! [`connect`], [`describe`], [`subscribe`] and [`wait_end`], used by the node to pull a room
//! from its upstream. The upstream side is `api::relay_service`.

use crate::error::{Error, Result};
use cascade_proto::relay::v1::relay_client::RelayClient;
use cascade_proto::relay::v1::{
    DescribeRoomRequest, RoomDescription, SubscribeEvent, SubscribeRequest, subscribe_event,
};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Streaming};
use tracing::Instrument;

/// Connects to an upstream's relay service.
pub async fn connect(url: &str) -> Result<RelayClient<Channel>> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| Error::Upstream(format!("bad upstream URL {url}: {e}")))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Error::Upstream(format!("cannot reach upstream {url}: {e}")))?;
    Ok(RelayClient::new(channel))
}

/// What the upstream has of a room.
pub async fn describe(client: &mut RelayClient<Channel>, room: &str) -> Result<RoomDescription> {
    let span = tracing::info_span!("relay.describe_room", otel.kind = "client", room);
    let mut request = Request::new(DescribeRoomRequest {
        room: room.to_owned(),
    });
    crate::obs::trace_ctx::inject(&span, request.metadata_mut());
    Ok(client
        .describe_room(request)
        .instrument(span)
        .await?
        .into_inner())
}

/// Opens a relay link: sends our offer, returns the upstream's answer and the event stream
/// whose lifetime is the link's.
pub async fn subscribe(
    client: &mut RelayClient<Channel>,
    room: &str,
    node_id: &str,
    offer_sdp: String,
) -> Result<(String, Streaming<SubscribeEvent>)> {
    let span = tracing::info_span!(
        "relay.subscribe",
        otel.kind = "client",
        room,
        node = node_id
    );
    let mut request = Request::new(SubscribeRequest {
        room: room.to_owned(),
        node_id: node_id.to_owned(),
        offer_sdp,
    });
    crate::obs::trace_ctx::inject(&span, request.metadata_mut());
    let mut events = client
        .subscribe(request)
        .instrument(span.clone())
        .await?
        .into_inner();
    match events.message().instrument(span).await? {
        Some(SubscribeEvent {
            event: Some(subscribe_event::Event::Answer(answer)),
        }) => Ok((answer.sdp, events)),
        Some(SubscribeEvent {
            event: Some(subscribe_event::Event::Ended(e)),
        }) => Err(Error::NotFound(e.reason)),
        _ => Err(Error::Upstream(
            "relay stream closed before the answer".into(),
        )),
    }
}

/// How a relay link's call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// The upstream said the room ended (the publisher left): the room is over everywhere.
    RoomEnded(String),
    /// The call broke or was closed without a word: the upstream may be gone, the room not.
    Broken(String),
}

/// Waits for the upstream to end the link; returns how.
pub async fn wait_end(events: &mut Streaming<SubscribeEvent>) -> LinkEnd {
    loop {
        match events.message().await {
            Ok(Some(SubscribeEvent {
                event: Some(subscribe_event::Event::Ended(e)),
            })) => return LinkEnd::RoomEnded(e.reason),
            Ok(Some(_)) => continue,
            Ok(None) => return LinkEnd::Broken("upstream closed the relay link".into()),
            Err(status) => {
                return LinkEnd::Broken(format!("relay link broken: {}", status.message()));
            }
        }
    }
}
