//! The run's report: built from what the publisher sent and what each viewer received, written
//! as JSON and summarised for people. Building it is a plain function of those values.

use crate::procstat::{ProcReport, UdpCounters};
use crate::publisher::PublisherReport;
use crate::stats::Percentiles;
use crate::viewer::{TrackResult, ViewerResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The settings of the run, echoed into the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub origin: String,
    pub edges: Vec<String>,
    pub room: String,
    pub viewers: usize,
    pub ramp_per_second: f64,
    pub duration_s: f64,
    pub video_kbps: u32,
    pub fps: u32,
    pub audio_kbps: u32,
    pub keyframe_interval_s: f64,
    /// `rtc` or `pc` (`--viewer-engine`).
    pub viewer_engine: String,
    /// `udp`, or `tcp` for viewers on ICE-TCP (`--viewer-transport`).
    pub viewer_transport: String,
    /// Percent of video datagrams each viewer drops on arrival (`--viewer-loss`).
    pub viewer_loss_pct: f64,
    /// Whether viewers' sockets asked for UDP GRO (`--viewer-gro`).
    pub viewer_gro: bool,
    /// Whether viewers decrypted media themselves (`--viewer-own-srtp`).
    pub viewer_own_srtp: bool,
    /// Whether such viewers sent their own TWCC feedback (`--viewer-twcc`).
    #[serde(default)]
    pub viewer_twcc: bool,
    /// Milliseconds between a connecting viewer's ICE checks (`--viewer-ice-check-ms`).
    #[serde(default)]
    pub viewer_ice_check_ms: u64,
    /// The publisher sent three simulcast layers (`--simulcast`).
    #[serde(default)]
    pub simulcast: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub config: RunConfig,
    /// From the publisher's start to the end of the measurement.
    pub elapsed_s: f64,
    pub publisher: Option<PublisherReport>,
    pub viewers: ViewerSummary,
    /// WHEP POST to the first keyframe packet, over viewers that got one.
    pub join_ms: Option<Percentiles>,
    /// Where the join's time went: WHEP POST to the SDP answer (the node's negotiation and the
    /// HTTP round trip), and to the connection up (ICE and DTLS done); the rest of `join_ms`
    /// is the first keyframe's way.
    pub join_answer_ms: Option<Percentiles>,
    pub join_connected_ms: Option<Percentiles>,
    /// Publisher to viewer, one way, over live packets (see `viewer` module docs).
    pub latency_ms: Option<Percentiles>,
    /// The same over settled packets: those sent a second or more after the viewer's first
    /// packet arrived, once its catch-up is behind it (`viewer` module docs).
    pub latency_settled_ms: Option<Percentiles>,
    /// The run once every viewer has joined and settled, until its deadline: what forwarding
    /// costs without the joins' work (the processes' `cpu_steady_pct` is over this window).
    /// None when the audience was still joining at the deadline.
    pub steady: Option<Steady>,
    /// For each packet, its last arrival minus its first arrival across viewers.
    pub skew_ms: Skew,
    pub packets: PacketSummary,
    /// Processes given with `--pids`.
    pub processes: Vec<ProcReport>,
    pub loadgen: Option<ProcReport>,
    /// The open-file limit the load generator ran with.
    pub nofile_limit: Option<u64>,
    /// `GET /v1/node` of each node at the end of the measurement (the room's entry).
    pub nodes: Vec<NodeStatus>,
    /// Each node's ingest lag over the run (see [`NodeLag`]).
    pub node_lag: Vec<NodeLag>,
    /// The machine's UDP counters over the run (every process on it, not only ours).
    pub machine_udp: Option<UdpCounters>,
    pub per_viewer: Vec<ViewerLine>,
}

