//! `cascade-loadgen run`: one publisher, N viewers ramped in at a fixed rate, a progress line
//! every second, a report at the end.
//!
//! Timeline: the publisher connects and starts sending; once the origin has received its media
//! on both tracks, viewers are started at `--ramp` per second, round-robin over the edges; at `--duration` (from the publisher's start) the
//! publisher stops sending, viewers drain (until nothing arrives for half a second), the nodes'
//! status is read, viewers stop counting and leave (WHEP DELETE), and the publisher leaves
//! (WHIP DELETE).

use crate::light::{LightEngine, run_light_viewer};
use crate::logger;
use crate::marker::now_ns;
use crate::media::MediaPlan;
use crate::procstat::{self, ProcWatch, UdpCounters};
use crate::publisher::{Publisher, PublisherConfig};
use crate::report::{self, Measurements, NodeLag, NodeStatus, Report, RunConfig, Skew};
use crate::signal;
use crate::stats::{Percentiles, ShardedHistogram, SkewTable};
use crate::viewer::{ViewerContext, ViewerResult, run_viewer};
use anyhow::{Context, bail};
use cascade_core::rtc::pc::{MediaSettings, PcFactory};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// After the publisher's last packet, viewers keep counting until nothing has arrived for this
/// long (what is still queued somewhere on the way is delivered, not counted lost)...
const DRAIN_QUIET: Duration = Duration::from_millis(500);
/// ...or this long has passed.
const DRAIN_MAX: Duration = Duration::from_secs(15);
/// How long viewers get to report and leave after the stop.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long viewers wait for the origin to receive the publisher's media before they start
/// anyway.
const ORIGIN_MEDIA_WAIT: Duration = Duration::from_secs(10);
/// The steady state starts this long after the last viewer joined (or failed): every viewer's
/// catch-up is behind it ([`crate::viewer::SETTLE`]) and its join's work is done at the node.
const STEADY_AFTER: Duration = Duration::from_secs(2);
/// Tracks the publisher sends (video and audio).
const PUBLISHED_TRACKS: usize = 2;
/// Shards of the shared histograms.
const SHARDS: usize = 32;

