//! A webrtc-rs peer connection (built by cascade-core's [`PcFactory`]) with its events turned
//! into channels a task can await: connection state, ICE gathering, remote tracks.

use cascade_core::rtc::pc::{Pc, PcFactory};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

struct Events {
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

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
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (tracks_tx, tracks) = mpsc::unbounded_channel();
        let events = Arc::new(Events {
            state: state_tx,
            gathered: gathered_tx,
            tracks: tracks_tx,
        });
        let pc = factory.build(events).await.map_err(PeerError::Build)?;
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

/// Resolves when `state` says the connection is gone for good.
pub async fn gone(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    let _ = state
        .wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            )
        })
        .await;
}
