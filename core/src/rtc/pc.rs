//! Building webrtc-rs peer connections the way every Cascade node needs them.
//!
//! One [`PcFactory`] per node holds the media settings (bind address, advertised address, UDP
//! port range) and builds peer connections with the default codecs, the default interceptors
//! (NACK generator and responder, RTCP reports, TWCC), [`KeyframeRequestForwarder`], which
//! hands PLI/FIR to our code so a viewer's keyframe request can travel upstream, and
//! [`FeedbackCounter`], which counts NACKs, PLIs, retransmissions and reported loss for metrics.
//!
//! Also here: [`scan_offer`], a small pure reader of an SDP offer's media sections, used to
//! refuse an offer with nothing to publish or watch before any WebRTC work is done; and
//! [`build_core`], a sans-I/O core from engines (those of [`PcFactory::engines`] or a caller's
//! own, as the load generator's viewers compose them).

use crate::error::{Error, Result};
use crate::media::MediaKind;
use crate::rtc::negotiate::NegotiationError;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, SenderReportBuilder};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::{SettingEngine, SettingEngineBuilder};
use rtc::peer_connection::configuration::{RTCConfiguration, RTCConfigurationBuilder};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit, RTCIceCandidateType,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind, TYPE_RTCP_FB_NACK, TYPE_RTCP_FB_TRANSPORT_CC,
};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler};

mod interceptors;
mod runtime;
pub(crate) use interceptors::count_received;
pub use interceptors::{FeedbackCounter, KeyframeRequestForwarder};

/// Packets behind the newest that a receiving SRTP context still accepts (once each), as
/// browsers (libwebrtc keeps 1024): after a burst (a group of pictures sent to a joining viewer
/// or relay link) a retransmission arrives more than webrtc-rs's default 64 packets behind the
/// newest, and would be refused as a replay.
pub const SRTP_REPLAY_WINDOW: usize = 1024;

/// How many times one lost packet is NACKed at most (100 ms apart).
pub const MAX_NACKS_PER_PACKET: u16 = 3;
/// Packets a sending peer connection keeps per stream to answer NACKs: about 2 s of the
/// reference 2.5 Mbit/s video (webrtc-rs's default, 1,024, pins 4 s of payloads per stream, and
/// the origin has one such stream per relayed layer per room). A power of two.
pub const NACK_SEND_BUFFER: u16 = 512;

/// ICE's timeouts on every core (see [`PcFactory::engines`]): disconnected after this long
/// without word from the peer, failed after [`ICE_FAILED`], with a keepalive every
/// [`ICE_KEEPALIVE`] (from a full agent; an ICE-lite answerer sends none, and hears from its
/// peer by the peer's checks: see [`IceRole`]). A viewer that vanishes (tab closed, process killed) sends no goodbye:
/// it is noticed within seconds, so its resources and the relay link it holds are freed.
pub const ICE_DISCONNECTED: Duration = Duration::from_secs(4);
/// See [`ICE_DISCONNECTED`].
pub const ICE_FAILED: Duration = Duration::from_secs(8);
/// See [`ICE_DISCONNECTED`].
pub const ICE_KEEPALIVE: Duration = Duration::from_secs(2);

/// How a peer connection runs ICE, by which end of the offer it is.
///
/// Every offer a node answers (a WHIP publisher's, a WHEP viewer's, an edge's relay link) comes
/// from a peer it cannot trust yet, and its candidates are addresses that peer chose: a full
/// agent sends connectivity checks to each of them, every 200 ms until they answer, so a
/// stranger's offer listing a third party's addresses made the node send datagrams there (a
/// reflection and amplification vector). So the node answers as an ICE-lite agent (RFC 8445
/// §2.5; `a=ice-lite` in the answer, as mediasoup and Janus do): controlled, it checks no offered
/// candidate, sends no keepalives, answers the peer's valid checks, and sends one check back
/// only to an address that has just sent it a valid check, to confirm the address answers before
/// a pair through it is selected (our `rtc-ice` patch, vendor/README.md). Offers the node makes
/// (the edge's relay link) go to a node it chose, whose answer is lite: those stay full agents,
/// and controlling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceRole {
    /// A full agent: offers, checks the answerer's candidates, nominates.
    Offerer,
    /// ICE-lite: answers, checks no candidate it was told about.
    Answerer,
}

