//! Do the UDP mux's shards scale with cores? (issue 22, item 5.)
//!
//! For 1, 2 and 4 shards in turn, in one process: the real `Mux` (`Mux::start`, its shard
//! engines: forward legs, our SRTP in place, the outbox, `sendmmsg` with UDP GSO) on a Tokio
//! runtime with a worker per core, as a node runs it; a room fed by a paced publisher thread
//! (2.5 Mbit/s VP8 + Opus, as `cascade-loadgen run` publishes: `feed`); N synthetic viewers
//! that join through `Mux::subscribe` with a real ICE and DTLS handshake and then only count
//! their datagrams on loopback (`viewers`, on sink threads of their own). After a warm-up it
//! measures a window: packets the shards sent per second, the CPU time of the mux's runtime
//! threads, of the sinks and of the process (`cpu`), packets per CPU-second, and each
//! shard's share. Nothing in the mux is changed or bypassed for it.
//!
//! `cargo bench -p cascade-core --bench shards -- --viewers 300 --seconds 10 --shards 1,2,4`
//! (`--sinks N`: sink threads, 1 by default; `--workers N`: runtime workers, one per core by
//! default.)

mod cpu;
mod feed;
mod viewers;

use cascade_core::media::room::Room;
use cascade_core::obs::metrics::Traffic;
use cascade_core::rtc::mux::Mux;
use cascade_core::rtc::negotiate::Offer;
use cascade_core::rtc::pc::{MediaSettings, MuxSettings, PcFactory};
use cascade_core::rtc::transport::TransportCell;
use feed::Feed;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use viewers::Sinks;

/// From the last viewer's join to the window: at least [`WARM_UP`], then until the shards send
/// what the feed's pace asks (every viewer has caught up on its group of pictures, paced per
/// tick, and no queue is draining) for two seconds in a row, or [`WARM_UP_MAX`] has passed.
const WARM_UP: Duration = Duration::from_secs(2);
const WARM_UP_MAX: Duration = Duration::from_secs(20);
/// How long the viewers may take to connect, all of them.
const CONNECT_WAIT: Duration = Duration::from_secs(20);
/// Names of the mux runtime's threads (workers, and the blocking pool that negotiates).
const RUNTIME: &str = "mux-rt";

struct Args {
    viewers: usize,
    seconds: f64,
    shards: Vec<u16>,
    sinks: usize,
    workers: usize,
}

