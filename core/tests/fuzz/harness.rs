//! The fuzz harness: one entry point per parser of outside bytes, each fed an arbitrary input
//! through the public API the node uses, and driven by `core/tests/fuzz.rs` (seeded random and
//! mutated inputs, bounded in time; a coverage-guided libFuzzer crate could include this file
//! by path).
//!
//! An entry point returns normally on any input: the parsers answer errors, and a panic (or an
//! assertion below, where a property must hold whatever the input) is a bug.
//!
//! Inputs that carry several messages (datagrams, packets) are records: a tag byte, a 16-bit
//! big-endian length and that many bytes (the last record takes what is left).

#![allow(dead_code)]

use axum::http::{HeaderMap, HeaderValue, header};
use cascade_core::api::auth::{Auth, Grant};
use cascade_core::cluster::routing::Role;
use cascade_core::config::{NodeArgs, parse_port_range};
use cascade_core::media::MediaKind;
use cascade_core::media::egress::{History, KeyTap, Protector};
use cascade_core::media::forward::{
    Codec, KeyframeCache, Leg, Rewriter, keyframe_start, strip_extensions,
};
use cascade_core::rtc::mux::stun_local_ufrag;
use cascade_core::rtc::negotiate::Offer;
use cascade_core::rtc::pair::{Pair, deliver_at};
use cascade_core::rtc::pc::{
    CoreKind, FeedbackCounter, KeyframeRequestForwarder, MediaSettings, PcFactory, build_core,
    host_candidate, scan_offer,
};
use rtc::interceptor::{AttributedPacket, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::marshal::{Marshal, Unmarshal};
use rtc::srtp::context::Context;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A record of an input: `tag`, then `bytes` behind their length.
pub fn record(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("a record under 64 KiB");
    let mut out = vec![tag];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The records of `data` (see the module docs), at most `max` of them.
pub fn records(mut data: &[u8], max: usize) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 3 && out.len() < max {
        let tag = data[0];
        let len = usize::from(u16::from_be_bytes([data[1], data[2]])).min(data.len() - 3);
        out.push((tag, &data[3..3 + len]));
        data = &data[3 + len..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SDP: the offer scanner, and an offer answered by a viewer's core as the UDP mux builds it.
// ---------------------------------------------------------------------------------------------

/// Where the harness's cores say they are.
const HOST: &str = "127.0.0.1:7882";

fn factory() -> PcFactory {
    PcFactory::new(MediaSettings {
        bind_ip: "127.0.0.1".parse().expect("an address"),
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: None,
    })
}

/// An SDP offer, as a WHEP request body: read by [`Offer::parse`] and, when it asks to receive
/// something, answered as `rtc::mux::negotiate` does (a mux viewer's core, one track per
/// receiving section, the shard's host candidate).
pub fn sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let scanned = scan_offer(&text);
    let Ok(offer) = Offer::parse(&text) else {
        assert!(scanned.is_err(), "scan_offer and Offer::parse disagree");
        return;
    };
    assert_eq!(scanned.ok().as_ref(), Some(&offer.media));
    let _ = offer.sending();
    let receiving = offer.receiving();
    if receiving.is_empty() {
        return;
    }
    let _ = answer(&offer.sdp, &receiving);
}

/// The answer of a mux viewer's core to `offer`, with a track of each kind in `receiving`.
pub fn answer(offer: &str, receiving: &[MediaKind]) -> Result<String, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let factory = factory();
    let (media, registry, settings) = factory
        .answering_engines(CoreKind::OwnMedia)
        .map_err(|x| e(&x))?;
    let tap = KeyTap::new().map_err(|x| e(&x))?;
    let settings = settings
        .with_ice_credentials(
            "fuzzufragfuzzufr".into(),
            "fuzzpasswordfuzzpasswordfuzzpass".into(),
        )
        .with_crypto_provider(tap)
        .build();
    let now = Instant::now();
    let mut pc =
        build_core(factory.configuration(), media, registry, settings, now).map_err(|x| e(&x))?;
    let offer = RTCSessionDescription::offer(offer.to_owned()).map_err(|x| e(&x))?;
    pc.set_remote_description(now, offer).map_err(|x| e(&x))?;
    let mut senders = Vec::new();
    for (i, kind) in receiving.iter().take(4).enumerate() {
        let track = sending_track(*kind, i, 0x1000 + i as u32);
        senders.push(pc.add_track(track).map_err(|x| e(&x))?);
    }
    let candidate = host_candidate(HOST.parse().expect("an address")).map_err(|x| e(&x))?;
    pc.add_local_candidate(candidate).map_err(|x| e(&x))?;
    let answer = pc.create_answer(None).map_err(|x| e(&x))?;
    pc.set_local_description(now, answer).map_err(|x| e(&x))?;
    for sender in senders {
        if let Some(mut s) = pc.rtp_sender(sender) {
            let _ = s.get_parameters().rtp_parameters.codecs.len();
        }
    }
    pc.local_description()
        .map(|d| d.sdp)
        .ok_or_else(|| "no local description".into())
}

/// A room track as `negotiate::sending_track` gives it a viewer: VP8 video or Opus audio.
fn sending_track(kind: MediaKind, index: usize, ssrc: u32) -> MediaStreamTrack {
    let (codec_kind, mime, clock_rate, channels) = match kind {
        MediaKind::Audio => (RtpCodecKind::Audio, "audio/opus", 48_000, 2),
        MediaKind::Video => (RtpCodecKind::Video, "video/VP8", 90_000, 0),
    };
    MediaStreamTrack::new(
        "cascade-fuzz".into(),
        format!("{}-{index}", kind.as_str()),
        format!("fuzz {}", kind.as_str()),
        codec_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )
}

// ---------------------------------------------------------------------------------------------
// The UDP mux's input: datagrams classified and handed to a connected viewer's core.
// ---------------------------------------------------------------------------------------------

/// How a mux datagram record is delivered (its tag, modulo this many).
pub const MUX_MODES: u8 = 7;
/// The datagram from the viewer's address, to the mux's core (as the engine routes it).
pub const MUX_RAW: u8 = 0;
/// From an address the mux does not know: delivered only if it is STUN (the engine routes STUN
/// by its ufrag; the core checks the rest).
pub const MUX_NEW_ADDR: u8 = 1;
/// Protected as SRTCP with the viewer's keys first: the core decrypts it and parses the RTCP.
pub const MUX_SRTCP: u8 = 2;
/// Protected as SRTP with the viewer's keys first.
pub const MUX_SRTP: u8 = 3;
/// Attributes of a STUN message that the harness types (byte 0..2), gives a transaction id,
/// the viewer's USERNAME, MESSAGE-INTEGRITY with the mux core's password and a FINGERPRINT:
/// an authenticated message from the viewer, from a new address.
pub const MUX_STUN: u8 = 4;
/// The datagram to the viewer (a browser's full core), from the mux's address.
pub const MUX_TO_VIEWER: u8 = 5;
/// Time passes (byte 0 × 20 ms): both cores' timers run and they exchange what they send.
pub const MUX_TICK: u8 = 6;

/// A connected viewer and mux core, kept from input to input (connecting takes a handshake).
struct MuxState {
    pair: Pair,
    /// SRTCP and SRTP contexts of the viewer's keys, to protect datagrams as it would.
    srtcp: Context,
    srtp: Context,
    /// The mux core's ICE credentials, and the viewer's ufrag.
    ufrag: String,
    pwd: String,
    remote_ufrag: String,
    now: Instant,
    inputs: u32,
    broken: bool,
    next_port: u16,
}

/// Inputs a connected pair takes before a fresh one is made (bounds the state one carries).
const MUX_INPUTS_PER_PAIR: u32 = 20_000;

thread_local! {
    static MUX: RefCell<Option<MuxState>> = const { RefCell::new(None) };
}

fn ice_credentials(pc: &RTCPeerConnection) -> (String, String) {
    let sdp = pc.local_description().map(|d| d.sdp).unwrap_or_default();
    let find = |key: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (find("a=ice-ufrag:"), find("a=ice-pwd:"))
}

impl MuxState {
    fn new() -> Self {
        let pair = Pair::connected(CoreKind::OwnMedia).expect("the cores connect");
        let (_, viewer_keys) = pair.tap.take_both_keys().expect("the cores derived keys");
        let srtcp = viewer_keys.context(None).expect("an SRTCP context");
        let srtp = viewer_keys.context(None).expect("an SRTP context");
        let (ufrag, pwd) = ice_credentials(&pair.sender);
        let (remote_ufrag, _) = ice_credentials(&pair.viewer);
        Self {
            pair,
            srtcp,
            srtp,
            ufrag,
            pwd,
            remote_ufrag,
            now: Instant::now(),
            inputs: 0,
            broken: false,
            next_port: 20_000,
        }
    }

    /// A STUN message from the viewer to the mux core, authenticated, around `bytes`.
    fn stun(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        use rtc::stun::attributes::{ATTR_USERNAME, AttrType};
        use rtc::stun::fingerprint::FINGERPRINT;
        use rtc::stun::integrity::MessageIntegrity;
        use rtc::stun::message::{Message, Setter, TransactionId};
        // Byte 0: bit 1 asks for the type in bytes 0-1 (else a binding request); bytes 2-13
        // are the transaction id; then records of attributes.
        let (head, rest) = bytes.split_at_checked(14).unwrap_or((&[0; 14], bytes));
        let mut m = Message::new();
        m.transaction_id = TransactionId(head[2..14].try_into().ok()?);
        m.write_header();
        let typ = if head[0] & 2 != 0 {
            u16::from_be_bytes([head[0] >> 2, head[1]])
        } else {
            0x0001
        };
        m.raw[0..2].copy_from_slice(&typ.to_be_bytes());
        m.add(
            ATTR_USERNAME,
            format!("{}:{}", self.ufrag, self.remote_ufrag).as_bytes(),
        );
        for (kind, value) in records(rest, 16) {
            // Attribute types from a small range, so the ICE ones (0x0024..0x002a, 0x8029,
            // 0x802a, 0xc057) come up often.
            let t = match kind % 4 {
                0 => 0x0024 + u16::from(kind >> 2) % 8,
                1 => 0x8028 + u16::from(kind >> 2) % 4,
                2 => 0xc057,
                _ => u16::from(kind),
            };
            m.add(AttrType(t), value);
        }
        let provider = rtc::crypto::default_provider().ok()?;
        MessageIntegrity::new_short_term_integrity_with_provider(
            self.pwd.clone(),
            provider.crypto(),
        )
        .add_to(&mut m)
        .ok()?;
        FINGERPRINT.add_to(&mut m).ok()?;
        Some(m.raw)
    }

    /// Drains what the cores queued: the mux core's RTCP as the engine reads it, every event
    /// (a closed or failed connection is replaced before the next input).
    fn service(&mut self) {
        let p = &mut self.pair;
        for pc in [&mut p.sender, &mut p.viewer] {
            while let Some(e) = pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                ) = e
                {
                    self.broken = true;
                }
            }
        }
        while let Some(message) = p.sender.poll_read() {
            if let RTCMessage::RtcpPacket(_track, packets) = message.message {
                let (rewriter, history) = nack_fixture();
                for packet in &packets {
                    answer_feedback(packet.as_ref(), &rewriter, &history);
                }
            }
        }
        while p.viewer.poll_read().is_some() {}
    }

    /// Both cores' timers at `self.now`, and what they send delivered to each other.
    fn exchange(&mut self) {
        let now = self.now;
        let p = &mut self.pair;
        for pc in [&mut p.sender, &mut p.viewer] {
            if pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = pc.handle_timeout(now);
            }
        }
        for _ in 0..16 {
            let mut quiet = true;
            while let Some(out) = p.sender.poll_write() {
                quiet = false;
                deliver_at(
                    now,
                    &mut p.viewer,
                    p.sender_addr,
                    p.viewer_addr,
                    out.message,
                );
            }
            while let Some(out) = p.viewer.poll_write() {
                quiet = false;
                deliver_at(
                    now,
                    &mut p.sender,
                    p.viewer_addr,
                    p.sender_addr,
                    out.message,
                );
            }
            if quiet {
                break;
            }
        }
    }

    fn datagram(&mut self, mode: u8, bytes: &[u8]) {
        let now = self.now;
        let from = self.pair.viewer_addr;
        let to = self.pair.sender_addr;
        match mode % MUX_MODES {
            MUX_RAW => deliver_at(now, &mut self.pair.sender, from, to, bytes.into()),
            MUX_NEW_ADDR => {
                if is_stun(bytes) {
                    let from = self.new_addr();
                    deliver_at(now, &mut self.pair.sender, from, to, bytes.into());
                }
            }
            MUX_SRTCP => {
                if let Ok(d) = self.srtcp.encrypt_rtcp(bytes) {
                    deliver_at(now, &mut self.pair.sender, from, to, d);
                }
            }
            MUX_SRTP => {
                if let Ok(d) = self.srtp.encrypt_rtp(bytes) {
                    deliver_at(now, &mut self.pair.sender, from, to, d);
                }
            }
            MUX_STUN => {
                if let Some(d) = self.stun(bytes) {
                    // Mostly from the viewer's address; sometimes from a new one (a network
                    // change, or a spoofer who has the credentials).
                    let from = if bytes.first().is_some_and(|b| b & 1 != 0) {
                        self.new_addr()
                    } else {
                        from
                    };
                    deliver_at(now, &mut self.pair.sender, from, to, d[..].into());
                }
            }
            MUX_TO_VIEWER => {
                let viewer_addr = self.pair.viewer_addr;
                deliver_at(now, &mut self.pair.viewer, to, viewer_addr, bytes.into());
            }
            _ => {
                let step = bytes.first().copied().unwrap_or(1);
                self.now += Duration::from_millis(u64::from(step) * 20);
                self.exchange();
            }
        }
        // What the mux core sends goes out (the engine queues it): drained, not delivered,
        // except on a tick.
        while self.pair.sender.poll_write().is_some() {}
        while self.pair.viewer.poll_write().is_some() {}
        self.service();
    }

    fn new_addr(&mut self) -> SocketAddr {
        self.next_port = self.next_port.wrapping_add(1).max(1024);
        SocketAddr::from(([10, 0, 0, 3], self.next_port))
    }
}

