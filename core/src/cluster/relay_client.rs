//! The downstream side of the server-to-server relay (`proto/cascade/relay/v1/relay.proto`):
//! [`connect`], [`describe`], [`subscribe`], [`pause_layers`] and [`wait_end`], used by the node
//! to pull a room from its upstream. The upstream side is `api::relay_service`.

use crate::cluster::credential::Credential;
use crate::cluster::tls::GrpcTls;
use crate::error::Error;
use crate::media::layers::Layer;
use cascade_proto::relay::v1::relay_client::RelayClient;
use cascade_proto::relay::v1::{
    DescribeRoomRequest, LayerId, PauseLayersRequest, RoomDescription, SubscribeEvent,
    SubscribeRequest, subscribe_event,
};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
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

/// A relay client whose calls carry this node's cluster credential.
pub type Client = RelayClient<InterceptedService<Channel, Credential>>;

/// How long a unary relay call (`DescribeRoom`, and `Subscribe` until its answer) may take.
pub const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// How often the relay channel pings its upstream (HTTP/2 keep-alive), and how long it waits
/// for the answer: an upstream that stops answering (a frozen process whose socket still
/// accepts) breaks the link within both, and the edge fails over.
pub const KEEPALIVE: Duration = Duration::from_secs(3);
/// See [`KEEPALIVE`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to an upstream's relay service; every call carries `credential`. An `https://`
/// upstream is reached over mutual TLS with `tls` (`--grpc-tls-*`), and needs it.
pub async fn connect(url: &str, credential: Credential, tls: Option<&GrpcTls>) -> Result<Client> {
    let bad_url = |reason: String| RelayError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| bad_url(e.to_string()))?;
    if url.starts_with("https://") {
        let tls = tls.ok_or_else(|| {
            bad_url(
                "an https:// upstream needs --grpc-tls-cert, --grpc-tls-key and --grpc-tls-ca"
                    .into(),
            )
        })?;
        endpoint = endpoint
            .tls_config(tls.client())
            .map_err(|e| bad_url(e.to_string()))?;
    }
    let endpoint = endpoint
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| RelayError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(RelayClient::with_interceptor(channel, credential))
}

/// What the upstream has of a room.
pub async fn describe(client: &mut Client, room: &str) -> Result<RoomDescription> {
    let span = tracing::info_span!("relay.describe_room", otel.kind = "client", room);
    let mut request = Request::new(DescribeRoomRequest {
        room: room.to_owned(),
    });
    request.set_timeout(CALL_DEADLINE);
    crate::obs::trace_ctx::inject(&span, request.metadata_mut());
    Ok(client
        .describe_room(request)
        .instrument(span)
        .await?
        .into_inner())
}

/// An upstream's answer to a relay link's offer.
#[derive(Debug)]
pub struct Answered {
    pub sdp: String,
    /// The id the upstream gave the link ([`pause_layers`] names it).
    pub link_id: String,
    /// The call's events; the link lives as long as they do.
    pub events: Streaming<SubscribeEvent>,
}

/// Opens a relay link: sends our offer, returns the upstream's answer and the event stream
/// whose lifetime is the link's.
pub async fn subscribe(
    client: &mut Client,
    room: &str,
    node_id: &str,
    offer_sdp: String,
) -> Result<Answered> {
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
    let answered = async {
        let mut events = client
            .subscribe(request)
            .instrument(span.clone())
            .await?
            .into_inner();
        let first = events.message().instrument(span).await?;
        Ok::<_, RelayError>((first, events))
    };
    let (first, events) = tokio::time::timeout(CALL_DEADLINE, answered)
        .await
        .map_err(|_| {
            RelayError::Status(tonic::Status::deadline_exceeded(
                "the upstream did not answer the offer in time",
            ))
        })??;
    match first {
        Some(SubscribeEvent {
            event: Some(subscribe_event::Event::Answer(answer)),
        }) => Ok(Answered {
            sdp: answer.sdp,
            link_id: answer.link_id,
            events,
        }),
        Some(SubscribeEvent {
            event: Some(subscribe_event::Event::Ended(e)),
        }) => Err(RelayError::RoomEnded(e.reason)),
        _ => Err(RelayError::NoAnswer),
    }
}

/// Asks the upstream to pause these simulcast layers on link `link_id` (and send every other
/// layer); returns how many of the link's tracks are paused now.
pub async fn pause_layers(
    client: &mut Client,
    link_id: &str,
    room: &str,
    layers: &[Layer],
) -> Result<u32> {
    let mut request = Request::new(PauseLayersRequest {
        link_id: link_id.to_owned(),
        room: room.to_owned(),
        layers: layers
            .iter()
            .map(|l| LayerId {
                group: l.group,
                rid: l.rid.clone(),
            })
            .collect(),
    });
    request.set_timeout(CALL_DEADLINE);
    Ok(client.pause_layers(request).await?.into_inner().paused)
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
