//! WebRTC sessions: a publisher feeding a room, a subscriber (viewer or downstream relay link)
//! fed by one, and the upstream end of a relay link that feeds an edge's room.
//!
//! Each session is a peer connection plus one task that owns its lifetime: it ends when the
//! peer goes away (ICE failed, DTLS closed), when the room ends, or when it is cancelled
//! (`DELETE`, the relay stream dropped).

use crate::error::{Error, Result};
use crate::media::MediaKind;
use crate::media::layers::Layer;
use crate::media::room::{EndReason, Room, RoomTrack};
use crate::rtc::events::{PeerEvents, gone};
use crate::rtc::ice_tcp::{IceTcp, Registration, Route};
use crate::rtc::negotiate::{
    NegotiationError, Offer, choose_tracks, new_leg, no_codec_accepted, payload_type,
    sending_track, sent_codec,
};
use crate::rtc::pc::{CoreKind, IceRole, Pc, PcFactory};
use crate::rtc::transport::{self, TransportCell};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::RTCPeerConnectionState;

/// How long ICE gathering may take before we answer with what we have.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);
/// Packets a subscriber forwards per wake-up at most.
const BATCH: usize = 64;
/// The pause after a full batch: a backlog (a new subscriber's cached groups of pictures, every
/// track's at once, up to thousands of packets) leaves at no more than a batch per pause, about
/// 32,000 packets a second (a live stream is a few hundred), instead of at the link's line rate.
/// Unpaced, such a burst outran a receiving edge: webrtc-rs hands a relay link's packets to the
/// room's pump through a channel of 256, and drops (and logs) what does not fit.
const BACKLOG_PAUSE: Duration = Duration::from_millis(2);

/// A peer connection and the receiving ends of its events.
struct Peer {
    pc: Pc,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    /// The node's ICE-TCP port, for a peer connection that answers (see [`Peer::answer`]).
    ice_tcp: Option<Arc<IceTcp>>,
    /// Its ufrag's route on the node's ICE-TCP port, once it has answered.
    tcp_route: Option<Registration>,
}

impl Peer {
    /// A peer connection that will make the offer (a full ICE agent) or answer one (ICE-lite:
    /// see [`IceRole`]).
    async fn new(factory: &PcFactory, role: IceRole, kind: CoreKind) -> Result<Self> {
        let (
            handler,
            PeerEvents {
                state,
                gathered,
                tracks,
            },
        ) = PeerEvents::channel();
        let pc = factory.build_as(role, kind, handler).await?;
        Ok(Self {
            pc,
            state,
            gathered,
            tracks,
            ice_tcp: match role {
                IceRole::Answerer => factory.ice_tcp().cloned(),
                IceRole::Offerer => None,
            },
            tcp_route: None,
        })
    }

    /// Waits (bounded) for ICE gathering, then returns the local description's SDP: we answer
    /// with every candidate in it, since WHIP/WHEP clients need no trickle ICE then.
    async fn local_sdp(&mut self) -> Result<String> {
        let _ = tokio::time::timeout(GATHER_TIMEOUT, self.gathered.wait_for(|g| *g)).await;
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| Error::Internal("no local description after negotiation".into()))
    }

    async fn answer(&mut self, offer: &str) -> Result<String> {
        let offer = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| NegotiationError::BadOffer(format!("invalid SDP offer: {e}")))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| NegotiationError::BadOffer(format!("SDP offer refused: {e}")))?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        let sdp = self.local_sdp().await?;
        // Clients without UDP connect to the node's ICE-TCP port, which splices them to the
        // peer connection's own listener.
        let Some(ice_tcp) = &self.ice_tcp else {
            return Ok(sdp);
        };
        match crate::rtc::ice_tcp::splice_answer(&sdp, ice_tcp.candidate()) {
            Some((spliced, ufrag, own)) => {
                self.tcp_route = Some(ice_tcp.register(&ufrag, Route::Splice(own)));
                Ok(spliced)
            }
            None => Ok(sdp),
        }
    }

    /// Resolves when the connection is up; errors when it fails or takes longer than `timeout`.
    async fn connected(&mut self, timeout: Duration) -> Result<()> {
        let result = tokio::time::timeout(
            timeout,
            self.state.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await;
        match result {
            Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected => Ok(()),
            Ok(_) => Err(Error::Unavailable("peer connection failed".into())),
            Err(_) => Err(Error::Unavailable("peer connection timed out".into())),
        }
    }
}

