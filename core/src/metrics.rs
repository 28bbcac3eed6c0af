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
//! | `cascade_relay_links{direction}` | gauge | `upstream`: rooms pulled over a relay link; `downstream`: relay links served to other nodes |
//! | `cascade_received_packets_total`, `cascade_received_bytes_total` | counter | RTP from sources (publishers, upstream links); bytes are payload bytes |
//! | `cascade_sent_packets_total`, `cascade_sent_bytes_total` | counter | RTP written to subscribers (viewers, downstream links) |
//! | `cascade_queue_dropped_packets_total` | counter | packets a subscriber lost because its queue was full |
//! | `cascade_mux_send_errors_total` | counter | datagrams the UDP mux could not send (socket buffer still full after a wait, or refused by the kernel) |
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
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes` | counter, gauge | this process, read from `/proc/self` at scrape time |
//!
//! The traffic counters are shared by every room of the node ([`Traffic`] is a set of handles
//! on the same atomics): the packet path adds to them with relaxed atomic adds, once per packet
//! in (next to the track's own counters) and once per batch out. The RTCP counters
//! ([`Feedback`]) are counted by an interceptor in every peer connection
//! ([`crate::pc::FeedbackCounter`]), at RTCP rate plus one attribute check per packet sent.

use crate::node::Node;
use crate::routing::{Link, NodeInfo, RoomClaim, RoutingResult, RoutingStore};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::{Duration, Instant};

type OpLabels = [(&'static str, &'static str); 1];

/// Every routing store operation [`MeteredStore`] times, so each error counter exists from the
/// start (a rate over a series that appears only with the first error shows nothing).
const ROUTING_OPS: [&str; 12] = [
    "heartbeat",
    "remove_node",
    "nodes",
    "node",
    "claim_room",
    "renew_room",
    "release_room",
    "room_owner",
    "rooms",
    "put_link",
    "remove_link",
    "links",
];

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
/// chains ([`crate::pc::FeedbackCounter`]). Cloning shares the counters.
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

/// A node's registry and the metrics in it.
pub struct Metrics {
    registry: Registry,
    pub traffic: Traffic,
    pub feedback: Feedback,
    viewers: Gauge,
    /// Datagrams the UDP mux could not send.
    pub mux_send_errors: Counter,
    publishers: Gauge,
    rooms: Gauge,
    relay_links: Family<OpLabels, Gauge>,
    routing_errors: Family<OpLabels, Counter>,
    routing_duration: Family<OpLabels, Histogram>,
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
        let mux_send_errors = Counter::default();
        let publishers = Gauge::default();
        let rooms = Gauge::default();
        let relay_links = Family::<OpLabels, Gauge>::default();
        let routing_errors = Family::<OpLabels, Counter>::default();
        for op in ROUTING_OPS {
            let _ = routing_errors.get_or_create(&[("op", op)]);
        }
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
            mux_send_errors.clone(),
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
        Self {
            registry: root,
            traffic,
            feedback,
            viewers,
            mux_send_errors,
            publishers,
            rooms,
            relay_links,
            routing_errors,
            routing_duration,
        }
    }

    /// The text exposition of every metric, gauges read from `node` now.
    pub fn render(&self, node: &Node) -> String {
        let sessions = node.session_counts();
        let count = |k: &str| i64::try_from(*sessions.get(k).unwrap_or(&0)).unwrap_or(i64::MAX);
        self.viewers.set(count("viewers"));
        self.publishers.set(count("publishers"));
        let rooms = node.rooms();
        self.rooms
            .set(i64::try_from(rooms.len()).unwrap_or(i64::MAX));
        let upstream = rooms.iter().filter(|r| r.relayed && !r.is_ended()).count();
        self.relay_links
            .get_or_create(&[("direction", "upstream")])
            .set(i64::try_from(upstream).unwrap_or(i64::MAX));
        self.relay_links
            .get_or_create(&[("direction", "downstream")])
            .set(count("relays"));
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }

    fn routing_op(&self, op: &'static str, took: Duration, ok: bool) {
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
            .and_then(|s| crate::procstat::parse_cpu_ticks(&s));
        if let Some(ticks) = cpu {
            let counter = ConstCounter::new(ticks as f64 / crate::procstat::TICKS_PER_SECOND);
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
            .and_then(|s| crate::procstat::parse_rss_kib(&s));
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

/// A routing store that times and counts every operation of the store it wraps.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn RoutingStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn wrap(inner: Arc<dyn RoutingStore>, metrics: Arc<Metrics>) -> Arc<dyn RoutingStore> {
        Arc::new(Self { inner, metrics })
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = RoutingResult<T>>,
    ) -> RoutingResult<T> {
        let start = Instant::now();
        let result = f.await;
        self.metrics.routing_op(op, start.elapsed(), result.is_ok());
        result
    }
}

#[async_trait::async_trait]
impl RoutingStore for MeteredStore {
    async fn heartbeat(&self, node: &NodeInfo, lease: Duration) -> RoutingResult<()> {
        self.timed("heartbeat", self.inner.heartbeat(node, lease))
            .await
    }
    async fn remove_node(&self, node_id: &str) -> RoutingResult<()> {
        self.timed("remove_node", self.inner.remove_node(node_id))
            .await
    }
    async fn nodes(&self) -> RoutingResult<Vec<NodeInfo>> {
        self.timed("nodes", self.inner.nodes()).await
    }
    async fn node(&self, node_id: &str) -> RoutingResult<Option<NodeInfo>> {
        self.timed("node", self.inner.node(node_id)).await
    }
    async fn claim_room(
        &self,
        room: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        self.timed("claim_room", self.inner.claim_room(room, node_id, lease))
            .await
    }
    async fn take_over_room(
        &self,
        room: &str,
        dead_node: &str,
        node_id: &str,
        lease: Duration,
    ) -> RoutingResult<Option<RoomClaim>> {
        self.timed(
            "take_over_room",
            self.inner.take_over_room(room, dead_node, node_id, lease),
        )
        .await
    }
    async fn renew_room(&self, claim: &RoomClaim, lease: Duration) -> RoutingResult<bool> {
        self.timed("renew_room", self.inner.renew_room(claim, lease))
            .await
    }
    async fn release_room(&self, claim: &RoomClaim) -> RoutingResult<bool> {
        self.timed("release_room", self.inner.release_room(claim))
            .await
    }
    async fn room_owner(&self, room: &str) -> RoutingResult<Option<String>> {
        self.timed("room_owner", self.inner.room_owner(room)).await
    }
    async fn rooms(&self) -> RoutingResult<Vec<(String, String)>> {
        self.timed("rooms", self.inner.rooms()).await
    }
    async fn put_link(&self, link: &Link, lease: Duration) -> RoutingResult<()> {
        self.timed("put_link", self.inner.put_link(link, lease))
            .await
    }
    async fn remove_link(&self, room: &str, edge_id: &str) -> RoutingResult<()> {
        self.timed("remove_link", self.inner.remove_link(room, edge_id))
            .await
    }
    async fn links(&self, room: &str) -> RoutingResult<Vec<Link>> {
        self.timed("links", self.inner.links(room)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.traffic.packets_in.inc();
        m.traffic.join.observe(0.2);
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
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
        ] {
            assert!(out.contains(name), "{name} missing in\n{out}");
        }
    }
}