/// Where and how a node's peer connections bind media.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Address the media sockets bind to.
    pub bind_ip: IpAddr,
    /// Address written into ICE candidates, when it differs from `bind_ip` (NAT, Kubernetes).
    pub advertise_ip: Option<IpAddr>,
    /// Inclusive UDP port range; `None` lets the OS pick.
    pub udp_ports: Option<(u16, u16)>,
    /// The ICE-TCP port (`rtc::ice_tcp`; 0: the OS picks), when clients may connect over TCP.
    pub ice_tcp_port: Option<u16>,
    /// The UDP mux, when WHEP viewers share its sockets; `None` gives each viewer a peer
    /// connection of its own.
    pub mux: Option<MuxSettings>,
}

/// Where the UDP mux listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxSettings {
    /// The UDP port every shard's socket binds (0: the OS picks one).
    pub port: u16,
    /// Mux tasks, each with its own socket and viewers (one per core they may use).
    pub shards: u16,
}

/// Which interceptors a core gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreKind {
    /// Sends and receives: NACK generator and responder, RTCP reports, TWCC feedback.
    Full,
    /// A viewer's core that sends media through it: NACK responder and sender reports only
    /// (each receiving stage is one more queue every packet sent passes through).
    SendOnly,
    /// A UDP mux viewer's core, whose media the mux protects and sends itself (`egress`): no
    /// media interceptors; NACKs are handed to the application, which answers them. Offers only
    /// the SRTP profiles `egress::KeyTap` can tell apart.
    OwnMedia,
}

/// Builds peer connections for one node.
pub struct PcFactory {
    settings: MediaSettings,
    next_port: AtomicU32,
    feedback: crate::obs::metrics::Feedback,
    /// How long a session answered by this node may take to connect (`--connect-timeout`).
    connect_timeout: Duration,
    /// The node's ICE-TCP port, once open: answering peer connections then listen for ICE-TCP
    /// too, and their answers send clients through it ([`crate::rtc::ice_tcp::splice_answer`]).
    ice_tcp: std::sync::OnceLock<Arc<crate::rtc::ice_tcp::IceTcp>>,
    /// Offering peer connections may connect to a passive TCP candidate (a client of ICE-TCP).
    tcp_client: bool,
    /// The DTLS certificate of every peer connection built here, made once per process
    /// ([`node_certificate`]); `None` if that failed, and each connection then makes its own.
    certificate: Option<RTCCertificate>,
}

/// A peer connection's configuration with `certificate` as its DTLS certificate (`None`: the
/// connection makes its own).
pub fn configuration_with(certificate: Option<&RTCCertificate>) -> RTCConfiguration {
    let builder = RTCConfigurationBuilder::new();
    match certificate {
        Some(certificate) => builder.with_certificates(vec![certificate.clone()]),
        None => builder,
    }
    .build()
}

/// A self-signed ECDSA P-256 certificate for the node's DTLS. webrtc-rs makes one per peer
/// connection unless given one: a key pair and an X.509 signature, about 10 % of the CPU an
/// answer costs (`cargo bench -p cascade-core --bench negotiate`), paid by every viewer of a
/// flash crowd. One per process is what Janus and mediasoup do; a server's fingerprint tells
/// a client nothing it has to hide, and each session's SRTP keys still come from its own
/// handshake.
pub fn node_certificate() -> Option<RTCCertificate> {
    let provider = rtc::crypto::default_provider().ok()?;
    let params = CertificateParams::new(vec!["cascade".to_owned()]).ok()?;
    RTCCertificate::generate(
        provider.crypto(),
        rtc::crypto::SignatureScheme::EcdsaP256Sha256,
        params,
    )
    .ok()
}

