//! Negotiation shared by every session that answers an offer: the offer read once
//! ([`Offer`]), the room tracks chosen for a subscriber's offer ([`choose_tracks`]), the track
//! it is sent for each ([`sending_track`]), its forwarding leg ([`new_leg`]) and the payload
//! type the answer settled on for it ([`payload_type`]).

use crate::error::Error;
use crate::media::MediaKind;
use crate::media::forward::{Codec, Leg, Rewriter};
use crate::media::layers::LayerChoice;
use crate::media::red;
use crate::media::room::{Room, RoomTrack, same_codec};
use crate::rtc::pc::{OfferedMedia, scan_offer};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpRtxParameters, RtpCodecKind,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why an offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    /// Not an SDP offer, or one the stack refuses (the client's to fix).
    #[error("{0}")]
    BadOffer(String),
    /// A publisher's offer sends nothing, or a subscriber's receives nothing.
    #[error("the offer has no audio or video section that {} media ({})", if *.0 { "sends" } else { "receives" }, if *.0 { "sendonly or sendrecv" } else { "recvonly or sendrecv" })]
    NoMedia(bool),
    /// The room has tracks, but none of the kinds the offer receives.
    #[error("room {0} has no track of the kinds this offer receives")]
    NoMatchingTrack(String),
    /// The offer accepts none of the room's codecs.
    #[error("the offer accepts none of the room's codecs ({0})")]
    NoCodecAccepted(String),
    /// No such room (its upstream says so).
    #[error("{0}")]
    RoomNotFound(String),
    /// The room is not ready (ended, or no media yet): a retry may find it.
    #[error("{0}")]
    RoomUnavailable(String),
    /// The WebRTC stack refused.
    #[error("webrtc: {0}")]
    WebRtc(#[from] rtc::shared::error::Error),
}

impl From<NegotiationError> for Error {
    fn from(e: NegotiationError) -> Self {
        match e {
            NegotiationError::WebRtc(e) => Error::WebRtc(e),
            NegotiationError::RoomNotFound(m) => Error::NotFound(m),
            NegotiationError::RoomUnavailable(m) => Error::Unavailable(m),
            e => Error::BadRequest(e.to_string()),
        }
    }
}

/// How long a subscriber waits for a room's tracks to appear.
const ROOM_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// An SDP offer, its media sections read once (by [`scan_offer`]) before any WebRTC work, and
/// which simulcast layers its sender is to be sent.
#[derive(Debug, Clone)]
pub struct Offer {
    pub sdp: String,
    pub media: Vec<OfferedMedia>,
    /// A viewer's choice of layer ([`LayerChoice::Top`] unless it asked), or every layer for a
    /// relay link.
    pub layers: LayerChoice,
}

impl Offer {
    /// Reads `sdp`'s media sections; refuses what is not an SDP offer.
    pub fn parse(sdp: &str) -> Result<Self, NegotiationError> {
        Ok(Self {
            media: scan_offer(sdp)?,
            sdp: sdp.to_owned(),
            layers: LayerChoice::default(),
        })
    }

    /// Sections that send media (a publisher's tracks).
    pub fn sending(&self) -> usize {
        self.media.iter().filter(|m| m.sends).count()
    }

    /// Simulcast layers the sending sections declare (`a=rid:<id> send`), all sections together.
    pub fn declared_layers(&self) -> usize {
        self.media
            .iter()
            .filter(|m| m.sends)
            .map(|m| m.send_rids)
            .sum()
    }

    /// The kinds of the sections that receive media, in order.
    pub fn receiving(&self) -> Vec<MediaKind> {
        self.media
            .iter()
            .filter(|m| m.receives)
            .map(|m| m.kind)
            .collect()
    }
}

/// Picks, for each receiving section of an offer in order, the first unused room track of the
/// same kind. A simulcast group is one track to a viewer: its section gets the layer `layers`
/// picks and the group's other layers are used up with it. With [`LayerChoice::All`] (a relay
/// link, whose offer has a section per track) every layer is a track.
fn match_tracks(
    offered: &[MediaKind],
    tracks: &[Arc<RoomTrack>],
    layers: &LayerChoice,
) -> Vec<Arc<RoomTrack>> {
    let mut used = vec![false; tracks.len()];
    let mut out = Vec::new();
    for kind in offered {
        let Some(i) = (0..tracks.len()).find(|&i| !used[i] && tracks[i].kind == *kind) else {
            continue;
        };
        let group = match (&tracks[i].layer, layers) {
            (Some(layer), choice) if *choice != LayerChoice::All => layer.group,
            _ => {
                used[i] = true;
                out.push(tracks[i].clone());
                continue;
            }
        };
        let members: Vec<usize> = (0..tracks.len())
            .filter(|&j| {
                tracks[j].kind == *kind
                    && tracks[j].layer.as_ref().is_some_and(|l| l.group == group)
            })
            .collect();
        let ranked: Vec<(&str, u64)> = members
            .iter()
            .map(|&j| {
                let rid = tracks[j].layer.as_ref().map_or("", |l| l.rid.as_str());
                (rid, tracks[j].stats.bytes_in.load(Ordering::Relaxed))
            })
            .collect();
        if let Some(pick) = layers.pick(&ranked) {
            out.push(tracks[members[pick]].clone());
        }
        for j in members {
            used[j] = true;
        }
    }
    out
}

