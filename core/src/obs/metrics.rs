//! Prometheus metrics of one node, served at `/metrics` in the text exposition format.
//!
//! One [`Registry`] per node (the demo runs three nodes in one process), every name prefixed
//! `cascade_` (except the standard `process_*` ones), counters ending in `_total`, sizes in bytes
//! and durations in seconds:
//!
//! | metric | type | what |
//! |---|---|---|
//! | `cascade_viewers` | gauge | WHEP viewer sessions on this node (the Helm chart's autoscaling input) |
//! | `cascade_publishers` | gauge | WHIP publisher sessions |
//! | `cascade_rooms` | gauge | rooms held (published here or relayed) |
//! | `cascade_sessions{transport}` | gauge | connected sessions (publishers, viewers, downstream relay links) by how their media travels: `udp`, `tcp` (ICE-TCP) or `relayed` (through a TURN server) |
//! | `cascade_relay_links{direction}` | gauge | `upstream`: rooms pulled over a relay link; `downstream`: relay links served to other nodes |
//! | `cascade_received_packets_total`, `cascade_received_bytes_total` | counter | RTP from sources (publishers, upstream links); bytes are payload bytes |
//! | `cascade_sent_packets_total`, `cascade_sent_bytes_total` | counter | RTP written to subscribers (viewers, downstream links) |
//! | `cascade_queue_dropped_packets_total` | counter | packets a subscriber lost because its queue was full |
//! | `cascade_mux_send_errors_total` | counter | datagrams the UDP mux could not send (socket buffer still full after a wait, or refused by the kernel) |
//! | `cascade_mux_viewers_moved_total` | counter | viewers a mux shard handed, once connected, to the shard their datagrams arrive at (the shards share the port) |
//! | `cascade_mux_hand_on_dropped_total` | counter | datagrams a mux shard read for the others and dropped over its budget (a flood from addresses no viewer has) |
//! | `cascade_keyframe_requests_total` | counter | keyframe requests our forwarding sent to a track's source (after rate limiting) |
//! | `cascade_nacks_sent_total`, `cascade_nacks_received_total` | counter | RTCP NACK messages sent to sources / received from subscribers |
//! | `cascade_retransmitted_packets_total`, `cascade_retransmitted_bytes_total` | counter | RTP resent in answer to a NACK (bytes are payload bytes) |
//! | `cascade_retransmits_refused_total` | counter | NACKed packets not resent because the viewer's retransmission budget (256 at once, 400 per second) was spent |
//! | `cascade_plis_sent_total`, `cascade_plis_received_total` | counter | RTCP PLI and FIR messages sent to sources / received from subscribers |
//! | `cascade_lost_packets_total{direction}` | counter | `ingress`: packets from sources that never arrived (our receiver reports); `egress`: packets subscribers report lost (their receiver reports) |
//! | `cascade_join_duration_seconds` | histogram | offer received → first media packet sent to that subscriber |
//! | `cascade_join_connected_to_media_seconds` | histogram | peer connection up (DTLS done) → first media packet sent to that subscriber (a cached keyframe makes it short) |
//! | `cascade_routing_errors_total{op}` | counter | failed routing store (Redis) operations |
//! | `cascade_routing_duration_seconds{op}` | histogram | routing store operation latency |
//! | `cascade_http_connections` | gauge | HTTP connections open |
//! | `cascade_http_refused_connections_total` | counter | HTTP connections closed at accept: `--http-max-connections` were open |
//! | `cascade_http_timed_out_connections_total{phase}` | counter | HTTP connections closed by a timeout: `header` (no whole request head in `--http-header-timeout`), `idle` (no request in `--http-idle-timeout`) |
//! | `cascade_room_takeovers_total` | counter | WHIP publishers that took over a live room whose publisher had dropped (its viewers kept); with `--auth-secret` each needed a token for the room |
//! | `cascade_http_limited_requests_total{reason}` | counter | WHIP/WHEP offers answered 429: `rate` (over `--max-requests-per-ip-per-sec`), `pending` (`--max-pending-per-ip` sessions of that client not yet connected) |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes` | counter, gauge | this process, read from `/proc/self` at scrape time |
//!
//! The traffic counters are shared by every room of the node ([`Traffic`] is a set of handles
//! on the same atomics): the packet path adds to them with relaxed atomic adds, once per packet
//! in (next to the track's own counters) and once per batch out. The RTCP counters
//! ([`Feedback`]) are counted by an interceptor in every peer connection
//! ([`crate::rtc::pc::FeedbackCounter`]), at RTCP rate plus one attribute check per packet sent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

type OpLabels = [(&'static str, &'static str); 1];

