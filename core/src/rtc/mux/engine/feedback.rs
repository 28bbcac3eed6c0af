//! What a viewer sends back: NACKs, keyframe requests, TWCC feedback and REMB, reception
//! reports.
//!
//! Once DTLS is done the mux reads a viewer's SRTCP itself, with a context of the keys its core
//! derived (`egress::KeyTap`), as it protects the viewer's media with its own. Through the core
//! a feedback crossed its ICE demux, its DTLS and SRTCP stages, its interceptor chain and a
//! track lookup before it reached the estimate: at 300 viewers sending TWCC feedback ten times
//! a second that was a visible share of an edge's time (BENCHMARKS.md). STUN, DTLS, and
//! anything sent before the keys are known still go to the core.

use super::*;
use crate::rtc::pc::count_received;

/// Whether a datagram is RTCP rather than RTP, DTLS or STUN (RFC 7983's first byte 128-191,
/// and RFC 5761 §4's payload type octet 192-223: RTCP's packet types 200-204 and the feedback
/// ones 205-206 with any first byte).
pub(super) fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && (128..=191).contains(&data[0]) && (192..=223).contains(&data[1])
}

/// The replay window of a viewer's SRTCP (RFC 3711 §3.3.2's minimum): it sends tens of RTCP
/// packets a second, and the window is shifted at each one (a 1,024-bit window, the SRTP one's,
/// made the shift a visible share of reading feedback).
const SRTCP_REPLAY_WINDOW: usize = 64;

/// The SRTCP context for what a viewer sends, from the receiving keys its core derived; `None`
/// (its RTCP then keeps going through its core) if they were not found.
pub(super) fn srtcp_context(
    receiving: Option<crate::media::egress::SrtpKeys>,
    viewer: u64,
) -> Option<rtc::srtp::context::Context> {
    match receiving?.context(Some(SRTCP_REPLAY_WINDOW)) {
        Ok(context) => Some(context),
        Err(e) => {
            tracing::debug!(viewer, error = %e, "no SRTCP context of our own: RTCP through the core");
            None
        }
    }
}

impl Engine {
    /// Reads `data`, from viewer `key`, if it is SRTCP and the viewer's keys are known: decrypts
    /// it, counts it and acts on it. False when the core is to have it instead.
    pub(super) fn own_rtcp(&mut self, key: usize, data: &[u8]) -> bool {
        if !is_rtcp(data) {
            return false;
        }
        let Some(viewer) = self.viewers.get_mut(key) else {
            return false;
        };
        let Some(srtcp) = viewer.srtcp.as_mut() else {
            return false;
        };
        // Refused (forged, replayed, truncated or malformed): dropped, as the core would.
        let packets = match srtcp.decrypt_rtcp(data) {
            Ok(plain) => match rtc::rtcp::packet::unmarshal(&mut plain.freeze()) {
                Ok(packets) => packets,
                Err(e) => {
                    tracing::trace!(viewer = viewer.id, error = %e, "viewer's RTCP malformed");
                    return true;
                }
            },
            Err(e) => {
                tracing::trace!(viewer = viewer.id, error = %e, "viewer's SRTCP refused");
                return true;
            }
        };
        count_received(&viewer.feedback, &packets, &mut viewer.reported_loss);
        feedback(
            viewer,
            &packets,
            None,
            &self.feeds,
            &self.feed_of_track,
            &mut self.out,
        );
        true
    }
}

/// Acts on a compound RTCP packet from `viewer`: answers NACKs from the feeds' histories, folds
/// TWCC feedback and REMB into its estimate, and passes keyframe requests up its tracks.
/// `track_id`: the track its core said the packet was about (the core names one per compound
/// packet), for a FIR, which names no media SSRC of its own in its header.
pub(super) fn feedback(
    viewer: &mut Viewer,
    packets: &[Box<dyn rtc::rtcp::Packet>],
    track_id: Option<&str>,
    feeds: &HashMap<u64, Feed>,
    feed_of_track: &HashMap<usize, u64>,
    out: &mut Out,
) {
    for packet in packets {
        let any = packet.as_any();
        // A NACK names its stream; the track id the core gives a compound packet may be another
        // stream's (the one its reception reports name first).
        if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            if let Some(leg) = viewer.legs.iter().position(|l| l.ssrc == nack.media_ssrc) {
                let feed = feed_of_track
                    .get(&(Arc::as_ptr(&viewer.legs[leg].track) as usize))
                    .and_then(|id| feeds.get(id));
                if let Some(feed) = feed {
                    resend(viewer, leg, nack, feed, out);
                }
            }
        } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
            viewer.bwe.on_twcc(cc, Instant::now());
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            viewer.bwe.on_remb(f64::from(remb.bitrate), Instant::now());
        } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            let named = any
                .downcast_ref::<PictureLossIndication>()
                .map(|p| p.media_ssrc)
                .or_else(|| {
                    any.downcast_ref::<FullIntraRequest>()
                        .and_then(|f| f.fir.first().map(|e| e.ssrc))
                });
            let by_ssrc = named.and_then(|ssrc| viewer.legs.iter().find(|l| l.ssrc == ssrc));
            let leg = by_ssrc
                .or_else(|| track_id.and_then(|id| viewer.legs.iter().find(|l| l.track_id == id)));
            if let Some(leg) = leg {
                let track = leg.track.clone();
                tokio::spawn(async move { track.request_keyframe().await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_rtcp;

    #[test]
    fn rtcp_is_told_from_rtp_dtls_and_stun() {
        // A receiver report (PT 201), a TWCC feedback (205), a PLI (206).
        for pt in [201u8, 205, 206] {
            assert!(is_rtcp(&[0x81, pt, 0, 1, 0, 0, 0, 1]), "PT {pt}");
        }
        // RTP with payload type 96 (and with the marker bit: 0xE0).
        assert!(!is_rtcp(&[0x80, 96, 0, 1, 0, 0, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0xE0, 0, 1, 0, 0, 0, 1]));
        // A DTLS record, a STUN binding request, and a runt.
        assert!(!is_rtcp(&[22, 0xFE, 0xFD, 0, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]));
        assert!(!is_rtcp(&[0x81, 201]));
    }
}