/// What the node keeps of a running session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub id: String,
    pub room: String,
    pub cancel: CancellationToken,
    /// Resolves (cancelled) once the session has fully ended.
    pub finished: CancellationToken,
    /// Cancelled once the session's ICE and DTLS are done (never, for one that does not
    /// connect within the connect timeout: it is closed instead).
    pub connected: CancellationToken,
    /// How its media travels, once it is connected.
    pub transport: TransportCell,
    /// The simulcast layers it is not sent for now: for a relay link, what its downstream node
    /// asked (`Relay.PauseLayers`); never set for a viewer.
    pub paused_layers: Arc<watch::Sender<Vec<Layer>>>,
}

impl SessionHandle {
    pub fn new(id: String, room: String, cancel: CancellationToken) -> Self {
        Self {
            id,
            room,
            cancel,
            finished: CancellationToken::new(),
            connected: CancellationToken::new(),
            transport: TransportCell::default(),
            paused_layers: Arc::new(watch::channel(Vec::new()).0),
        }
    }
}

/// Starts a publisher session into `room` (a new, empty room this node owns, or one resumed).
/// Returns the SDP answer. The room ends when the publisher goes away or `cancel` fires.
/// `connected` fires once ICE and DTLS are done. A publisher that does not connect within the
/// factory's connect timeout is closed: a room it opened (no tracks yet) ends, so its name is
/// free again at once; a room it resumed waits for a publisher again, as after a disconnect.
pub async fn publish(
    factory: &PcFactory,
    room: Arc<Room>,
    offer: &Offer,
    cancel: CancellationToken,
    finished: CancellationToken,
    connected: CancellationToken,
    transport: TransportCell,
) -> Result<String> {
    let sending = offer.sending();
    if sending == 0 {
        return Err(NegotiationError::NoMedia(true).into());
    }
    let mut peer = Peer::new(factory, IceRole::Answerer, CoreKind::Full).await?;
    // A publisher that offers RED (redundant audio) sends it where the answer prefers it.
    let answer = match peer
        .answer(&crate::media::red::prefer_red(&offer.sdp))
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let _ = peer.pc.close().await;
            return Err(e);
        }
    };
    room.expect_tracks(sending);
    room.expect_layers(offer.declared_layers());
    let connect_by = tokio::time::Instant::now() + factory.connect_timeout();
    tokio::spawn(async move {
        let Peer {
            pc,
            mut state,
            mut tracks,
            tcp_route: _tcp_route,
            ..
        } = peer;
        let mut up_state = state.clone();
        loop {
            tokio::select! {
                Some(track) = tracks.recv() => {
                    room.add_track(track, None).await;
                }
                up = reached_connected(&mut up_state), if !connected.is_cancelled() => {
                    if up {
                        connected.cancel();
                        if let Some(t) = transport::of_pc(&pc).await {
                            transport.set(t);
                        }
                    } else {
                        never_connected(&room);
                        break;
                    }
                }
                _ = tokio::time::sleep_until(connect_by), if !connected.is_cancelled() => {
                    never_connected(&room);
                    break;
                }
                _ = gone(&mut state) => {
                    if connected.is_cancelled() {
                        // Not the end: the publisher may come back (see `Node::publish`); the
                        // room's subscribers wait for it.
                        tracing::info!(room = %room.id, "publisher disconnected; waiting for it to come back");
                        room.replace_sources();
                    } else {
                        never_connected(&room);
                    }
                    break;
                }
                _ = cancel.cancelled() => {
                    room.end(EndReason { not_found: false, message: "publisher left".into() });
                    break;
                }
                _ = room.ended() => break,
            }
        }
        let _ = pc.close().await;
        finished.cancel();
    });
    Ok(answer)
}

