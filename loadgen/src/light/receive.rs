//! One viewer on a driver: its core, socket and tracks, and its receive path. A datagram goes
//! to the core (ICE, DTLS, RTCP, a track's first packet) or, once DTLS is done and the track is
//! open, is decrypted by the viewer's own SRTP context; either way its RTP is counted by the
//! track's [`TrackCounter`]. A viewer that decrypts its own media NACKs its own losses.

use super::driver::DriverStats;
use super::socket::SocketWaker;
use super::twcc::{TWCC_EVERY, Twcc};
use super::{Outcome, Watched};
use crate::marker;
use crate::nack::{Nacks, rtp_parts, rtp_ssrc};
use crate::peer::PeerError;
use crate::viewer::{SetupError, TrackCounter, ViewerClock, ViewerContext};
use bytes::BytesMut;
use cascade_core::media::egress::KeyTap;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::marshal::Marshal;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// The SSRC a viewer's own NACKs are sent from: not the core's (SRTCP numbers its packets per
/// SSRC, and the core numbers its own). A receive-only viewer's SSRC names nothing else.
const OWN_RTCP_SSRC: u32 = 0x4e41_434b;

/// One viewer on a driver.
pub(super) struct LightViewer {
    pub(super) clock: ViewerClock,
    pub(super) pc: RTCPeerConnection,
    pub(super) socket: UdpSocket,
    pub(super) local_addr: SocketAddr,
    pub(super) waker: Waker,
    pub(super) wake: Arc<SocketWaker>,
    pub(super) tap: Arc<KeyTap>,
    /// The viewer's own SRTP contexts, once DTLS is done (`--viewer-own-srtp`).
    pub(super) own: Option<OwnSrtp>,
    /// Its own TWCC feedback, with its own SRTP (`--viewer-twcc`).
    pub(super) twcc: Option<Twcc>,
    /// When the viewer next looks for losses to NACK (its own media only).
    pub(super) next_nack: Instant,
    /// The core was given a datagram since it was last flushed.
    pub(super) fed_core: bool,
    /// Tracks (video and audio: at most two, compared per packet).
    pub(super) tracks: Vec<LightTrack>,
    /// The video track's SSRC once it opened, and video datagrams seen since (`--viewer-loss`).
    pub(super) video_ssrc: Option<u32>,
    pub(super) video_in: u64,
    /// The core's next timer.
    pub(super) deadline: Option<Instant>,
    pub(super) handed_at: Instant,
    pub(super) connected: bool,
    pub(super) disconnected: bool,
    pub(super) index_at_connect: (u32, u32),
    /// Set when the viewer failed before connecting: the driver ends it.
    pub(super) failure: Option<SetupError>,
    pub(super) done: oneshot::Sender<Outcome>,
}

/// One track a viewer receives.
pub(super) struct LightTrack {
    /// The core's track id.
    id: String,
    ssrc: u32,
    counter: TrackCounter,
    /// Losses being NACKed (by the viewer itself, when it decrypts its own media).
    nacks: Nacks,
}

/// A viewer's own SRTP: the remote context decrypts the edge's media, the local one protects
/// our NACKs.
pub(super) struct OwnSrtp {
    remote: rtc::srtp::context::Context,
    local: rtc::srtp::context::Context,
    /// Where media comes from: where NACKs go.
    peer: Option<SocketAddr>,
}

impl OwnSrtp {
    /// From the keys the core derived (taken from the tap, which forgets them).
    fn new(tap: &KeyTap) -> Result<Self, cascade_core::media::egress::EgressError> {
        let (sending, receiving) = tap.take_both_keys()?;
        Ok(Self {
            // No replay window: a duplicate is counted as one by the track's sequence tracker
            // (the core's context refuses it unseen), and shifting a 1024-packet window per
            // packet was a visible share of the load generator's time.
            remote: receiving.context(None)?,
            local: sending.context(None)?,
            peer: None,
        })
    }
}

impl LightViewer {
    /// Whether to drop this arriving datagram (`--viewer-loss`): SRTP of the video track, and
    /// its turn by `loss`, so drops are evenly spaced (the RTP header and its SSRC are clear).
    pub(super) fn drops(&mut self, datagram: &[u8], loss: f64) -> bool {
        let Some(video) = self.video_ssrc else {
            return false;
        };
        if rtp_ssrc(datagram) != Some(video) {
            return false;
        }
        let n = self.video_in as f64;
        self.video_in += 1;
        ((n + 1.0) * loss).floor() > (n * loss).floor()
    }

