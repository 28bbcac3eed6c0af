//! Two sans-I/O WebRTC cores connected in memory (no sockets): a viewer that offers to receive
//! video, and a sender built as the UDP mux builds its viewers' cores. For tests and benchmarks
//! of the per-packet path with a real ICE and DTLS handshake.

use crate::error::{Error, Result};
use crate::media::egress::KeyTap;
use crate::rtc::pc::{CoreKind, IceRole, MediaSettings, PcFactory};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sender's SSRC for its one VP8 track.
pub const SSRC: u32 = 0x0bad_cafe;

/// A connected viewer and sender.
pub struct Pair {
    pub viewer: RTCPeerConnection,
    pub sender: RTCPeerConnection,
    /// The sender's crypto provider (it saw the sender's SRTP keys derived).
    pub tap: Arc<KeyTap>,
    /// The sender's track, and the VP8 payload type the viewer accepted.
    pub track: RTCRtpSenderId,
    pub payload_type: u8,
    pub viewer_addr: SocketAddr,
    pub sender_addr: SocketAddr,
}

/// A core that offers (a full ICE agent, as a browser) or answers (ICE-lite, as the UDP mux's
/// viewers' cores).
fn core(kind: CoreKind, role: IceRole, tap: Option<Arc<KeyTap>>) -> Result<RTCPeerConnection> {
    let factory = PcFactory::new(MediaSettings {
        bind_ip: "127.0.0.1".parse().expect("an address"),
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: None,
    });
    let (media, registry, mut settings) = match role {
        IceRole::Offerer => factory.engines(kind)?,
        IceRole::Answerer => factory.answering_engines(kind)?,
    };
    if let Some(tap) = tap {
        settings = settings.with_crypto_provider(tap);
    }
    Ok(RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings.build())
        .build(Instant::now())?)
}

fn candidate(pc: &mut RTCPeerConnection, addr: SocketAddr) -> Result<()> {
    pc.add_local_candidate(crate::rtc::pc::host_candidate(addr)?)?;
    Ok(())
}

/// Hands `datagram`, from `from` to `to_addr`, to the core `to`.
pub fn deliver(
    to: &mut RTCPeerConnection,
    from: SocketAddr,
    to_addr: SocketAddr,
    datagram: bytes::BytesMut,
) {
    deliver_at(Instant::now(), to, from, to_addr, datagram);
}

/// As [`deliver`], arriving at `now` (a test's simulated clock).
pub fn deliver_at(
    now: Instant,
    to: &mut RTCPeerConnection,
    from: SocketAddr,
    to_addr: SocketAddr,
    datagram: bytes::BytesMut,
) {
    let _ = to.handle_read(TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: to_addr,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: datagram,
    });
}

impl Pair {
    /// A viewer and a sender of `kind` (with a [`KeyTap`] as its crypto provider) with one VP8
    /// track, connected (ICE and DTLS done) within 10 s.
    pub fn connected(kind: CoreKind) -> Result<Self> {
        Self::connected_losing(kind, |_| false)
    }

