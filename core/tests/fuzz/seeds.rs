//! Real inputs the fuzzers start from, and the tokens they splice in: a browser's offer and one
//! of webrtc-rs, RTP of each codec we look inside, every RTCP packet a viewer sends, STUN and
//! DTLS datagrams, tokens, command lines and YAML.

use super::harness::{
    self, MUX_NEW_ADDR, MUX_RAW, MUX_SRTCP, MUX_SRTP, MUX_STUN, MUX_TICK, MUX_TO_VIEWER, record,
    signed_token,
};
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::packet::Packet as Rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

pub const CHROME_OFFER: &str = include_str!("../../testdata/chrome-whep-offer.sdp");

fn strings(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

// --- SDP --------------------------------------------------------------------------------------

/// A browser's offer, webrtc-rs's own, and small hand-written ones.
pub fn sdp() -> Vec<Vec<u8>> {
    let small = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B\r\n\
        a=setup:actpass\r\na=rtcp-mux\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B\r\n\
        a=setup:actpass\r\na=rtcp-mux\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n\
        a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
    let scanner = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=sendonly\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\n";
    let mut seeds = strings(&[CHROME_OFFER, small, scanner, "v=0\r\n", "v=0\nm=video 9\n"]);
    seeds.push(webrtc_rs_offer().into_bytes());
    seeds
}

/// The offer of a webrtc-rs core that receives audio and video (as the load generator's
/// viewers send).
fn webrtc_rs_offer() -> String {
    use rtc::peer_connection::RTCPeerConnectionBuilder;
    use rtc::peer_connection::configuration::RTCConfigurationBuilder;
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
    use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
    let factory = cascade_core::rtc::pc::PcFactory::new(cascade_core::rtc::pc::MediaSettings {
        bind_ip: "127.0.0.1".parse().unwrap(),
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: None,
    });
    let (media, registry, settings) = factory
        .engines(cascade_core::rtc::pc::CoreKind::Full)
        .unwrap();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings.build())
        .build(std::time::Instant::now())
        .unwrap();
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .unwrap();
    }
    let candidate =
        cascade_core::rtc::pc::host_candidate("127.0.0.1:5000".parse().unwrap()).unwrap();
    pc.add_local_candidate(candidate).unwrap();
    pc.create_offer(None).unwrap().sdp
}

pub fn sdp_dictionary() -> Vec<Vec<u8>> {
    strings(&[
        "\r\n",
        "\n",
        " ",
        ":",
        "/",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n",
        "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "a=recvonly\r\n",
        "a=sendonly\r\n",
        "a=sendrecv\r\n",
        "a=inactive\r\n",
        "a=mid:",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=rtpmap:102 H264/90000\r\n",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        "a=rtcp-fb:96 nack pli\r\n",
        "a=fmtp:97 apt=96\r\n",
        "a=ssrc:1 cname:x\r\n",
        "a=ssrc-group:FID 1 2\r\n",
        "a=group:BUNDLE 0 1\r\n",
        "a=setup:active\r\n",
        "a=setup:passive\r\n",
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=ice-lite\r\n",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n",
        "a=end-of-candidates\r\n",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
        "a=extmap:15 ",
        "a=rid:h send\r\n",
        "a=simulcast:send h;m;l\r\n",
        "a=msid:- t\r\n",
        "a=rtcp-mux\r\n",
        "a=rtcp-rsize\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "c=IN IP6 ::1\r\n",
        "b=AS:30\r\n",
        "a=fingerprint:sha-256 ",
        "a=fingerprint:sha-1 00\r\n",
        "4294967296",
        "65536",
        "-1",
        "0",
    ])
}

// --- The mux's datagrams ------------------------------------------------------------------------

/// A STUN binding request of `username` (RFC 8445: PRIORITY, USE-CANDIDATE, ICE-CONTROLLING),
/// without integrity: what the engine reads the ufrag of.
pub fn binding_request(username: &str) -> Vec<u8> {
    let mut attrs = Vec::new();
    let mut attr = |kind: u16, value: &[u8]| {
        attrs.extend_from_slice(&kind.to_be_bytes());
        attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attrs.extend_from_slice(value);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
    };
    attr(0x0006, username.as_bytes());
    attr(0x0024, &[0x6e, 0x7f, 0x1e, 0xff]);
    attr(0x0025, &[]);
    attr(0x802a, &[1, 2, 3, 4, 5, 6, 7, 8]);
    attr(0x8028, &[0xde, 0xad, 0xbe, 0xef]);
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attrs);
    m
}

