//! The per-packet path, measured: rewrite, fan-out to N subscribers (deliver and drain, as the
//! room's pump and subscriber tasks do), and SRTP protection — with a counting global allocator
//! that reports allocations per forwarded packet (target: zero).
//!
//! Also the UDP mux's per-packet step for one viewer (`viewer_core`): decide and rewrite
//! (`forward::Leg`), then either the viewer's sans-I/O WebRTC core (interceptors, SRTP) turns the
//! packet into a datagram, or our own SRTP context does (`egress`, what the mux does) — two
//! cores connected in memory (`pair`), no sockets.
//!
//! `cargo bench -p cascade-core --bench forward`

use bytes::Bytes;
use cascade_core::media::bwe::{Bwe, ProbePart};
use cascade_core::media::egress::{Protector, TwccExt};
use cascade_core::media::forward::{Codec, Leg, Rewriter};
use cascade_core::media::room::{Fanout, Outgoing};
use cascade_core::rtc::pair::Pair;
use cascade_core::rtc::pc::CoreKind;
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
            let (tx, rx) = mpsc::channel(cascade_core::media::room::SUBSCRIBER_QUEUE);
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

/// One packet through the mux's per-viewer step: decide and rewrite, encrypt, take the datagram.
fn viewer_step(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    track: rtc::rtp_transceiver::RTCRtpSenderId,
    leg: &mut Leg,
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

    // The mux's per-viewer step, two ways, in one run: through the viewer's core (`write_rtp`:
    // interceptors, SRTP, a datagram out), and through our own SRTP context (`egress`), as the
    // mux now does.
    let mut pair = Pair::connected(CoreKind::SendOnly).unwrap();
    let mut leg = Leg::new(
        Rewriter::new(cascade_core::rtc::pair::SSRC, pair.payload_type, 0),
        Codec::Vp8,
        90_000,
    );
    let mut own_step = OwnStep::new(None);
    // As the mux sends now: each packet numbered for the viewer's TWCC feedback (the
    // `transport-cc` extension written in place) and recorded for its bandwidth estimate.
    let mut twcc_step = OwnStep::new(Some(Bwe::default()));
    let mut seq = 0u16;
    // Allocations first: the pairs' connections are not kept alive while criterion runs.
    let rounds = 2000u64;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut bytes = 0;
    for _ in 0..rounds {
        seq = seq.wrapping_add(1);
        bytes += black_box(viewer_step(&mut pair.sender, pair.track, &mut leg, seq));
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(bytes > 0, "the core sent nothing");
    println!(
        "viewer_core: {:.2} allocations per packet (leg + write_rtp + poll_write, inside webrtc-rs's core)",
        (after - before) as f64 / rounds as f64
    );
    for (step, what) in [
        (&mut own_step, "leg + our SRTP in place in the outbox"),
        (&mut twcc_step, "+ TWCC extension and the estimate's record"),
    ] {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..rounds {
            seq = seq.wrapping_add(1);
            black_box(step.step(seq));
        }
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        println!(
            "viewer_core: {:.2} allocations per packet ({what})",
            (after - before) as f64 / rounds as f64
        );
    }
    let mut group = c.benchmark_group("viewer_core");
    group.throughput(Throughput::Elements(1));
    group.bench_function("leg_and_write_rtp_1100B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(viewer_step(&mut pair.sender, pair.track, &mut leg, seq))
        })
    });
    group.bench_function("leg_and_own_srtp_1100B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(own_step.step(seq))
        })
    });
    group.bench_function("leg_own_srtp_and_twcc_1100B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(twcc_step.step(seq))
        })
    });
    group.finish();
}

/// The mux's per-viewer state for one leg: our SRTP context, the leg's rewriter, and the outbox
/// (datagrams protected in place at its end, emptied by each flush). NACKs are answered from
/// the feed's history, kept once per packet for every viewer: not per viewer.
struct OwnStep {
    protector: Protector,
    leg: Leg,
    outbox: Vec<u8>,
    /// With a bandwidth estimate: the TWCC extension written and the packet recorded.
    bwe: Option<Bwe>,
}

impl OwnStep {
    /// A step on a connected pair of cores of its own (its keys taken from the tap).
    fn new(bwe: Option<Bwe>) -> Self {
        let own = Pair::connected(CoreKind::OwnMedia).unwrap();
        Self {
            protector: Protector::new(&own.tap.take_sending_keys().unwrap()).unwrap(),
            leg: Leg::new(
                Rewriter::new(cascade_core::rtc::pair::SSRC, own.payload_type, 0),
                Codec::Vp8,
                90_000,
            ),
            outbox: Vec::with_capacity(64 * 1500),
            bwe,
        }
    }

    /// One packet through the mux's per-viewer step as it is now: decide and rewrite, protect
    /// into the outbox (emptied every 64 datagrams, as by a flush).
    fn step(&mut self, seq: u16) -> usize {
        let mut p = packet(seq);
        let now = std::time::Instant::now();
        if !self.leg.forward(&mut p, 0, true, now) {
            return 0;
        }
        if self.outbox.len() >= 64 * 1500 - 1500 {
            self.outbox.clear();
        }
        let before = self.outbox.len();
        match self.bwe.as_mut() {
            Some(bwe) => {
                let twcc = Some(TwccExt {
                    id: 3,
                    seq: bwe.next_seq(),
                });
                if self
                    .protector
                    .protect_twcc_into(&p, 0, twcc, &mut self.outbox)
                {
                    bwe.sent(self.outbox.len() - before, now, ProbePart::None);
                }
            }
            None => {
                self.protector.protect_into(&p, 0, &mut self.outbox);
            }
        }
        self.outbox.len() - before
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