/// Flags of `cascade-loadgen run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Base URL of the origin the publisher sends to by WHIP (`{origin}/whip/{room}`).
    #[arg(long)]
    pub origin: String,
    /// Another origin the publisher publishes to (the same room, the broadcast continuing) when
    /// its connection fails; repeat for several, tried in turn.
    #[arg(long = "failover-origin")]
    pub failover_origins: Vec<String>,
    /// Base URL of an edge viewers watch by WHEP (`{edge}/whep/{room}`, with the URL's query
    /// string: `http://edge/?region=eu-west` gives viewers a placement hint); repeat for
    /// several, viewers are spread round-robin.
    #[arg(long = "edge", required = true)]
    pub edges: Vec<String>,
    /// Room name.
    #[arg(long, default_value = "loadgen")]
    pub room: String,
    /// Bearer token sent with every WHIP and WHEP request (nodes with `--auth-secret`): one
    /// that grants `publish` in the room lets the publisher and the viewers in.
    #[arg(long)]
    pub token: Option<String>,
    /// Number of viewers.
    #[arg(long, default_value_t = 10)]
    pub viewers: usize,
    /// Viewers started per second.
    #[arg(long, default_value_t = 10.0)]
    pub ramp: f64,
    /// Seconds from the publisher's start to the end of the measurement (the ramp included).
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Video bitrate (RTP payload), kbit/s.
    #[arg(long, default_value_t = 2500)]
    pub video_kbps: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Audio bitrate (RTP payload), kbit/s, in 20 ms Opus packets.
    #[arg(long, default_value_t = 48)]
    pub audio_kbps: u32,
    /// Seconds between scheduled keyframes.
    #[arg(long, default_value_t = 2.0)]
    pub keyframe_interval: f64,
    /// Where to write the JSON report.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Processes to sample CPU and memory of (the nodes under test), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// How viewers are built: `rtc` (light: webrtc-rs's sans-I/O core, many viewers per
    /// driver task) or `pc` (a full webrtc-rs peer connection per viewer, with its own driver
    /// and reader tasks).
    #[arg(long, value_enum, default_value_t = ViewerEngine::Rtc)]
    pub viewer_engine: ViewerEngine,
    /// How `pc` viewers reach the edge: `udp`, or `tcp` (ICE over TCP: they use only the
    /// answer's passive TCP candidate, as a client on a network without UDP does).
    #[arg(long, value_enum, default_value_t = ViewerTransport::Udp)]
    pub viewer_transport: ViewerTransport,
    /// Percent of arriving video datagrams each `rtc` viewer drops before its core sees them
    /// (evenly spaced, so each loss is a single packet), to show that losses between edge and
    /// viewer are recovered by NACK. 0 (the default) drops nothing.
    #[arg(long, default_value_t = 0.0)]
    pub viewer_loss: f64,
    /// `rtc` viewers' sockets ask for UDP GRO: a node's GSO send (a video frame to one
    /// viewer) arrives as one read and one wake-up. On loopback the receivers' per-datagram
    /// kernel work is charged to the sending node; over a network it is not, so this measures
    /// the node closer to how it serves real viewers. `--viewer-gro false` for one datagram
    /// per delivery, as a browser gets them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub viewer_gro: bool,
    /// `rtc` viewers decrypt their media themselves once DTLS is done (SRTP contexts of their
    /// own, from the keys their core derived) and send their own NACKs; their core keeps ICE,
    /// DTLS and RTCP. Through the core's read pipeline each packet costs several copies
    /// between handler and interceptor stages, which bounded how many viewers one load
    /// generator could hold. `--viewer-own-srtp false` feeds every packet to the core.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub viewer_own_srtp: bool,
    /// `rtc` viewers that decrypt their own media also send their own TWCC feedback (every
    /// 100 ms, as browsers do), so the edge keeps a bandwidth estimate per viewer without the
    /// viewers' cores reading every packet (`--viewer-own-srtp false` has the cores send it).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub viewer_twcc: bool,
    /// Milliseconds between a connecting `rtc` viewer's ICE checks: browsers pace them at 50
    /// (RFC 8445's Ta); webrtc-rs's default is 200.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(5..=1000))]
    pub viewer_ice_check_ms: u64,
    /// Driver threads of the `rtc` engine (one task each); viewers are spread over them.
    #[arg(long, default_value_t = 1)]
    pub viewer_drivers: usize,
    /// Address the peer connections bind their media sockets to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Allow origin and edge URLs that are not loopback addresses.
    #[arg(long)]
    pub allow_remote: bool,
    /// The publisher sends its video in three simulcast layers (RIDs `l`, `m`, `h` at 8 %, 28 %
    /// and 100 % of `--video-kbps`), as a browser's simulcast does; viewers and their
    /// counters follow the top layer.
    #[arg(long)]
    pub simulcast: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// How viewers reach the edge (`--viewer-transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ViewerTransport {
    Udp,
    Tcp,
}

/// How viewers are built (`--viewer-engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ViewerEngine {
    /// webrtc-rs's sans-I/O core (`rtc`), many viewers per driver task: see [`crate::light`].
    Rtc,
    /// A full webrtc-rs (`webrtc`) peer connection per viewer: see [`crate::viewer`].
    Pc,
}

impl ViewerEngine {
    pub fn name(self) -> &'static str {
        match self {
            ViewerEngine::Rtc => "rtc",
            ViewerEngine::Pc => "pc",
        }
    }
}