/// The node's gauges at one moment, handed to [`Metrics::render`] by whoever holds the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub viewers: usize,
    pub publishers: usize,
    pub rooms: usize,
    /// Rooms pulled from an upstream.
    pub relays_upstream: usize,
    /// Relay links this node feeds.
    pub relays_downstream: usize,
    /// Connected sessions by transport: over UDP, over ICE-TCP, through a TURN server.
    pub udp: usize,
    pub tcp: usize,
    pub relayed: usize,
}

/// Traffic counters of a node, handed to each of its rooms. Cloning shares the counters.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub packets_in: Counter,
    pub bytes_in: Counter,
    pub packets_out: Counter,
    pub bytes_out: Counter,
    pub queue_drops: Counter,
    pub keyframe_requests: Counter,
    /// Offer received → first media packet sent, per subscriber.
    pub join: Histogram,
    /// Peer connection up → first media packet sent, per subscriber.
    pub connected_to_media: Histogram,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            packets_in: Counter::default(),
            bytes_in: Counter::default(),
            packets_out: Counter::default(),
            bytes_out: Counter::default(),
            queue_drops: Counter::default(),
            keyframe_requests: Counter::default(),
            // 10 ms .. ~20 s.
            join: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            // 1 ms .. ~4 s.
            connected_to_media: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
        }
    }
}

/// RTCP feedback and loss counters of a node, handed to each of its peer connections' interceptor
/// chains ([`crate::rtc::pc::FeedbackCounter`]). Cloning shares the counters.
/// The UDP mux's counters, shared by its shards.
#[derive(Debug, Clone, Default)]
pub struct MuxCounters {
    /// Datagrams it could not send.
    pub send_errors: Counter,
    /// Viewers handed to the shard their datagrams arrive at.
    pub viewers_moved: Counter,
    /// Datagrams for the other shards dropped over the hand-on budget.
    pub hand_on_dropped: Counter,
}

#[derive(Debug, Clone, Default)]
pub struct Feedback {
    pub nacks_sent: Counter,
    pub nacks_received: Counter,
    /// Packets resent in answer to a NACK, and their payload bytes.
    pub retransmitted_packets: Counter,
    pub retransmitted_bytes: Counter,
    /// NACKed packets not resent because the subscriber's retransmission budget was spent.
    pub retransmits_refused: Counter,
    /// PLI and FIR messages.
    pub plis_sent: Counter,
    pub plis_received: Counter,
    /// Packets lost on their way to this node, from the receiver reports it sends.
    pub lost_ingress: Counter,
    /// Packets lost on their way to this node's subscribers, from the reports they send.
    pub lost_egress: Counter,
}

/// The HTTP listener's connection figures (`crate::api::listener`). Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct HttpConnections {
    /// Connections open.
    pub open: Gauge,
    /// Connections closed at accept, over the cap.
    pub refused: Counter,
    /// Connections closed for want of a whole request head in time.
    pub header_timeouts: Counter,
    /// Keep-alive connections closed for want of a next request.
    pub idle_timeouts: Counter,
}

/// A node's registry and the metrics in it.
pub struct Metrics {
    registry: Registry,
    pub traffic: Traffic,
    pub feedback: Feedback,
    viewers: Gauge,
    /// The UDP mux's own counters.
    pub mux: MuxCounters,
    /// The HTTP listener's connections.
    pub http: HttpConnections,
    publishers: Gauge,
    rooms: Gauge,
    relay_links: Family<OpLabels, Gauge>,
    sessions: Family<OpLabels, Gauge>,
    routing_errors: Family<OpLabels, Counter>,
    routing_duration: Family<OpLabels, Histogram>,
    /// Live rooms taken over by a new publisher after theirs dropped.
    pub room_takeovers: Counter,
    /// WHIP/WHEP offers refused by the per-client limits, by reason.
    pub limited: LimitedRequests,
}