/// The attributes of an authenticated STUN message (see `harness::MUX_STUN`).
fn stun_body(kind: [u8; 2], attrs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(&[0x5a; 12]);
    for (tag, value) in attrs {
        body.extend(record(*tag, value));
    }
    body
}

/// An RTP packet: version 2, `pt`, `seq`, `ts`, SSRC 0x11223344, `payload`; with a one-byte
/// header extension (abs-send-time, mid) when `ext`.
pub fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ext: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x80 | if ext { 0x10 } else { 0 },
        pt | if marker { 0x80 } else { 0 },
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    if ext {
        p.extend_from_slice(&[
            0xbe, 0xde, 0x00, 0x02, 0x22, 0x01, 0x02, 0x03, 0x10, b'0', 0, 0,
        ]);
    }
    p.extend_from_slice(payload);
    p
}

/// A compound RTCP packet: every kind a viewer or relay peer sends us.
pub fn rtcp_packets() -> Vec<Vec<u8>> {
    let nack = TransportLayerNack {
        sender_ssrc: 0x1234,
        media_ssrc: 0x5eed_0001,
        nacks: vec![NackPair {
            packet_id: 300 + 50,
            lost_packets: 0b1010_0000_0000_0101,
        }],
    };
    let pli = PictureLossIndication {
        sender_ssrc: 0x1234,
        media_ssrc: 0x5eed_0001,
    };
    let fir = FullIntraRequest {
        sender_ssrc: 0x1234,
        media_ssrc: 0x5eed_0001,
        fir: vec![FirEntry {
            ssrc: 0x5eed_0001,
            sequence_number: 3,
        }],
    };
    let rr = ReceiverReport {
        ssrc: 0x1234,
        reports: vec![ReceptionReport {
            ssrc: 0x5eed_0001,
            fraction_lost: 12,
            total_lost: 40,
            last_sequence_number: 5000,
            jitter: 30,
            last_sender_report: 7,
            delay: 9,
        }],
        ..Default::default()
    };
    let sr = SenderReport {
        ssrc: 0x1234,
        ntp_time: 0xe000_0000_8000_0000,
        rtp_time: 90_000,
        packet_count: 10,
        octet_count: 1000,
        reports: rr.reports.clone(),
        ..Default::default()
    };
    let remb = ReceiverEstimatedMaximumBitrate {
        sender_ssrc: 0x1234,
        bitrate: 2_500_000.0,
        ssrcs: vec![0x5eed_0001],
    };
    let bye = Goodbye {
        sources: vec![0x1234],
        reason: bytes::Bytes::from_static(b"bye"),
    };
    let marshal =
        |packets: Vec<Box<dyn Rtcp>>| rtc::rtcp::packet::marshal(&packets).unwrap().to_vec();
    vec![
        marshal(vec![Box::new(rr.clone()), Box::new(nack.clone())]),
        marshal(vec![Box::new(rr), Box::new(pli)]),
        marshal(vec![Box::new(sr), Box::new(fir)]),
        marshal(vec![Box::new(remb), Box::new(bye)]),
        marshal(vec![Box::new(nack)]),
        // Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc).
        vec![
            0xaf, 0xcd, 0x0, 0x6, 0xfa, 0x17, 0xfa, 0x17, 0x19, 0x3d, 0xd8, 0xbb, 0x1, 0x74, 0x0,
            0xe, 0x45, 0xb1, 0x5a, 0x40, 0xd8, 0x0, 0xf0, 0xff, 0xd0, 0x0, 0x0, 0x3,
        ],
        // An SDES with a CNAME.
        vec![
            0x81, 0xca, 0x00, 0x03, 0x00, 0x00, 0x12, 0x34, 0x01, 0x05, b'c', b'n', b'a', b'm',
            b'e', 0x00,
        ],
    ]
}

