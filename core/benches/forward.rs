//! The per-packet path, measured: rewrite, fan-out to N subscribers (deliver and drain, as the
//! room's pump and subscriber tasks do), and SRTP protection — with a counting global allocator
//! that reports allocations per forwarded packet (target: zero).
//!
//! Also the UDP mux's per-packet step for one viewer (`viewer_core`): decide and rewrite
//! (`forward::Leg`), then the viewer's sans-I/O WebRTC core (interceptors, SRTP) turns the packet
//! into a datagram — two cores connected in memory, no sockets.
//!
//! `cargo bench -p cascade-core --bench forward`

use bytes::Bytes;
use cascade_core::forward::{Codec, Rewriter};
use cascade_core::room::{Fanout, Outgoing};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rtc::rtp::Packet;
use rtc::rtp::header::Header;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Counts every allocation the process makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn packet(seq: u16) -> Packet {
    static PAYLOAD: [u8; 1100] = [0x5a; 1100];
    Packet {
        header: Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            ssrc: 0x1234_5678,
            ..Default::default()
        },
        payload: Bytes::from_static(&PAYLOAD),
    }
}

/// A fan-out with `n` subscribers, their receivers, and the rewriters they would use.
struct Rig {
    fanout: Fanout,
    receivers: Vec<mpsc::Receiver<Outgoing>>,
    rewriters: Vec<Rewriter>,
    batch: Vec<Outgoing>,
}

impl Rig {
    fn new(n: usize) -> Self {
        let mut fanout = Fanout::new(0, Codec::Opus);
        let mut receivers = Vec::with_capacity(n);
        for id in 0..n {
            let (tx, rx) = mpsc::channel(cascade_core::room::SUBSCRIBER_QUEUE);
            fanout.attach(id as u64, &tx);
            receivers.push(rx);
        }
        let rewriters = (0..n).map(|i| Rewriter::new(i as u32, 111, 0)).collect();
        Self {
            fanout,
            receivers,
            rewriters,
            batch: Vec::with_capacity(64),
        }
    }

    /// Delivers `burst` packets, then each subscriber drains and rewrites its queue, as the
    /// subscriber task does before handing packets to the WebRTC stack.
    fn forward(&mut self, seq: &mut u16, burst: usize) {
        for _ in 0..burst {
            *seq = seq.wrapping_add(1);
            let p = packet(*seq);
            black_box(self.fanout.deliver(&p, false));
        }
        for (rx, rw) in self.receivers.iter_mut().zip(&mut self.rewriters) {
            while let Ok(out) = rx.try_recv() {
                self.batch.push(out);
            }
            for out in self.batch.drain(..) {
                let mut p = out.packet;
                black_box(rw.rewrite(&mut p));
                drop(black_box(p));
            }
        }
    }
}

