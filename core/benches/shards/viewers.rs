//! Synthetic viewers: each a receive-only sans-I/O core (a full ICE agent, as a browser) on a
//! UDP socket of its own on loopback, which joins through `Mux::subscribe` and connects with a
//! real ICE and DTLS handshake. Once connected, a viewer's core sees only STUN and DTLS (its
//! consent checks keep the shard's ICE-lite core connected); its media is counted, not
//! decrypted: the sink reads a whole GSO send at once (UDP GRO, `recvmmsg` through
//! `quinn-udp`) and counts its datagrams, by the shard address they came from.
//!
//! Sink threads each run a current-thread runtime with one task per viewer, so their CPU is
//! told apart from the mux's runtime (`cpu`).

use bytes::BytesMut;
use cascade_core::rtc::pc::{CoreKind, MediaSettings, PcFactory, build_core, host_candidate};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A viewer's socket receive buffer: a joining viewer is sent a group of pictures quickly.
const SOCKET_RCVBUF: usize = 1 << 20;
/// One read: a whole GRO batch (one GSO send of a shard).
const READ_BUF: usize = 64 * 1024;

/// What one viewer received.
#[derive(Default)]
pub struct Count {
    /// RTP datagrams.
    pub media: AtomicU64,
    /// SRTCP datagrams (sender reports).
    pub rtcp: AtomicU64,
    /// The port of the shard its media comes from (0 until the first).
    pub shard_port: AtomicU16,
}

/// A viewer not yet handed to a sink: its core has made its offer.
pub struct Joining {
    pub pc: RTCPeerConnection,
    pub socket: std::net::UdpSocket,
    pub offer: String,
}

/// A receive-only core (video and audio) on a fresh loopback socket, and its offer.
pub fn join() -> Joining {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .expect("socket");
    let _ = socket.set_recv_buffer_size(SOCKET_RCVBUF);
    socket.set_nonblocking(true).expect("non-blocking");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let socket: std::net::UdpSocket = socket.into();
    let local = socket.local_addr().expect("local address");
    let factory = PcFactory::new(MediaSettings {
        bind_ip: local.ip(),
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: None,
    });
    let (media, registry, settings) = factory.engines(CoreKind::Full).expect("engines");
    let mut pc = build_core(
        factory.configuration(),
        media,
        registry,
        settings.build(),
        Instant::now(),
    )
    .expect("core");
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .expect("transceiver");
    }
    pc.add_local_candidate(host_candidate(local).expect("candidate"))
        .expect("candidate");
    let offer = pc.create_offer(None).expect("offer");
    pc.set_local_description(Instant::now(), offer.clone())
        .expect("local description");
    Joining {
        pc,
        socket,
        offer: offer.sdp,
    }
}

/// A viewer handed to a sink with the mux's answer applied.
struct Handover {
    pc: RTCPeerConnection,
    socket: std::net::UdpSocket,
    count: Arc<Count>,
}

/// Sink threads, which drive the viewers' cores and count what they receive.
pub struct Sinks {
    senders: Vec<mpsc::UnboundedSender<Handover>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: CancellationToken,
    next: usize,
    pub counts: Vec<Arc<Count>>,
}

impl Sinks {
    pub fn start(n: usize) -> Self {
        let stop = CancellationToken::new();
        let (mut senders, mut threads) = (Vec::new(), Vec::new());
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sink-{i}"))
                    .spawn(move || sink(rx, stop))
                    .expect("sink thread"),
            );
            senders.push(tx);
        }
        Self {
            senders,
            threads,
            stop,
            next: 0,
            counts: Vec::new(),
        }
    }

    /// Applies the mux's `answer` to `joining`'s core and hands it to the next sink.
    pub fn add(&mut self, mut joining: Joining, answer: String) {
        let answer = RTCSessionDescription::answer(answer).expect("an answer");
        joining
            .pc
            .set_remote_description(Instant::now(), answer)
            .expect("remote description");
        let count = Arc::new(Count::default());
        self.counts.push(count.clone());
        let sink = self.next % self.senders.len();
        self.next += 1;
        let _ = self.senders[sink].send(Handover {
            pc: joining.pc,
            socket: joining.socket,
            count,
        });
    }

    /// Media datagrams received so far, in all and by shard port.
    pub fn media(&self) -> (u64, Vec<(u16, u64)>) {
        let mut by_port: Vec<(u16, u64)> = Vec::new();
        let mut all = 0;
        for c in &self.counts {
            let (port, n) = (
                c.shard_port.load(Ordering::Relaxed),
                c.media.load(Ordering::Relaxed),
            );
            all += n;
            match by_port.iter_mut().find(|(p, _)| *p == port) {
                Some(e) => e.1 += n,
                None => by_port.push((port, n)),
            }
        }
        by_port.sort_unstable();
        (all, by_port)
    }

    pub fn rtcp(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.rtcp.load(Ordering::Relaxed))
            .sum()
    }

    pub fn stop(mut self) {
        self.stop.cancel();
        self.senders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn sink(mut handovers: mpsc::UnboundedReceiver<Handover>, stop: CancellationToken) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("sink runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                h = handovers.recv() => match h {
                    Some(h) => {
                        tokio::task::spawn_local(drive(h, stop.clone()));
                    }
                    None => break,
                },
            }
        }
    });
}

/// One viewer: its core's timers and output, and its socket's input.
async fn drive(h: Handover, stop: CancellationToken) {
    let Handover {
        mut pc,
        socket,
        count,
    } = h;
    let state = quinn_udp::UdpSocketState::new((&socket).into()).expect("socket state");
    let local = socket.local_addr().expect("local address");
    let socket = tokio::net::UdpSocket::from_std(socket).expect("tokio socket");
    let mut buf = vec![0u8; READ_BUF];
    let mut meta = [quinn_udp::RecvMeta::default()];
    loop {
        while let Some(out) = pc.poll_write() {
            let _ = socket.try_send_to(&out.message, out.transport.peer_addr);
        }
        let wake = pc
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(wake.into()) => {
                let _ = pc.handle_timeout(Instant::now());
            }
            ready = socket.readable() => {
                if ready.is_err() {
                    return;
                }
                loop {
                    let mut bufs = [IoSliceMut::new(&mut buf)];
                    let read = socket.try_io(Interest::READABLE, || {
                        state.recv((&socket).into(), &mut bufs, &mut meta)
                    });
                    match read {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                    let m = meta[0];
                    let data = &buf[..m.len];
                    let Some(&first) = data.first() else { continue };
                    match first {
                        // STUN (RFC 7983: 0-3) and DTLS (20-63): the core's.
                        0..=3 | 20..=63 => {
                            let _ = pc.handle_read(TaggedBytesMut {
                                now: Instant::now(),
                                transport: TransportContext {
                                    local_addr: local,
                                    peer_addr: m.addr,
                                    ecn: None,
                                    transport_protocol: TransportProtocol::UDP,
                                },
                                message: BytesMut::from(data),
                            });
                        }
                        128..=191 => {
                            let datagrams = m.len.div_ceil(m.stride.max(1)) as u64;
                            // RFC 5761: RTCP packet types 192-223 where RTP has its marker
                            // bit and payload type.
                            if data.get(1).is_some_and(|pt| (192..=223).contains(pt)) {
                                count.rtcp.fetch_add(datagrams, Ordering::Relaxed);
                            } else {
                                count.media.fetch_add(datagrams, Ordering::Relaxed);
                                count.shard_port.store(m.addr.port(), Ordering::Relaxed);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