    /// As [`Pair::connected`], over a link that loses the datagrams (either way) `lose` picks.
    pub fn connected_losing(kind: CoreKind, mut lose: impl FnMut(&[u8]) -> bool) -> Result<Self> {
        let Pair {
            mut viewer,
            mut sender,
            tap,
            track,
            viewer_addr,
            sender_addr,
            ..
        } = Self::negotiated(kind, IceRole::Answerer, |offer| offer)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut sender_up, mut viewer_up) = (false, false);
        while !(sender_up && viewer_up) {
            if Instant::now() > deadline {
                return Err(Error::Internal("cores did not connect".into()));
            }
            let now = Instant::now();
            for pc in [&mut viewer, &mut sender] {
                if pc.poll_timeout().is_some_and(|t| t <= now) {
                    let _ = pc.handle_timeout(now);
                }
            }
            while let Some(out) = viewer.poll_write() {
                if !lose(&out.message) {
                    deliver(&mut sender, viewer_addr, sender_addr, out.message);
                }
            }
            while let Some(out) = sender.poll_write() {
                if !lose(&out.message) {
                    deliver(&mut viewer, sender_addr, viewer_addr, out.message);
                }
            }
            for (pc, up) in [(&mut sender, &mut sender_up), (&mut viewer, &mut viewer_up)] {
                while let Some(e) = pc.poll_event() {
                    if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected,
                    ) = e
                    {
                        *up = true;
                    }
                }
            }
            // The cores' timers are real time: let a retransmission timer come due.
            std::thread::sleep(Duration::from_millis(1));
        }
        let payload_type = sender
            .rtp_sender(track)
            .ok_or_else(|| Error::Internal("no sender".into()))?
            .get_parameters()
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/VP8"))
            .map(|c| c.payload_type)
            .ok_or_else(|| Error::Internal("VP8 not negotiated".into()))?;
        Ok(Self {
            viewer,
            sender,
            tap,
            track,
            payload_type,
            viewer_addr,
            sender_addr,
        })
    }

    /// The two cores with one VP8 track, offer and answer exchanged, not connected yet (its
    /// `payload_type` is 0): the sender answers as `role`; the viewer's offer goes through
    /// `offer` first (a test's changes to it).
    pub fn negotiated(
        kind: CoreKind,
        role: IceRole,
        offer: impl FnOnce(String) -> String,
    ) -> Result<Self> {
        let (viewer_addr, sender_addr): (SocketAddr, SocketAddr) = (
            "10.0.0.1:5000".parse().expect("an address"),
            "10.0.0.2:6000".parse().expect("an address"),
        );
        let tap = KeyTap::new().map_err(|e| Error::Internal(e.to_string()))?;
        let mut viewer = core(CoreKind::Full, IceRole::Offerer, None)?;
        let mut sender = core(kind, role, Some(tap.clone()))?;
        viewer.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )?;
        candidate(&mut viewer, viewer_addr)?;
        let local = viewer.create_offer(None)?;
        viewer.set_local_description(Instant::now(), local.clone())?;
        let remote = RTCSessionDescription::offer(offer(local.sdp))?;
        sender.set_remote_description(Instant::now(), remote)?;
        let track = sender.add_track(MediaStreamTrack::new(
            "s".into(),
            "video-0".into(),
            "pair".into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(SSRC),
                    ..Default::default()
                },
                codec: RTCRtpCodec {
                    mime_type: "video/VP8".into(),
                    clock_rate: 90_000,
                    ..Default::default()
                },
                ..Default::default()
            }],
        ))?;
        candidate(&mut sender, sender_addr)?;
        let answer = sender.create_answer(None)?;
        sender.set_local_description(Instant::now(), answer.clone())?;
        viewer
            .set_remote_description(Instant::now(), RTCSessionDescription::answer(answer.sdp)?)?;
        Ok(Self {
            viewer,
            sender,
            tap,
            track,
            payload_type: 0,
            viewer_addr,
            sender_addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MAX_PEER_REFLEXIVE_CANDIDATES: usize = 16;
    use std::collections::HashSet;

    /// A STUN message (RFC 5389: the first two bits are zero).
    fn is_stun(datagram: &[u8]) -> bool {
        datagram.len() >= 20 && datagram[0] & 0xc0 == 0
    }

    /// Whether a STUN message carries attribute `attr`.
    fn has_attribute(message: &[u8], attr: u16) -> bool {
        let mut rest = message.get(20..).unwrap_or_default();
        while rest.len() >= 4 {
            let typ = u16::from_be_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            if typ == attr {
                return true;
            }
            rest = rest.get(4 + len.div_ceil(4) * 4..).unwrap_or_default();
        }
        false
    }

    /// ICE's USE-CANDIDATE attribute (RFC 8445 §16.1): the controlling agent's nomination.
    const USE_CANDIDATE: u16 = 0x0025;

    /// What [`drive`] saw.
    #[derive(Default)]
    struct Traffic {
        /// Every datagram the sender sent: destination, bytes.
        sent: Vec<(SocketAddr, bytes::BytesMut)>,
        /// The viewer's STUN requests carrying USE-CANDIDATE.
        nominations: Vec<bytes::BytesMut>,
        sender_connected: bool,
        viewer_connected: bool,
    }

    /// Runs both cores for `span` of simulated time from `*now` (at least 1 ms a step). A
    /// datagram reaches the other core only when it is addressed to that core's address; the
    /// sender's to anywhere else go nowhere (and are recorded, as all it sends).
    fn drive(pair: &mut Pair, now: &mut Instant, span: Duration) -> Traffic {
        let end = *now + span;
        let mut seen = Traffic::default();
        loop {
            let mut moved = false;
            while let Some(out) = pair.sender.poll_write() {
                moved = true;
                let to = out.transport.peer_addr;
                seen.sent.push((to, out.message.clone()));
                if to == pair.viewer_addr {
                    let (from, at) = (pair.sender_addr, pair.viewer_addr);
                    deliver_at(*now, &mut pair.viewer, from, at, out.message);
                }
            }
            while let Some(out) = pair.viewer.poll_write() {
                moved = true;
                if is_stun(&out.message) && has_attribute(&out.message, USE_CANDIDATE) {
                    seen.nominations.push(out.message.clone());
                }
                if out.transport.peer_addr == pair.sender_addr {
                    let (from, at) = (pair.viewer_addr, pair.sender_addr);
                    deliver_at(*now, &mut pair.sender, from, at, out.message);
                }
            }
            for (pc, up) in [
                (&mut pair.sender, &mut seen.sender_connected),
                (&mut pair.viewer, &mut seen.viewer_connected),
            ] {
                while let Some(e) = pc.poll_event() {
                    if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected,
                    ) = e
                    {
                        *up = true;
                    }
                }
            }
            if moved {
                continue;
            }
            let next = [pair.viewer.poll_timeout(), pair.sender.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end)
                .max(*now + Duration::from_millis(1));
            if next >= end {
                *now = end;
                return seen;
            }
            *now = next;
            for pc in [&mut pair.viewer, &mut pair.sender] {
                if pc.poll_timeout().is_some_and(|t| t <= next) {
                    let _ = pc.handle_timeout(next);
                }
            }
        }
    }

    /// `offer` with `addrs` added as host candidates of its first media section (after the
    /// offerer's own), each its own foundation.
    fn with_candidates(offer: &str, addrs: impl Iterator<Item = SocketAddr>) -> String {
        let mut lines: Vec<String> = offer.lines().map(str::to_owned).collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("a=candidate:"))
            .expect("the offer has a candidate");
        let added = addrs.enumerate().map(|(i, a)| {
            format!(
                "a=candidate:{} 1 udp {} {} {} typ host",
                1000 + i,
                2_130_706_431 - i,
                a.ip(),
                a.port()
            )
        });
        lines.splice(at + 1..at + 1, added);
        lines.join("\r\n") + "\r\n"
    }

    /// The sender's RTCP (a PLI, as if about its own stream) through its selected pair: where
    /// its DTLS and media go.
    fn media_goes_to(pair: &mut Pair, now: Instant) -> Option<SocketAddr> {
        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: SSRC,
            media_ssrc: 1,
        };
        let mut sender = pair.sender.rtp_sender(pair.track)?;
        sender.write_rtcp(now, vec![Box::new(pli)]).ok()?;
        let mut to = None;
        while let Some(out) = pair.sender.poll_write() {
            if !is_stun(&out.message) {
                to = Some(out.transport.peer_addr);
            }
        }
        to
    }

    /// Addresses in `sent` other than `except`.
    fn destinations(
        sent: &[(SocketAddr, bytes::BytesMut)],
        except: SocketAddr,
    ) -> HashSet<SocketAddr> {
        sent.iter()
            .map(|(a, _)| *a)
            .filter(|a| *a != except)
            .collect()
    }

    /// An offer listing 500 candidates at someone else's address (10.9.9.9) makes the node's
    /// core (ICE-lite, as the UDP mux and every session answer) send nothing to any of them: not
    /// while nobody checks in (10 s), not while the real viewer connects and stays connected.
    /// A full agent answering the same offer, as the node did before, checks hundreds of them
    /// within a second: that is the reflection this prevents.
    #[test]
    fn an_ice_lite_answer_sends_nothing_to_the_candidates_an_offer_lists() {
        let listed = |i: u16| SocketAddr::from(([10, 9, 9, 9], 1000 + i));
        let add = |offer: String| with_candidates(&offer, (0..500).map(listed));

        let mut full = Pair::negotiated(CoreKind::OwnMedia, IceRole::Offerer, add).unwrap();
        let mut now = Instant::now();
        let _ = full.sender.handle_timeout(now);
        let mut checked = HashSet::new();
        for _ in 0..5 {
            while let Some(out) = full.sender.poll_write() {
                checked.insert(out.transport.peer_addr);
            }
            now += Duration::from_millis(200);
            let _ = full.sender.handle_timeout(now);
        }
        let checked = checked.iter().filter(|a| a.ip() == listed(0).ip()).count();
        assert!(
            checked >= 400,
            "a full agent checked only {checked} listed candidates"
        );

        let mut pair = Pair::negotiated(CoreKind::OwnMedia, IceRole::Answerer, add).unwrap();
        let answer = pair.sender.local_description().expect("answered").sdp;
        assert!(answer.contains("a=ice-lite"), "{answer}");
        // Nobody checks in: the viewer's datagrams are dropped.
        let mut now = Instant::now();
        let end = now + Duration::from_secs(10);
        let _ = pair.sender.handle_timeout(now);
        let mut sent = 0;
        while now < end {
            while pair.sender.poll_write().is_some() {
                sent += 1;
            }
            while pair.viewer.poll_write().is_some() {}
            now = [pair.sender.poll_timeout(), pair.viewer.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end)
                .max(now + Duration::from_millis(1));
            let _ = pair.sender.handle_timeout(now);
            let _ = pair.viewer.handle_timeout(now);
        }
        assert_eq!(
            sent, 0,
            "the sender sent {sent} datagrams with nobody checking in"
        );

        // The real viewer checks in, connects, and stays connected for 10 s.
        let mut pair = Pair::negotiated(CoreKind::OwnMedia, IceRole::Answerer, add).unwrap();
        let mut now = Instant::now();
        let seen = drive(&mut pair, &mut now, Duration::from_secs(10));
        assert!(
            seen.sender_connected && seen.viewer_connected,
            "did not connect"
        );
        let elsewhere = destinations(&seen.sent, pair.viewer_addr);
        assert!(elsewhere.is_empty(), "the sender sent to {elsewhere:?}");
        assert_eq!(media_goes_to(&mut pair, now), Some(pair.viewer_addr));
    }

    /// A core learns at most `MAX_PEER_REFLEXIVE_CANDIDATES` addresses from valid checks (the
    /// viewer's own, repeated from 40 addresses): the first 16 are answered, and each checked
    /// back once; the rest get nothing. A check that does not authenticate gets nothing.
    #[test]
    fn a_core_learns_at_most_16_addresses_from_checks() {
        let mut pair = Pair::negotiated(CoreKind::OwnMedia, IceRole::Answerer, |o| o).unwrap();
        let mut now = Instant::now();
        let seen = drive(&mut pair, &mut now, Duration::from_secs(3));
        assert!(seen.sender_connected, "did not connect");
        let check = seen
            .nominations
            .last()
            .expect("the viewer nominated")
            .clone();

        let mut forged = check.clone();
        let at = forged.len() - 12; // in MESSAGE-INTEGRITY, before FINGERPRINT
        forged[at] ^= 0xff;
        let stranger = SocketAddr::from(([10, 8, 8, 8], 3000));
        deliver_at(now, &mut pair.sender, stranger, pair.sender_addr, forged);
        assert!(
            pair.sender.poll_write().is_none(),
            "a forged check was answered"
        );

        let from = |i: u16| SocketAddr::from(([10, 7, 7, 7], 2000 + i));
        let mut answered = HashSet::new();
        for i in 0..40 {
            deliver_at(
                now,
                &mut pair.sender,
                from(i),
                pair.sender_addr,
                check.clone(),
            );
            while let Some(out) = pair.sender.poll_write() {
                answered.insert(out.transport.peer_addr);
            }
        }
        let expected: HashSet<_> = (0..MAX_PEER_REFLEXIVE_CANDIDATES as u16)
            .map(from)
            .collect();
        assert_eq!(answered, expected);
        assert_eq!(MAX_PEER_REFLEXIVE_CANDIDATES, 16);
    }

    /// The peer's nomination from an address that never answers a check (a forged source)
    /// moves nothing: the sender's media stays with the viewer. From an address that answers
    /// the one check the sender sends it, the selection moves there (a browser settling on
    /// another pair).
    #[test]
    fn a_nomination_moves_media_only_to_an_address_that_answers() {
        let mut pair = Pair::negotiated(CoreKind::OwnMedia, IceRole::Answerer, |o| o).unwrap();
        let mut now = Instant::now();
        let seen = drive(&mut pair, &mut now, Duration::from_secs(3));
        assert!(seen.sender_connected, "did not connect");
        let nomination = seen
            .nominations
            .last()
            .expect("the viewer nominated")
            .clone();

        let victim = SocketAddr::from(([10, 6, 6, 6], 4000));
        deliver_at(
            now,
            &mut pair.sender,
            victim,
            pair.sender_addr,
            nomination.clone(),
        );
        let mut to_victim = 0;
        while let Some(out) = pair.sender.poll_write() {
            assert_eq!(out.transport.peer_addr, victim);
            assert!(is_stun(&out.message));
            to_victim += 1;
        }
        assert_eq!(to_victim, 2, "an answer and one check back");
        assert_eq!(media_goes_to(&mut pair, now), Some(pair.viewer_addr));

        let moved = SocketAddr::from(([10, 6, 6, 7], 4001));
        deliver_at(now, &mut pair.sender, moved, pair.sender_addr, nomination);
        let mut check = None;
        while let Some(out) = pair.sender.poll_write() {
            if !has_attribute(&out.message, 0x0020) {
                // Not the answer (XOR-MAPPED-ADDRESS): the check.
                check = Some(out.message);
            }
        }
        // The viewer's core answers the check, as the peer at that address would.
        let (viewer, sender) = (pair.viewer_addr, pair.sender_addr);
        deliver_at(
            now,
            &mut pair.viewer,
            sender,
            viewer,
            check.expect("a check back"),
        );
        while let Some(out) = pair.viewer.poll_write() {
            if is_stun(&out.message) {
                deliver_at(now, &mut pair.sender, moved, sender, out.message);
            }
        }
        assert_eq!(media_goes_to(&mut pair, now), Some(moved));
    }

    /// Whether a datagram holds a DTLS ClientKeyExchange: the client's flight 5 (RFC 6347 4.2.4),
    /// which only the DTLS client sends.
    fn has_client_key_exchange(datagram: &[u8]) -> bool {
        let mut rest = datagram;
        while rest.len() >= 13 {
            let (content_type, epoch) = (rest[0], u16::from_be_bytes([rest[3], rest[4]]));
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let Some(body) = rest.get(13..13 + len) else {
                return false;
            };
            // Handshake, unencrypted (epoch 0), message type client_key_exchange.
            if content_type == 22 && epoch == 0 && body.first() == Some(&16) {
                return true;
            }
            rest = &rest[13 + len..];
        }
        false
    }

    /// The extension types of the ClientHello a datagram carries, if it carries one.
    fn client_hello_extensions(datagram: &[u8]) -> Option<Vec<u16>> {
        let mut rest = datagram;
        while rest.len() >= 13 {
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let body = rest.get(13..13 + len)?;
            // Handshake record, message type client_hello, unfragmented.
            if rest[0] == 22 && body.first() == Some(&1) {
                // Handshake header (12), version (2), random (32).
                let mut at = 12 + 2 + 32;
                let session = usize::from(*body.get(at)?);
                at += 1 + session;
                let cookie = usize::from(*body.get(at)?);
                at += 1 + cookie;
                let suites = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
                at += 2 + suites;
                let compression = usize::from(*body.get(at)?);
                at += 1 + compression + 2;
                let mut types = Vec::new();
                while let (Some(t), Some(l)) = (body.get(at..at + 2), body.get(at + 2..at + 4)) {
                    types.push(u16::from_be_bytes([t[0], t[1]]));
                    at += 4 + usize::from(u16::from_be_bytes([l[0], l[1]]));
                }
                return Some(types);
            }
            rest = &rest[13 + len..];
        }
        None
    }

    /// The DTLS client names no server in its ClientHello, as browsers' do not: WebRTC checks
    /// the peer's certificate against the SDP's fingerprint, not a name. (webrtc-rs's DTLS
    /// client sent `localhost` and warned at every handshake that it had no name to send:
    /// vendor/README.md, the `rtc-dtls` patch.)
    #[test]
    fn the_client_hello_names_no_server() {
        let mut hellos = Vec::new();
        let pair = Pair::connected_losing(CoreKind::OwnMedia, |datagram| {
            if let Some(types) = client_hello_extensions(datagram) {
                hellos.push(types);
            }
            false
        });
        assert!(pair.is_ok(), "no handshake: {:?}", pair.err());
        assert!(!hellos.is_empty(), "no ClientHello seen");
        for types in &hellos {
            assert!(
                types.contains(&14),
                "a ClientHello with use_srtp: {types:?}"
            );
            assert!(!types.contains(&0), "server_name sent: {types:?}");
        }
    }

    /// A DTLS client gets the server's first SRTP (here SRTCP) right behind the server's
    /// Finished, both read before anything polls the client's events (as a driver that reads a
    /// batch of datagrams does): the packet is read, not dropped for want of the keys the
    /// handshake's completion carries (vendor/README.md, the `rtc` patch). A WHIP publisher is
    /// the DTLS server to the origin and sends its first keyframe so.
    #[test]
    fn media_right_behind_the_servers_finished_is_read() {
        use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        // The sender answers `a=setup:active`: the viewer is the DTLS server.
        let mut pair = Pair::negotiated(CoreKind::OwnMedia, IceRole::Answerer, |offer| offer)
            .expect("negotiated");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut server_done = false;
        while !server_done {
            assert!(Instant::now() < deadline, "the viewer did not connect");
            let now = Instant::now();
            for pc in [&mut pair.viewer, &mut pair.sender] {
                if pc.poll_timeout().is_some_and(|t| t <= now) {
                    let _ = pc.handle_timeout(now);
                }
            }
            while let Some(out) = pair.sender.poll_write() {
                deliver(
                    &mut pair.viewer,
                    pair.sender_addr,
                    pair.viewer_addr,
                    out.message,
                );
            }
            while let Some(e) = pair.viewer.poll_event() {
                server_done |= matches!(
                    e,
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected
                    )
                );
            }
            if !server_done {
                while let Some(out) = pair.viewer.poll_write() {
                    deliver(
                        &mut pair.sender,
                        pair.viewer_addr,
                        pair.sender_addr,
                        out.message,
                    );
                }
                while pair.sender.poll_event().is_some() {}
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // The viewer's Finished waits in its queue; its first SRTCP goes behind it.
        let receiver = pair.viewer.get_receivers().next().expect("a receiver");
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: SSRC,
        };
        pair.viewer
            .rtp_receiver(receiver)
            .expect("a receiver")
            .write_rtcp(Instant::now(), vec![Box::new(pli)])
            .expect("written");
        let mut datagrams = 0;
        while let Some(out) = pair.viewer.poll_write() {
            datagrams += 1;
            deliver(
                &mut pair.sender,
                pair.viewer_addr,
                pair.sender_addr,
                out.message,
            );
        }
        assert!(datagrams >= 2, "the Finished and the PLI: {datagrams}");
        let mut read = 0;
        while let Some(m) = pair.sender.poll_read() {
            read += usize::from(matches!(
                m.message,
                rtc::peer_connection::message::RTCMessage::RtcpPacket(..)
            ));
        }
        assert_eq!(read, 1, "the PLI was dropped");
    }

    /// The DTLS client's flight 5 is lost, and so is its first retransmission, while the server
    /// repeats its flight 4: the client must send flight 5 again (vendor/README.md, the
    /// `rtc-dtls` patch). Unpatched, the server's repeat disarmed the client's retransmission
    /// timer and the handshake stalled until the server gave up.
    #[test]
    fn a_handshake_survives_the_loss_of_a_whole_flight() {
        let mut first_seen: Option<Instant> = None;
        let mut lost = 0;
        let pair = Pair::connected_losing(CoreKind::OwnMedia, |datagram| {
            if !has_client_key_exchange(datagram) {
                return false;
            }
            let first = *first_seen.get_or_insert_with(Instant::now);
            let lose = first.elapsed() < Duration::from_millis(1500);
            lost += usize::from(lose);
            lose
        });
        assert!(pair.is_ok(), "the handshake stalled: {:?}", pair.err());
        assert!(lost >= 2, "flight 5 lost {lost} times");
    }

    /// The answerer, DTLS client as the node is to its viewers, sends its ClientHello as soon
    /// as ICE has a pair when driven as the UDP mux drives its viewers' cores
    /// (`mux::engine::Engine::service`: writes, then events, and when there were events a
    /// timeout and the writes again), on simulated time. webrtc-rs's DTLS handler hands the
    /// flight out only on a timeout: without the mux's, it waited for the ICE agent's next
    /// timer, up to the offerer's 200 ms check interval.
    #[test]
    fn the_dtls_client_hello_leaves_as_ice_selects_a_pair() {
        let mut pair = Pair::negotiated(CoreKind::OwnMedia, IceRole::Answerer, |offer| offer)
            .expect("negotiated");
        let start = Instant::now();
        let mut now = start;
        let (mut sender_up, mut viewer_up) = (false, false);
        while !(sender_up && viewer_up) && now < start + Duration::from_secs(2) {
            let mut moved = false;
            while let Some(out) = pair.sender.poll_write() {
                moved = true;
                let (from, at) = (pair.sender_addr, pair.viewer_addr);
                deliver_at(now, &mut pair.viewer, from, at, out.message);
            }
            let mut events = false;
            while let Some(e) = pair.sender.poll_event() {
                events = true;
                sender_up |= matches!(
                    e,
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected
                    )
                );
            }
            if events {
                let _ = pair.sender.handle_timeout(now);
                moved = true;
            }
            while let Some(out) = pair.viewer.poll_write() {
                moved = true;
                let (from, at) = (pair.viewer_addr, pair.sender_addr);
                deliver_at(now, &mut pair.sender, from, at, out.message);
            }
            while let Some(e) = pair.viewer.poll_event() {
                viewer_up |= matches!(
                    e,
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected
                    )
                );
            }
            if moved {
                continue;
            }
            now = [pair.viewer.poll_timeout(), pair.sender.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now)
                .max(now + Duration::from_millis(1));
            for pc in [&mut pair.viewer, &mut pair.sender] {
                if pc.poll_timeout().is_some_and(|t| t <= now) {
                    let _ = pc.handle_timeout(now);
                }
            }
        }
        let took = now - start;
        assert!(sender_up && viewer_up, "not connected in {took:?}");
        // ICE takes the offerer's first check (at once) and its nomination; DTLS is four
        // flights with no loss. All of it well within one check interval.
        assert!(
            took < Duration::from_millis(100),
            "connected after {took:?}"
        );
    }

    /// A connected core wakes for its ICE agent only as often as the agent has something to do
    /// (look for the peer's keepalive every 2 s), not every 200 ms (vendor/README.md, the
    /// `rtc-ice` patch): a node's hundreds of viewers' cores each woke 5 times a second for
    /// nothing. Four seconds of the cores' time, simulated (they take the time as an argument).
    /// The sender is ICE-lite, as the mux's cores: the viewer sends the keepalives, the sender
    /// answers them.
    #[test]
    fn a_connected_core_wakes_for_its_keepalives_only() {
        let mut pair = Pair::connected(CoreKind::OwnMedia).expect("connected");
        let start = Instant::now();
        let end = start + Duration::from_secs(4);
        let (mut now, mut wakeups, mut keepalives, mut answers) = (start, 0, 0, 0);
        loop {
            let next = [pair.viewer.poll_timeout(), pair.sender.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end)
                .max(now);
            if next >= end {
                break;
            }
            now = next;
            if pair.sender.poll_timeout().is_some_and(|t| t <= now) {
                // The first wake-up after connecting is the agent noticing it is connected.
                wakeups += 1;
                let _ = pair.sender.handle_timeout(now);
            }
            if pair.viewer.poll_timeout().is_some_and(|t| t <= now) {
                let _ = pair.viewer.handle_timeout(now);
            }
            // A STUN message (RFC 5389: the first two bits are zero) from the viewer is its
            // consent check; from the sender, the answer.
            let stun = |m: &[u8]| usize::from(m.first().is_some_and(|b| b & 0xc0 == 0));
            while let Some(out) = pair.sender.poll_write() {
                answers += stun(&out.message);
                deliver_at(
                    now,
                    &mut pair.viewer,
                    pair.sender_addr,
                    pair.viewer_addr,
                    out.message,
                );
            }
            while let Some(out) = pair.viewer.poll_write() {
                keepalives += stun(&out.message);
                deliver_at(
                    now,
                    &mut pair.sender,
                    pair.viewer_addr,
                    pair.sender_addr,
                    out.message,
                );
            }
        }
        // The answer to a keepalive that came just before the end is still queued.
        while let Some(out) = pair.sender.poll_write() {
            answers += usize::from(out.message.first().is_some_and(|b| b & 0xc0 == 0));
        }
        assert!(keepalives >= 1, "no keepalive sent in 4 s");
        assert!(answers >= 1, "{keepalives} keepalives, no answer");
        // Unpatched: about 20 (one every 200 ms).
        assert!(wakeups <= 4, "{wakeups} wake-ups in 4 s");
        let mut state = None;
        while let Some(e) = pair.sender.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
                state = Some(s);
            }
        }
        assert!(
            matches!(state, None | Some(RTCPeerConnectionState::Connected)),
            "sender went {state:?}"
        );
    }

    /// Whether the sender (ICE-lite, as the node is to a publisher) goes `Disconnected` in 12 s
    /// in which none of the viewer's consent checks arrive, while the viewer sends it media
    /// (`media`) or nothing.
    fn sender_disconnects_without_checks(media: bool) -> bool {
        let mut pair = Pair::connected(CoreKind::OwnMedia).expect("connected");
        while pair.sender.poll_event().is_some() {}
        let start = Instant::now();
        let end = start + Duration::from_secs(12);
        let mut now = start;
        let mut disconnected = false;
        while now < end {
            now += Duration::from_millis(100);
            if pair.sender.poll_timeout().is_some_and(|t| t <= now) {
                let _ = pair.sender.handle_timeout(now);
            }
            if pair.viewer.poll_timeout().is_some_and(|t| t <= now) {
                let _ = pair.viewer.handle_timeout(now);
            }
            while pair.sender.poll_write().is_some() {}
            // The viewer's checks are lost on the way.
            while pair.viewer.poll_write().is_some() {}
            if media {
                // An SRTCP-shaped datagram: past ICE it is media, whatever SRTP makes of it.
                let mut datagram = bytes::BytesMut::from(&[0x80u8, 201, 0, 7][..]);
                datagram.resize(32, 0);
                deliver_at(
                    now,
                    &mut pair.sender,
                    pair.viewer_addr,
                    pair.sender_addr,
                    datagram,
                );
            }
            while let Some(e) = pair.sender.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Disconnected,
                ) = e
                {
                    disconnected = true;
                }
            }
        }
        disconnected
    }

    /// A peer that sends media but checks consent only every 5 s or so (Firefox) stays
    /// connected: media on the selected pair is traffic from the peer (patched `rtc-ice`).
    #[test]
    fn media_on_the_selected_pair_keeps_a_peer_connected() {
        assert!(
            !sender_disconnects_without_checks(true),
            "disconnected while media arrived"
        );
        assert!(
            sender_disconnects_without_checks(false),
            "the check itself sees silence"
        );
    }
}