fn allocations_per_forwarded_packet(n: usize) -> f64 {
    let mut rig = Rig::new(n);
    let mut seq = 0u16;
    // Warm up: channel blocks, batch vector and caches reach their steady size.
    for _ in 0..200 {
        rig.forward(&mut seq, 32);
    }
    let rounds = 200;
    let burst = 32;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..rounds {
        rig.forward(&mut seq, burst);
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / (rounds * burst * n) as f64
}

mod viewer_core {
    //! Two sans-I/O cores (a viewer that offers, a sender that answers) connected in memory.
    use cascade_core::pc::{MediaSettings, PcFactory};
    use rtc::media_stream::MediaStreamTrack;
    use rtc::peer_connection::configuration::RTCConfigurationBuilder;
    use rtc::peer_connection::event::RTCPeerConnectionEvent;
    use rtc::peer_connection::sdp::RTCSessionDescription;
    use rtc::peer_connection::state::RTCPeerConnectionState;
    use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
    use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
    use rtc::rtp_transceiver::rtp_sender::{
        RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
    };
    use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
    use rtc::sansio::Protocol;
    use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    pub const SSRC: u32 = 0x0bad_cafe;

    fn core(send_only: bool) -> RTCPeerConnection {
        let factory = PcFactory::new(MediaSettings {
            bind_ip: "127.0.0.1".parse().unwrap(),
            advertise_ip: None,
            udp_ports: None,
            mux: None,
        });
        let (media, registry, settings) = factory
            .engines(if send_only {
                cascade_core::pc::CoreKind::SendOnly
            } else {
                cascade_core::pc::CoreKind::Full
            })
            .unwrap();
        RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .build(Instant::now())
            .unwrap()
    }

    fn candidate(pc: &mut RTCPeerConnection, addr: SocketAddr) {
        let c = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .unwrap();
        pc.add_local_candidate(RTCIceCandidate::from(&c).to_json().unwrap())
            .unwrap();
    }

    /// Moves datagrams from `from` to `to`; returns how many.
    fn shuttle(
        from: &mut RTCPeerConnection,
        from_addr: SocketAddr,
        to: &mut RTCPeerConnection,
        to_addr: SocketAddr,
    ) -> usize {
        let mut n = 0;
        while let Some(out) = from.poll_write() {
            n += 1;
            let _ = to.handle_read(TaggedBytesMut {
                now: Instant::now(),
                transport: TransportContext {
                    local_addr: to_addr,
                    peer_addr: from_addr,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: out.message,
            });
        }
        n
    }

    /// A connected sender core with one VP8 track, its sender and payload type.
    pub fn connected() -> (RTCPeerConnection, RTCPeerConnection, RTCRtpSenderId, u8) {
        let (va, sa): (SocketAddr, SocketAddr) = (
            "10.0.0.1:5000".parse().unwrap(),
            "10.0.0.2:6000".parse().unwrap(),
        );
        let mut viewer = core(false);
        // As the mux builds its viewers' cores.
        let mut sender = core(true);
        viewer
            .add_transceiver_from_kind(
                RtpCodecKind::Video,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .unwrap();
        candidate(&mut viewer, va);
        let offer = viewer.create_offer(None).unwrap();
        viewer
            .set_local_description(Instant::now(), offer.clone())
            .unwrap();
        sender
            .set_remote_description(
                Instant::now(),
                RTCSessionDescription::offer(offer.sdp).unwrap(),
            )
            .unwrap();
        let track = sender
            .add_track(MediaStreamTrack::new(
                "s".into(),
                "video-0".into(),
                "bench".into(),
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
            ))
            .unwrap();
        candidate(&mut sender, sa);
        let answer = sender.create_answer(None).unwrap();
        sender
            .set_local_description(Instant::now(), answer.clone())
            .unwrap();
        viewer
            .set_remote_description(
                Instant::now(),
                RTCSessionDescription::answer(answer.sdp).unwrap(),
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut up = false;
        while !up {
            assert!(Instant::now() < deadline, "cores did not connect");
            let now = Instant::now();
            for pc in [&mut viewer, &mut sender] {
                if pc.poll_timeout().is_some_and(|t| t <= now) {
                    let _ = pc.handle_timeout(now);
                }
            }
            shuttle(&mut viewer, va, &mut sender, sa);
            shuttle(&mut sender, sa, &mut viewer, va);
            while let Some(e) = sender.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) = e
                {
                    up = true;
                }
            }
            while viewer.poll_event().is_some() {}
            std::thread::sleep(Duration::from_millis(1));
        }
        let pt = sender
            .rtp_sender(track)
            .unwrap()
            .get_parameters()
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/VP8"))
            .map(|c| c.payload_type)
            .unwrap();
        (viewer, sender, track, pt)
    }
}

/// One packet through the mux's per-viewer step: decide and rewrite, encrypt, take the datagram.
fn viewer_step(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    track: rtc::rtp_transceiver::RTCRtpSenderId,
    leg: &mut cascade_core::forward::Leg,
    seq: u16,
) -> usize {
    use rtc::sansio::Protocol;
    let mut p = packet(seq);
    let now = std::time::Instant::now();
    if !leg.forward(&mut p, 0, true, now) {
        return 0;
    }
    pc.rtp_sender(track).unwrap().write_rtp(now, p).unwrap();
    let mut bytes = 0;
    while let Some(out) = pc.poll_write() {
        bytes += out.message.len();
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let mut rw = Rewriter::new(42, 96, 0);
    let mut seq = 0u16;
    c.bench_function("rewrite", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let mut p = packet(seq);
            black_box(rw.rewrite(&mut p));
        })
    });

    let mut group = c.benchmark_group("fanout");
    for n in [10usize, 100, 1000] {
        let burst = 32;
        group.throughput(Throughput::Elements((n * burst) as u64));
        let mut rig = Rig::new(n);
        let mut seq = 0u16;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| rig.forward(&mut seq, burst))
        });
        println!(
            "fanout/{n}: {:.4} allocations per forwarded packet (deliver + drain + rewrite)",
            allocations_per_forwarded_packet(n)
        );
    }
    group.finish();

    let crypto = rtc::crypto::providers::RingCrypto;
    let mut group = c.benchmark_group("srtp_protect_1200B");
    group.throughput(Throughput::Elements(1));
    for (name, profile) in [
        (
            "aes128_cm_hmac_sha1_80",
            rtc::srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
        ),
        (
            "aead_aes128_gcm",
            rtc::srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
        ),
    ] {
        let key = vec![7u8; profile.key_len()];
        let salt = vec![9u8; profile.salt_len()];
        let mut ctx =
            rtc::srtp::context::Context::new(&key, &salt, profile, None, None, &crypto).unwrap();
        let mut raw = vec![0u8; 1200];
        raw[0] = 0x80;
        raw[1] = 96;
        let mut seq = 0u16;
        group.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                raw[2..4].copy_from_slice(&seq.to_be_bytes());
                black_box(ctx.encrypt_rtp(&raw).unwrap());
            })
        });
    }
    group.finish();

    let (_viewer, mut sender, track, pt) = viewer_core::connected();
    let mut leg = cascade_core::forward::Leg::new(
        Rewriter::new(viewer_core::SSRC, pt, 0),
        Codec::Vp8,
        90_000,
    );
    let mut seq = 0u16;
    let mut group = c.benchmark_group("viewer_core");
    group.throughput(Throughput::Elements(1));
    group.bench_function("leg_and_write_rtp_1100B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(viewer_step(&mut sender, track, &mut leg, seq))
        })
    });
    group.finish();
    let rounds = 2000u64;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..rounds {
        seq = seq.wrapping_add(1);
        black_box(viewer_step(&mut sender, track, &mut leg, seq));
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    println!(
        "viewer_core: {:.2} allocations per packet (leg + write_rtp + poll_write, inside webrtc-rs's core)",
        (after - before) as f64 / rounds as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
