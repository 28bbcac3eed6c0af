//! The sans-I/O core a light viewer is built on: receive-only (video and audio), its one ICE
//! candidate its own socket, the interceptors a receiver needs, its SRTP keys noted by a
//! [`KeyTap`]; and its offer.

use crate::peer::PeerError;
use cascade_core::media::egress::KeyTap;
use cascade_core::rtc::pc::{
    ICE_DISCONNECTED, ICE_FAILED, ICE_KEEPALIVE, MAX_NACKS_PER_PACKET, build_core,
};
use rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder, Registry, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfiguration;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a candidate pair is checked before it is given up (webrtc-rs's default: 7 checks,
/// 200 ms apart), whatever the pace of the checks.
const ICE_CHECKING: Duration = Duration::from_millis(1_400);

/// A receive-only core (video and audio) whose one ICE candidate is `local`, and its offer: WHEP
/// without trickle, so the candidate is in the SDP. The core derives its SRTP keys through the
/// returned [`KeyTap`], and offers only the profiles the tap tells apart. Its ICE agent checks
/// every `ice_check` while connecting: its controlling agent nominates a pair at the check
/// after the one that found it, so that pace is most of a join on loopback.
pub(super) fn offer(
    local: SocketAddr,
    ice_check: Duration,
) -> Result<(RTCPeerConnection, String, Arc<KeyTap>), PeerError> {
    let tap = KeyTap::new().map_err(|e| {
        PeerError::Build(cascade_core::Error::Internal(format!(
            "crypto provider: {e}"
        )))
    })?;
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_default_codecs()
        .map_err(PeerError::webrtc("registering codecs"))?;
    let registry = receiver_interceptors(&mut media_engine)
        .map_err(PeerError::webrtc("registering interceptors"))?;
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // As the nodes': a dead edge is noticed within seconds, as by the `pc` engine's viewers.
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED),
            Some(ICE_FAILED),
            Some(ICE_KEEPALIVE),
        )
        .with_ice_connection_attempts(
            Some(ice_check),
            Some((ICE_CHECKING.as_millis() / ice_check.as_millis().max(1)).clamp(7, 280) as u16),
        )
        // As the nodes', and browsers': a joining viewer gets its group of pictures in a burst.
        .with_srtp_replay_protection_window(cascade_core::rtc::pc::SRTP_REPLAY_WINDOW)
        .with_srtp_protection_profiles(cascade_core::media::egress::PROFILES.to_vec())
        .with_crypto_provider(tap.clone())
        .build();
    let now = Instant::now();
    let mut pc = build_core(configuration(), media_engine, registry, settings, now)
        .map_err(PeerError::webrtc("building the peer connection"))?;
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .map_err(PeerError::webrtc("add_transceiver"))?;
    }
    let candidate = cascade_core::rtc::pc::host_candidate(local)
        .map_err(PeerError::webrtc("host candidate"))?;
    pc.add_local_candidate(candidate)
        .map_err(PeerError::webrtc("add_local_candidate"))?;
    // An empty candidate ends gathering.
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(PeerError::webrtc("add_local_candidate"))?;
    let offer = pc
        .create_offer(None)
        .map_err(PeerError::webrtc("create_offer"))?;
    pc.set_local_description(now, offer)
        .map_err(PeerError::webrtc("set_local_description"))?;
    let sdp = pc
        .local_description()
        .map(|d| d.sdp)
        .ok_or(PeerError::NoLocalDescription)?;
    Ok((pc, sdp, tap))
}

/// What a `pc` engine viewer gets from `register_default_interceptors`, less what only a
/// sender uses: the same NACKs, receiver reports and TWCC feedback on the wire, the same SDP
/// (feedback types and header extensions). The NACK responder and the sender reports have
/// nothing to do on a receive-only peer, but every packet would still pass through their queues.
fn receiver_interceptors(
    media_engine: &mut MediaEngine,
) -> Result<Registry, rtc::shared::error::Error> {
    cascade_core::rtc::pc::register_nack_feedback(media_engine);
    configure_simulcast_extension_headers(media_engine)?;
    let registry = Registry::new()
        // A lost packet is NACKed at most as often as the nodes NACK it: unbounded, one loss was
        // re-requested every 100 ms, a storm under load.
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                .build(),
        )
        .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
    configure_twcc_receiver_only(registry, media_engine)
}

/// One DTLS certificate for all this process's viewers (as the nodes have): making one per
/// viewer is a key pair and a signature each, CPU a crowd of simulated viewers would take from
/// the nodes measured on the same machine.
fn configuration() -> RTCConfiguration {
    static CERTIFICATE: std::sync::OnceLock<Option<RTCCertificate>> = std::sync::OnceLock::new();
    cascade_core::rtc::pc::configuration_with(
        CERTIFICATE
            .get_or_init(cascade_core::rtc::pc::node_certificate)
            .as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::peer_connection::RTCPeerConnectionBuilder;

    #[test]
    fn offer_is_receive_only_with_the_socket_as_its_candidate() {
        let local: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        let (_pc, sdp, _tap) = offer(local, Duration::from_millis(50)).unwrap();
        let media: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(media.len(), 2, "{sdp}");
        assert!(media[0].starts_with("m=video") && media[1].starts_with("m=audio"));
        assert_eq!(sdp.matches("a=recvonly").count(), 2, "{sdp}");
        assert!(
            sdp.lines()
                .any(|l| l.starts_with("a=candidate:") && l.contains("127.0.0.1 40123 typ host")),
            "{sdp}"
        );
        assert!(
            sdp.contains("VP8/90000") && sdp.contains("opus/48000"),
            "{sdp}"
        );
    }

    #[test]
    fn receiver_interceptors_negotiate_what_the_default_ones_do() {
        let negotiated = |default: bool| {
            let mut media_engine = MediaEngine::default();
            media_engine.register_default_codecs().unwrap();
            let registry = if default {
                rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors(
                    Registry::new(),
                    &mut media_engine,
                )
                .unwrap()
            } else {
                receiver_interceptors(&mut media_engine).unwrap()
            };
            let mut pc = RTCPeerConnectionBuilder::new()
                .with_media_engine(media_engine)
                .with_interceptor_registry(registry)
                .build(Instant::now())
                .unwrap();
            for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
                pc.add_transceiver_from_kind(kind, None).unwrap();
            }
            let sdp = pc.create_offer(None).unwrap().sdp;
            // Per media section, in any order (header extensions come out of a hash map).
            let mut lines = Vec::new();
            let mut section = String::new();
            for l in sdp.lines() {
                if l.starts_with("m=") {
                    section = l.to_owned();
                }
                if l.starts_with("a=rtcp-fb") || l.starts_with("a=extmap") {
                    lines.push(format!("{section} | {l}"));
                }
            }
            lines.sort();
            lines
        };
        let default = negotiated(true);
        assert!(default.iter().any(|l| l.contains("transport-cc")));
        assert!(default.iter().any(|l| l.ends_with(" nack pli")));
        assert_eq!(negotiated(false), default);
    }
}