    /// Feeds one datagram that arrived at `at`; returns the RTP packets it yielded.
    pub(super) fn read(
        &mut self,
        ctx: &ViewerContext,
        datagram: BytesMut,
        from: SocketAddr,
        at: Instant,
    ) -> u64 {
        if let Some(counted) = self.read_own(ctx, &datagram, from, at) {
            return counted;
        }
        self.fed_core = true;
        let read = self.pc.handle_read(TaggedBytesMut {
            now: at,
            transport: TransportContext {
                local_addr: self.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: datagram,
        });
        if let Err(e) = read {
            log::debug!("viewer {}: handle_read: {e}", self.clock.id);
        }
        self.drain_reads(ctx, marker::ns_at(at))
    }

    /// Decrypts and counts an RTP packet of an open track with the viewer's own SRTP context;
    /// `None` when the datagram is for the core (no own context yet, not RTP, a track the core
    /// has not opened). A packet SRTP refuses (a replay, a bad tag) is dropped, as the core
    /// would.
    fn read_own(
        &mut self,
        ctx: &ViewerContext,
        datagram: &[u8],
        from: SocketAddr,
        at: Instant,
    ) -> Option<u64> {
        let own = self.own.as_mut()?;
        let ssrc = rtp_ssrc(datagram)?;
        let track = self.tracks.iter_mut().find(|t| t.ssrc == ssrc)?;
        own.peer = Some(from);
        let plain = match own.remote.decrypt_rtp(datagram) {
            Ok(plain) => plain,
            Err(e) => {
                log::trace!("viewer {}: SRTP refused a packet: {e}", self.clock.id);
                return Some(0);
            }
        };
        if let Some(twcc) = self.twcc.as_mut() {
            twcc.arrived(&plain, at);
        }
        let Some((_, seq, payload)) = rtp_parts(&plain) else {
            return Some(0);
        };
        track
            .counter
            .packet(ctx, &self.clock, marker::ns_at(at), seq, payload);
        Some(1)
    }

    /// Sends NACKs for what its own media lost (nothing while the core decrypts). `seqs` is
    /// scratch.
    pub(super) fn nack(
        &mut self,
        ctx: &ViewerContext,
        now: Instant,
        seqs: &mut Vec<u16>,
        stats: &mut DriverStats,
    ) {
        let Some(own) = self.own.as_mut() else {
            return;
        };
        let Some(peer) = own.peer else {
            return;
        };
        for track in &mut self.tracks {
            seqs.clear();
            track.nacks.due(track.counter.seq(), now, seqs);
            if seqs.is_empty() {
                continue;
            }
            let nack = TransportLayerNack {
                sender_ssrc: OWN_RTCP_SSRC,
                media_ssrc: track.ssrc,
                nacks: nack_pairs_from_sequence_numbers(seqs),
            };
            let sent = nack
                .marshal()
                .ok()
                .and_then(|plain| own.local.encrypt_rtcp(&plain).ok())
                .is_some_and(|datagram| self.socket.try_send_to(&datagram, peer).is_ok());
            if sent {
                stats.nacks_out += 1;
                ctx.counters.nacks_sent.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.send_errors += 1;
            }
        }
    }

    /// Sends its TWCC feedback when due (own media and `--viewer-twcc` only).
    pub(super) fn send_twcc(&mut self, now: Instant, stats: &mut DriverStats) {
        let (Some(twcc), Some(own)) = (self.twcc.as_mut(), self.own.as_mut()) else {
            return;
        };
        if twcc.next_at > now {
            return;
        }
        twcc.next_at = now + TWCC_EVERY;
        let (Some(peer), Some(media)) = (own.peer, self.video_ssrc) else {
            return;
        };
        let Some(plain) = twcc.feedback(OWN_RTCP_SSRC, media) else {
            return;
        };
        let sent = own
            .local
            .encrypt_rtcp(&plain)
            .ok()
            .is_some_and(|datagram| self.socket.try_send_to(&datagram, peer).is_ok());
        if sent {
            stats.datagrams_out += 1;
        } else {
            stats.send_errors += 1;
        }
    }

    /// Counts what the core decrypted, as arrived at `now_ns`; returns the packets counted.
    fn drain_reads(&mut self, ctx: &ViewerContext, now_ns: u64) -> u64 {
        let mut counted = 0;
        while let Some(message) = self.pc.poll_read() {
            let RTCMessage::RtpPacket(track_id, packet) = message.message else {
                continue;
            };
            // A track's first packet comes with its OnOpen event.
            let track = match self.track(&track_id) {
                Some(i) => i,
                None => {
                    self.handle_events(ctx);
                    match self.track(&track_id) {
                        Some(i) => i,
                        None => continue,
                    }
                }
            };
            counted += 1;
            self.tracks[track].counter.packet(
                ctx,
                &self.clock,
                now_ns,
                packet.header.sequence_number,
                &packet.payload,
            );
        }
        counted
    }

    fn track(&self, track_id: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == track_id)
    }

