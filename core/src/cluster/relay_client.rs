//! The downstream side of the server-to-server relay (`proto/cascade/relay/v1/relay.proto`):
//! [`connect`], [`describe`], [`subscribe`] and [`wait_end`], used by the node to pull a room
//! from its upstream. The upstream side is `api::relay_service`.

use crate::error::Error;
use cascade_proto::relay::v1::relay_client::RelayClient;
use cascade_proto::relay::v1::{
    DescribeRoomRequest, RoomDescription, SubscribeEvent, SubscribeRequest, subscribe_event,
};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Streaming};
use tracing::Instrument;

/// Why a relay call to an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The upstream's URL cannot be used.
    #[error("bad upstream URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// No connection to the upstream.
    #[error("cannot reach upstream {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The upstream answered with an error.
    #[error("upstream: {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The upstream says the room is over (or never was).
    #[error("{0}")]
    RoomEnded(String),
    /// The call closed before the upstream answered the offer.
    #[error("relay stream closed before the answer")]
    NoAnswer,
}

impl RelayError {
    /// Whether another attempt (the same upstream later, or another) may succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, RelayError::BadUrl { .. } | RelayError::RoomEnded(_))
    }
}

impl From<RelayError> for Error {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Status(s) => s.into(),
            RelayError::RoomEnded(m) => Error::NotFound(m),
            e => Error::Upstream(e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, RelayError>;

/// Connects to an upstream's relay service.
pub async fn connect(url: &str) -> Result<RelayClient<Channel>> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| RelayError::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| RelayError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
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
        }) => Err(RelayError::RoomEnded(e.reason)),
        _ => Err(RelayError::NoAnswer),
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
