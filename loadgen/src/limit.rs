//! `cascade-loadgen limit`: the machine's own ceiling for forwarding media, measured in the same
//! run as the load, so that what the edge achieves can be given as a ratio of it.
//!
//! Measured on one thread (one core):
//! - how many 1200-byte datagrams per second `sendto` pushes through loopback, one per call;
//! - the same with UDP GSO (quinn-udp: one `sendmsg` carries up to 64 segments);
//! - the same with `sendmmsg`, 64 datagrams per call, each to a different destination: what an
//!   SFU's fan-out can batch (GSO needs one destination for the whole batch, and a fan-out sends
//!   the same packet to many viewers);
//! - the same with a video frame per destination: one `sendmmsg` of 64 messages, each a UDP GSO
//!   send of a frame's datagrams (the reference stream's, about 10) to a different destination,
//!   as an edge sends a frame to each of its viewers; once to receivers with UDP GRO (the load
//!   generator's viewers: loopback hands them the frame unsplit) and once without (each datagram
//!   delivered on its own, as to a browser);
//! - the frame fan-out and the single-datagram fan-out once more to **live** GRO receivers: a
//!   thread on another core waits on them (epoll) and reads everything, as the load generator's
//!   viewers do. The other measurements' receivers are never read: once their buffers are full
//!   the kernel drops at once, which costs the sender less than queueing a datagram and waking
//!   its reader. On loopback that delivery runs in the sender's system call, so this is the
//!   bound to hold the edge to in a loopback run;
//! - what SRTP protection costs per 1200-byte packet, for AES-CM-HMAC-SHA1-80 and AEAD-AES-128-GCM
//!   (webrtc-rs's own `rtc-srtp`, as the edge uses it).
//!
//! The ceiling in packets per second per core is `1 / (send cost + SRTP cost)`, with the cheaper
//! send path and the profile browsers negotiate first (AEAD-AES-128-GCM in Chromium). GSO is
//! usually the cheaper path, but a fan-out cannot use it, so the fan-out ceiling takes the send
//! cost from `sendmmsg` to distinct destinations instead: the bound an edge's fan-out can reach.
//! The stream ceiling weighs the reference stream's own mix: its video packets at the frame
//! fan-out's cost, its audio packets at the single-datagram fan-out's, each plus GCM; the live
//! stream ceiling does the same with the live receivers' figures.

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
use serde::Serialize;
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Datagrams per `sendmmsg` call, and distinct destinations among them.
const SENDMMSG_BATCH: usize = 64;

