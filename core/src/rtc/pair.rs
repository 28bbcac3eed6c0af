//! Two sans-I/O WebRTC cores connected in memory (no sockets): a viewer that offers to receive
//! video, and a sender built as the UDP mux builds its viewers' cores. For tests and benchmarks
//! of the per-packet path with a real ICE and DTLS handshake.

use crate::error::{Error, Result};
use crate::media::egress::KeyTap;
use crate::rtc::pc::{CoreKind, MediaSettings, PcFactory};
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

fn core(kind: CoreKind, tap: Option<Arc<KeyTap>>) -> Result<RTCPeerConnection> {
    let factory = PcFactory::new(MediaSettings {
        bind_ip: "127.0.0.1".parse().expect("an address"),
        advertise_ip: None,
        udp_ports: None,
        mux: None,
    });
    let (media, registry, mut settings) = factory.engines(kind)?;
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
        let (viewer_addr, sender_addr): (SocketAddr, SocketAddr) = (
            "10.0.0.1:5000".parse().expect("an address"),
            "10.0.0.2:6000".parse().expect("an address"),
        );
        let tap = KeyTap::new().map_err(|e| Error::Internal(e.to_string()))?;
        let mut viewer = core(CoreKind::Full, None)?;
        let mut sender = core(kind, Some(tap.clone()))?;
        viewer.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )?;
        candidate(&mut viewer, viewer_addr)?;
        let offer = viewer.create_offer(None)?;
        viewer.set_local_description(Instant::now(), offer.clone())?;
        sender.set_remote_description(Instant::now(), RTCSessionDescription::offer(offer.sdp)?)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A connected core wakes for its ICE agent only as often as the agent has something to do
    /// (a keepalive every 2 s), not every 200 ms (vendor/README.md, the `rtc-ice` patch): a
    /// node's hundreds of viewers' cores each woke 5 times a second for nothing. Four seconds
    /// of the cores' time, simulated (they take the time as an argument).
    #[test]
    fn a_connected_core_wakes_for_its_keepalives_only() {
        let mut pair = Pair::connected(CoreKind::OwnMedia).expect("connected");
        let start = Instant::now();
        let end = start + Duration::from_secs(4);
        let (mut now, mut wakeups, mut keepalives) = (start, 0, 0);
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
            while let Some(out) = pair.sender.poll_write() {
                // A STUN message (RFC 5389: the first two bits are zero) from the sender is its
                // consent check; the viewer answers it.
                keepalives += usize::from(out.message.first().is_some_and(|b| b & 0xc0 == 0));
                deliver_at(
                    now,
                    &mut pair.viewer,
                    pair.sender_addr,
                    pair.viewer_addr,
                    out.message,
                );
            }
            while let Some(out) = pair.viewer.poll_write() {
                deliver_at(
                    now,
                    &mut pair.sender,
                    pair.viewer_addr,
                    pair.sender_addr,
                    out.message,
                );
            }
        }
        assert!(keepalives >= 1, "no keepalive sent in 4 s");
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
}