impl RunArgs {
    fn validate(&self) -> anyhow::Result<(reqwest::Url, Vec<reqwest::Url>, Vec<reqwest::Url>)> {
        let base = |s: &str| -> anyhow::Result<reqwest::Url> {
            // A base URL without a trailing slash would lose its last path segment on join;
            // the slash goes on the path, before any query string.
            let mut url = signal::parse_url(s)?;
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            if !self.allow_remote && !signal::is_loopback(&url) {
                bail!("{s} is not a loopback address; pass --allow-remote to load a remote node");
            }
            Ok(url)
        };
        let origin = base(&self.origin)?;
        let edges = self
            .edges
            .iter()
            .map(|e| base(e))
            .collect::<anyhow::Result<Vec<_>>>()?;
        cascade_core::media::RoomId::validate(&self.room)
            .map_err(|e| anyhow::anyhow!("--room: {e}"))?;
        if !(self.ramp.is_finite() && self.ramp > 0.0) {
            bail!("--ramp must be a positive number of viewers per second");
        }
        if !(self.duration.is_finite() && self.duration > 0.0) {
            bail!("--duration must be a positive number of seconds");
        }
        if !(1..=240).contains(&self.fps) {
            bail!("--fps must be between 1 and 240");
        }
        if !(self.keyframe_interval.is_finite() && self.keyframe_interval > 0.0) {
            bail!("--keyframe-interval must be a positive number of seconds");
        }
        if !(1..=64).contains(&self.viewer_drivers) {
            bail!("--viewer-drivers must be between 1 and 64");
        }
        if !(self.viewer_loss.is_finite() && (0.0..=50.0).contains(&self.viewer_loss)) {
            bail!("--viewer-loss must be a percentage between 0 and 50");
        }
        if self.viewer_loss > 0.0 && self.viewer_engine != ViewerEngine::Rtc {
            bail!("--viewer-loss needs --viewer-engine rtc");
        }
        if self.viewer_transport == ViewerTransport::Tcp && self.viewer_engine != ViewerEngine::Pc {
            bail!("--viewer-transport tcp needs --viewer-engine pc");
        }
        let failover = self
            .failover_origins
            .iter()
            .map(|o| base(o))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((origin, edges, failover))
    }

    fn config(&self) -> RunConfig {
        RunConfig {
            origin: self.origin.clone(),
            edges: self.edges.clone(),
            room: self.room.clone(),
            viewers: self.viewers,
            ramp_per_second: self.ramp,
            duration_s: self.duration,
            video_kbps: self.video_kbps,
            fps: self.fps,
            audio_kbps: self.audio_kbps,
            keyframe_interval_s: self.keyframe_interval,
            viewer_engine: self.viewer_engine.name().to_owned(),
            viewer_transport: match self.viewer_transport {
                ViewerTransport::Udp => "udp",
                ViewerTransport::Tcp => "tcp",
            }
            .to_owned(),
            viewer_loss_pct: self.viewer_loss,
            viewer_gro: self.viewer_gro && self.viewer_engine == ViewerEngine::Rtc,
            viewer_own_srtp: self.viewer_own_srtp && self.viewer_engine == ViewerEngine::Rtc,
            viewer_twcc: self.viewer_twcc
                && self.viewer_own_srtp
                && self.viewer_engine == ViewerEngine::Rtc,
            viewer_ice_check_ms: self.viewer_ice_check_ms,
            simulcast: self.simulcast,
        }
    }
}

/// Raises the open-file limit as far as allowed; warns when it is short of what `viewers`
/// need. Returns the limit in force.
fn raise_nofile(viewers: usize) -> Option<u64> {
    // Per viewer: its UDP socket, and an HTTP connection while it signals; plus headroom.
    let want = viewers as u64 * 3 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            if limit < want {
                eprintln!(
                    "warning: the open-file limit is {limit} but {viewers} viewers need about {want}; \
                     viewers will fail with \"too many open files\" (raise the hard limit: ulimit -Hn)"
                );
            }
            Some(limit)
        }
        Err(e) => {
            eprintln!("warning: could not read or raise the open-file limit: {e}");
            None
        }
    }
}