/// Flags of `cascade-loadgen limit`.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Datagram size in bytes.
    #[arg(long, default_value_t = 1200)]
    pub size: usize,
    /// Datagrams per video frame in the frame fan-out (the reference stream, 2.5 Mbps of
    /// 1200 B datagrams at 30 fps, has about 9).
    #[arg(long, default_value_t = 9)]
    pub frame_packets: usize,
    /// Share of the stream's packets that are video (the reference stream: 275 of 325).
    #[arg(long, default_value_t = 0.846)]
    pub video_share: f64,
    /// Audiences of the paced stream measurement (comma-separated): the reference stream sent
    /// at its own pace to that many live receivers, the sender's CPU time per packet measured.
    /// Empty: skip it.
    #[arg(long, value_delimiter = ',', default_value = "300,500")]
    pub paced_viewers: Vec<usize>,
    /// Seconds each paced measurement runs.
    #[arg(long, default_value_t = 4.0)]
    pub paced_seconds: f64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// What `limit` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LimitReport {
    pub datagram_bytes: usize,
    pub sendto_pps: f64,
    pub gso_pps: f64,
    pub gso_segments: usize,
    /// Datagrams per second through `sendmmsg`, [`Self::sendmmsg_batch`] per call, each to a
    /// different destination.
    pub sendmmsg_pps: f64,
    pub sendmmsg_batch: usize,
    pub srtp_aes_cm_sha1_80_ns: f64,
    pub srtp_aead_aes128_gcm_ns: f64,
    /// Packets per second one core can send and protect (best send path, GCM).
    pub ceiling_pps_per_core: f64,
    /// The same with AES-CM-HMAC-SHA1-80.
    pub ceiling_pps_per_core_sha1: f64,
    /// Packets per second one core can protect and send to distinct destinations (`sendmmsg`,
    /// GCM): what a fan-out can reach.
    pub fanout_ceiling_pps_per_core: f64,
    /// The same with AES-CM-HMAC-SHA1-80.
    pub fanout_ceiling_pps_per_core_sha1: f64,
    /// Datagrams per second sent as one GSO frame of [`Self::frame_packets`] per destination,
    /// [`Self::sendmmsg_batch`] destinations per `sendmmsg`; receivers with UDP GRO.
    pub frame_fanout_gro_pps: f64,
    /// The same to receivers without GRO (each datagram delivered on its own).
    pub frame_fanout_pps: f64,
    pub frame_packets: usize,
    pub video_share: f64,
    /// Packets per second per core for the reference stream's mix (video by frame fan-out,
    /// audio by single fan-out, GCM on each), to receivers with GRO: what the edge is compared
    /// with when the load generator's viewers use GRO (its default).
    pub stream_ceiling_gro_pps_per_core: f64,
    /// The same to receivers without GRO.
    pub stream_ceiling_pps_per_core: f64,
    /// Datagrams per second of the frame fan-out to live GRO receivers (read by another thread
    /// as they arrive), and of the single-datagram fan-out to live receivers.
    pub frame_fanout_live_pps: f64,
    pub sendmmsg_live_pps: f64,
    /// The stream ceiling from those: what the edge is compared with in a loopback run, where
    /// the load generator's viewers read what it sends.
    pub stream_ceiling_live_pps_per_core: f64,
    /// The reference stream at its own pace to N live receivers (see [`paced_cost`]), per
    /// audience of `--paced-viewers`.
    pub paced: Vec<PacedReport>,
}

/// The cost of sending the reference stream at its own pace to `viewers` live GRO receivers:
/// one video frame of [`LimitArgs::frame_packets`] datagrams (one GSO send per receiver) every
/// 1/30 s and one audio datagram every 20 ms, `sendmmsg` of 64 receivers per call, as the edge
/// sends. Unlike the flat-out measurements, the receivers' reader sleeps between frames, as
/// the load generator's viewers do, so the sender pays for waking it as the edge does; with a
/// reader that never sleeps (it spins over the sockets), it does not. The two bracket what the
/// kernel's part of the edge's work costs on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct PacedReport {
    pub viewers: usize,
    /// Sender CPU time per datagram, reader sleeping between frames (epoll).
    pub send_ns: f64,
    /// The same with a reader that never sleeps.
    pub send_ns_busy_reader: f64,
    /// `1 / (send_ns + GCM)`: packets per second per core, the edge's own bound in a loopback
    /// run of that audience.
    pub ceiling_pps_per_core: f64,
    pub ceiling_busy_reader_pps_per_core: f64,
    /// The smaller share of the bytes sent that the receivers' reader read, of the two runs:
    /// 1.0 when nothing was dropped.
    pub delivered: f64,
}

fn sockets() -> std::io::Result<(UdpSocket, UdpSocket, SocketAddr)> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let to = rx.local_addr()?;
    Ok((tx, rx, to))
}

/// Datagrams per second through `sendto`, one per call.
pub fn sendto_rate(size: usize, run: Duration) -> std::io::Result<f64> {
    let (tx, _rx, to) = sockets()?;
    let buf = vec![0x80u8; size];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < run {
        for _ in 0..256 {
            // A full receive queue drops on the receiving side; sendto's cost is what we measure.
            let _ = tx.send_to(&buf, to);
            sent += 1;
        }
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64())
}