/// Datagrams as the mux engine receives them, in the harness's records.
pub fn mux() -> Vec<Vec<u8>> {
    let rtcp = rtcp_packets();
    let vp8_key = rtp_packet(
        96,
        false,
        1000,
        3000,
        true,
        &[0x90, 0x80, 0x01, 0x00, 0x9d, 0x01, 0x2a],
    );
    // DTLS: a ClientHello-looking handshake record (epoch 0), an application data record
    // (epoch 1) and an alert.
    let dtls_hello = [
        &[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10][..],
        &[
            0x01, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x04, 0xfe, 0xfd, 0, 0,
        ],
    ]
    .concat();
    let dtls_data = [0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4];
    let dtls_alert = [0x15, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 2, 0];
    let stun = binding_request("fuzzufrag:viewer");
    let nominate = stun_body(
        [0, 0],
        &[
            (0, &[0x6e, 0x7f, 0x1e, 0xff]),
            (4, &[]),
            (9, &[1, 2, 3, 4, 5, 6, 7, 8]),
        ],
    );
    let consent = stun_body(
        [0, 0],
        &[(0, &[0x6e, 0x7f, 0x1e, 0xff]), (2, &[0, 1, 0, 10])],
    );
    let indication = stun_body([0x00, 0x11], &[]);
    let mut seeds = vec![
        [record(MUX_RAW, &stun), record(MUX_NEW_ADDR, &stun)].concat(),
        [record(MUX_STUN, &nominate), record(MUX_TICK, &[50])].concat(),
        [record(MUX_STUN, &consent), record(MUX_STUN, &indication)].concat(),
        [record(MUX_RAW, &dtls_hello), record(MUX_RAW, &dtls_data)].concat(),
        [record(MUX_RAW, &dtls_alert), record(MUX_TICK, &[3])].concat(),
        [record(MUX_SRTP, &vp8_key), record(MUX_RAW, &vp8_key)].concat(),
        [
            record(MUX_TO_VIEWER, &vp8_key),
            record(MUX_TO_VIEWER, &rtcp[0]),
        ]
        .concat(),
        record(MUX_TICK, &[255]),
    ];
    for packet in &rtcp {
        seeds.push([record(MUX_SRTCP, packet), record(MUX_RAW, packet)].concat());
    }
    seeds
}

pub fn mux_dictionary() -> Vec<Vec<u8>> {
    vec![
        vec![0x21, 0x12, 0xa4, 0x42],
        vec![0x00, 0x06],
        vec![0x00, 0x24, 0x00, 0x04],
        vec![0x00, 0x25, 0x00, 0x00],
        vec![0x80, 0x29, 0x00, 0x08],
        vec![0x80, 0x2a, 0x00, 0x08],
        vec![0x00, 0x08, 0x00, 0x14],
        vec![0x80, 0x28, 0x00, 0x04],
        vec![0xfe, 0xfd],
        vec![0x16, 0xfe, 0xfd],
        vec![0x17, 0xfe, 0xfd, 0x00, 0x01],
        vec![0x80, 0x60],
        vec![0x80, 0xc8],
        vec![0x81, 0xcd],
        vec![0x81, 0xce],
    ]
}

// --- RTP ----------------------------------------------------------------------------------------