impl std::fmt::Debug for PcFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcFactory")
            .field("settings", &self.settings)
            .finish()
    }
}

/// A built peer connection, behind the trait webrtc-rs returns it as.
pub type Pc = Arc<dyn PeerConnection>;

impl PcFactory {
    pub fn new(settings: MediaSettings) -> Self {
        Self {
            settings,
            next_port: AtomicU32::new(0),
            feedback: crate::obs::metrics::Feedback::default(),
            connect_timeout: crate::rtc::DEFAULT_CONNECT_TIMEOUT,
            ice_tcp: std::sync::OnceLock::new(),
            tcp_client: false,
            certificate: node_certificate(),
        }
    }

    /// The configuration of every peer connection (and mux core) this factory builds: the
    /// node's certificate.
    pub fn configuration(&self) -> RTCConfiguration {
        configuration_with(self.certificate.as_ref())
    }

    /// Offering peer connections can reach a passive TCP candidate they are given with
    /// `add_ice_candidate` (an ICE-TCP client, as the load generator's TCP viewers are).
    pub fn with_tcp_client(mut self) -> Self {
        self.tcp_client = true;
        self
    }

    /// From now on, answering peer connections take ICE-TCP connections through `ice_tcp`
    /// (once set, it stays).
    pub fn set_ice_tcp(&self, ice_tcp: Arc<crate::rtc::ice_tcp::IceTcp>) {
        let _ = self.ice_tcp.set(ice_tcp);
    }

    /// The node's ICE-TCP port, once open.
    pub fn ice_tcp(&self) -> Option<&Arc<crate::rtc::ice_tcp::IceTcp>> {
        self.ice_tcp.get()
    }

    /// Sessions answered with this factory's peer connections that have not connected (ICE
    /// and DTLS) within `timeout` are closed (`--connect-timeout`).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a new session may take to connect before it is closed.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Counts the RTCP feedback of every peer connection built from now on in `feedback`.
    pub fn with_feedback(mut self, feedback: crate::obs::metrics::Feedback) -> Self {
        self.feedback = feedback;
        self
    }

    pub fn settings(&self) -> &MediaSettings {
        &self.settings
    }

    /// Builds a peer connection, a full ICE agent, whose events go to `handler`: for a peer
    /// connection that makes the offer (see [`IceRole`]).
    pub async fn build(&self, handler: Arc<dyn PeerConnectionEventHandler>) -> Result<Pc> {
        self.build_as(IceRole::Offerer, CoreKind::Full, handler)
            .await
    }

    /// Builds a peer connection in `role` (an answerer is an ICE-lite agent: see [`IceRole`])
    /// with `kind`'s interceptors (a subscriber's only sends: [`CoreKind::SendOnly`]), whose
    /// events go to `handler`.
    pub async fn build_as(
        &self,
        role: IceRole,
        kind: CoreKind,
        handler: Arc<dyn PeerConnectionEventHandler>,
    ) -> Result<Pc> {
        match self.settings.udp_ports {
            None => self.build_on(role, kind, handler, 0).await,
            Some((low, high)) => {
                // Walk the range from a rotating start so consecutive sessions do not all retry
                // the same taken ports; a port another process holds makes the build fail and
                // we try the next one.
                let span = u32::from(high - low) + 1;
                let start = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
                let mut last_err = None;
                for i in 0..span {
                    let port = low + ((start + i) % span) as u16;
                    match self.build_on(role, kind, handler.clone(), port).await {
                        Ok(pc) => return Ok(pc),
                        Err(e) => last_err = Some(e),
                    }
                }
                Err(Error::Unavailable(format!(
                    "no free media port in {low}-{high}: {}",
                    last_err.map_or_else(|| "range is empty".into(), |e| e.to_string())
                )))
            }
        }
    }

    /// The counters the node's RTCP feedback is counted in.
    pub fn feedback(&self) -> &crate::obs::metrics::Feedback {
        &self.feedback
    }