    fn handle_events(&mut self, ctx: &ViewerContext) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.state_changed(ctx, state);
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.open_track(init);
                }
                _ => {}
            }
        }
    }

    fn state_changed(&mut self, ctx: &ViewerContext, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected if !self.connected => {
                self.connected = true;
                ctx.join_connected
                    .record(self.clock.id, self.clock.since_post_us(marker::now_ns()));
                if ctx.own_srtp {
                    // DTLS is done, so the core has derived its keys.
                    match OwnSrtp::new(&self.tap) {
                        Ok(own) => {
                            self.own = Some(own);
                            if ctx.twcc {
                                self.twcc = Twcc::negotiated(&mut self.pc, Instant::now());
                            }
                        }
                        Err(e) => log::warn!(
                            "viewer {}: no SRTP keys of its own ({e}); its core decrypts",
                            self.clock.id
                        ),
                    }
                }
                ctx.counters.connected.fetch_add(1, Ordering::Relaxed);
                self.index_at_connect = (
                    ctx.publisher.video_next.load(Ordering::Relaxed),
                    ctx.publisher.audio_next.load(Ordering::Relaxed),
                );
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                if self.connected {
                    if !self.disconnected {
                        self.disconnected = true;
                        ctx.counters.disconnected.fetch_add(1, Ordering::Relaxed);
                    }
                } else if self.failure.is_none() {
                    let why = if state == RTCPeerConnectionState::Failed {
                        "failed"
                    } else {
                        "closed"
                    };
                    self.failure = Some(SetupError::Peer(PeerError::NotConnected(why)));
                }
            }
            _ => {}
        }
    }

    fn open_track(&mut self, init: RTCTrackEventInit) {
        if self.track(&init.track_id).is_some() {
            return;
        }
        let Some(receiver) = self.pc.rtp_receiver(init.receiver_id) else {
            return;
        };
        let track = receiver.track();
        let kind = track.kind();
        if kind == RtpCodecKind::Video {
            self.video_ssrc = Some(init.ssrc);
        }
        let mime = track
            .codec(init.ssrc)
            .map(|c| c.mime_type.clone())
            .unwrap_or_default();
        self.tracks.push(LightTrack {
            id: init.track_id,
            ssrc: init.ssrc,
            counter: TrackCounter::new(kind, &mime),
            nacks: Nacks::new(),
        });
    }

    /// Takes the core's events, counts what it still holds, sends what it queued and notes its
    /// next timer. Returns the RTP packets counted.
    pub(super) fn flush(
        &mut self,
        ctx: &ViewerContext,
        now: Instant,
        stats: &mut DriverStats,
    ) -> u64 {
        self.fed_core = false;
        self.handle_events(ctx);
        let counted = self.drain_reads(ctx, marker::ns_at(now));
        while let Some(out) = self.pc.poll_write() {
            // A full send buffer drops the datagram (RTCP or a STUN check): as a lossy network
            // would, and the core retries what matters.
            match self
                .socket
                .try_send_to(&out.message, out.transport.peer_addr)
            {
                Ok(_) => stats.datagrams_out += 1,
                Err(_) => stats.send_errors += 1,
            }
        }
        self.deadline = self.pc.poll_timeout();
        counted
    }

    /// Ends the viewer, handing back what it saw.
    pub(super) fn finish(mut self, ctx: &ViewerContext) {
        let watched = match self.failure.take() {
            Some(e) => Err(e),
            None if !self.connected => Err(SetupError::Stopped),
            None => {
                let mut video = None;
                let mut audio = None;
                for track in self.tracks.drain(..) {
                    let kind = track.counter.kind();
                    let result = track.counter.finish(ctx, &self.clock);
                    match kind {
                        RtpCodecKind::Video => video = Some(result),
                        _ => audio = Some(result),
                    }
                }
                Ok(Watched {
                    disconnected: self.disconnected,
                    index_at_connect: self.index_at_connect,
                    join_us: self.clock.join_us(),
                    video,
                    audio,
                })
            }
        };
        let _ = self.done.send(Outcome {
            pc: self.pc,
            socket: self.socket.into_std().ok(),
            watched,
        });
    }
}
