//! Our interceptors on every peer connection: RTCP the application is to see, and feedback
//! counted for metrics.

use super::*;

/// Hands inbound keyframe requests (PLI, FIR) to the application, which relays them upstream;
/// built [`with_nacks`](Self::with_nacks), NACKs and congestion control feedback (TWCC, REMB)
/// too (the UDP mux answers NACKs itself and keeps each viewer's bandwidth estimate).
///
/// webrtc-rs delivers inbound RTCP to the application only when an interceptor marks it
/// `DeliverToApplication`; everything else (reports, TWCC, NACK otherwise) is for the
/// interceptors and is dropped here once they have seen it.
#[derive(Default)]
pub struct KeyframeRequestForwarder {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    /// Hand NACKs to the application too (it answers them itself).
    nacks: bool,
}

impl KeyframeRequestForwarder {
    /// Also hands NACKs to the application.
    pub fn with_nacks() -> Self {
        Self {
            nacks: true,
            ..Self::default()
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> std::result::Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            let nacks = self.nacks;
            packets.retain(|p| {
                let any = p.as_any();
                any.is::<PictureLossIndication>()
                    || any.is::<FullIntraRequest>()
                    || (nacks
                        && (any.is::<TransportLayerNack>()
                            || any.is::<TransportLayerCc>()
                            || any.is::<ReceiverEstimatedMaximumBitrate>()))
            });
            if packets.is_empty() {
                return Ok(());
            }
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> std::result::Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Counts, for metrics, the RTCP feedback crossing one peer connection: NACKs and PLI/FIR in
/// both directions, retransmissions leaving (the NACK responder tags them), and loss from the
/// reception reports of our own streams (cumulative per SSRC; only increases are counted).
///
/// Media packets cost it one attribute check on the way out and nothing on the way in; the
/// counters are the node's shared relaxed atomics.
pub struct FeedbackCounter {
    counters: crate::obs::metrics::Feedback,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    /// Streams we receive (SSRC, highest cumulative loss we reported for it).
    remote: Vec<(u32, u32)>,
    /// Streams we send (SSRC, highest cumulative loss the peer reported for it).
    local: Vec<(u32, u32)>,
}

impl FeedbackCounter {
    pub fn new(counters: crate::obs::metrics::Feedback) -> Self {
        Self {
            counters,
            read: VecDeque::new(),
            write: VecDeque::new(),
            remote: Vec::new(),
            local: Vec::new(),
        }
    }

    /// Counts one compound RTCP packet. `sent`: leaving this node.
    fn count_rtcp(&mut self, packets: &[Box<dyn rtc::rtcp::Packet>], sent: bool) {
        let streams = if sent {
            &mut self.remote
        } else {
            &mut self.local
        };
        count(&self.counters, packets, streams, sent);
    }
}

/// Counts one compound RTCP packet a peer sent us: its NACKs, PLIs and FIRs, and the loss its
/// reception reports say of `local`, the streams we send it (SSRC, highest cumulative loss
/// counted so far). What [`FeedbackCounter`] counts on the way in; the UDP mux, which reads
/// its viewers' RTCP itself, counts with it too.
pub(crate) fn count_received(
    counters: &crate::obs::metrics::Feedback,
    packets: &[Box<dyn rtc::rtcp::Packet>],
    local: &mut [(u32, u32)],
) {
    count(counters, packets, local, false);
}

/// Counts a compound RTCP packet: `sent` leaving this node, else arriving; `streams` are the
/// ones its reception reports may name (ours received when we send it, ours sent otherwise).
fn count(
    c: &crate::obs::metrics::Feedback,
    packets: &[Box<dyn rtc::rtcp::Packet>],
    streams: &mut [(u32, u32)],
    sent: bool,
) {
    for p in packets {
        let any = p.as_any();
        if any.is::<TransportLayerNack>() {
            if sent {
                &c.nacks_sent
            } else {
                &c.nacks_received
            }
            .inc();
        } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            if sent { &c.plis_sent } else { &c.plis_received }.inc();
        } else {
            let reports = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                &rr.reports
            } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                &sr.reports
            } else {
                continue;
            };
            // Reports we send are about streams we receive, and the other way round.
            count_loss(
                reports,
                streams,
                if sent {
                    &c.lost_ingress
                } else {
                    &c.lost_egress
                },
            );
        }
    }
}

/// Adds what `reports` says was lost since the last report, for the streams in `streams`.
fn count_loss(
    reports: &[ReceptionReport],
    streams: &mut [(u32, u32)],
    counter: &prometheus_client::metrics::counter::Counter,
) {
    for report in reports {
        // A 24-bit signed field: "negative" (more duplicates than losses) counts as none.
        if report.total_lost >= 0x80_0000 {
            continue;
        }
        if let Some((_, seen)) = streams.iter_mut().find(|(ssrc, _)| *ssrc == report.ssrc)
            && report.total_lost > *seen
        {
            counter.inc_by(u64::from(report.total_lost - *seen));
            *seen = report.total_lost;
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackCounter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> std::result::Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            self.count_rtcp(packets, false);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> std::result::Result<(), Self::Error> {
        match &msg.message.packet {
            Packet::Rtp(rtp) if msg.message.has(&Attribute::Retransmission) => {
                self.counters.retransmitted_packets.inc();
                self.counters
                    .retransmitted_bytes
                    .inc_by(rtp.payload.len() as u64);
            }
            Packet::Rtcp(packets) => self.count_rtcp(packets, true),
            _ => {}
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for FeedbackCounter {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if !self.local.iter().any(|(ssrc, _)| *ssrc == info.ssrc) {
            self.local.push((info.ssrc, 0));
        }
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.local.retain(|(ssrc, _)| *ssrc != info.ssrc);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if !self.remote.iter().any(|(ssrc, _)| *ssrc == info.ssrc) {
            self.remote.push((info.ssrc, 0));
        }
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.remote.retain(|(ssrc, _)| *ssrc != info.ssrc);
    }
}