    /// The codecs, interceptors and ICE/DTLS settings every peer connection of this node gets,
    /// on its own socket or on the UDP mux; `kind` says which interceptors (see [`CoreKind`]).
    /// A full ICE agent, for a core that offers; [`PcFactory::answering_engines`] for one that
    /// answers.
    pub fn engines(&self, kind: CoreKind) -> Result<(MediaEngine, Registry, SettingEngineBuilder)> {
        self.engines_as(IceRole::Offerer, kind)
    }

    /// As [`PcFactory::engines`], for a core that answers an offer: an ICE-lite agent (see
    /// [`IceRole`]), as the UDP mux builds its viewers' cores.
    pub fn answering_engines(
        &self,
        kind: CoreKind,
    ) -> Result<(MediaEngine, Registry, SettingEngineBuilder)> {
        self.engines_as(IceRole::Answerer, kind)
    }

    fn engines_as(
        &self,
        role: IceRole,
        kind: CoreKind,
    ) -> Result<(MediaEngine, Registry, SettingEngineBuilder)> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs()?;
        // Redundant audio (RFC 2198) over Opus, as browsers offer it: passed through to viewers
        // that take it, cut to its primary blocks for those that do not (`media::red`).
        media_engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: crate::media::red::MIME_TYPE_RED.to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "111/111".to_owned(),
                    rtcp_feedback: Vec::new(),
                },
                payload_type: crate::media::red::PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )?;
        // webrtc-rs's defaults (`register_default_interceptors`), except that a lost packet is
        // NACKed at most `MAX_NACKS_PER_PACKET` times: unbounded, one loss on a relay link was
        // NACKed every 100 ms until it left the receive log (~10 retransmissions per loss,
        // tests/tests/relay_loss.rs), which under load feeds a storm.
        register_nack_feedback(&mut media_engine);
        configure_simulcast_extension_headers(&mut media_engine)?;
        let mut registry = Registry::new();
        match kind {
            CoreKind::Full => {
                registry = registry
                    .with(
                        Slot::NackResponder,
                        NackResponderBuilder::new()
                            .with_size(NACK_SEND_BUFFER)
                            .build(),
                    )
                    .with(
                        Slot::NackGenerator,
                        NackGeneratorBuilder::new()
                            .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                            .build(),
                    );
                registry = configure_twcc_receiver_only(registry, &mut media_engine)?;
                registry = configure_rtcp_reports(registry);
            }
            CoreKind::SendOnly => {
                registry = registry
                    .with(
                        Slot::NackResponder,
                        NackResponderBuilder::new()
                            .with_size(NACK_SEND_BUFFER)
                            .build(),
                    )
                    .with(Slot::SenderReport, SenderReportBuilder::new().build());
            }
            // The mux answers NACKs and sends sender reports itself (`egress`), and numbers
            // its packets for the viewer's TWCC feedback (`media::bwe`).
            CoreKind::OwnMedia => register_twcc_feedback(&mut media_engine)?,
        }
        let forwarder = match kind {
            CoreKind::OwnMedia => KeyframeRequestForwarder::with_nacks(),
            _ => KeyframeRequestForwarder::default(),
        };
        let registry = registry
            // Last in the chain, so every interceptor has seen the RTCP before it is narrowed.
            .with(Slot::from(14_000), forwarder)
            // Below the NACK responder (4_000) on the way out, so retransmissions pass it; on the
            // way in it sees the RTCP before anything consumes it.
            .with(
                Slot::from(3_500),
                FeedbackCounter::new(self.feedback.clone()),
            );
        let mut setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_ice_timeouts(
                Some(ICE_DISCONNECTED),
                Some(ICE_FAILED),
                Some(ICE_KEEPALIVE),
            )
            .with_srtp_replay_protection_window(SRTP_REPLAY_WINDOW)
            .with_lite(role == IceRole::Answerer);
        if let Some(ip) = self.settings.advertise_ip
            && ip != self.settings.bind_ip
        {
            setting_engine =
                setting_engine.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
        }
        if self.settings.bind_ip.is_loopback() {
            setting_engine = setting_engine.with_include_loopback_candidate(true);
        }
        if kind == CoreKind::OwnMedia {
            setting_engine = setting_engine
                .with_srtp_protection_profiles(crate::media::egress::PROFILES.to_vec());
        }
        Ok((media_engine, registry, setting_engine))
    }

    async fn build_on(
        &self,
        role: IceRole,
        kind: CoreKind,
        handler: Arc<dyn PeerConnectionEventHandler>,
        port: u16,
    ) -> Result<Pc> {
        let (media_engine, registry, setting_engine) = self.engines_as(role, kind)?;
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(self.configuration())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting_engine.build())
            .with_handler(handler)
            .with_udp_addrs(vec![std::net::SocketAddr::new(self.settings.bind_ip, port)]);
        if let Some(runtime) = runtime::pc_runtime() {
            builder = builder.with_runtime(runtime);
        }
        if (role == IceRole::Answerer && self.ice_tcp.get().is_some())
            || (role == IceRole::Offerer && self.tcp_client)
        {
            // An answerer's own listener, which the node's ICE-TCP port splices clients'
            // connections to; an offerer's gives it its active TCP candidate.
            builder =
                builder.with_tcp_addrs(vec![std::net::SocketAddr::new(self.settings.bind_ip, 0)]);
        }
        let pc = builder.build().await?;
        Ok(Arc::new(pc))
    }
}