/// Whether the connection reached `Connected` (false: its events ended first).
async fn reached_connected(state: &mut watch::Receiver<RTCPeerConnectionState>) -> bool {
    state
        .wait_for(|s| *s == RTCPeerConnectionState::Connected)
        .await
        .is_ok()
}

/// A publisher that never connected (timed out, or ICE failed first) lets its room go: a room
/// it opened ends; one it resumed (whose tracks the last publisher bound) waits for a
/// publisher again.
fn never_connected(room: &Room) {
    tracing::info!(room = %room.id, "publisher never connected; closed");
    if room.tracks().is_empty() {
        room.end(EndReason {
            not_found: false,
            message: "the publisher never connected".into(),
        });
    } else {
        room.replace_sources();
    }
}

/// One room track as one subscriber receives it.
struct Leg {
    track: Arc<RoomTrack>,
    local: Arc<TrackLocalStaticRTP>,
    forward: crate::media::forward::Leg,
    /// Not sent for now: its track's layer is one the peer paused (its subscription to the
    /// track is detached meanwhile).
    paused: bool,
}

/// Pauses the legs whose layer is in `layers` and resumes the others that were paused. A paused
/// leg's track no longer queues packets for this subscriber; a resumed one queues live packets
/// again (not its cached pictures: they are older than what the leg sent last) and is asked for
/// a keyframe, where the leg starts again, its stream continuing without a gap.
async fn pause_layers(
    room: &Room,
    subscription: &mut crate::media::room::Subscription,
    legs: &mut [Leg],
    layers: &[Layer],
) {
    for leg in legs.iter_mut() {
        let Some(layer) = &leg.track.layer else {
            continue;
        };
        let pause = layers.contains(layer);
        if pause == leg.paused {
            continue;
        }
        leg.paused = pause;
        if pause {
            subscription.pause(&leg.track);
            leg.forward.pause();
        } else {
            subscription.resume(&leg.track);
            leg.track.request_keyframe().await;
        }
        tracing::info!(room = %room.id, rid = %layer.rid, group = layer.group, paused = pause, "relay link layer");
    }
}

/// Starts a subscriber session on `room` (a viewer, or the upstream end of a relay link).
/// Returns the SDP answer; the session runs until the peer goes, the room ends, or the handle's
/// `cancel`, or until the factory's connect timeout when it does not connect; then its
/// `finished` fires. Its `connected` fires once ICE and DTLS are done; the layers in its
/// `paused_layers` are not sent while they are there.
pub async fn subscribe(
    factory: &PcFactory,
    room: Arc<Room>,
    offer: &Offer,
    handle: &SessionHandle,
) -> Result<String> {
    let offered_at = std::time::Instant::now();
    let chosen = choose_tracks(&room, offer).await?;

    let mut peer = Peer::new(factory, IceRole::Answerer, CoreKind::SendOnly).await?;
    let mut legs = Vec::with_capacity(chosen.len());
    let mut senders = Vec::with_capacity(chosen.len());
    for track in &chosen {
        let (ssrc, forward) = new_leg(track);
        let (codec, _) = sent_codec(track, &offer.sdp);
        let local = Arc::new(TrackLocalStaticRTP::new(sending_track(
            &room, track, &codec, ssrc, None,
        )));
        let sender = match peer.pc.add_track(local.clone()).await {
            Ok(s) => s,
            Err(e) => {
                let _ = peer.pc.close().await;
                return Err(e.into());
            }
        };
        senders.push(sender);
        legs.push(Leg {
            forward,
            track: track.clone(),
            local,
            paused: false,
        });
    }
    let answer = match peer.answer(&offer.sdp).await {
        Ok(a) => a,
        Err(e) => {
            let _ = peer.pc.close().await;
            return Err(e);
        }
    };
    // Payload types are the viewer's: take each leg's from what was negotiated for it.
    let mut negotiated = Vec::with_capacity(legs.len());
    for (mut leg, sender) in legs.into_iter().zip(senders) {
        let (codec, red_primary) = sent_codec(&leg.track, &offer.sdp);
        let pt = sender
            .get_parameters()
            .await
            .ok()
            .and_then(|p| payload_type(&p.rtp_parameters.codecs, &codec));
        match pt {
            Some(pt) => {
                leg.forward.set_payload_type(pt, red_primary);
                negotiated.push(leg);
            }
            None => tracing::info!(
                room = %room.id,
                codec = %leg.track.codec.mime_type,
                "subscriber did not accept the room's codec; track not sent"
            ),
        }
    }
    if negotiated.is_empty() {
        let _ = peer.pc.close().await;
        return Err(no_codec_accepted(&chosen).into());
    }
    let ends = Ends {
        cancel: handle.cancel.clone(),
        finished: handle.finished.clone(),
        connected: handle.connected.clone(),
        transport: handle.transport.clone(),
        paused: handle.paused_layers.subscribe(),
        timeout: factory.connect_timeout(),
    };
    tokio::spawn(run_subscriber(peer, room, negotiated, ends, offered_at));
    Ok(answer)
}