/// Runs the load and returns the report (also printed and written by [`execute`]).
pub async fn run(args: &RunArgs) -> anyhow::Result<Report> {
    let (origin, edges, failover) = args.validate()?;
    let nofile_limit = raise_nofile(args.viewers);
    let ramp_seconds = args.viewers as f64 / args.ramp;
    if ramp_seconds + 2.0 > args.duration {
        eprintln!(
            "warning: starting {} viewers at {}/s takes {ramp_seconds:.1} s of the {} s run; \
             the last ones will have little or no time to watch",
            args.viewers, args.ramp, args.duration
        );
    }
    let _ = now_ns(); // start the clock's epoch
    let udp_before = procstat::udp_counters();
    let plan = MediaPlan::new(
        args.video_kbps,
        args.fps,
        args.audio_kbps,
        Duration::from_secs_f64(args.keyframe_interval),
    );
    let started = Instant::now();
    let mut publisher = tokio::time::timeout(
        Duration::from_secs(60),
        Publisher::start(PublisherConfig {
            origin: origin.clone(),
            failover,
            room: args.room.clone(),
            plan: plan.clone(),
            bind_ip: args.bind,
            token: args.token.clone(),
            simulcast: args.simulcast,
        }),
    )
    .await
    .context("the publisher did not connect within 60 s")?
    .context("publishing to the origin")?;

    // Room for every packet index the run can produce, with a wide margin for PLI keyframes.
    let seconds = args.duration + 10.0;
    let video_capacity = (plan.video_packets_per_second() * seconds * 2.0) as usize + 4096;
    let audio_capacity = (plan.audio_packets_per_second() * seconds * 1.5) as usize + 1024;
    let ctx = Arc::new(ViewerContext {
        factory: {
            let factory = PcFactory::new(MediaSettings {
                bind_ip: args.bind,
                advertise_ip: None,
                udp_ports: None,
                ice_tcp_port: None,
                mux: None,
            });
            match args.viewer_transport {
                ViewerTransport::Udp => factory,
                ViewerTransport::Tcp => factory.with_tcp_client(),
            }
        },
        tcp: args.viewer_transport == ViewerTransport::Tcp,
        client: signal::client(args.token.as_deref()).context("building the HTTP client")?,
        room: args.room.clone(),
        publisher: publisher.stats.clone(),
        counters: Default::default(),
        latency: ShardedHistogram::new(SHARDS),
        latency_settled: ShardedHistogram::new(SHARDS),
        join: ShardedHistogram::new(SHARDS),
        join_answer: ShardedHistogram::new(SHARDS),
        join_connected: ShardedHistogram::new(SHARDS),
        skew_video: SkewTable::new(video_capacity),
        skew_audio: SkewTable::new(audio_capacity),
        stop: CancellationToken::new(),
        loss: args.viewer_loss / 100.0,
        // A loss in the last moments could not be repaired before the count ends.
        loss_until: Instant::now() + Duration::from_secs_f64((args.duration - 1.0).max(0.0)),
        gro: args.viewer_gro,
        own_srtp: args.viewer_own_srtp,
        twcc: args.viewer_twcc,
        ice_check: Duration::from_millis(args.viewer_ice_check_ms),
    });

    let mut watches: Vec<ProcWatch> = args.pids.iter().map(|&pid| ProcWatch::new(pid)).collect();
    watches.push(ProcWatch::new(std::process::id()));
    for w in &mut watches {
        w.sample();
    }
    let watches = Arc::new(Mutex::new(watches));
    let mut status_urls = vec![origin.clone()];
    for edge in &edges {
        if !status_urls.contains(edge) {
            status_urls.push(edge.clone());
        }
    }
    let lags = Arc::new(Mutex::new(
        status_urls
            .iter()
            .map(|u| NodeLag {
                url: u.to_string(),
                ..Default::default()
            })
            .collect::<Vec<_>>(),
    ));
    let progress_stop = CancellationToken::new();
    let lag_task = tokio::spawn(watch_node_lag(
        ctx.clone(),
        status_urls.clone(),
        lags.clone(),
        progress_stop.clone(),
        started,
    ));
    let steady_from = Arc::new(Mutex::new(None));
    let progress = tokio::spawn(progress_loop(
        ctx.clone(),
        watches.clone(),
        lags.clone(),
        progress_stop.clone(),
        Steadiness {
            viewers: args.viewers as u64,
            from: steady_from.clone(),
        },
        args.quiet,
        started,
    ));

    wait_origin_media(&ctx.client, &origin, &args.room).await;
    let ramp_stop = CancellationToken::new();
    let light = match args.viewer_engine {
        ViewerEngine::Rtc => Some(Arc::new(
            LightEngine::start(&ctx, args.viewer_drivers, args.bind)
                .context("starting the viewer drivers")?,
        )),
        ViewerEngine::Pc => None,
    };
    let ramp = tokio::spawn(ramp_viewers(
        ctx.clone(),
        light,
        edges.clone(),
        args.viewers,
        args.ramp,
        ramp_stop.clone(),
    ));

    let deadline = tokio::time::sleep(Duration::from_secs_f64(args.duration));
    tokio::select! {
        _ = deadline => {}
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted: stopping"),
        _ = publisher.ended.cancelled() => eprintln!("the publisher's connection failed: stopping"),
    }
    // The steady state, if it began, ends here: the audience leaves and the stream stops next.
    let steady = steady_end(&ctx, &watches, &steady_from, started).await;
    ramp_stop.cancel();
    let handles = ramp.await.unwrap_or_default();
    let publisher_report = publisher.stop_media().await;
    drain(&ctx).await;
    let elapsed_s = started.elapsed().as_secs_f64();

    // The nodes' own view of the room, before anyone leaves.
    let mut nodes = Vec::new();
    for url in &status_urls {
        nodes.push(node_status(&ctx.client, url, &args.room).await);
    }

    // Receive-buffer drops per process, while every viewer's socket is still open.
    sample_udp(&watches);
    let udp_after = procstat::udp_counters();

    ctx.stop.cancel();
    let results = collect(handles).await;
    progress_stop.cancel();
    let _ = progress.await;
    let _ = lag_task.await;
    let node_lag = std::mem::take(&mut *lags.lock().unwrap_or_else(|p| p.into_inner()));
    let watches = std::mem::take(&mut *watches.lock().unwrap_or_else(|p| p.into_inner()));
    // Joining the publisher's thread blocks: off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || publisher.finish()).await;

    let mut processes: Vec<_> = watches.iter().map(ProcWatch::report).collect();
    let loadgen = processes.pop();
    Ok(report::build(
        args.config(),
        &results,
        Measurements {
            elapsed_s,
            publisher: publisher_report,
            join_ms: Percentiles::of(&ctx.join.merged()),
            join_answer_ms: Percentiles::of(&ctx.join_answer.merged()),
            join_connected_ms: Percentiles::of(&ctx.join_connected.merged()),
            latency_ms: Percentiles::of(&ctx.latency.merged()),
            latency_settled_ms: Percentiles::of(&ctx.latency_settled.merged()),
            steady,
            skew_ms: Skew {
                video: Percentiles::of(&ctx.skew_video.spread(2)),
                audio: Percentiles::of(&ctx.skew_audio.spread(2)),
            },
            client_drops: logger::client_drops(),
            induced_drops: ctx.counters.induced_drops.load(Ordering::Relaxed),
            nacks_sent: ctx.counters.nacks_sent.load(Ordering::Relaxed),
            processes,
            loadgen,
            nofile_limit,
            nodes,
            node_lag,
            machine_udp: match (udp_before, udp_after) {
                (Some(a), Some(b)) => Some(UdpCounters {
                    in_datagrams: b.in_datagrams.saturating_sub(a.in_datagrams),
                    out_datagrams: b.out_datagrams.saturating_sub(a.out_datagrams),
                    rcvbuf_errors: b.rcvbuf_errors.saturating_sub(a.rcvbuf_errors),
                    sndbuf_errors: b.sndbuf_errors.saturating_sub(a.sndbuf_errors),
                }),
                _ => None,
            },
        },
    ))
}

