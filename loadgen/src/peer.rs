//! A webrtc-rs peer connection (built by cascade-core's [`PcFactory`]) with its events turned
//! into channels a task can await ([`PeerEvents`], as the nodes' sessions have them):
//! connection state, ICE gathering, remote tracks.

use cascade_core::rtc::events::PeerEvents;
use cascade_core::rtc::pc::{Pc, PcFactory};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::RTCPeerConnectionState;

/// Why a peer connection did not come up.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("building the peer connection failed: {0}")]
    Build(#[source] cascade_core::Error),
    #[error("binding the media socket failed: {0}")]
    Socket(#[source] std::io::Error),
    #[error("{what} failed: {source}")]
    Webrtc {
        what: &'static str,
        #[source]
        source: webrtc::error::Error,
    },
    #[error("no local description after ICE gathering")]
    NoLocalDescription,
    #[error("peer connection {0}")]
    NotConnected(&'static str),
}

impl PeerError {
    pub fn webrtc(what: &'static str) -> impl FnOnce(webrtc::error::Error) -> Self {
        move |source| PeerError::Webrtc { what, source }
    }

    /// A short, stable description for counting failures by kind.
    pub fn kind(&self) -> String {
        match self {
            PeerError::Build(e) => build_kind(&e.to_string()),
            PeerError::Socket(e) => build_kind(&e.to_string()),
            PeerError::Webrtc { what, .. } => format!("{what} failed"),
            PeerError::NoLocalDescription => "no local description".into(),
            PeerError::NotConnected(why) => format!("peer connection {why}"),
        }
    }
}

/// A failure to build a peer connection or bind its socket, by kind: running out of file
/// descriptors is the common one at scale and says what to do.
fn build_kind(text: &str) -> String {
    if text.contains("Too many open files") || text.contains("os error 24") {
        "peer connection build: too many open files (raise ulimit -n)".into()
    } else {
        format!(
            "peer connection build: {}",
            text.chars().take(80).collect::<String>()
        )
    }
}

/// A peer connection and the receiving ends of its events.
pub struct Peer {
    pub pc: Pc,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl Peer {
    pub async fn new(factory: &PcFactory) -> Result<Self, PeerError> {
        let (
            handler,
            PeerEvents {
                state,
                gathered,
                tracks,
            },
        ) = PeerEvents::channel();
        let pc = factory.build(handler).await.map_err(PeerError::Build)?;
        Ok(Self {
            pc,
            state,
            gathered,
            tracks,
        })
    }

    /// Creates the offer, sets it, waits (bounded) for ICE gathering to complete and returns the
    /// local SDP with every candidate in it: WHIP/WHEP without trickle.
    pub async fn offer(&mut self, gather_timeout: Duration) -> Result<String, PeerError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(PeerError::webrtc("create_offer"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(PeerError::webrtc("set_local_description"))?;
        let _ = tokio::time::timeout(gather_timeout, self.gathered.wait_for(|g| *g)).await;
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or(PeerError::NoLocalDescription)
    }

    pub async fn apply_answer(&self, sdp: String) -> Result<(), PeerError> {
        let answer = rtc::peer_connection::sdp::RTCSessionDescription::answer(sdp)
            .map_err(PeerError::webrtc("parsing the SDP answer"))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(PeerError::webrtc("set_remote_description"))
    }

    /// Applies an answer as a client without UDP does: none of its candidates but its passive
    /// TCP ones, given to the peer connection one by one (webrtc-rs connects to those it is
    /// given so, not to those in a description).
    pub async fn apply_answer_tcp(&self, sdp: String) -> Result<(), PeerError> {
        let tcp: Vec<String> = sdp
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a="))
            .filter(|c| {
                c.starts_with("candidate:") && c.contains(" tcp ") && c.contains("tcptype passive")
            })
            .map(str::to_owned)
            .collect();
        let bare: String = sdp
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("a=candidate:"))
            .collect();
        self.apply_answer(bare).await?;
        for candidate in tcp {
            self.pc
                .add_ice_candidate(rtc::peer_connection::transport::RTCIceCandidateInit {
                    candidate,
                    sdp_mid: None,
                    sdp_mline_index: Some(0),
                    ..Default::default()
                })
                .await
                .map_err(PeerError::webrtc("add_ice_candidate"))?;
        }
        Ok(())
    }

    /// Resolves when connected; errors when the connection fails, closes or takes too long.
    pub async fn connected(&mut self, timeout: Duration) -> Result<(), PeerError> {
        let wait = self.state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        });
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected => Ok(()),
            Ok(Ok(s)) if *s == RTCPeerConnectionState::Failed => {
                Err(PeerError::NotConnected("failed"))
            }
            Ok(_) => Err(PeerError::NotConnected("closed")),
            Err(_) => Err(PeerError::NotConnected("timed out connecting")),
        }
    }
}