/// Streams of RTP packets in the harness's records (tag: codec, source, time, padding).
pub fn rtp() -> Vec<Vec<u8>> {
    let vp8 =
        |seq: u16, ts: u32, payload: &[u8], ext: bool| rtp_packet(96, false, seq, ts, ext, payload);
    // VP8: a keyframe's first packet (S=1, PID 0, P=0), its rest, then a delta frame; with
    // extended descriptors (PictureID 15 bits, TL0PICIDX, TID/KEYIDX).
    let vp8_stream = [
        record(
            0x10,
            &vp8(
                100,
                3000,
                &[0x90, 0xe0, 0x80, 0x01, 0x02, 0x03, 0x9d, 0x01, 0x2a],
                true,
            ),
        ),
        record(0x10, &vp8(101, 3000, &[0x80, 0x80, 0x01, 0xaa], false)),
        record(0x20, &vp8(103, 6000, &[0x10, 0x01, 0xbb], false)),
        record(0x20, &vp8(102, 3000, &[0x00, 0xcc], false)),
        record(0x24, &vp8(7, 90, &[0x10, 0x00], false)),
        record(0x14, &vp8(8, 3090, &[0x90, 0x80, 0x05, 0x00], true)),
    ]
    .concat();
    let h264 = |seq: u16, payload: &[u8]| rtp_packet(102, true, seq, 9000, false, payload);
    let h264_stream = [
        // STAP-A with SPS and PPS, an FU-A start of an IDR, a plain slice.
        record(
            0x11,
            &h264(1, &[0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]),
        ),
        record(0x11, &h264(2, &[0x7c, 0x85, 0x88, 0x84])),
        record(0x11, &h264(3, &[0x41, 0x9a])),
        record(0x11, &h264(65535, &[0x65, 0x88])),
        record(0x11, &h264(0, &[0x5c, 0x45, 0x01])),
    ]
    .concat();
    let opus = [
        record(
            0x12,
            &rtp_packet(111, true, 9, 960, true, &[0xfc, 0xff, 0xfe]),
        ),
        record(0x12, &rtp_packet(111, false, 10, 1920, false, &[0xfc])),
    ]
    .concat();
    // Padding (P bit, count in the last byte), CSRCs, a two-byte header extension.
    let mut padded = rtp_packet(96, false, 5, 5, false, &[0x10, 0x00, 0, 0, 3]);
    padded[0] |= 0x20;
    let mut csrc = rtp_packet(96, false, 6, 6, false, &[]);
    csrc[0] |= 2;
    csrc.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0x10, 0x00]);
    let mut two_byte = rtp_packet(96, false, 7, 7, false, &[]);
    two_byte[0] |= 0x10;
    two_byte.extend_from_slice(&[0x10, 0x00, 0x00, 0x01, 0x05, 0x02, 0xaa, 0xbb, 0x10, 0x00]);
    vec![
        vp8_stream,
        h264_stream,
        opus,
        [
            record(0x33, &padded),
            record(0x03, &csrc),
            record(0xf3, &two_byte),
        ]
        .concat(),
    ]
}

pub fn rtp_dictionary() -> Vec<Vec<u8>> {
    vec![
        vec![0x80],
        vec![0xa0],
        vec![0x90],
        vec![0xbe, 0xde],
        vec![0x10, 0x00],
        vec![0x90, 0x80],
        vec![0x9d, 0x01, 0x2a],
        vec![0x18, 0x00],
        vec![0x7c, 0x85],
        vec![0x67],
        vec![0x65],
    ]
}

// --- RTCP ---------------------------------------------------------------------------------------

pub fn rtcp() -> Vec<Vec<u8>> {
    let mut seeds = rtcp_packets();
    seeds.push(seeds.concat());
    seeds
}

pub fn rtcp_dictionary() -> Vec<Vec<u8>> {
    vec![
        vec![0x80, 0xc8],
        vec![0x81, 0xc9],
        vec![0x81, 0xca],
        vec![0x81, 0xcb],
        vec![0x81, 0xcd],
        vec![0x8f, 0xcd],
        vec![0x81, 0xce],
        vec![0x84, 0xce],
        vec![0x8f, 0xce],
        vec![0x80, 0xcf],
        b"REMB".to_vec(),
    ]
}

// --- Tokens -------------------------------------------------------------------------------------

/// In 2100: tokens that do not expire while the suite runs.
const FAR: u64 = 4_102_444_800;