/// A sans-I/O core from a configuration ([`PcFactory::configuration`]), a media engine, an
/// interceptor registry and ICE/DTLS settings, at `now`: a UDP mux viewer's from
/// [`PcFactory::engines`], or one composed by the caller.
pub fn build_core(
    configuration: RTCConfiguration,
    media_engine: MediaEngine,
    registry: Registry,
    setting_engine: SettingEngine,
    now: Instant,
) -> rtc::shared::error::Result<RTCPeerConnection> {
    RTCPeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting_engine)
        .build(now)
}

/// Offers NACK and PLI feedback for video, as webrtc-rs's `configure_nack` does, for callers that
/// compose the NACK interceptors themselves.
pub fn register_nack_feedback(media_engine: &mut MediaEngine) {
    for parameter in ["", "pli"] {
        media_engine.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_NACK.to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
}

/// Offers the transport-wide sequence number header extension and asks for TWCC feedback
/// (`transport-cc`) on audio and video: a mux viewer's bandwidth estimate (`media::bwe`).
pub fn register_twcc_feedback(media_engine: &mut MediaEngine) -> Result<()> {
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        media_engine.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        media_engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(())
}

/// The ICE host candidate (UDP, component 1) at `addr`, as `add_local_candidate` takes it: the
/// one candidate of a core that is answered or offered without trickle ICE.
pub fn host_candidate(addr: SocketAddr) -> rtc::shared::error::Result<RTCIceCandidateInit> {
    host(addr, "udp", rtc::ice::tcp_type::TcpType::Unspecified)
}

/// The passive ICE-TCP host candidate (RFC 6544) at `addr`: the node's ICE-TCP port, which
/// clients connect to (`rtc::ice_tcp`).
pub fn tcp_host_candidate(addr: SocketAddr) -> rtc::shared::error::Result<RTCIceCandidateInit> {
    host(addr, "tcp", rtc::ice::tcp_type::TcpType::Passive)
}

fn host(
    addr: SocketAddr,
    network: &str,
    tcp_type: rtc::ice::tcp_type::TcpType,
) -> rtc::shared::error::Result<RTCIceCandidateInit> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: network.to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type,
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&candidate).to_json()
}

/// One audio or video section of an offer, with the direction the offerer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    pub kind: MediaKind,
    /// The offerer sends media in this section (`sendonly` or `sendrecv`).
    pub sends: bool,
    /// The offerer receives media in this section (`recvonly` or `sendrecv`).
    pub receives: bool,
    /// Simulcast layers the offerer declares it sends here (`a=rid:<id> send` lines).
    pub send_rids: usize,
}