/// How a subscriber session is ended and tells of its progress.
struct Ends {
    cancel: CancellationToken,
    finished: CancellationToken,
    connected: CancellationToken,
    transport: TransportCell,
    /// The layers its peer does not want for now (a relay link's `PauseLayers`).
    paused: watch::Receiver<Vec<Layer>>,
    /// How long it may take to connect.
    timeout: Duration,
}

async fn run_subscriber(
    mut peer: Peer,
    room: Arc<Room>,
    mut legs: Vec<Leg>,
    ends: Ends,
    offered_at: std::time::Instant,
) {
    let Ends {
        cancel,
        finished,
        connected,
        transport,
        mut paused,
        timeout,
    } = ends;
    let up = tokio::select! {
        r = peer.connected(timeout) => r,
        _ = cancel.cancelled() => Err(Error::Unavailable("cancelled".into())),
        _ = room.ended() => Err(Error::Unavailable("room ended".into())),
    };
    if let Err(e) = up {
        tracing::info!(room = %room.id, error = %e, "subscriber never connected; closed");
    } else {
        connected.cancel();
        if let Some(t) = transport::of_pc(&peer.pc).await {
            transport.set(t);
        }
        // Keyframe requests from the subscriber travel upstream, rate-limited per track.
        let feedback = CancellationToken::new();
        for leg in &legs {
            let local = leg.local.clone();
            let track = leg.track.clone();
            let stop = feedback.clone();
            tokio::spawn(async move {
                loop {
                    let event = tokio::select! {
                        e = local.poll() => e,
                        _ = stop.cancelled() => None,
                    };
                    match event {
                        Some(TrackLocalEvent::OnRtcpPacket(_)) => track.request_keyframe().await,
                        Some(_) => {}
                        None => break,
                    }
                }
            });
        }
        let connected_at = std::time::Instant::now();
        let tracks: Vec<_> = legs.iter().map(|l| l.track.clone()).collect();
        let mut subscription = room.subscribe(&tracks).await;
        // Room track index -> leg, so the per-packet path is an index, not a search.
        let mut leg_of = vec![usize::MAX; tracks.iter().map(|t| t.index + 1).max().unwrap_or(0)];
        for (i, leg) in legs.iter().enumerate() {
            leg_of[leg.track.index] = i;
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut state = peer.state.clone();
        let traffic = room.traffic.clone();
        let mut first_sent = false;
        let mut pauses_open = true;
        'forward: loop {
            tokio::select! {
                n = subscription.rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    // Counted once per batch: the counters are shared by the whole node.
                    let (mut sent, mut sent_bytes) = (0u64, 0u64);
                    let now = std::time::Instant::now();
                    for out in batch.drain(..) {
                        let Some(leg) = leg_of.get(out.track).and_then(|&i| legs.get_mut(i)) else {
                            continue;
                        };
                        if leg.paused {
                            // Queued before it was paused.
                            continue;
                        }
                        let mut packet = out.packet;
                        if leg.forward.forward(&mut packet, out.source, out.keyframe, now) {
                            let bytes = packet.payload.len() as u64;
                            if leg.local.write_rtp(packet).await.is_err() {
                                break 'forward;
                            }
                            sent += 1;
                            sent_bytes += bytes;
                        }
                    }
                    if n == BATCH {
                        tokio::time::sleep(BACKLOG_PAUSE).await;
                    }
                    if sent > 0 {
                        traffic.packets_out.inc_by(sent);
                        traffic.bytes_out.inc_by(sent_bytes);
                        if !first_sent {
                            first_sent = true;
                            traffic.join.observe(offered_at.elapsed().as_secs_f64());
                            traffic
                                .connected_to_media
                                .observe(connected_at.elapsed().as_secs_f64());
                        }
                    }
                }
                changed = paused.changed(), if pauses_open => {
                    if changed.is_ok() {
                        let layers = paused.borrow_and_update().clone();
                        pause_layers(&room, &mut subscription, &mut legs, &layers).await;
                    } else {
                        // No one can pause a layer of this session any more.
                        pauses_open = false;
                    }
                }
                _ = gone(&mut state) => break,
                _ = cancel.cancelled() => break,
                _ = room.ended() => break,
            }
        }
        feedback.cancel();
        drop(subscription);
    }
    let _ = peer.pc.close().await;
    finished.cancel();
}

