//! How a session's media travels once it is connected: over UDP, over ICE-TCP, or through a TURN
//! server (relayed), as the status API counts sessions and the metrics break them down.
//!
//! The remote end of the selected candidate pair tells: a TCP pair is ICE-TCP (a client that
//! reaches a TURN server over TCP still reaches us over UDP, from the server's relay address), and
//! a UDP pair whose remote end is one of the offer's `typ relay` candidates is relayed (by its
//! address for a mux viewer, whose core learns the remote from checks; by the signalled
//! candidate's type for a webrtc-rs peer connection).

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// How a connected session's media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    /// ICE over TCP, to the node's ICE-TCP port.
    Tcp,
    /// Through a TURN server (whatever the client's transport to it).
    Relayed,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Relayed];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Relayed => "relayed",
        }
    }

    /// The transport of a selected UDP pair whose remote end is `remote`, for a session whose
    /// peer's relay candidates are `relays` ([`relay_candidates`]).
    pub fn of_udp_pair(relays: &[SocketAddr], remote: SocketAddr) -> Self {
        if relays.contains(&remote) {
            Transport::Relayed
        } else {
            Transport::Udp
        }
    }
}

/// The addresses of an SDP's `typ relay` candidates.
pub fn relay_candidates(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|line| {
            let value = line.trim_end().strip_prefix("a=candidate:")?;
            let fields: Vec<&str> = value.split(' ').collect();
            let typ = fields.iter().position(|f| *f == "typ")?;
            if fields.get(typ + 1) != Some(&"relay") || fields.len() < 6 {
                return None;
            }
            let ip: IpAddr = fields[4].parse().ok()?;
            Some(SocketAddr::new(ip, fields[5].parse().ok()?))
        })
        .collect()
}

/// What the status API shows of a session's link, set by whoever serves it: its transport
/// (once connected) and, for a mux viewer, its bandwidth estimate and the simulcast layer it
/// is sent.
#[derive(Debug, Clone, Default)]
pub struct TransportCell(Arc<LinkState>);

#[derive(Debug, Default)]
struct LinkState {
    transport: AtomicU8,
    /// kbit/s; 0 while unknown.
    estimate_kbps: AtomicU32,
    /// The RID of the simulcast layer sent (a group's, the first if several).
    layer: std::sync::Mutex<Option<String>>,
    /// Whether its video is paused because its link cannot carry it.
    video_paused: std::sync::atomic::AtomicBool,
}

impl TransportCell {
    pub fn set(&self, transport: Transport) {
        self.0
            .transport
            .store(transport as u8 + 1, Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<Transport> {
        match self.0.transport.load(Ordering::Relaxed) {
            0 => None,
            n => Transport::ALL.get(usize::from(n - 1)).copied(),
        }
    }

    pub fn set_estimate(&self, bps: f64) {
        self.0.estimate_kbps.store(
            (bps / 1000.0).clamp(1.0, f64::from(u32::MAX)) as u32,
            Ordering::Relaxed,
        );
    }

    /// The bandwidth estimate in kbit/s, once there is one.
    pub fn estimate_kbps(&self) -> Option<u32> {
        Some(self.0.estimate_kbps.load(Ordering::Relaxed)).filter(|&k| k > 0)
    }

    /// Notes the simulcast layer sent (a switch: rare, not per packet).
    pub fn set_layer(&self, rid: &str) {
        if let Ok(mut layer) = self.0.layer.lock() {
            *layer = Some(rid.to_owned());
        }
    }

    pub fn layer(&self) -> Option<String> {
        self.0.layer.lock().ok().and_then(|l| l.clone())
    }

    pub fn set_video_paused(&self, paused: bool) {
        self.0.video_paused.store(paused, Ordering::Relaxed);
    }

    pub fn video_paused(&self) -> bool {
        self.0.video_paused.load(Ordering::Relaxed)
    }
}

/// The transport of a webrtc-rs peer connection's selected candidate pair (`None` before one is
/// selected).
///
/// From its stats report: the pair names its candidates by bare id, the report keys local
/// ones `RTCLocalIceCandidate_<id>` and remote ones `RTCRemoteIceCandidate_<id>`, and has only
/// the remote candidates that were signalled (not those learnt from checks, which are never
/// relays: a relayed client signals its relay candidate, with its type).
pub async fn of_pc(pc: &crate::rtc::pc::Pc) -> Option<Transport> {
    use rtc::peer_connection::transport::RTCIceCandidateType;
    use rtc::statistics::report::RTCStatsReportEntry;
    let report = pc
        .get_stats(
            std::time::Instant::now(),
            rtc::statistics::StatsSelector::None,
        )
        .await;
    let pair_id = &report.transport()?.selected_candidate_pair_id;
    let Some(RTCStatsReportEntry::IceCandidatePair(pair)) = report.get(pair_id) else {
        return None;
    };
    let local = format!("RTCLocalIceCandidate_{}", pair.local_candidate_id);
    let Some(RTCStatsReportEntry::LocalCandidate(local)) = report.get(&local) else {
        return None;
    };
    if local.protocol.eq_ignore_ascii_case("tcp") {
        return Some(Transport::Tcp);
    }
    let remote = format!("RTCRemoteIceCandidate_{}", pair.remote_candidate_id);
    let relayed = matches!(
        report.get(&remote),
        Some(RTCStatsReportEntry::RemoteCandidate(r)) if r.candidate_type == RTCIceCandidateType::Relay
    );
    Some(if relayed {
        Transport::Relayed
    } else {
        Transport::Udp
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_udp_pair_is_relayed_or_not() {
        let offer = "v=0\r\n\
                     a=candidate:1 1 udp 2122260223 192.168.1.5 50000 typ host\r\n\
                     a=candidate:2 1 udp 41885439 198.51.100.9 61000 typ relay raddr 0.0.0.0 rport 0\r\n";
        let offer = &relay_candidates(offer);
        let relay: SocketAddr = "198.51.100.9:61000".parse().unwrap();
        assert_eq!(offer, &[relay]);
        let host: SocketAddr = "192.168.1.5:50000".parse().unwrap();
        assert_eq!(Transport::of_udp_pair(offer, relay), Transport::Relayed);
        assert_eq!(Transport::of_udp_pair(offer, host), Transport::Udp);
        // A peer-reflexive address (learnt from a check, in no offer) is UDP.
        let prflx: SocketAddr = "203.0.113.1:40000".parse().unwrap();
        assert_eq!(Transport::of_udp_pair(offer, prflx), Transport::Udp);
    }

    #[test]
    fn a_cell_is_empty_until_set() {
        let cell = TransportCell::default();
        assert_eq!(cell.get(), None);
        for t in Transport::ALL {
            cell.clone().set(t);
            assert_eq!(cell.get(), Some(t));
        }
    }
}