/// Reads the audio and video sections of an SDP offer. Rejected sections (port 0) and other
/// media (application, text) are skipped. Errors say what is wrong, for a 400 answer.
pub fn scan_offer(sdp: &str) -> Result<Vec<OfferedMedia>, NegotiationError> {
    if !sdp.starts_with("v=0") {
        return Err(NegotiationError::BadOffer(
            "body is not an SDP offer (it must start with \"v=0\")".into(),
        ));
    }
    let mut sections = Vec::new();
    let mut current: Option<(Option<MediaKind>, bool, &str, usize)> = None;
    let mut session_dir = "sendrecv";
    let finish = |cur: Option<(Option<MediaKind>, bool, &str, usize)>,
                  out: &mut Vec<OfferedMedia>| {
        if let Some((Some(kind), true, dir, send_rids)) = cur {
            out.push(OfferedMedia {
                kind,
                sends: matches!(dir, "sendonly" | "sendrecv"),
                receives: matches!(dir, "recvonly" | "sendrecv"),
                send_rids,
            });
        }
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            finish(current.take(), &mut sections);
            let mut fields = m.split(' ');
            let kind = fields.next().and_then(MediaKind::parse);
            let port_ok = fields.next().is_some_and(|p| p != "0");
            if fields.next().is_none() {
                return Err(NegotiationError::BadOffer(format!(
                    "malformed media line: {line}"
                )));
            }
            current = Some((kind, port_ok, session_dir, 0));
        } else if let Some(dir @ ("sendrecv" | "sendonly" | "recvonly" | "inactive")) =
            line.strip_prefix("a=")
        {
            match current.as_mut() {
                Some(c) => c.2 = dir,
                None => session_dir = dir,
            }
        } else if let Some(rid) = line.strip_prefix("a=rid:")
            && rid.split(' ').nth(1) == Some("send")
            && let Some(c) = current.as_mut()
        {
            c.3 += 1;
        }
    }
    finish(current.take(), &mut sections);
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";

    fn tagged(packet: Packet, retransmission: bool) -> TaggedPacket {
        let mut message = rtc::interceptor::AttributedPacket::new(packet);
        if retransmission {
            message.add(Attribute::Retransmission);
        }
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message,
        }
    }

    fn rr(ssrc: u32, total_lost: u32) -> Box<dyn rtc::rtcp::Packet> {
        Box::new(ReceiverReport {
            ssrc: 7,
            reports: vec![ReceptionReport {
                ssrc,
                total_lost,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    #[test]
    fn feedback_counter_counts_rtcp_both_ways_and_retransmissions() {
        let feedback = crate::obs::metrics::Feedback::default();
        let mut counter = FeedbackCounter::new(feedback.clone());
        let stream = |ssrc| StreamInfo {
            ssrc,
            ..Default::default()
        };
        counter.bind_local_stream(&stream(1));
        counter.bind_remote_stream(&stream(2));
        let nack = || -> Box<dyn rtc::rtcp::Packet> {
            Box::new(TransportLayerNack {
                media_ssrc: 1,
                ..Default::default()
            })
        };
        let pli = || -> Box<dyn rtc::rtcp::Packet> {
            Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: 1,
            })
        };
        // In: a subscriber's feedback on our stream 1; its cumulative loss goes 5, 3 (late
        // retransmissions), 8; reports on streams we do not send and "negative" loss are ignored.
        for rtcp in [
            vec![nack(), pli(), rr(1, 5)],
            vec![rr(1, 3), rr(99, 1000)],
            vec![rr(1, 8), nack(), rr(1, 0xFF_FFFF)],
        ] {
            counter
                .handle_read(tagged(Packet::Rtcp(rtcp), false))
                .unwrap();
            assert!(counter.poll_read().is_some(), "passed on");
        }
        // Out: our NACK and PLI to a source, our report of stream 2's loss, a retransmission and
        // a first transmission.
        let rtp = |payload: &'static [u8]| {
            Packet::Rtp(rtc::rtp::Packet {
                payload: bytes::Bytes::from_static(payload),
                ..Default::default()
            })
        };
        for msg in [
            tagged(Packet::Rtcp(vec![nack(), pli(), rr(2, 4)]), false),
            tagged(rtp(b"abc"), true),
            tagged(rtp(b"defgh"), false),
        ] {
            counter.handle_write(msg).unwrap();
            assert!(counter.poll_write().is_some(), "passed on");
        }
        let got = |c: &prometheus_client::metrics::counter::Counter| c.get();
        assert_eq!(got(&feedback.nacks_received), 2);
        assert_eq!(got(&feedback.plis_received), 1);
        assert_eq!(got(&feedback.lost_egress), 8);
        assert_eq!(got(&feedback.nacks_sent), 1);
        assert_eq!(got(&feedback.plis_sent), 1);
        assert_eq!(got(&feedback.lost_ingress), 4);
        assert_eq!(got(&feedback.retransmitted_packets), 1);
        assert_eq!(got(&feedback.retransmitted_bytes), 3);
        // A stream that ends is forgotten.
        counter.unbind_local_stream(&stream(1));
        counter
            .handle_read(tagged(Packet::Rtcp(vec![rr(1, 50)]), false))
            .unwrap();
        assert_eq!(got(&feedback.lost_egress), 8);
    }

    #[test]
    fn scans_audio_and_video_sections_with_direction() {
        let media = scan_offer(OFFER).unwrap();
        assert_eq!(
            media,
            vec![
                OfferedMedia {
                    kind: MediaKind::Audio,
                    sends: true,
                    receives: false,
                    send_rids: 0,
                },
                OfferedMedia {
                    kind: MediaKind::Video,
                    sends: true,
                    receives: true,
                    send_rids: 0,
                },
            ]
        );
    }

    #[test]
    fn counts_the_simulcast_layers_a_section_sends() {
        let offer = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rid:l send\r\n\
            a=rid:m send\r\na=rid:h send\r\na=rid:x recv\r\na=simulcast:send l;m;h\r\n";
        let media = scan_offer(offer).unwrap();
        assert_eq!(
            media.iter().map(|m| m.send_rids).collect::<Vec<_>>(),
            [0, 3]
        );
    }

    #[test]
    fn garbage_is_a_bad_request_not_a_panic() {
        for body in [
            "",
            "hello",
            "{\"sdp\":1}",
            "v=0\r\nm=\r\n",
            "v=0\nm=video\n",
        ] {
            match scan_offer(body) {
                Err(NegotiationError::BadOffer(_)) => {}
                other => panic!("{body:?} gave {other:?}"),
            }
        }
        // Well-formed but without media: scanned as empty, the caller decides.
        assert!(scan_offer("v=0\r\ns=-\r\n").unwrap().is_empty());
    }

    /// A browser's WHEP offer: Chrome's audio and video codecs, each video codec with its RTX
    /// payload type and feedback (26 video payload types).
    pub(crate) const CHROME_OFFER: &str = include_str!("../../testdata/chrome-whep-offer.sdp");

    /// The vendored rtc-sdp finds one payload type's codec by parsing only that payload type's
    /// attributes (vendor/README.md). For every payload type it gives exactly what the full
    /// codec map gives: over a browser's offer, and over attributes written oddly (leading
    /// zeros, `+`, a wildcard, a key that holds the whole attribute).
    #[test]
    fn one_payload_types_codec_is_what_the_full_codec_map_says() {
        use rtc::sdp::SessionDescription;
        use rtc::sdp::description::common::Attribute as SdpAttribute;
        use std::collections::HashMap;
        let mut session =
            SessionDescription::unmarshal(&mut std::io::Cursor::new(CHROME_OFFER)).unwrap();
        assert_eq!(session.media_descriptions.len(), 2);
        let odd = [
            ("rtpmap", Some("096 VP8/90000")),
            ("fmtp", Some("+97 apt=96")),
            ("rtcp-fb", Some("* nack")),
            ("rtcp-fb:98 goog-remb", None),
            ("fmtp", Some("98")),
            ("rtpmap", None),
            ("rtpmap", Some("300 X/1")),
            ("rtcp-fb", Some("99\tnack pli")),
        ];
        let mut extra = session.media_descriptions[1].clone();
        extra.attributes = odd
            .iter()
            .map(|(k, v)| SdpAttribute::new(k.to_string(), v.map(str::to_string)))
            .collect();
        session.media_descriptions.push(extra);
        // What `get_codec_for_payload_type` read from before the patch: every media
        // description's codecs, a later one's replacing an earlier one's.
        let mut all = HashMap::new();
        for m in &session.media_descriptions {
            all.extend(m.codecs());
        }
        assert!(all.len() >= 34, "{} codecs", all.len());
        for pt in 0..=u8::MAX {
            assert_eq!(
                session.get_codec_for_payload_type(pt).ok(),
                all.get(&pt).cloned(),
                "payload type {pt}"
            );
            for m in &session.media_descriptions {
                assert_eq!(
                    m.codec(pt),
                    m.codecs().get(&pt).cloned(),
                    "payload type {pt}"
                );
            }
        }
    }

    /// The answer a UDP mux viewer's core gives `offer` with an Opus and a VP8 track, reduced
    /// to what negotiation chose (media sections, direction, codecs, feedback, extensions).
    fn negotiated(offer: &str) -> Vec<String> {
        use rtc::media_stream::MediaStreamTrack;
        use rtc::peer_connection::sdp::RTCSessionDescription;
        use rtc::rtp_transceiver::rtp_sender::{
            RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters,
        };
        let factory = PcFactory::new(MediaSettings {
            bind_ip: "127.0.0.1".parse().unwrap(),
            advertise_ip: None,
            udp_ports: None,
            ice_tcp_port: None,
            mux: None,
        });
        let (media_engine, registry, setting_engine) = factory.engines(CoreKind::OwnMedia).unwrap();
        let now = Instant::now();
        let mut pc = build_core(
            RTCConfigurationBuilder::new().build(),
            media_engine,
            registry,
            setting_engine.build(),
            now,
        )
        .unwrap();
        pc.set_remote_description(now, RTCSessionDescription::offer(offer.into()).unwrap())
            .unwrap();
        for (kind, mime, rate, channels) in [
            (RtpCodecKind::Audio, "audio/opus", 48_000, 2),
            (RtpCodecKind::Video, "video/VP8", 90_000, 0),
        ] {
            let codec = RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate: rate,
                channels,
                ..Default::default()
            };
            pc.add_track(MediaStreamTrack::new(
                "s".into(),
                mime.into(),
                mime.into(),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(1 + channels as u32),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            ))
            .unwrap();
        }
        let answer = pc.create_answer(None).unwrap();
        let mut lines = answer
            .sdp
            .lines()
            .filter(|l| {
                [
                    "m=",
                    "a=rtpmap",
                    "a=fmtp",
                    "a=rtcp-fb",
                    "a=extmap:",
                    "a=mid",
                    "a=send",
                    "a=recv",
                    "a=inactive",
                ]
                .iter()
                .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect::<Vec<_>>();
        // A section's header extensions come in no fixed order (a map's): sorted.
        for run in
            lines.chunk_by_mut(|a, b| a.starts_with("a=extmap:") == b.starts_with("a=extmap:"))
        {
            if run[0].starts_with("a=extmap:") {
                run.sort();
            }
        }
        lines
    }

    /// The answer to a browser's offer, codec by codec, is what it was before the vendored `rtc`
    /// and `rtc-sdp` sped negotiation up (vendor/README.md): the expected lines were recorded
    /// with the crates as published, and the transport-cc feedback and extension a mux viewer
    /// is asked for (`media::bwe`) and the RED it may take (`media::red`) added since.
    #[test]
    fn a_browsers_offer_gets_the_same_answer() {
        let expected: Vec<String> = include_str!("../../testdata/chrome-whep-offer.negotiated")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(negotiated(CHROME_OFFER), expected);
    }
}