/// Runs, prints the summary to stdout and writes the JSON report if asked.
pub async fn execute(args: &RunArgs) -> anyhow::Result<Report> {
    let report = run(args).await?;
    print!("{}", report.human());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// What the progress loop needs to see the steady state begin: the audience's size, and where
/// it notes the packets received so far and when.
struct Steadiness {
    viewers: u64,
    from: Arc<Mutex<Option<(u64, Instant)>>>,
}

/// Closes the steady state (see [`report::Steady`]) if it began: the processes' CPU marks, and
/// the packets the viewers received since it began.
async fn steady_end(
    ctx: &ViewerContext,
    watches: &Arc<Mutex<Vec<ProcWatch>>>,
    from: &Mutex<Option<(u64, Instant)>>,
    started: Instant,
) -> Option<report::Steady> {
    let (packets_from, at) = (*from.lock().unwrap_or_else(|p| p.into_inner()))?;
    let packets = ctx.counters.packets.load(Ordering::Relaxed);
    let now = Instant::now();
    let marked = watches.clone();
    // Reading /proc is blocking file I/O: off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || {
        for w in marked.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
            w.mark_steady(false);
        }
    })
    .await;
    let seconds = now.duration_since(at).as_secs_f64();
    (seconds > 0.0).then(|| report::Steady {
        from_s: at.duration_since(started).as_secs_f64(),
        seconds,
        packets: packets.saturating_sub(packets_from),
        packets_per_s: packets.saturating_sub(packets_from) as f64 / seconds,
    })
}

/// Waits until no packet has reached any viewer for [`DRAIN_QUIET`], at most [`DRAIN_MAX`].
async fn drain(ctx: &ViewerContext) {
    let start = Instant::now();
    let mut last = ctx.counters.packets.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while start.elapsed() < DRAIN_MAX {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = ctx.counters.packets.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= DRAIN_QUIET {
            return;
        }
    }
}