/// Why the downstream end of a relay link stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamEnd {
    /// The peer connection failed (ICE or DTLS): the upstream may be gone.
    Failed,
    /// Closed from this side ([`UpstreamPeer::run`]'s `cancel`).
    Cancelled,
    /// The room ended.
    RoomEnded,
}

/// The downstream end of a relay link: an edge's peer connection that receives every track of
/// a room from its upstream. `describe` is the upstream's list of track kinds, in order.
pub struct UpstreamPeer {
    peer: Peer,
}

impl std::fmt::Debug for UpstreamPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamPeer")
    }
}

impl UpstreamPeer {
    /// Builds the peer connection and its offer: one receive-only section per track.
    pub async fn offer(factory: &PcFactory, kinds: &[MediaKind]) -> Result<(Self, String)> {
        let mut peer = Peer::new(factory, IceRole::Offerer, CoreKind::Full).await?;
        for kind in kinds {
            let kind = match kind {
                MediaKind::Audio => RtpCodecKind::Audio,
                MediaKind::Video => RtpCodecKind::Video,
            };
            peer.pc
                .add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .await?;
        }
        let offer = peer.pc.create_offer(None).await?;
        peer.pc.set_local_description(offer).await?;
        let sdp = peer.local_sdp().await?;
        Ok((Self { peer }, sdp))
    }

    /// Applies the upstream's answer, then feeds `room` until the link fails, the room ends or
    /// `cancel` fires. Returns why it stopped. `layers` is what the upstream described each of
    /// its tracks as (by its index): a simulcast layer, or not.
    pub async fn run(
        self,
        answer: &str,
        room: Arc<Room>,
        cancel: CancellationToken,
        layers: Vec<Option<Layer>>,
    ) -> Result<UpstreamEnd> {
        let Peer {
            pc,
            mut state,
            mut tracks,
            ..
        } = self.peer;
        let answer = RTCSessionDescription::answer(answer.to_owned())
            .map_err(|e| Error::Upstream(format!("invalid SDP answer: {e}")))?;
        if let Err(e) = pc.set_remote_description(answer).await {
            let _ = pc.close().await;
            return Err(Error::Upstream(format!("SDP answer refused: {e}")));
        }
        let why = loop {
            tokio::select! {
                Some(track) = tracks.recv() => {
                    // The upstream names each track `{kind}-{index}` (`sending_track`).
                    let layer = upstream_index(&track.track_id().await)
                        .and_then(|i| layers.get(i).cloned().flatten());
                    room.add_track(track, layer).await;
                }
                _ = gone(&mut state) => break UpstreamEnd::Failed,
                _ = cancel.cancelled() => break UpstreamEnd::Cancelled,
                _ = room.ended() => break UpstreamEnd::RoomEnded,
            }
        };
        let _ = pc.close().await;
        Ok(why)
    }
}

/// The upstream's index of a track it sent, from the track id it gave it (`video-3`).
fn upstream_index(track_id: &str) -> Option<usize> {
    track_id.rsplit_once('-')?.1.parse().ok()
}