/// The steady state of a run: from [`crate::run`]'s `STEADY_AFTER` after the last viewer
/// joined (or failed) to the deadline.
#[derive(Debug, Clone, Serialize)]
pub struct Steady {
    /// Since the publisher's start.
    pub from_s: f64,
    pub seconds: f64,
    /// Packets the viewers received in it, and per second.
    pub packets: u64,
    pub packets_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewerSummary {
    pub requested: usize,
    pub started: usize,
    pub connected: usize,
    pub failed: usize,
    /// Connected, then lost the connection before the end.
    pub disconnected: usize,
    pub received_video: usize,
    pub received_audio: usize,
    /// Failure kinds and how many viewers failed so.
    pub failures: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skew {
    pub video: Option<Percentiles>,
    pub audio: Option<Percentiles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PacketSummary {
    pub video: TrackSummary,
    pub audio: TrackSummary,
    /// Received packets webrtc-rs dropped inside the load generator because a reader was behind
    /// (its queue is 256 packets): the load generator's own overload, included in `lost`.
    pub client_drops: u64,
    /// Video datagrams the viewers threw away on purpose (`--viewer-loss`) before decrypting
    /// them: recovered by NACK, they are not in `lost`.
    pub induced_drops: u64,
    /// RTCP NACK packets the viewers sent themselves (`--viewer-own-srtp`; 0 when their cores
    /// NACK).
    pub nacks_sent: u64,
}

/// One track over every connected viewer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackSummary {
    /// Publisher packets each viewer should have got (from its first packet, or from when it
    /// connected if it got none, to the publisher's last), summed.
    pub expected: u64,
    /// Distinct packets received, summed.
    pub received: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub viewers_with_loss: usize,
    pub worst_viewer: Option<WorstViewer>,
    /// Sequence-number view: holes between the first and the last packet received.
    pub seq_lost: u64,
    pub gap_events: u64,
    pub reordered: u64,
    pub duplicates: u64,
    /// Packets without a readable marker (not ours, or damaged).
    pub no_marker: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorstViewer {
    pub id: usize,
    pub expected: u64,
    pub lost: u64,
    pub loss_pct: f64,
}

/// One viewer's outcome on one track.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TrackLine {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub seq_lost: u64,
    pub gap_events: u64,
    pub reordered: u64,
    pub duplicates: u64,
    pub first_index: Option<u32>,
    /// The highest publisher index received.
    pub last_index: Option<u32>,
    /// Packets received that start a keyframe.
    pub keyframes: u64,
    pub no_marker: u64,
    /// The longest time between two packets received, µs.
    pub longest_gap_us: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewerLine {
    pub id: usize,
    pub edge: String,
    pub connected: bool,
    pub disconnected: bool,
    pub error: Option<String>,
    pub join_ms: Option<f64>,
    pub redirects: usize,
    pub video: TrackLine,
    pub audio: TrackLine,
}

/// How far a node's ingest of the room's video trailed the publisher, read once a second: the
/// publisher's video packets sent minus the node's `packets_in`. Packets lost on the way in
/// count as lag too, so a constant small value is loss, a growing one is delay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeLag {
    pub url: String,
    pub max_video_ingest_lag: i64,
    pub last_video_ingest_lag: i64,
    /// `(seconds since start, lag in packets, video subscriber-queue drops so far)`.
    pub samples: Vec<(f64, i64, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub url: String,
    pub node: Option<serde_json::Value>,
    pub room: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// One viewer's track, judged against what the publisher sent (`sent` packets on that track;
/// `at_connect` is the publisher's next index when the viewer connected).
pub fn track_line(track: Option<&TrackResult>, sent: u32, at_connect: u32) -> TrackLine {
    let Some(t) = track else {
        let expected = u64::from(sent.saturating_sub(at_connect));
        return TrackLine {
            expected,
            lost: expected,
            ..Default::default()
        };
    };
    let start = t.min_index.unwrap_or(at_connect);
    let expected = u64::from(sent.saturating_sub(start));
    let received = t.seq.received();
    TrackLine {
        expected,
        received,
        lost: expected.saturating_sub(received),
        seq_lost: t.seq.lost(),
        gap_events: t.seq.gap_events(),
        reordered: t.seq.reordered(),
        duplicates: t.seq.duplicates(),
        first_index: t.min_index,
        last_index: t.max_index,
        keyframes: t.keyframes,
        no_marker: t.no_marker,
        longest_gap_us: t.longest_gap_ns / 1_000,
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Sums one track over the connected viewers.
pub fn summarise(lines: &[(usize, &TrackLine)]) -> TrackSummary {
    let mut s = TrackSummary::default();
    let mut worst: Option<WorstViewer> = None;
    for &(id, l) in lines {
        s.expected += l.expected;
        s.received += l.received;
        s.lost += l.lost;
        s.seq_lost += l.seq_lost;
        s.gap_events += l.gap_events;
        s.reordered += l.reordered;
        s.duplicates += l.duplicates;
        s.no_marker += l.no_marker;
        if l.lost > 0 {
            s.viewers_with_loss += 1;
            let loss_pct = pct(l.lost, l.expected);
            if worst.as_ref().is_none_or(|w| loss_pct > w.loss_pct) {
                worst = Some(WorstViewer {
                    id,
                    expected: l.expected,
                    lost: l.lost,
                    loss_pct,
                });
            }
        }
    }
    s.loss_pct = pct(s.lost, s.expected);
    s.worst_viewer = worst;
    s
}

/// Everything measured besides the viewers' own results.
#[derive(Debug, Clone)]
pub struct Measurements {
    pub elapsed_s: f64,
    pub publisher: Option<PublisherReport>,
    pub join_ms: Option<Percentiles>,
    pub join_answer_ms: Option<Percentiles>,
    pub join_connected_ms: Option<Percentiles>,
    pub latency_ms: Option<Percentiles>,
    pub latency_settled_ms: Option<Percentiles>,
    pub steady: Option<Steady>,
    pub skew_ms: Skew,
    pub client_drops: u64,
    pub induced_drops: u64,
    pub nacks_sent: u64,
    pub processes: Vec<ProcReport>,
    pub loadgen: Option<ProcReport>,
    pub nofile_limit: Option<u64>,
    pub nodes: Vec<NodeStatus>,
    pub node_lag: Vec<NodeLag>,
    pub machine_udp: Option<UdpCounters>,
}

pub fn build(config: RunConfig, results: &[ViewerResult], m: Measurements) -> Report {
    let (video_sent, audio_sent) = m
        .publisher
        .as_ref()
        .map_or((0, 0), |p| (p.video_packets, p.audio_packets));
    let mut failures = BTreeMap::new();
    let mut per_viewer = Vec::with_capacity(results.len());
    for r in results {
        if let Some(kind) = &r.error {
            *failures.entry(kind.clone()).or_insert(0) += 1;
        }
        let (video, audio) = if r.connected {
            (
                track_line(r.video.as_ref(), video_sent, r.index_at_connect.0),
                track_line(r.audio.as_ref(), audio_sent, r.index_at_connect.1),
            )
        } else {
            Default::default()
        };
        per_viewer.push(ViewerLine {
            id: r.id,
            edge: r.edge.clone(),
            connected: r.connected,
            disconnected: r.disconnected,
            error: r.error_detail.clone(),
            join_ms: r.join_us.map(|us| us as f64 / 1000.0),
            redirects: r.redirects,
            video,
            audio,
        });
    }
    let connected: Vec<&ViewerLine> = per_viewer.iter().filter(|v| v.connected).collect();
    let video_lines: Vec<_> = connected.iter().map(|v| (v.id, &v.video)).collect();
    let audio_lines: Vec<_> = connected.iter().map(|v| (v.id, &v.audio)).collect();
    let viewers = ViewerSummary {
        requested: config.viewers,
        started: results.len(),
        connected: connected.len(),
        failed: results.iter().filter(|r| !r.connected).count(),
        disconnected: results.iter().filter(|r| r.disconnected).count(),
        received_video: connected.iter().filter(|v| v.video.received > 0).count(),
        received_audio: connected.iter().filter(|v| v.audio.received > 0).count(),
        failures,
    };
    Report {
        config,
        elapsed_s: m.elapsed_s,
        publisher: m.publisher,
        viewers,
        join_ms: m.join_ms,
        join_answer_ms: m.join_answer_ms,
        join_connected_ms: m.join_connected_ms,
        latency_ms: m.latency_ms,
        latency_settled_ms: m.latency_settled_ms,
        steady: m.steady,
        skew_ms: m.skew_ms,
        packets: PacketSummary {
            video: summarise(&video_lines),
            audio: summarise(&audio_lines),
            client_drops: m.client_drops,
            induced_drops: m.induced_drops,
            nacks_sent: m.nacks_sent,
        },
        processes: m.processes,
        loadgen: m.loadgen,
        nofile_limit: m.nofile_limit,
        nodes: m.nodes,
        node_lag: m.node_lag,
        machine_udp: m.machine_udp,
        per_viewer,
    }
}

fn percentiles(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms  (n={})",
            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, p.count
        ),
        None => "no data".into(),
    }
}

fn track_text(name: &str, t: &TrackSummary) -> String {
    let mut s = format!(
        "{name}: expected {} received {} lost {} ({:.4}%), viewers with loss {}",
        t.expected, t.received, t.lost, t.loss_pct, t.viewers_with_loss
    );
    if let Some(w) = &t.worst_viewer {
        let _ = write!(
            s,
            ", worst viewer #{} lost {}/{} ({:.3}%)",
            w.id, w.lost, w.expected, w.loss_pct
        );
    }
    let _ = write!(
        s,
        "; seq holes {}, gaps {}, reordered {}, duplicates {}",
        t.seq_lost, t.gap_events, t.reordered, t.duplicates
    );
    if t.no_marker > 0 {
        let _ = write!(s, ", without marker {}", t.no_marker);
    }
    s
}

fn proc_text(p: &ProcReport) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    format!(
        "{} (pid {}): cpu avg {}% max {}% steady {}%, rss avg {} MiB max {} MiB, {} UDP sockets, {} datagrams dropped on them (receive buffer full){}",
        p.name,
        p.pid,
        f(p.cpu_avg_pct),
        f(p.cpu_max_pct),
        f(p.cpu_steady_pct),
        f(p.rss_avg_mib),
        f(p.rss_max_mib),
        p.udp_sockets_max,
        p.udp_rcvbuf_drops,
        if p.exited { " (exited)" } else { "" }
    )
}

impl Report {
    /// The summary for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let v = &self.viewers;
        let _ = writeln!(
            s,
            "cascade-loadgen: room {} for {:.1} s, {} viewer(s) on {} edge(s)",
            self.config.room,
            self.elapsed_s,
            self.config.viewers,
            self.config.edges.len()
        );
        if let Some(p) = &self.publisher {
            let _ = writeln!(
                s,
                "publisher: {} video packets ({} frames, {} keyframes, {} keyframe requests), {} audio packets, {} write errors, {} late frames{}",
                p.video_packets,
                p.frames,
                p.keyframes,
                p.keyframe_requests,
                p.audio_packets,
                p.write_errors,
                p.late_frames,
                p.error
                    .as_deref()
                    .map(|e| format!(", ERROR: {e}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            s,
            "viewers: {} started, {} connected, {} failed, {} disconnected; {} got video, {} got audio",
            v.started, v.connected, v.failed, v.disconnected, v.received_video, v.received_audio
        );
        for (kind, n) in &v.failures {
            let _ = writeln!(s, "  failed x{n}: {kind}");
        }
        let _ = writeln!(s, "join:    {}", percentiles(&self.join_ms));
        let _ = writeln!(
            s,
            "  of which WHEP POST to answer: {}",
            percentiles(&self.join_answer_ms)
        );
        let _ = writeln!(
            s,
            "  POST to connected (ICE and DTLS done): {}",
            percentiles(&self.join_connected_ms)
        );
        let _ = writeln!(s, "latency: {}", percentiles(&self.latency_ms));
        let _ = writeln!(
            s,
            "latency, settled viewers (1 s after their first packet): {}",
            percentiles(&self.latency_settled_ms)
        );
        match &self.steady {
            Some(st) => {
                let _ = writeln!(
                    s,
                    "steady state (everyone joined and settled), from {:.1} s for {:.1} s: viewers received {:.0} pkt/s",
                    st.from_s, st.seconds, st.packets_per_s
                );
            }
            None => {
                let _ = writeln!(s, "steady state: none (the audience was still joining)");
            }
        }
        let _ = writeln!(s, "skew video: {}", percentiles(&self.skew_ms.video));
        let _ = writeln!(s, "skew audio: {}", percentiles(&self.skew_ms.audio));
        let _ = writeln!(s, "{}", track_text("video", &self.packets.video));
        let _ = writeln!(s, "{}", track_text("audio", &self.packets.audio));
        if self.packets.induced_drops > 0 {
            let _ = writeln!(
                s,
                "  viewers dropped {} video datagrams on arrival on purpose (--viewer-loss); only what NACKs did not recover counts as lost",
                self.packets.induced_drops
            );
        }
        if self.packets.nacks_sent > 0 {
            let _ = writeln!(s, "  viewers sent {} NACK packets", self.packets.nacks_sent);
        }
        if self.packets.client_drops > 0 {
            let _ = writeln!(
                s,
                "  of the losses, {} packets were dropped inside the load generator (its readers fell behind)",
                self.packets.client_drops
            );
        }
        for p in &self.processes {
            let _ = writeln!(s, "{}", proc_text(p));
        }
        if let Some(p) = &self.loadgen {
            let _ = writeln!(s, "loadgen: {}", proc_text(p));
        }
        if let Some(u) = &self.machine_udp {
            let _ = writeln!(
                s,
                "machine UDP during the run: {} datagrams in, {} out, {} dropped for a full receive buffer",
                u.in_datagrams, u.out_datagrams, u.rcvbuf_errors
            );
        }
        for l in &self.node_lag {
            let _ = writeln!(
                s,
                "node {}: video ingest lag behind the publisher max {} packets, at the end {}",
                l.url, l.max_video_ingest_lag, l.last_video_ingest_lag
            );
        }
        for n in &self.nodes {
            if let Some(room) = &n.room
                && let Some(tracks) = room["tracks"].as_array()
            {
                let drops: Vec<String> = tracks
                    .iter()
                    .map(|t| format!("{} {}", t["kind"].as_str().unwrap_or("?"), t["queue_drops"]))
                    .collect();
                let _ = writeln!(
                    s,
                    "node {}: {} subscribers, queue drops: {}",
                    n.url,
                    room["subscribers"],
                    drops.join(", ")
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::SeqTracker;

    fn track(seqs: impl IntoIterator<Item = u16>, min_index: u32) -> TrackResult {
        let mut seq = SeqTracker::new();
        let mut packets = 0;
        for s in seqs {
            seq.push(s);
            packets += 1;
        }
        TrackResult {
            packets,
            seq,
            min_index: Some(min_index),
            no_marker: 0,
            live: packets,
            ..Default::default()
        }
    }

    #[test]
    fn expected_runs_from_first_packet_to_the_publishers_last() {
        // Got indexes 10..20 of 25 sent: the last 5 are tail loss the sequence numbers cannot see.
        let t = track(100..110, 10);
        let line = track_line(Some(&t), 25, 12);
        assert_eq!(line.expected, 15);
        assert_eq!(line.received, 10);
        assert_eq!(line.lost, 5);
        assert_eq!(line.seq_lost, 0);
        // A connected viewer that got nothing expected everything since it connected.
        let none = track_line(None, 25, 12);
        assert_eq!((none.expected, none.lost), (13, 13));
    }

    #[test]
    fn summary_finds_the_worst_viewer() {
        let a = TrackLine {
            expected: 100,
            received: 100,
            ..Default::default()
        };
        let b = TrackLine {
            expected: 100,
            received: 98,
            lost: 2,
            ..Default::default()
        };
        let c = TrackLine {
            expected: 10,
            received: 9,
            lost: 1,
            ..Default::default()
        };
        let s = summarise(&[(0, &a), (1, &b), (2, &c)]);
        assert_eq!(s.expected, 210);
        assert_eq!(s.lost, 3);
        assert_eq!(s.viewers_with_loss, 2);
        assert_eq!(s.worst_viewer.as_ref().unwrap().id, 2);
        assert!((s.loss_pct - 300.0 / 210.0).abs() < 1e-9);
        assert_eq!(summarise(&[]).loss_pct, 0.0);
    }
}
