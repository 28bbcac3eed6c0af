//! The CPU one WHEP join costs a node before any packet moves: a browser's offer (Chrome's
//! audio and video codecs, 34 payload types) taken by a fresh viewer core as the UDP mux builds
//! it (`CoreKind::OwnMedia`), and its answer. A flash crowd (thousands of viewers joining at
//! kick-off) pays this per viewer, on the runtime threads that also carry the room's ingest.
//!
//! `cargo bench -p cascade-core --bench negotiate`

use cascade_core::rtc::pc::{CoreKind, MediaSettings, PcFactory};
use criterion::{Criterion, criterion_group, criterion_main};
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use std::hint::black_box;
use std::time::Instant;

/// The nodes' allocator (`cascade-cli`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHROME_OFFER: &str = include_str!("../testdata/chrome-whep-offer.sdp");

fn bench(c: &mut Criterion) {
    let factory = PcFactory::new(MediaSettings {
        bind_ip: "127.0.0.1".parse().unwrap(),
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: None,
    });
    let host = cascade_core::rtc::pc::host_candidate("127.0.0.1:7882".parse().unwrap()).unwrap();
    // As the mux does (the node's one certificate), and with a certificate made per connection
    // (webrtc-rs's default), in one run.
    let variants = [
        ("negotiate/chrome_offer_to_answer", factory.configuration()),
        (
            "negotiate/chrome_offer_to_answer_own_certificate",
            RTCConfigurationBuilder::new().build(),
        ),
    ];
    for (name, configuration) in variants {
        c.bench_function(name, |b| {
            b.iter(|| {
                let (media_engine, registry, setting_engine) =
                    factory.answering_engines(CoreKind::OwnMedia).unwrap();
                let now = Instant::now();
                let mut pc = RTCPeerConnectionBuilder::new()
                    .with_configuration(configuration.clone())
                    .with_media_engine(media_engine)
                    .with_interceptor_registry(registry)
                    .with_setting_engine(setting_engine.build())
                    .build(now)
                    .unwrap();
                let offer = RTCSessionDescription::offer(CHROME_OFFER.to_owned()).unwrap();
                pc.set_remote_description(now, offer).unwrap();
                pc.add_local_candidate(host.clone()).unwrap();
                let answer = pc.create_answer(None).unwrap();
                pc.set_local_description(now, answer.clone()).unwrap();
                black_box(answer.sdp.len())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
