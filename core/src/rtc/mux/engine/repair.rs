//! What a mux viewer is sent besides the media it is forwarded: retransmissions of what it
//! NACKs, sender reports; and what its bandwidth estimate counts of each packet.

use super::*;

/// The transport-wide sequence number extension the viewer's next packet carries, if it
/// negotiated one.
pub(super) fn twcc_ext(id: Option<u8>, bwe: &crate::media::bwe::Bwe) -> Option<TwccExt> {
    id.map(|id| TwccExt {
        id,
        seq: bwe.next_seq(),
    })
}

/// A packet's size on the wire as the bandwidth estimate counts it: RTP with the extension
/// and padding, the SRTP tag, and UDP and IPv4 headers.
pub(super) fn wire_size(packet: &rtc::rtp::Packet, pad: u8, twcc: bool) -> usize {
    packet.marshal_size() + usize::from(pad) + if twcc { 8 } else { 0 } + 16 + 28
}

/// Answers a viewer's NACK with the packets of `leg` it names that are still held, as they were
/// first sent (same SSRC and sequence number: RFC 4585 retransmission without RTX): each NACKed
/// number maps back through the leg's rewriter to a source packet in `feed`'s history or
/// keyframe cache (only one the leg sent, under its current mapping), and a copy is rewritten
/// as it was sent.
pub(super) fn resend(
    viewer: &mut Viewer,
    leg: usize,
    nack: &TransportLayerNack,
    feed: &Feed,
    out: &mut Out,
) {
    let (Some(to), Some(protector)) = (viewer.media_to, viewer.protector.as_mut()) else {
        return;
    };
    let l = &viewer.legs[leg];
    if (viewer.congested || l.video_off) && l.forward.needs_keyframe() {
        // Its video stopped: it starts again at a keyframe, nothing before it is worth resending.
        return;
    }
    if feed.source.is_none() || l.forward.source() != feed.source {
        return;
    }
    let rewriter = l.forward.rewriter();
    // Copied out and back: the rewriter borrows the leg.
    let mut rtx = l.rtx;
    let now = Instant::now();
    let (mut packets, mut bytes, mut refused) = (0u64, 0u64, 0u64);
    for pair in &nack.nacks {
        for seq in pair.into_iter() {
            let Some(packet) = rewriter.source_of(seq).and_then(|source_seq| {
                feed.history
                    .get(source_seq)
                    .or_else(|| feed.cache.get(source_seq))
            }) else {
                tracing::trace!(viewer = viewer.id, seq, "NACKed packet not in the history");
                continue;
            };
            // On the wire: its payload, 12 header bytes, 2 more on the RTX stream.
            let size = packet.payload.len() + 14;
            if !viewer.retransmit_budget.take(now, size) {
                refused += 1;
                continue;
            }
            let mut packet = packet.clone();
            rewriter.rewrite_again(&mut packet);
            if let Some(rtx) = rtx.as_mut() {
                packet = rtx.wrap(&packet);
            }
            let twcc = twcc_ext(viewer.twcc_id, &viewer.bwe);
            if out.push_with(to, |buf| protector.protect_twcc_into(&packet, 0, twcc, buf)) {
                viewer
                    .bwe
                    .sent(wire_size(&packet, 0, twcc.is_some()), now, ProbePart::None);
                packets += 1;
                bytes += packet.payload.len() as u64;
            }
        }
    }
    viewer.legs[leg].rtx = rtx;
    viewer.feedback.retransmitted_packets.inc_by(packets);
    viewer.feedback.retransmitted_bytes.inc_by(bytes);
    if refused > 0 {
        viewer.feedback.retransmits_refused.inc_by(refused);
        tracing::debug!(viewer = viewer.id, refused, "retransmission budget spent");
    }
}

/// Hands the core a sender report for each of the viewer's legs that has sent something; the
/// core protects and queues them (drained by [`Engine::service`]).
pub(super) fn report(viewer: &mut Viewer, now: Instant) {
    let wall = std::time::SystemTime::now();
    for l in &viewer.legs {
        let Some(sr) = l.stats.report(l.ssrc, l.clock_rate, now, wall) else {
            continue;
        };
        if let Some(mut sender) = viewer.pc.rtp_sender(l.sender)
            && let Err(e) = sender.write_rtcp(now, vec![Box::new(sr)])
        {
            tracing::trace!(error = %e, "viewer core refused a sender report");
        }
    }
}

/// How long a leg waits for a keyframe before it asks again: the request, or the keyframe, may
/// have been lost on the way, or the track's limiter refused the request as one too soon after
/// another, whose keyframe came before this leg waited for one.
const KEYFRAME_RETRY: Duration = Duration::from_millis(700);

/// Asks again for the keyframes a viewer's legs have waited for longer than [`KEYFRAME_RETRY`]
/// (a little over a track's limiter interval): a video leg's first keyframe, the one it
/// resumes at, or that of the simulcast layer it is switching to. A leg whose video is off (the
/// gate, a full TCP connection) waits for nothing.
pub(super) fn keep_asking(viewer: &mut Viewer, now: Instant) {
    let congested = viewer.congested;
    for l in viewer.legs.iter_mut() {
        let pending = l.layers.as_ref().and_then(|layers| layers.pending.as_ref());
        let stalled =
            l.forward.needs_keyframe() && !l.forward.is_started() && !l.video_off && !congested;
        let Some(track) = pending.or(stalled.then_some(&l.track)) else {
            l.keyframe_wait = None;
            continue;
        };
        let since = *l.keyframe_wait.get_or_insert(now);
        if now.saturating_duration_since(since) < KEYFRAME_RETRY {
            continue;
        }
        l.keyframe_wait = Some(now);
        tracing::debug!(viewer = viewer.id, "still no keyframe: asking again");
        let track = track.clone();
        tokio::spawn(async move { track.request_keyframe().await });
    }
}