fn args() -> Args {
    let mut a = Args {
        viewers: 300,
        seconds: 10.0,
        shards: vec![1, 2, 4],
        sinks: 1,
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--viewers" => a.viewers = value().parse().expect("--viewers N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds S"),
            "--sinks" => a.sinks = value().parse().expect("--sinks N"),
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "--shards" => {
                a.shards = value()
                    .split(',')
                    .map(|s| s.parse().expect("--shards 1,2,4"))
                    .collect();
            }
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    a
}

/// What one shard count measured, over the window.
struct Row {
    shards: u16,
    viewers: usize,
    seconds: f64,
    /// Packets the shards sent (the room's `packets_out`), and send errors.
    sent: u64,
    send_errors: u64,
    /// Media datagrams the viewers received, in all and by shard.
    received: u64,
    by_shard: Vec<u64>,
    /// Packets the publisher sent.
    published: u64,
    runtime_cpu: Duration,
    runtime_threads: Vec<Duration>,
    sinks_cpu: Duration,
    process_cpu: Duration,
    machine_busy: f64,
}

async fn run(shards: u16, args: &Args) -> Row {
    let shutdown = CancellationToken::new();
    let settings = MuxSettings { port: 0, shards };
    let media = MediaSettings {
        bind_ip: "127.0.0.1".parse().expect("an address"),
        advertise_ip: None,
        udp_ports: None,
        ice_tcp_port: None,
        mux: Some(settings),
    };
    let counters = cascade_core::obs::metrics::MuxCounters::default();
    let mux = Mux::start(&media, settings, counters.clone(), None, shutdown.clone())
        .expect("mux started");
    let factory = PcFactory::new(media);
    let traffic = Traffic::default();
    let room = Room::with_traffic("shards", false, traffic.clone());
    let mut feed = Feed::start(room.clone()).await;
    let mut sinks = Sinks::start(args.sinks);
    let mut connected = Vec::with_capacity(args.viewers);
    let mut cancels = Vec::with_capacity(args.viewers);
    let started = Instant::now();
    for _ in 0..args.viewers {
        let joining = viewers::join();
        let offer = Offer::parse(&joining.offer).expect("our offer");
        let (cancel, up) = (CancellationToken::new(), CancellationToken::new());
        let answer = mux
            .subscribe(
                &factory,
                room.clone(),
                &offer,
                cancel.clone(),
                CancellationToken::new(),
                up.clone(),
                TransportCell::default(),
            )
            .await
            .expect("the mux answers");
        sinks.add(joining, answer);
        connected.push(up);
        cancels.push(cancel);
    }
    let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
    for up in &connected {
        let _ = tokio::time::timeout_at(deadline, up.cancelled()).await;
    }
    let up = connected.iter().filter(|c| c.is_cancelled()).count();
    eprintln!(
        "{shards} shard(s): {up}/{} viewers connected in {:.1} s; loads {:?}",
        args.viewers,
        started.elapsed().as_secs_f64(),
        mux.shard_loads().iter().map(|l| l.1).collect::<Vec<_>>()
    );
    let warm = steady(&traffic, &feed, up).await;
    eprintln!("  steady after {:.1} s", warm.as_secs_f64());

    let at = Instant::now();
    let cpu0 = cpu::snapshot();
    let (received0, by0) = sinks.media();
    let (sent0, errors0) = (traffic.packets_out.get(), counters.send_errors.get());
    let published0 = feed.published.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let cpu1 = cpu::snapshot();
    let (received1, by1) = sinks.media();
    let (sent1, errors1) = (traffic.packets_out.get(), counters.send_errors.get());
    let published1 = feed.published.load(Ordering::Relaxed);
    let seconds = at.elapsed().as_secs_f64();
    let spent = cpu::spent(&cpu0, &cpu1);
    let by_shard = mux
        .candidates()
        .iter()
        .map(|c| {
            let of = |v: &[(u16, u64)]| v.iter().find(|(p, _)| *p == c.port()).map_or(0, |e| e.1);
            of(&by1) - of(&by0)
        })
        .collect();

    eprintln!(
        "  {} SRTCP datagrams received in all; threads: {}",
        sinks.rtcp(),
        spent
            .threads
            .iter()
            .take(6)
            .map(|(n, t)| format!("{n} {:.0}%", 100.0 * t.as_secs_f64() / seconds))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for c in &cancels {
        c.cancel();
    }
    shutdown.cancel();
    feed.stop();
    sinks.stop();
    // The engines drop their viewers and the room's pump tasks end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Row {
        shards,
        viewers: up,
        seconds,
        sent: sent1 - sent0,
        send_errors: errors1 - errors0,
        received: received1 - received0,
        by_shard,
        published: published1 - published0,
        runtime_cpu: spent.of(RUNTIME),
        runtime_threads: spent.each(RUNTIME),
        sinks_cpu: spent.of("sink-"),
        process_cpu: spent.process,
        machine_busy: spent.machine_busy,
    }
}

/// Waits for the steady state (see [`WARM_UP`]); returns how long it took.
async fn steady(traffic: &Traffic, feed: &Feed, viewers: usize) -> Duration {
    let start = Instant::now();
    tokio::time::sleep(WARM_UP).await;
    let mut in_pace = 0;
    while in_pace < 2 && start.elapsed() < WARM_UP_MAX {
        let (sent, published) = (
            traffic.packets_out.get(),
            feed.published.load(Ordering::Relaxed),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = traffic.packets_out.get() - sent;
        let expected = (feed.published.load(Ordering::Relaxed) - published) * viewers as u64;
        let ratio = sent as f64 / expected.max(1) as f64;
        in_pace = if (0.97..=1.03).contains(&ratio) {
            in_pace + 1
        } else {
            0
        };
    }
    start.elapsed()
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .thread_name(RUNTIME)
        .enable_all()
        .build()
        .expect("runtime");
    eprintln!(
        "{} viewers, {:.0} s windows, {} runtime workers, {} sink thread(s); the feed: {:.0} packets/s",
        args.viewers,
        args.seconds,
        args.workers,
        args.sinks,
        Feed::packets_per_second()
    );
    let mut rows = Vec::new();
    for &shards in &args.shards {
        rows.push(runtime.block_on(run(shards, &args)));
    }
    print_table(&rows);
}

fn print_table(rows: &[Row]) {
    println!(
        "| shards | viewers | sent pkt/s | of paced | received of sent | per shard pkt/s | mux runtime CPU % (busiest threads) | pkt per runtime CPU-s | process CPU % | pkt per process CPU-s | sinks CPU % | machine busy % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let s = r.seconds;
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / s;
        let expected = r.published as f64 * r.viewers as f64;
        let threads = r
            .runtime_threads
            .iter()
            .take(3)
            .map(|t| format!("{:.0}", pct(*t)))
            .collect::<Vec<_>>()
            .join(" + ");
        let per_shard = r
            .by_shard
            .iter()
            .map(|n| format!("{:.0}", *n as f64 / s))
            .collect::<Vec<_>>()
            .join(" / ");
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {:.0} ({}) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.shards,
            r.viewers,
            r.sent as f64 / s,
            r.sent as f64 / expected.max(1.0),
            r.received as f64 / (r.sent as f64).max(1.0),
            per_shard,
            pct(r.runtime_cpu),
            threads,
            r.sent as f64 / r.runtime_cpu.as_secs_f64().max(1e-9),
            pct(r.process_cpu),
            r.sent as f64 / r.process_cpu.as_secs_f64().max(1e-9),
            pct(r.sinks_cpu),
            100.0 * r.machine_busy,
        );
        if r.send_errors > 0 {
            println!("(shards {}: {} send errors)", r.shards, r.send_errors);
        }
    }
}