/// The track a subscriber is sent for one room track: the source's codec, `ssrc`, and the id
/// `{kind}-{index}` (the id RTCP about it comes back under); with `rtx`, a retransmission
/// stream (RFC 4588) of that SSRC too (the answer groups them, `a=ssrc-group:FID`).
pub fn sending_track(
    room: &Room,
    track: &RoomTrack,
    codec: &RTCRtpCodec,
    ssrc: u32,
    rtx: Option<u32>,
) -> MediaStreamTrack {
    let kind = match track.kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    };
    MediaStreamTrack::new(
        format!("cascade-{}", room.id),
        format!("{}-{}", track.kind.as_str(), track.index),
        format!("{} {}", room.id, track.kind.as_str()),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx: rtx.map(|ssrc| RTCRtpRtxParameters { ssrc }),
                ..Default::default()
            },
            codec: codec.clone(),
            ..Default::default()
        }],
    )
}

/// Reads which kinds an offer receives, waits (bounded) for the room's tracks and picks one
/// for each: what every subscriber, on a peer connection of its own or on the UDP mux, is sent.
pub async fn choose_tracks(
    room: &Arc<Room>,
    offer: &Offer,
) -> Result<Vec<Arc<RoomTrack>>, NegotiationError> {
    let receiving = offer.receiving();
    if receiving.is_empty() {
        return Err(NegotiationError::NoMedia(false));
    }
    let tracks = room.ready(ROOM_READY_TIMEOUT).await.map_err(|r| {
        if r.not_found {
            NegotiationError::RoomNotFound(r.message)
        } else {
            NegotiationError::RoomUnavailable(format!("room {} ended: {}", room.id, r.message))
        }
    })?;
    let chosen = match_tracks(&receiving, &tracks, &offer.layers);
    if chosen.is_empty() {
        return Err(if tracks.is_empty() {
            NegotiationError::RoomUnavailable(format!("room {} has no media yet", room.id))
        } else {
            NegotiationError::NoMatchingTrack(room.id.clone())
        });
    }
    Ok(chosen)
}

/// A subscriber's forwarding leg for `track`: a fresh random SSRC and sequence start, the
/// track's codec. Returns the SSRC too (the sending track's).
pub fn new_leg(track: &RoomTrack) -> (u32, Leg) {
    let ssrc = rand::random::<u32>();
    let leg = Leg::new(
        Rewriter::new(ssrc, 0, rand::random::<u16>() & 0x7fff),
        Codec::from_mime(&track.codec.mime_type),
        track.codec.clock_rate,
    );
    (ssrc, leg)
}

/// The payload type the answer gave `track`'s codec among a sender's negotiated `codecs`;
/// `None` when the subscriber did not accept it.
pub fn payload_type(codecs: &[RTCRtpCodecParameters], codec: &RTCRtpCodec) -> Option<u8> {
    codecs
        .iter()
        .find(|c| same_codec(&c.rtp_codec, codec))
        .map(|c| c.payload_type)
}

/// The codec a subscriber whose offer is `offer_sdp` is sent `track` in, and whether it takes
/// the primary blocks of a RED track alone: the track's own codec, except for a RED track
/// (`media::red`) to a subscriber that does not take RED over the same block format (the
/// blocks name the publisher's payload type, which the subscriber's Opus must have), which
/// is sent Opus.
pub fn sent_codec(track: &RoomTrack, offer_sdp: &str) -> (RTCRtpCodec, bool) {
    if !red::is_red(&track.codec) {
        return (track.codec.clone(), false);
    }
    let blocks = red::block_payload_type(&track.codec.sdp_fmtp_line);
    match red::offered(offer_sdp) {
        Some((_, offered)) if Some(offered) == blocks => (track.codec.clone(), false),
        _ => (red::primary_codec(), true),
    }
}

/// The payload type the answer gave retransmissions (RTX, RFC 4588) of payload type `pt`
/// among a sender's negotiated `codecs`, if the subscriber takes them.
pub fn rtx_payload_type(codecs: &[RTCRtpCodecParameters], pt: u8) -> Option<u8> {
    codecs
        .iter()
        .find(|c| {
            c.rtp_codec.mime_type.eq_ignore_ascii_case("video/rtx")
                && c.rtp_codec
                    .sdp_fmtp_line
                    .split(';')
                    .filter_map(|p| p.trim().strip_prefix("apt="))
                    .any(|apt| apt.trim().parse() == Ok(pt))
        })
        .map(|c| c.payload_type)
}

/// The error for an offer that accepted none of `chosen`'s codecs.
pub fn no_codec_accepted(chosen: &[Arc<RoomTrack>]) -> NegotiationError {
    NegotiationError::NoCodecAccepted(
        chosen
            .iter()
            .map(|t| t.codec.mime_type.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    )
}
