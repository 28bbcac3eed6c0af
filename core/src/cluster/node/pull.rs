//! The relay puller: an edge's room fed from an upstream node over relay links, failing over
//! to another source of the room when a link breaks, while its subscribers stay attached.

use super::Node;
use crate::cluster::relay_client as relay;
use crate::cluster::routing::Link;
use crate::error::{Error, Result};
use crate::media::MediaKind;
use crate::media::room::{EndReason, Room};
use crate::rtc::session::{UpstreamEnd, UpstreamPeer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

impl Node {
    /// Where to pull `room_id` from: the configured upstream, or the room's owner as the
    /// routing store knows it. Edges in `avoid` (their link to us just broke) are not chosen;
    /// the owner always may be, since nothing else has the room when it comes back.
    pub(super) async fn upstream_for(
        &self,
        room_id: &str,
        avoid: &[String],
    ) -> Result<(String, String)> {
        if let Some(url) = &self.config.upstream {
            return Ok((url.clone(), "upstream".to_owned()));
        }
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
        let (mut links, mut nodes) =
            tokio::try_join!(self.routing.links(room_id), self.routing.nodes())
                .map_err(|e| Error::Routing(e.to_string()))?;
        links.retain(|l| !avoid.contains(&l.edge_id));
        nodes.retain(|n| n.id == owner || !avoid.contains(&n.id));
        let upstream = crate::cluster::placement::choose_upstream(
            self.id(),
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
        Ok((node.grpc_url, upstream))
    }

    /// Pulls a room over relay links and feeds it until the room ends. A link that breaks after
    /// it was up (its upstream died, its peer connection failed) is replaced by one from another
    /// source of the room while the room's subscribers stay attached: their streams continue
    /// (see [`Room::replace_sources`]). The room ends when no source is found within
    /// `--failover-timeout`, or when the first link cannot be set up at all.
    pub(super) async fn pull(self: Arc<Self>, room: Arc<Room>) {
        let mut failover = Failover::default();
        let mut backoff = FAILOVER_RETRY_MIN;
        let reason = loop {
            let mut tried = None;
            let span = failover.span.clone().unwrap_or_else(tracing::Span::none);
            let result = self
                .pull_once(&room, &mut failover, &mut tried)
                .instrument(span)
                .await;
            match result {
                Ok(Pulled::Over(why)) => {
                    break EndReason {
                        not_found: false,
                        message: why,
                    };
                }
                Ok(Pulled::Lost { upstream, why }) => {
                    tracing::warn!(room = %room.id, %upstream, %why, "relay link lost; failing over");
                    room.replace_sources();
                    failover.begin(&room.id, self.id(), &upstream);
                    failover.failed.push(upstream);
                    backoff = FAILOVER_RETRY_MIN;
                }
                Err(e) if failover.started.is_none() => break end_reason(e),
                Err(e) => {
                    let _enter = failover.span.as_ref().map(|s| s.enter());
                    tracing::info!(room = %room.id, upstream = ?tried, error = %e, "no new upstream yet");
                    if let Some(upstream) = tried {
                        failover.failed.push(upstream);
                    }
                }
            }
            if room.is_ended() || self.shutdown.is_cancelled() {
                break room.end_reason().unwrap_or(EndReason {
                    not_found: false,
                    message: "node shutting down".into(),
                });
            }
            if failover
                .started
                .is_some_and(|t| t.elapsed() >= self.config.failover_timeout)
            {
                break EndReason {
                    not_found: false,
                    message: format!(
                        "upstream lost and no other source within {} s",
                        self.config.failover_timeout.as_secs()
                    ),
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = room.ended() => {}
                _ = self.shutdown.cancelled() => {}
            }
            backoff = (backoff * 2).min(FAILOVER_RETRY_MAX);
        };
        {
            let mut state = self.state();
            if state
                .rooms
                .get(&room.id)
                .is_some_and(|r| Arc::ptr_eq(r, &room))
            {
                state.rooms.remove(&room.id);
            }
        }
        room.end(reason);
        if let Err(e) = self.routing.remove_link(&room.id, self.id()).await {
            tracing::debug!(error = %e, "could not remove link");
        }
    }

    /// Sets up one relay link and feeds the room from it until it ends. `tried` is set to the
    /// upstream asked, for the caller to avoid it next time.
    pub(super) async fn pull_once(
        &self,
        room: &Arc<Room>,
        failover: &mut Failover,
        tried: &mut Option<String>,
    ) -> Result<Pulled> {
        let (url, upstream_id) = self.upstream_for(&room.id, &failover.failed).await?;
        *tried = Some(upstream_id.clone());
        let mut client = relay::connect(&url).await?;
        let description = relay::describe(&mut client, &room.id).await?;
        let kinds: Vec<MediaKind> = description
            .tracks
            .iter()
            .filter_map(|t| MediaKind::parse(&t.kind))
            .collect();
        if failover.started.is_none() {
            room.expect_tracks(kinds.len());
        }
        let (peer, offer) = UpstreamPeer::offer(&self.factory, &kinds).await?;
        let (answer, mut events) =
            relay::subscribe(&mut client, &room.id, self.id(), offer).await?;
        let upstream_id = if upstream_id == "upstream" {
            description.origin_node_id.clone()
        } else {
            upstream_id
        };
        match failover.started.take() {
            Some(since) => {
                tracing::info!(
                    room = %room.id, upstream = %upstream_id,
                    after_ms = since.elapsed().as_millis() as u64,
                    "relay link up again: failed over"
                );
                if let Some(span) = failover.span.take() {
                    span.record("to", upstream_id.as_str());
                }
                failover.failed.clear();
            }
            None => tracing::info!(room = %room.id, upstream = %upstream_id, "relay link up"),
        }
        let link = Link {
            room: room.id.clone(),
            edge_id: self.id().to_owned(),
            upstream_id: upstream_id.clone(),
        };
        let cancel = self.shutdown.child_token();
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
        let routing = self.routing.clone();
        let (lease, period) = (self.config.lease, self.config.heartbeat());
        let link_refresh = link.clone();
        let refresher_stop = cancel.clone();
        let refresher = tokio::spawn(async move {
            loop {
                // Failures only log: the link runs without the store, and the next
                // refresh after an outage writes it again.
                if let Err(e) = routing.put_link(&link_refresh, lease).await {
                    tracing::debug!(error = %e, "could not record relay link");
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = refresher_stop.cancelled() => break,
                }
            }
        });
        let end = peer.run(&answer, room.clone(), cancel.clone()).await;
        cancel.cancel();
        let _ = refresher.await;
        let call = if watcher.is_finished() {
            watcher.await.ok()
        } else {
            watcher.abort();
            None
        };
        tracing::info!(room = %room.id, upstream = %upstream_id, ?end, ?call, "relay link down");
        let over = |why: &str| {
            Pulled::Over(
                room.end_reason()
                    .map_or_else(|| why.to_owned(), |r| r.message),
            )
        };
        Ok(match end? {
            UpstreamEnd::RoomEnded => over("room ended"),
            _ if room.is_ended() => over("room ended"),
            _ if self.shutdown.is_cancelled() => over("node shutting down"),
            UpstreamEnd::Failed => Pulled::Lost {
                upstream: upstream_id,
                why: "relay peer connection failed".into(),
            },
            UpstreamEnd::Cancelled => Pulled::Lost {
                upstream: upstream_id,
                why: match call {
                    Some(relay::LinkEnd::Broken(why) | relay::LinkEnd::RoomEnded(why)) => why,
                    None => "relay call ended".into(),
                },
            },
        })
    }
}

/// Waits between attempts to find a new upstream: doubling from the first to the last.
const FAILOVER_RETRY_MIN: Duration = Duration::from_millis(100);

const FAILOVER_RETRY_MAX: Duration = Duration::from_secs(1);

/// How one relay link of a room ended.
#[derive(Debug)]
pub(super) enum Pulled {
    /// The room is over: its upstream said so, it ended here, or the node is going away.
    Over(String),
    /// The link broke; the room goes on without a source until another link is up.
    Lost { upstream: String, why: String },
}

/// A room's search for a new upstream after its link broke.
#[derive(Debug, Default)]
pub(super) struct Failover {
    /// When the link broke; `None` while a link is up (or before the first).
    started: Option<Instant>,
    /// Upstreams whose links broke since then.
    failed: Vec<String>,
    /// The `failover` span the attempts run in.
    span: Option<tracing::Span>,
}

impl Failover {
    pub(super) fn begin(&mut self, room: &str, node: &str, lost: &str) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
            self.span = Some(crate::obs::telemetry::failover_span(room, node, lost));
        }
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