/// WHIP/WHEP offers the per-client limits refused (`crate::api::client_limits`).
#[derive(Debug, Clone, Default)]
pub struct LimitedRequests {
    /// Over the client's request rate.
    pub rate: Counter,
    /// Over the client's sessions not yet connected.
    pub pending: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("cascade");
        let traffic = Traffic::default();
        let feedback = Feedback::default();
        let viewers = Gauge::default();
        let mux = MuxCounters::default();
        let publishers = Gauge::default();
        let rooms = Gauge::default();
        let relay_links = Family::<OpLabels, Gauge>::default();
        let sessions = Family::<OpLabels, Gauge>::default();
        let routing_errors = Family::<OpLabels, Counter>::default();
        let routing_duration =
            Family::<OpLabels, Histogram>::new_with_constructor(routing_histogram as fn() -> _);
        registry.register(
            "viewers",
            "WHEP viewer sessions on this node",
            viewers.clone(),
        );
        registry.register("publishers", "WHIP publisher sessions", publishers.clone());
        registry.register("rooms", "Rooms held by this node", rooms.clone());
        registry.register(
            "sessions",
            "Connected sessions by transport: udp, tcp (ICE-TCP), relayed (through TURN)",
            sessions.clone(),
        );
        registry.register(
            "relay_links",
            "Relay links: upstream (rooms pulled) and downstream (links served)",
            relay_links.clone(),
        );
        registry.register(
            "received_packets",
            "RTP packets received from sources",
            traffic.packets_in.clone(),
        );
        registry.register(
            "received_bytes",
            "RTP payload bytes received from sources",
            traffic.bytes_in.clone(),
        );
        registry.register(
            "sent_packets",
            "RTP packets sent to subscribers",
            traffic.packets_out.clone(),
        );
        registry.register(
            "sent_bytes",
            "RTP payload bytes sent to subscribers",
            traffic.bytes_out.clone(),
        );
        registry.register(
            "queue_dropped_packets",
            "Packets lost by a subscriber whose queue was full",
            traffic.queue_drops.clone(),
        );
        registry.register(
            "mux_send_errors",
            "Datagrams the UDP mux could not send (socket buffer full after a wait, or refused)",
            mux.send_errors.clone(),
        );
        registry.register(
            "mux_viewers_moved",
            "Viewers a mux shard handed, once connected, to the shard their datagrams arrive at",
            mux.viewers_moved.clone(),
        );
        registry.register(
            "mux_hand_on_dropped",
            "Datagrams a mux shard read for the other shards and dropped over its budget",
            mux.hand_on_dropped.clone(),
        );
        registry.register(
            "keyframe_requests",
            "Keyframe requests (PLI) sent to track sources",
            traffic.keyframe_requests.clone(),
        );
        for (name, help, counter) in [
            (
                "nacks_sent",
                "RTCP NACK messages sent to sources",
                &feedback.nacks_sent,
            ),
            (
                "nacks_received",
                "RTCP NACK messages received from subscribers",
                &feedback.nacks_received,
            ),
            (
                "retransmitted_packets",
                "RTP packets resent in answer to a NACK",
                &feedback.retransmitted_packets,
            ),
            (
                "retransmitted_bytes",
                "RTP payload bytes resent in answer to a NACK",
                &feedback.retransmitted_bytes,
            ),
            (
                "retransmits_refused",
                "NACKed packets not resent: the subscriber's retransmission budget was spent",
                &feedback.retransmits_refused,
            ),
            (
                "plis_sent",
                "RTCP PLI and FIR messages sent to sources",
                &feedback.plis_sent,
            ),
            (
                "plis_received",
                "RTCP PLI and FIR messages received from subscribers",
                &feedback.plis_received,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        let lost = Family::<OpLabels, Counter>::default();
        // Families hand out one counter per label set; these two are fixed, so take them once
        // and share the handles with the interceptors.
        let lost_ingress = lost.get_or_create(&[("direction", "ingress")]).clone();
        let lost_egress = lost.get_or_create(&[("direction", "egress")]).clone();
        let feedback = Feedback {
            lost_ingress,
            lost_egress,
            ..feedback
        };
        registry.register(
            "lost_packets",
            "RTP packets lost: ingress (from sources, our receiver reports), egress (to subscribers, their reports)",
            lost,
        );
        registry.register_with_unit(
            "join_duration",
            "Offer received to first media packet sent, per subscriber",
            Unit::Seconds,
            traffic.join.clone(),
        );
        registry.register_with_unit(
            "join_connected_to_media",
            "Peer connection up (DTLS done) to first media packet sent, per subscriber",
            Unit::Seconds,
            traffic.connected_to_media.clone(),
        );
        registry.register(
            "routing_errors",
            "Failed routing store (Redis) operations",
            routing_errors.clone(),
        );
        registry.register_with_unit(
            "routing_duration",
            "Routing store (Redis) operation latency",
            Unit::Seconds,
            routing_duration.clone(),
        );
        let http = HttpConnections::default();
        registry.register(
            "http_connections",
            "HTTP connections open",
            http.open.clone(),
        );
        registry.register(
            "http_refused_connections",
            "HTTP connections closed at accept: --http-max-connections were open",
            http.refused.clone(),
        );
        let timed_out = Family::<OpLabels, Counter>::default();
        // One statement each: a family's guard lives to the end of its statement.
        let header_timeouts = timed_out.get_or_create(&[("phase", "header")]).clone();
        let idle_timeouts = timed_out.get_or_create(&[("phase", "idle")]).clone();
        let http = HttpConnections {
            header_timeouts,
            idle_timeouts,
            ..http
        };
        registry.register(
            "http_timed_out_connections",
            "HTTP connections closed by a timeout: header (no whole request head in time), idle (no next request)",
            timed_out,
        );
        let room_takeovers = Counter::default();
        registry.register(
            "room_takeovers",
            "WHIP publishers that took over a live room whose publisher had dropped",
            room_takeovers.clone(),
        );
        let limited_family = Family::<OpLabels, Counter>::default();
        // One statement each: a family's guard lives to the end of its statement.
        let rate = limited_family.get_or_create(&[("reason", "rate")]).clone();
        let pending = limited_family
            .get_or_create(&[("reason", "pending")])
            .clone();
        let limited = LimitedRequests { rate, pending };
        registry.register(
            "http_limited_requests",
            "WHIP/WHEP offers answered 429 by the per-client limits: rate, pending",
            limited_family,
        );
        Self {
            room_takeovers,
            limited,
            registry: root,
            traffic,
            feedback,
            viewers,
            mux,
            http,
            publishers,
            rooms,
            relay_links,
            sessions,
            routing_errors,
            routing_duration,
        }
    }

    /// The text exposition of every metric, with the node's gauges as they are now.
    pub fn render(&self, gauges: &Gauges) -> String {
        let set = |g: &Gauge, n: usize| {
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set(&self.viewers, gauges.viewers);
        set(&self.publishers, gauges.publishers);
        set(&self.rooms, gauges.rooms);
        set(
            &self.relay_links.get_or_create(&[("direction", "upstream")]),
            gauges.relays_upstream,
        );
        set(
            &self
                .relay_links
                .get_or_create(&[("direction", "downstream")]),
            gauges.relays_downstream,
        );
        for (transport, n) in [
            ("udp", gauges.udp),
            ("tcp", gauges.tcp),
            ("relayed", gauges.relayed),
        ] {
            set(&self.sessions.get_or_create(&[("transport", transport)]), n);
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// Creates the series of routing operation `op` (its error counter at 0), so that a rate
    /// over it exists from start-up, not from its first error.
    pub fn routing_op_series(&self, op: &'static str) {
        let _ = self.routing_errors.get_or_create(&[("op", op)]);
    }

    /// Records one routing store operation: how long it took, whether it failed.
    pub fn routing_op(&self, op: &'static str, took: Duration, ok: bool) {
        self.routing_duration
            .get_or_create(&[("op", op)])
            .observe(took.as_secs_f64());
        if !ok {
            self.routing_errors.get_or_create(&[("op", op)]).inc();
        }
    }
}

/// `process_cpu_seconds_total` and `process_resident_memory_bytes` of this process, read from
/// `/proc/self` when scraped (absent where there is no `/proc`).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let cpu = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| crate::obs::procstat::parse_cpu_ticks(&s));
        if let Some(ticks) = cpu {
            let counter = ConstCounter::new(ticks as f64 / crate::obs::procstat::TICKS_PER_SECOND);
            let metric = encoder.encode_descriptor(
                "process_cpu",
                "User and system CPU time of this process",
                Some(&Unit::Seconds),
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| crate::obs::procstat::parse_rss_kib(&s));
        if let Some(kib) = rss {
            let gauge =
                ConstGauge::new(i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(
                "process_resident_memory",
                "Resident memory of this process",
                Some(&Unit::Bytes),
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

fn routing_histogram() -> Histogram {
    // 0.1 ms .. ~1.6 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.traffic.packets_in.inc();
        m.traffic.join.observe(0.2);
        m.routing_op_series("links");
        m.routing_op("nodes", Duration::from_millis(1), false);
        let mut out = String::new();
        encode(&mut out, &m.registry).unwrap();
        for name in [
            "cascade_viewers ",
            "cascade_received_packets_total 1",
            "cascade_sent_bytes_total 0",
            "cascade_join_duration_seconds_count 1",
            "cascade_routing_errors_total{op=\"nodes\"} 1",
            "cascade_routing_errors_total{op=\"links\"} 0",
            "cascade_routing_duration_seconds_count{op=\"nodes\"} 1",
            "cascade_nacks_sent_total 0",
            "cascade_retransmitted_bytes_total 0",
            "cascade_lost_packets_total{direction=\"ingress\"} 0",
            "cascade_lost_packets_total{direction=\"egress\"} 0",
            "cascade_mux_send_errors_total 0",
            "cascade_mux_viewers_moved_total 0",
            "cascade_mux_hand_on_dropped_total 0",
            "cascade_http_connections 0",
            "cascade_http_refused_connections_total 0",
            "cascade_http_timed_out_connections_total{phase=\"idle\"} 0",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
        ] {
            assert!(out.contains(name), "{name} missing in\n{out}");
        }
    }
}