/// Waits until the origin has received packets on every published track, at most
/// [`ORIGIN_MEDIA_WAIT`]. A viewer that arrives earlier finds a room without tracks: the node
/// waits a few seconds for them, then answers 503, which would count a machine's slow start as
/// a failed viewer.
async fn wait_origin_media(client: &reqwest::Client, origin: &reqwest::Url, room: &str) {
    let start = Instant::now();
    while start.elapsed() < ORIGIN_MEDIA_WAIT {
        let status = node_status(client, origin, room).await;
        let flowing = status
            .room
            .as_ref()
            .and_then(|r| r["tracks"].as_array())
            .is_some_and(|tracks| {
                tracks.len() >= PUBLISHED_TRACKS
                    && tracks.iter().all(|t| t["packets_in"].as_u64() > Some(0))
            });
        if flowing {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "warning: after {ORIGIN_MEDIA_WAIT:?} the origin shows no media on every track of {room}; \
         starting the viewers anyway"
    );
}

async fn ramp_viewers(
    ctx: Arc<ViewerContext>,
    light: Option<Arc<LightEngine>>,
    edges: Vec<reqwest::Url>,
    viewers: usize,
    per_second: f64,
    stop: CancellationToken,
) -> Vec<JoinHandle<ViewerResult>> {
    let mut handles = Vec::with_capacity(viewers);
    let step = Duration::from_secs_f64(1.0 / per_second);
    let start = tokio::time::Instant::now();
    for id in 0..viewers {
        // Scheduled from the start, so a slow spawn does not slow the ramp.
        let at = start + step.mul_f64(id as f64);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = stop.cancelled() => break,
        }
        let edge = edges[id % edges.len()].clone();
        handles.push(match &light {
            Some(engine) => tokio::spawn(run_light_viewer(ctx.clone(), engine.clone(), id, edge)),
            None => tokio::spawn(run_viewer(ctx.clone(), id, edge)),
        });
    }
    handles
}

async fn collect(handles: Vec<JoinHandle<ViewerResult>>) -> Vec<ViewerResult> {
    let mut results = Vec::with_capacity(handles.len());
    let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
    for (id, mut handle) in handles.into_iter().enumerate() {
        match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(Ok(r)) => results.push(r),
            outcome => {
                handle.abort();
                let why = match outcome {
                    Ok(Err(e)) => format!("viewer task failed: {e}"),
                    _ => "viewer did not finish leaving in time".to_owned(),
                };
                results.push(ViewerResult {
                    id,
                    edge: String::new(),
                    connected: false,
                    error: Some(why.clone()),
                    error_detail: Some(why),
                    disconnected: false,
                    join_us: None,
                    redirects: 0,
                    index_at_connect: (0, 0),
                    video: None,
                    audio: None,
                });
            }
        }
    }
    results
}

async fn node_status(client: &reqwest::Client, base: &reqwest::Url, room: &str) -> NodeStatus {
    let url = base
        .join("v1/node")
        .map_or_else(|_| base.to_string(), |u| u.to_string());
    let fetched = async {
        let value: serde_json::Value = client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok::<_, reqwest::Error>(value)
    }
    .await;
    match fetched {
        Ok(v) => NodeStatus {
            url: base.to_string(),
            node: Some(v["node"].clone()),
            room: v["rooms"]
                .as_array()
                .and_then(|rooms| rooms.iter().find(|r| r["room"] == room).cloned()),
            error: None,
        },
        Err(e) => NodeStatus {
            url: base.to_string(),
            node: None,
            room: None,
            error: Some(e.to_string()),
        },
    }
}

fn sample_udp(watches: &Mutex<Vec<ProcWatch>>) {
    let sockets = procstat::udp_sockets();
    for w in watches.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
        w.sample_udp(&sockets);
    }
}