/// Datagrams per second with UDP GSO (one `sendmsg` per batch of segments), and the batch size.
pub fn gso_rate(size: usize, run: Duration) -> std::io::Result<(f64, usize)> {
    let (tx, _rx, to) = sockets()?;
    let state = quinn_udp::UdpSocketState::new((&tx).into())?;
    // One GSO send carries at most 64 KiB of payload.
    let segments = state
        .max_gso_segments()
        .clamp(1, 64)
        .min(65_000 / size.max(1))
        .max(1);
    let buf = vec![0x80u8; size * segments];
    let transmit = quinn_udp::Transmit {
        destination: to,
        ecn: None,
        contents: &buf,
        segment_size: (segments > 1).then_some(size),
        src_ip: None,
    };
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < run {
        for _ in 0..64 {
            // Only what the kernel took counts (a full buffer is WouldBlock, not a send).
            if state.try_send((&tx).into(), &transmit).is_ok() {
                sent += segments as u64;
            }
        }
    }
    Ok((sent as f64 / start.elapsed().as_secs_f64(), segments))
}

/// `n` receiving sockets on loopback (asking for UDP GRO when `gro`) and their addresses as
/// `sendmmsg` destinations.
fn receivers(n: usize, gro: bool) -> std::io::Result<(Vec<UdpSocket>, Vec<Option<SockaddrIn>>)> {
    use nix::sys::socket::{setsockopt, sockopt};
    let receivers = (0..n.max(1))
        .map(|_| {
            let rx = UdpSocket::bind("127.0.0.1:0")?;
            if gro {
                setsockopt(&rx, sockopt::UdpGroSegment, &true).map_err(std::io::Error::from)?;
            }
            Ok(rx)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let destinations = receivers
        .iter()
        .map(|r| match r.local_addr()? {
            SocketAddr::V4(a) => Ok(Some(SockaddrIn::from(a))),
            SocketAddr::V6(_) => Err(std::io::Error::other("bound 127.0.0.1, got IPv6")),
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok((receivers, destinations))
}

/// Non-blocking handles of `receivers`, for a reading thread.
fn nonblocking_clones(receivers: &[UdpSocket]) -> std::io::Result<Vec<UdpSocket>> {
    receivers
        .iter()
        .map(|r| {
            let r = r.try_clone()?;
            r.set_nonblocking(true)?;
            Ok(r)
        })
        .collect()
}

/// One socket sending to `batch` destination sockets with one `sendmmsg` call.
struct Fanout {
    /// Each message's GSO segment size, when each carries several datagrams.
    segment: Option<u16>,
    tx: UdpSocket,
    /// Held open so the destinations exist; nothing reads them but the test (a full queue
    /// drops there).
    #[allow(dead_code)]
    receivers: Vec<UdpSocket>,
    destinations: Vec<Option<SockaddrIn>>,
    headers: MultiHeaders<SockaddrIn>,
}

impl Fanout {
    /// `segment`: each message is a GSO send of datagrams of that size; `gro`: the receivers
    /// ask for UDP GRO.
    fn with(batch: usize, segment: Option<u16>, gro: bool) -> std::io::Result<Self> {
        // Blocking, like the other measurements: a loopback send never waits for the receiver,
        // and sendmmsg then returns short only with an error.
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        let (receivers, destinations) = receivers(batch, gro)?;
        let cmsg = segment.map(|_| nix::cmsg_space!(u16));
        let headers = MultiHeaders::preallocate(destinations.len(), cmsg);
        Ok(Self {
            segment,
            tx,
            receivers,
            destinations,
            headers,
        })
    }

    /// Sends `iovs[i]` to destination `i`, all in one call. Returns whether the call succeeded.
    fn send(&mut self, iovs: &[[IoSlice<'_>; 1]]) -> bool {
        let segment = self.segment.unwrap_or(0);
        let gso = [ControlMessage::UdpGsoSegments(&segment)];
        let cmsgs: &[ControlMessage<'_>] = if self.segment.is_some() { &gso } else { &[] };
        // The results are not iterated: nix would read each message's (unused) source address
        // from uninitialised memory there.
        sendmmsg(
            self.tx.as_raw_fd(),
            &mut self.headers,
            iovs,
            &self.destinations,
            cmsgs,
            MsgFlags::empty(),
        )
        .is_ok()
    }
}

/// Datagrams per second with `sendmmsg`: `batch` datagrams per call, each to a different
/// destination socket (as a fan-out sends one packet to many viewers).
pub fn sendmmsg_rate(size: usize, batch: usize, run: Duration) -> std::io::Result<f64> {
    frame_fanout_rate(size, 1, batch, Receivers::Idle, run)
}

/// The destinations of a fan-out measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receivers {
    /// Never read, without GRO: once full, they drop.
    Idle,
    /// Never read, with GRO.
    IdleGro,
    /// With GRO, read by a thread of their own as datagrams arrive.
    LiveGro,
}

/// `frame` datagrams of `size` bytes as one GSO send: the datagrams a send may carry (64 KB in
/// all), and the segment size.
fn frame_and_segment(size: usize, frame: usize) -> std::io::Result<(usize, u16)> {
    let segment = u16::try_from(size).map_err(|_| std::io::Error::other("datagram too big"))?;
    Ok((frame.clamp(1, 64_000 / size.max(1)), segment))
}

/// Datagrams per second sent as frames: `sendmmsg` of `batch` messages, each one GSO send of
/// `frame` datagrams of `size` bytes to a different destination.
pub fn frame_fanout_rate(
    size: usize,
    frame: usize,
    batch: usize,
    receivers: Receivers,
    run: Duration,
) -> std::io::Result<f64> {
    let (frame, segment) = frame_and_segment(size, frame)?;
    let gro = receivers != Receivers::Idle;
    let mut fanout = Fanout::with(batch, (frame > 1).then_some(segment), gro)?;
    let reader = match receivers {
        Receivers::LiveGro => Some(Reader::start(&fanout.receivers)?),
        _ => None,
    };
    let buf = vec![0x80u8; size * frame];
    let iovs: Vec<[IoSlice<'_>; 1]> = fanout
        .destinations
        .iter()
        .map(|_| [IoSlice::new(&buf)])
        .collect();
    let per_call = (iovs.len() * frame) as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < run {
        for _ in 0..8 {
            // A failed call sent nothing we count.
            if fanout.send(&iovs) {
                sent += per_call;
            }
        }
    }
    let rate = sent as f64 / start.elapsed().as_secs_f64();
    if let Some(reader) = reader {
        reader.stop();
    }
    Ok(rate)
}

/// A thread reading every receiver as datagrams arrive (tokio's reactor: epoll, one task per
/// socket, as the load generator's viewer driver), or spinning over them ([`Reader::spin`]).
struct Reader {
    stop: tokio_util::sync::CancellationToken,
    /// Bytes read so far.
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Reader {
    fn start(receivers: &[UdpSocket]) -> std::io::Result<Self> {
        let sockets = nonblocking_clones(receivers)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let stop = tokio_util::sync::CancellationToken::new();
        let done = stop.clone();
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let total = read.clone();
        let thread = std::thread::Builder::new()
            .name("limit-reader".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for socket in sockets {
                        let (done, total) = (done.clone(), total.clone());
                        tasks.spawn(async move {
                            let Ok(socket) = tokio::net::UdpSocket::from_std(socket) else {
                                return;
                            };
                            let mut buf = vec![0u8; 65_536];
                            loop {
                                tokio::select! {
                                    _ = done.cancelled() => return,
                                    n = socket.recv(&mut buf) => match n {
                                        Ok(n) => {
                                            total.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                                        }
                                        Err(_) => return,
                                    },
                                }
                            }
                        });
                    }
                    tasks.join_all().await;
                })
            })?;
        Ok(Self { stop, read, thread })
    }

    /// A reader that never sleeps: it reads every receiver in turn, over and over, so the
    /// sender never has a sleeping reader to wake.
    fn spin(receivers: &[UdpSocket]) -> std::io::Result<Self> {
        let sockets = nonblocking_clones(receivers)?;
        let stop = tokio_util::sync::CancellationToken::new();
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (done, total) = (stop.clone(), read.clone());
        let thread = std::thread::Builder::new()
            .name("limit-spinner".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !done.is_cancelled() {
                    for socket in &sockets {
                        while let Ok(n) = socket.recv(&mut buf) {
                            total.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            })?;
        Ok(Self { stop, read, thread })
    }

    /// Bytes read so far.
    fn read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops reading; returns the bytes read.
    fn stop(self) -> u64 {
        self.stop.cancel();
        let read = self.read;
        let _ = self.thread.join();
        read.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An audio datagram of the reference stream (48 kbit/s Opus, 20 ms): RTP and SRTP included.
const AUDIO_BYTES: usize = 160;

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Sender CPU nanoseconds per datagram for the reference stream sent at its own pace to
/// `viewers` live GRO receivers ([`PacedReport`]); `busy_reader`: the reader spins instead of
/// waiting on epoll.
pub fn paced_cost(
    size: usize,
    frame: usize,
    viewers: usize,
    busy_reader: bool,
    run: Duration,
) -> std::io::Result<Paced> {
    let (frame, segment) = frame_and_segment(size, frame)?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let (receivers, destinations) = receivers(viewers, true)?;
    let reader = if busy_reader {
        Reader::spin(&receivers)?
    } else {
        Reader::start(&receivers)?
    };
    let video = vec![0x80u8; size * frame];
    let audio = vec![0x80u8; AUDIO_BYTES];
    let video_iovs: Vec<[IoSlice<'_>; 1]> = (0..SENDMMSG_BATCH)
        .map(|_| [IoSlice::new(&video)])
        .collect();
    let audio_iovs: Vec<[IoSlice<'_>; 1]> = (0..SENDMMSG_BATCH)
        .map(|_| [IoSlice::new(&audio)])
        .collect();
    let mut video_headers = MultiHeaders::preallocate(SENDMMSG_BATCH, Some(nix::cmsg_space!(u16)));
    let mut audio_headers = MultiHeaders::<SockaddrIn>::preallocate(SENDMMSG_BATCH, None);
    let gso = [ControlMessage::UdpGsoSegments(&segment)];
    let (frame_interval, audio_interval) =
        (Duration::from_micros(33_333), Duration::from_millis(20));
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let (mut next_frame, mut next_audio) = (start, start);
    let (mut sent_frames, mut sent_audio) = (0u64, 0u64);
    while start.elapsed() < run {
        let now = Instant::now();
        let video_due = next_frame <= now;
        if !video_due && next_audio > now {
            std::thread::sleep(next_frame.min(next_audio) - now);
            continue;
        }
        let (iovs, headers, cmsgs, count): (_, _, &[ControlMessage<'_>], _) = if video_due {
            next_frame += frame_interval;
            (&video_iovs, &mut video_headers, &gso, &mut sent_frames)
        } else {
            next_audio += audio_interval;
            (&audio_iovs, &mut audio_headers, &[], &mut sent_audio)
        };
        for chunk in destinations.chunks(SENDMMSG_BATCH) {
            // The results are not iterated (see `Fanout::send`); a failed call sent nothing.
            if sendmmsg(
                tx.as_raw_fd(),
                headers,
                &iovs[..chunk.len()],
                chunk,
                cmsgs,
                MsgFlags::empty(),
            )
            .is_ok()
            {
                *count += chunk.len() as u64;
            }
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu_start);
    let sent_bytes = sent_frames * (size * frame) as u64 + sent_audio * AUDIO_BYTES as u64;
    // Whatever is still queued is read before the reader stops.
    let deadline = Instant::now() + Duration::from_secs(1);
    while reader.read() < sent_bytes && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let read = reader.stop();
    Ok(Paced {
        send_ns: cpu.as_nanos() as f64 / (sent_frames * frame as u64 + sent_audio).max(1) as f64,
        delivered: read as f64 / sent_bytes.max(1) as f64,
    })
}

/// One paced measurement: sender CPU nanoseconds per datagram, and the share of the bytes sent
/// that the reader read (1.0: none dropped, so the receivers' work was all paid for).
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub send_ns: f64,
    pub delivered: f64,
}

/// Nanoseconds to protect one RTP packet of `size` bytes with `profile`.
pub fn srtp_cost(
    profile: rtc::srtp::protection_profile::ProtectionProfile,
    size: usize,
    run: Duration,
) -> anyhow::Result<f64> {
    let crypto = rtc::crypto::providers::RingCrypto;
    let key = vec![7u8; profile.key_len()];
    let salt = vec![9u8; profile.salt_len()];
    let mut ctx = rtc::srtp::context::Context::new(&key, &salt, profile, None, None, &crypto)?;
    let mut raw = vec![0u8; size];
    raw[0] = 0x80;
    raw[1] = 96;
    let start = Instant::now();
    let mut n = 0u64;
    let mut seq = 0u16;
    while start.elapsed() < run {
        for _ in 0..256 {
            seq = seq.wrapping_add(1);
            raw[2..4].copy_from_slice(&seq.to_be_bytes());
            std::hint::black_box(ctx.encrypt_rtp(&raw)?);
            n += 1;
        }
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}

/// Runs every measurement.
pub fn measure(args: &LimitArgs) -> anyhow::Result<LimitReport> {
    use rtc::srtp::protection_profile::ProtectionProfile;
    let run = Duration::from_secs_f64(args.seconds.max(0.1));
    let sendto_pps = sendto_rate(args.size, run)?;
    let (gso_pps, gso_segments) = gso_rate(args.size, run)?;
    let sendmmsg_pps = sendmmsg_rate(args.size, SENDMMSG_BATCH, run)?;
    let sha1 = srtp_cost(ProtectionProfile::Aes128CmHmacSha1_80, args.size, run)?;
    let gcm = srtp_cost(ProtectionProfile::AeadAes128Gcm, args.size, run)?;
    let frame_fanout_gro_pps = frame_fanout_rate(
        args.size,
        args.frame_packets,
        SENDMMSG_BATCH,
        Receivers::IdleGro,
        run,
    )?;
    let frame_fanout_pps = frame_fanout_rate(
        args.size,
        args.frame_packets,
        SENDMMSG_BATCH,
        Receivers::Idle,
        run,
    )?;
    let frame_fanout_live_pps = frame_fanout_rate(
        args.size,
        args.frame_packets,
        SENDMMSG_BATCH,
        Receivers::LiveGro,
        run,
    )?;
    let sendmmsg_live_pps =
        frame_fanout_rate(args.size, 1, SENDMMSG_BATCH, Receivers::LiveGro, run)?;
    let send_ns = 1e9 / sendto_pps.max(gso_pps);
    let fanout_send_ns = 1e9 / sendmmsg_pps;
    let video_share = args.video_share.clamp(0.0, 1.0);
    let stream = |frame_pps: f64, single_pps: f64| {
        let send_ns = video_share * 1e9 / frame_pps + (1.0 - video_share) * 1e9 / single_pps;
        1e9 / (send_ns + gcm)
    };
    let paced_run = Duration::from_secs_f64(args.paced_seconds.max(0.5));
    let mut paced = Vec::new();
    for &viewers in &args.paced_viewers {
        let sleeping = paced_cost(args.size, args.frame_packets, viewers, false, paced_run)?;
        let busy = paced_cost(args.size, args.frame_packets, viewers, true, paced_run)?;
        paced.push(PacedReport {
            viewers,
            send_ns: sleeping.send_ns,
            send_ns_busy_reader: busy.send_ns,
            ceiling_pps_per_core: 1e9 / (sleeping.send_ns + gcm),
            ceiling_busy_reader_pps_per_core: 1e9 / (busy.send_ns + gcm),
            delivered: sleeping.delivered.min(busy.delivered),
        });
    }
    Ok(LimitReport {
        datagram_bytes: args.size,
        sendto_pps,
        gso_pps,
        gso_segments,
        sendmmsg_pps,
        sendmmsg_batch: SENDMMSG_BATCH,
        srtp_aes_cm_sha1_80_ns: sha1,
        srtp_aead_aes128_gcm_ns: gcm,
        ceiling_pps_per_core: 1e9 / (send_ns + gcm),
        ceiling_pps_per_core_sha1: 1e9 / (send_ns + sha1),
        fanout_ceiling_pps_per_core: 1e9 / (fanout_send_ns + gcm),
        fanout_ceiling_pps_per_core_sha1: 1e9 / (fanout_send_ns + sha1),
        frame_fanout_gro_pps,
        frame_fanout_pps,
        frame_packets: args.frame_packets,
        video_share,
        stream_ceiling_gro_pps_per_core: stream(frame_fanout_gro_pps, sendmmsg_pps),
        stream_ceiling_pps_per_core: stream(frame_fanout_pps, sendmmsg_pps),
        frame_fanout_live_pps,
        sendmmsg_live_pps,
        stream_ceiling_live_pps_per_core: stream(frame_fanout_live_pps, sendmmsg_live_pps),
        paced,
    })
}

/// `cascade-loadgen limit`.
pub fn execute(args: &LimitArgs) -> anyhow::Result<LimitReport> {
    let report = measure(args)?;
    println!(
        "one core, {} B datagrams on loopback:\n  sendto          {:>12.0} pkt/s\n  UDP GSO x{:<2}     {:>12.0} pkt/s\n  sendmmsg x{:<2}    {:>12.0} pkt/s (to {} destinations)\n  SRTP AES-CM-SHA1-80 {:>8.0} ns/pkt\n  SRTP AEAD-AES-128-GCM {:>6.0} ns/pkt\n  ceiling (send + GCM)  {:>8.0} pkt/s/core\n  ceiling (send + SHA1) {:>8.0} pkt/s/core\n  fan-out ceiling (sendmmsg + GCM)  {:>8.0} pkt/s/core\n  fan-out ceiling (sendmmsg + SHA1) {:>8.0} pkt/s/core\n  frames x{} by GSO, sendmmsg x{}: {:>10.0} pkt/s to GRO receivers, {:>10.0} pkt/s without\n  stream ceiling ({:.0} % video by frames, audio by sendmmsg, + GCM): {:>8.0} pkt/s/core to GRO receivers, {:>8.0} without\n  to live GRO receivers (read as they arrive): frames {:>10.0} pkt/s, single datagrams {:>10.0} pkt/s, stream ceiling {:>8.0} pkt/s/core",
        report.datagram_bytes,
        report.sendto_pps,
        report.gso_segments,
        report.gso_pps,
        report.sendmmsg_batch,
        report.sendmmsg_pps,
        report.sendmmsg_batch,
        report.srtp_aes_cm_sha1_80_ns,
        report.srtp_aead_aes128_gcm_ns,
        report.ceiling_pps_per_core,
        report.ceiling_pps_per_core_sha1,
        report.fanout_ceiling_pps_per_core,
        report.fanout_ceiling_pps_per_core_sha1,
        report.frame_packets,
        report.sendmmsg_batch,
        report.frame_fanout_gro_pps,
        report.frame_fanout_pps,
        report.video_share * 100.0,
        report.stream_ceiling_gro_pps_per_core,
        report.stream_ceiling_pps_per_core,
        report.frame_fanout_live_pps,
        report.sendmmsg_live_pps,
        report.stream_ceiling_live_pps_per_core,
    );
    for p in &report.paced {
        println!(
            "  the stream at its pace to {} live receivers: {:.0} ns/pkt to send (reader sleeping), {:.0} (reader busy); ceiling {:.0} / {:.0} pkt/s/core; {:.1} % delivered",
            p.viewers,
            p.send_ns,
            p.send_ns_busy_reader,
            p.ceiling_pps_per_core,
            p.ceiling_busy_reader_pps_per_core,
            p.delivered * 100.0,
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measurement_yields_a_positive_figure() {
        let report = measure(&LimitArgs {
            seconds: 0.05,
            size: 1200,
            frame_packets: 9,
            video_share: 0.846,
            paced_viewers: vec![70],
            paced_seconds: 0.5,
            json: None,
        })
        .unwrap();
        // Two `sendmmsg` calls per send (64 + 6 receivers), every byte read.
        let [paced] = &report.paced[..] else {
            panic!("one paced audience: {:?}", report.paced);
        };
        assert_eq!(paced.viewers, 70);
        assert!(paced.send_ns > 0.0 && paced.send_ns_busy_reader > 0.0);
        assert!(paced.ceiling_pps_per_core < 1e9 / report.srtp_aead_aes128_gcm_ns);
        assert!(paced.delivered > 0.99, "{paced:?}");
        assert!(report.sendto_pps > 0.0 && report.gso_pps > 0.0 && report.sendmmsg_pps > 0.0);
        assert_eq!(report.sendmmsg_batch, SENDMMSG_BATCH);
        assert!(report.srtp_aes_cm_sha1_80_ns > 0.0 && report.srtp_aead_aes128_gcm_ns > 0.0);
        assert!(report.ceiling_pps_per_core > 0.0);
        assert!(report.fanout_ceiling_pps_per_core > 0.0);
        assert!(report.frame_fanout_gro_pps > 0.0 && report.frame_fanout_pps > 0.0);
        assert!(report.stream_ceiling_gro_pps_per_core > 0.0);
        assert!(report.frame_fanout_live_pps > 0.0 && report.sendmmsg_live_pps > 0.0);
        assert!(report.stream_ceiling_live_pps_per_core > 0.0);
        assert!(report.stream_ceiling_pps_per_core < 1e9 / report.srtp_aead_aes128_gcm_ns);
        // Only the send path differs: the better of sendto and GSO is at least as cheap as a
        // batch to many destinations only when GSO works; each ceiling is below its SRTP bound.
        assert!(report.fanout_ceiling_pps_per_core < 1e9 / report.srtp_aead_aes128_gcm_ns);
    }

    #[test]
    fn sendmmsg_reaches_every_destination() {
        let mut fanout = Fanout::with(4, None, false).unwrap();
        let payloads: Vec<[u8; 3]> = (0..4u8).map(|i| [i, 0xaa, i]).collect();
        let iovs: Vec<[IoSlice<'_>; 1]> = payloads.iter().map(|p| [IoSlice::new(p)]).collect();
        assert!(fanout.send(&iovs));
        for (i, rx) in fanout.receivers.iter().enumerate() {
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &payloads[i], "destination {i}");
            assert_eq!(from, fanout.tx.local_addr().unwrap());
        }
        assert!(sendmmsg_rate(100, 4, Duration::from_millis(1)).unwrap() > 0.0);
    }

    #[test]
    fn the_reader_reads_what_reaches_live_receivers() {
        let mut fanout = Fanout::with(3, Some(100), true).unwrap();
        let reader = Reader::start(&fanout.receivers).unwrap();
        let frame = [7u8; 250];
        let iovs: Vec<[IoSlice<'_>; 1]> = (0..3).map(|_| [IoSlice::new(&frame)]).collect();
        assert!(fanout.send(&iovs));
        // Read as it arrives: poll (with a deadline) until the other thread has drained it all.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 1024];
        while fanout
            .receivers
            .iter()
            .any(|r| r.set_nonblocking(true).is_ok() && r.peek(&mut buf).is_ok())
            && Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        assert_eq!(reader.stop(), 750, "every byte read by the reader");
    }

    #[test]
    fn a_frame_fanout_sends_each_destination_its_frame() {
        let mut fanout = Fanout::with(3, Some(100), true).unwrap();
        let frame: Vec<u8> = (0..250u32).map(|i| (i / 100) as u8).collect();
        let iovs: Vec<[IoSlice<'_>; 1]> = (0..3).map(|_| [IoSlice::new(&frame)]).collect();
        assert!(fanout.send(&iovs));
        for rx in &fanout.receivers {
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // GRO may hand the frame over whole or in parts; the bytes are the frame's.
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while got.len() < frame.len() {
                let n = rx.recv(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, frame);
        }
        let rate =
            frame_fanout_rate(1200, 9, 4, Receivers::Idle, Duration::from_millis(1)).unwrap();
        assert!(rate > 0.0);
    }
}