pub fn jwt() -> Vec<Vec<u8>> {
    let header = br#"{"alg":"HS256","typ":"JWT"}"#;
    let claims = |room: &str, exp: u64| {
        format!(r#"{{"room":"{room}","publish":true,"subscribe":false,"exp":{exp}}}"#)
    };
    let valid = signed_token(header, claims("demo", FAR).as_bytes());
    let any_room = signed_token(header, claims("*", FAR).as_bytes());
    let expired = signed_token(header, claims("demo", 1).as_bytes());
    let with = |mode: u8, rest: &[u8]| [&[mode][..], rest].concat();
    vec![
        with(0, format!("Bearer {valid}").as_bytes()),
        with(0, format!("bearer  {any_room} ").as_bytes()),
        with(1, valid.as_bytes()),
        with(1, expired.as_bytes()),
        with(0, b"Basic dXNlcjpwYXNz"),
        with(0, b"Bearer"),
        with(2, b"{\"alg\":\"none\"}\xff{\"room\":\"demo\",\"exp\":4102444800}\xff"),
        with(2, b"{\"alg\":\"HS256\"}\xff{}\xffsig"),
        with(3, &[&header[..], b"\xff", claims("demo", FAR).as_bytes()].concat()),
        with(
            3,
            br#"{"alg":"HS256","kid":"x","typ":"JWT"}"#
                .iter()
                .chain(b"\xff{\"room\":\"*\",\"subscribe\":true,\"exp\":4102444800,\"nbf\":1}")
                .copied()
                .collect::<Vec<_>>()
                .as_slice(),
        ),
        with(3, br#"{"room":"demo","publish":"yes","exp":-1}"#),
    ]
}

pub fn jwt_dictionary() -> Vec<Vec<u8>> {
    strings(&[
        "Bearer ",
        ".",
        "\"alg\":\"HS256\"",
        "\"alg\":\"none\"",
        "\"alg\":\"RS256\"",
        "\"exp\":",
        "\"nbf\":",
        "\"room\":",
        "\"publish\":true",
        "\"subscribe\":true",
        "4102444800",
        "1e400",
        "-1",
        "null",
        "\\u0000",
        "{",
        "}",
        "[",
        "\u{ff}",
    ])
}

// --- Configuration ------------------------------------------------------------------------------

fn argv(mode: u8, args: &[&str]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(args.join("\0").as_bytes());
    out
}

pub fn config() -> Vec<Vec<u8>> {
    vec![
        argv(0, &[]),
        argv(
            0,
            &[
                "--http-listen",
                "0.0.0.0:8080",
                "--grpc-listen=[::1]:0",
                "--udp-ports",
                "40000-40999",
                "--udp-mux",
                "true",
                "--udp-mux-port",
                "65000",
                "--udp-mux-shards",
                "4",
                "--advertise-ip",
                "10.0.0.1",
                "--node-id",
                "edge-1",
                "--capacity",
                "1",
            ],
        ),
        argv(
            2,
            &[
                "--auth-secret",
                "0123456789abcdef0123456789abcdef",
                "--auth-viewers",
                "true",
                "--redis",
                "redis://127.0.0.1:6379/0",
                "--redis-prefix",
                "c:",
                "--log-format",
                "json",
            ],
        ),
        argv(
            4,
            &[
                "--lease-secs",
                "3600",
                "--drain-timeout",
                "86400",
                "--failover-timeout",
                "3600",
                "--http-max-connections",
                "1000000",
                "--http-header-timeout",
                "1",
                "--otlp-endpoint",
                "http://collector:4317",
                "http://127.0.0.1:9090",
            ],
        ),
        argv(
            1,
            &[
                "--max-edge-fanout",
                "0",
                "--max-relay-depth",
                "18446744073709551615",
                "--http-advertise",
                "https://a.example",
                "--help",
            ],
        ),
    ]
}

/// Every flag of [`NodeArgs`](cascade_core::config::NodeArgs), and values of every shape.
pub fn config_dictionary() -> Vec<Vec<u8>> {
    let mut dict: Vec<Vec<u8>> = harness::config_flags()
        .into_iter()
        .map(|f| format!("\0--{f}\0").into_bytes())
        .collect();
    dict.extend(strings(&[
        "\0",
        "=",
        "-",
        "0",
        "65535",
        "65536",
        "4294967296",
        "-1",
        "true",
        "false",
        "[::]:0",
        "::",
        "0.0.0.0",
        "1-0",
        "0-0",
        "1-65535",
        "redis://",
        "unix:///x",
        "http://",
        "ftp://",
    ]));
    dict
}

// --- YAML ---------------------------------------------------------------------------------------

pub fn yaml() -> Vec<Vec<u8>> {
    strings(&[
        "http_listen: 127.0.0.1:8080\nudp_ports: 40000-40999\nauth_viewers: 'true'\n",
        "# a node\nnode_id: \"edge-1\"\nredis: redis://r:6379/0\ncapacity: 1000\n",
        "base: &b {a: 1, b: [x, y]}\nmore: *b\nlist:\n  - one\n  - two: 2\n",
        "--- !tag\nkey: |\n  text\n  more\n...\n---\nother: >-\n  folded\n",
        "? complex key\n: value\n\"quoted\\u0041\": 'single''s'\n",
    ])
}

pub fn yaml_dictionary() -> Vec<Vec<u8>> {
    strings(&[
        ": ",
        "\n",
        "  ",
        "- ",
        "&a ",
        "*a",
        "!!str ",
        "!!binary ",
        "{",
        "}",
        "[",
        "]",
        "? ",
        "|",
        ">",
        "---\n",
        "...\n",
        "%YAML 1.2\n",
        "<<: ",
        "~",
        "'",
        "\"",
        "#",
    ])
}