/// RFC 7983's first-byte classes, as the mux engine tells STUN from the rest.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| *b < 4)
}

/// Datagrams a UDP mux shard receives: classified and routed as its engine does (a STUN
/// message's ufrag), then handed to a connected viewer's core (`CoreKind::OwnMedia`, built
/// as the mux builds it) in the ways [`MUX_MODES`] lists.
pub fn mux(data: &[u8]) {
    let records = records(data, 64);
    for (_, bytes) in &records {
        if let Some(ufrag) = stun_local_ufrag(bytes) {
            assert!(
                is_stun(bytes),
                "a ufrag read from a datagram that is not STUN"
            );
            assert!(!ufrag.contains(':'));
        }
    }
    MUX.with(|cell| {
        let mut state = cell.borrow_mut();
        if state
            .as_ref()
            .is_none_or(|s| s.broken || s.inputs >= MUX_INPUTS_PER_PAIR)
        {
            *state = Some(MuxState::new());
        }
        let state = state.as_mut().expect("just made");
        state.inputs += 1;
        for (mode, bytes) in records {
            state.datagram(mode, bytes);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// RTP: parsing, and forwarding (decisions, rewriting, caches, SRTP) as a room and the mux do.
// ---------------------------------------------------------------------------------------------

const LEG_SSRC: u32 = 0x5eed_0001;
const LEG_PT: u8 = 96;

/// A Protector over fixed keys, derived through a [`KeyTap`] as a viewer's core derives them.
fn protector() -> Protector {
    use rtc::crypto::RTCCryptoProvider;
    use rtc::srtp::protection_profile::ProtectionProfile;
    let tap = KeyTap::new().expect("a crypto provider");
    let profile = ProtectionProfile::AeadAes128Gcm;
    let (key, salt) = (vec![7u8; profile.key_len()], vec![9u8; profile.salt_len()]);
    let _context =
        Context::new(&key, &salt, profile, None, None, tap.crypto()).expect("an SRTP context");
    let keys = tap.take_sending_keys().expect("keys noted");
    Protector::new(&keys).expect("a protector")
}

thread_local! {
    static PROTECTOR: RefCell<Option<Protector>> = const { RefCell::new(None) };
}

/// Records of RTP packets (tag: bits 0-1 the leg's codec, 2-3 the source, 4-7 the milliseconds
/// since the previous packet and the padding asked for): each parsed, and what parses is
/// checked for a keyframe, kept in a feed's history and keyframe cache, stripped of its
/// extensions and forwarded by one leg (a rewrite; for `Other`, cut as RED to its primary
/// block), then protected; the NACK path maps each
/// forwarded number back to its source packet and rewrites it again.
pub fn rtp(data: &[u8]) {
    const CODECS: [Codec; 4] = [Codec::Vp8, Codec::H264, Codec::Opus, Codec::Other];
    let records = records(data, 256);
    let Some(first) = records.first() else {
        return;
    };
    let codec = CODECS[usize::from(first.0 & 3)];
    let clock = if codec == Codec::Opus { 48_000 } else { 90_000 };
    let mut leg = Leg::new(Rewriter::new(LEG_SSRC, 0, 4242), codec, clock);
    // RED arrives as a codec the rewriter does not look into; cut to its primary blocks.
    leg.set_payload_type(LEG_PT, codec == Codec::Other);
    let mut history = History::default();
    let mut cache = KeyframeCache::new(64);
    let mut out = Vec::new();
    let mut now = Instant::now();
    PROTECTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let protector = slot.get_or_insert_with(protector);
        for (tag, bytes) in records {
            let Ok(packet) = Packet::unmarshal(&mut &bytes[..]) else {
                continue;
            };
            let _ = packet.marshal();
            for c in CODECS {
                let _ = keyframe_start(c, &packet.payload);
            }
            let keyframe = keyframe_start(codec, &packet.payload);
            let source = u32::from((tag >> 2) & 3);
            now += Duration::from_millis(u64::from(tag >> 4));
            history.push(packet.clone());
            cache.push(&packet, keyframe);
            let _ = (cache.snapshot().len(), cache.is_valid());
            let source_seq = packet.header.sequence_number;
            let mut forwarded = packet;
            strip_extensions(&mut forwarded);
            assert!(forwarded.header.extensions.is_empty() && !forwarded.header.extension);
            if !leg.forward(&mut forwarded, source, keyframe, now) {
                continue;
            }
            let h = &forwarded.header;
            assert_eq!((h.ssrc, h.payload_type), (LEG_SSRC, LEG_PT));
            // A NACK for what was just sent names this packet.
            let rewriter = leg.rewriter();
            assert_eq!(rewriter.source_of(h.sequence_number), Some(source_seq));
            if let Some(again) = history.get(source_seq) {
                let mut again = again.clone();
                strip_extensions(&mut again);
                rewriter.rewrite_again(&mut again);
                assert_eq!(again.header.sequence_number, h.sequence_number);
            }
            // Refused (too large), the buffer is left as it was.
            out.clear();
            if !protector.protect_into(&forwarded, tag >> 4, &mut out) {
                assert!(out.is_empty());
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// RTCP: parsing, the interceptors of ours that read it, and the mux's answers to feedback.
// ---------------------------------------------------------------------------------------------

/// A leg that has forwarded packets 1000..1100 of a stream, and their history: what a NACK is
/// answered from.
fn nack_fixture() -> (Rewriter, History) {
    let mut rewriter = Rewriter::new(LEG_SSRC, LEG_PT, 300);
    let mut history = History::default();
    for seq in 1000..1100u16 {
        let mut packet = Packet::default();
        packet.header.sequence_number = seq;
        packet.header.timestamp = u32::from(seq) * 3000;
        history.push(packet.clone());
        let _ = rewriter.rewrite(&mut packet);
    }
    (rewriter, history)
}

/// What the mux engine does with one RTCP packet a viewer sent: a NACK's numbers mapped back
/// to source packets and rewritten for resending; a PLI or FIR matched to a leg.
pub fn answer_feedback(
    packet: &dyn rtc::rtcp::packet::Packet,
    rewriter: &Rewriter,
    history: &History,
) {
    let any = packet.as_any();
    if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
        let _ = nack.media_ssrc == LEG_SSRC;
        for pair in &nack.nacks {
            for seq in pair.into_iter() {
                if let Some(p) = rewriter.source_of(seq).and_then(|s| history.get(s)) {
                    let mut p = p.clone();
                    rewriter.rewrite_again(&mut p);
                    assert_eq!(p.header.sequence_number, seq);
                }
            }
        }
    } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        let _ = pli.media_ssrc == LEG_SSRC;
    } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
        let _ = fir.fir.len();
    }
}

fn tagged(packets: Vec<Box<dyn rtc::rtcp::packet::Packet>>) -> TaggedPacket {
    TaggedPacket {
        now: Instant::now(),
        transport: Default::default(),
        message: AttributedPacket::new(rtc::interceptor::Packet::Rtcp(packets)),
    }
}

/// A compound RTCP packet, as a core parses what a viewer or relay peer sends once SRTCP has
/// decrypted it: every packet in it marshalled back, shown, passed through our interceptors
/// (`KeyframeRequestForwarder`, `FeedbackCounter`) both ways, and answered as the mux does.
pub fn rtcp(data: &[u8]) {
    let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &data[..]) else {
        return;
    };
    let (rewriter, history) = nack_fixture();
    for p in &packets {
        // `Debug`, as logs format packets. rtc-rtcp 0.21.1's `Display` of a REMB indexes past
        // its unit table for a bitrate of 10^21 b/s or more (regressions/rtcp/); nothing in the
        // node or its dependencies formats a received RTCP packet with `Display`.
        let _ = (
            p.header(),
            p.destination_ssrc(),
            p.raw_size(),
            format!("{p:?}"),
        );
        let _ = (p.marshal(), p.cloned());
        answer_feedback(p.as_ref(), &rewriter, &history);
    }
    let _ = rtc::rtcp::packet::marshal(&packets);
    let feedback = cascade_core::obs::metrics::Feedback::default();
    let mut counter = FeedbackCounter::new(feedback);
    let _ = counter.handle_read(tagged(packets.clone()));
    let _ = counter.handle_write(tagged(packets.clone()));
    while counter.poll_read().is_some() || counter.poll_write().is_some() {}
    for mut forwarder in [
        KeyframeRequestForwarder::default(),
        KeyframeRequestForwarder::with_nacks(),
    ] {
        let _ = forwarder.handle_read(tagged(packets.clone()));
        while forwarder.poll_read().is_some() {}
    }
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens.
// ---------------------------------------------------------------------------------------------

/// The harness's token secret.
pub const JWT_SECRET: &[u8] = b"the fuzz harness secret, 32 bytes!";

/// Base64url without padding, as JWTs write their segments.
pub fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A JWT of `header` and `claims` (any bytes) signed HS256 with [`JWT_SECRET`].
pub fn signed_token(header: &[u8], claims: &[u8]) -> String {
    let message = format!("{}.{}", b64url(header), b64url(claims));
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET).expect("an HMAC key");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("signed");
    format!("{message}.{signature}")
}

/// An `Authorization` header checked by [`Auth::check`] for publishing and watching. Byte 0
/// picks how the rest becomes the header: as it is; after `Bearer `; as the three segments of
/// a token (split at 0xff bytes, each base64url-encoded); or as a header and claims (split at
/// the first 0xff) signed with the node's secret, so that the claims are parsed and validated.
pub fn jwt(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let value: Vec<u8> = match mode % 4 {
        0 => rest.to_vec(),
        1 => [b"Bearer ".as_slice(), rest].concat(),
        2 => {
            let segments: Vec<String> = rest.split(|b| *b == 0xff).map(b64url).collect();
            format!("Bearer {}", segments.join(".")).into_bytes()
        }
        _ => {
            let (header, claims) = match rest.iter().position(|b| *b == 0xff) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (br#"{"alg":"HS256","typ":"JWT"}"#.as_slice(), rest),
            };
            format!("Bearer {}", signed_token(header, claims)).into_bytes()
        }
    };
    let Ok(value) = HeaderValue::from_bytes(&value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    thread_local! {
        static AUTH: Auth = Auth::new(JWT_SECRET, true).expect("a key");
    }
    AUTH.with(|auth| {
        for grant in [Grant::Publish, Grant::Subscribe] {
            for room in ["demo", "*", ""] {
                // A token of random segments is a forgery: it never lets anyone through.
                let allowed = auth.check(&headers, room, grant).is_ok();
                assert!(!(allowed && mode % 4 == 2), "a forged token was accepted");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Configuration.
// ---------------------------------------------------------------------------------------------

/// The long names of every flag of [`NodeArgs`], from clap's own definition.
pub fn config_flags() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect()
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
}

/// A command line: the arguments are the input split at 0 bytes (byte 0 picks lossy UTF-8 or
/// raw bytes, the role, and whether the last argument is also the `--upstream`), parsed by clap
/// into [`NodeArgs`] and validated by `into_config`.
pub fn config(data: &[u8]) {
    use clap::Parser;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let args: Vec<OsString> = rest
        .split(|b| *b == 0)
        .take(64)
        .map(|a| {
            if mode & 1 == 0 {
                String::from_utf8_lossy(a).into_owned().into()
            } else {
                OsString::from_vec(a.to_vec())
            }
        })
        .collect();
    for a in &args {
        if let Some(s) = a.to_str() {
            let _ = parse_port_range(s);
        }
    }
    let upstream = (mode & 4 != 0)
        .then(|| args.last().map(|a| a.to_string_lossy().into_owned()))
        .flatten();
    let role = if mode & 2 == 0 {
        Role::Edge
    } else {
        Role::Origin
    };
    let argv = std::iter::once(OsString::from("cascade")).chain(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => {
            let _ = cli.node.check_edge_source(&upstream);
            if let Err(e) = cli.node.into_config(role, upstream) {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// YAML, as a configuration file is read: into a map of strings, and into a
/// document of any shape.
pub fn yaml(data: &[u8]) {
    let _ = serde_yaml_ng::from_slice::<std::collections::BTreeMap<String, String>>(data);
    if let Ok(value) = serde_yaml_ng::from_slice::<serde_yaml_ng::Value>(data) {
        let _ = serde_yaml_ng::to_string(&value);
    }
}