/// Reads each node's room counters every second: how far its ingest (`packets_in` of the
/// room's video track) trails what the publisher sent, and its subscriber-queue drops. A growing
/// lag puts a delay before the node's fan-out; a small lag with a large viewer latency puts it
/// after (subscriber queues, peer connection drivers, sockets, or the load generator).
async fn watch_node_lag(
    ctx: Arc<ViewerContext>,
    urls: Vec<reqwest::Url>,
    lags: Arc<Mutex<Vec<NodeLag>>>,
    stop: CancellationToken,
    started: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        for (i, url) in urls.iter().enumerate() {
            let status = tokio::select! {
                s = node_status(&ctx.client, url, &ctx.room) => s,
                _ = stop.cancelled() => return,
            };
            let sent = ctx.publisher.video_next.load(Ordering::Relaxed);
            let video = status.room.as_ref().and_then(|room| {
                room["tracks"]
                    .as_array()?
                    .iter()
                    .find(|t| t["kind"] == "video")
                    .cloned()
            });
            let Some(video) = video else { continue };
            let packets_in = video["packets_in"].as_u64().unwrap_or(0);
            let drops = video["queue_drops"].as_u64().unwrap_or(0);
            let lag = i64::from(sent) - packets_in as i64;
            let mut lags = lags.lock().unwrap_or_else(|p| p.into_inner());
            let entry = &mut lags[i];
            entry.max_video_ingest_lag = entry.max_video_ingest_lag.max(lag);
            entry.last_video_ingest_lag = lag;
            entry.samples.push((
                (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                lag,
                drops,
            ));
        }
    }
}

/// Prints a progress line every second and samples the processes.
async fn progress_loop(
    ctx: Arc<ViewerContext>,
    watches: Arc<Mutex<Vec<ProcWatch>>>,
    lags: Arc<Mutex<Vec<NodeLag>>>,
    stop: CancellationToken,
    steadiness: Steadiness,
    quiet: bool,
    started: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_packets = 0u64;
    let mut last_at = Instant::now();
    // When every viewer had joined or failed, and whether the steady state has begun.
    let mut all_in: Option<Instant> = None;
    let mut steady = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let c = &ctx.counters;
        let resolved = c.connected.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed);
        if resolved >= steadiness.viewers {
            all_in.get_or_insert_with(Instant::now);
        }
        let mark = !steady && all_in.is_some_and(|at| at.elapsed() >= STEADY_AFTER);
        if mark {
            steady = true;
            *steadiness.from.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((c.packets.load(Ordering::Relaxed), Instant::now()));
        }
        // Reading /proc is blocking file I/O (a few hundred KiB with many sockets): off the
        // runtime's workers, which carry the viewers.
        let sampled = watches.clone();
        let procs: Vec<String> = tokio::task::spawn_blocking(move || {
            let sockets = procstat::udp_sockets();
            let mut watches = sampled.lock().unwrap_or_else(|p| p.into_inner());
            for w in watches.iter_mut() {
                if mark {
                    w.mark_steady(true);
                }
                w.sample();
                w.sample_udp(&sockets);
            }
            watches
                .iter()
                .map(|w| {
                    format!(
                        "{} {}% {} MiB{}",
                        w.name,
                        w.latest_cpu.map_or("-".into(), |c| format!("{c:.0}")),
                        w.latest_rss_kib
                            .map_or("-".into(), |k| (k / 1024).to_string()),
                        match w.udp_drops() {
                            0 => String::new(),
                            n => format!(" udp-drops {n}"),
                        }
                    )
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        if quiet {
            continue;
        }
        let lag_text: Vec<String> = lags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|l| {
                let (_, lag, drops) = l.samples.last()?;
                Some(format!(
                    "{}: in-lag {lag} drops {drops}",
                    l.url.trim_end_matches('/')
                ))
            })
            .collect();
        let packets = c.packets.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (packets - last_packets) as f64 / now.duration_since(last_at).as_secs_f64();
        last_packets = packets;
        last_at = now;
        let latency = match Percentiles::of(&ctx.latency.merged()) {
            Some(p) => format!("latency p50 {:.2} ms p99 {:.2} ms", p.p50_ms, p.p99_ms),
            None => "latency -".into(),
        };
        eprintln!(
            "[{:>4.0}s] viewers {}/{} connected, {} failed, {} disconnected | rx {:.0} pkt/s | {} | {} | {}{}",
            started.elapsed().as_secs_f64(),
            c.connected.load(Ordering::Relaxed),
            c.started.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.disconnected.load(Ordering::Relaxed),
            rate,
            latency,
            procs.join(", "),
            lag_text.join(", "),
            match logger::client_drops() {
                0 => String::new(),
                n => format!(" | loadgen dropped {n}"),
            }
        );
    }
    for w in watches.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
        w.sample();
    }
}
