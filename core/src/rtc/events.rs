//! A webrtc-rs peer connection's events turned into channels a task can await: connection
//! state, ICE gathering, remote tracks. Every peer connection built from
//! [`PcFactory::build`](crate::rtc::pc::PcFactory::build) in the node's sessions takes its
//! handler from here, and so do the load generator's.

use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// A peer connection's events as channels a task can await: build the connection with the
/// handler [`PeerEvents::channel`] returns (see
/// [`PcFactory::build`](crate::rtc::pc::PcFactory::build)) and keep these.
pub struct PeerEvents {
    /// The connection state, `New` until it changes.
    pub state: watch::Receiver<RTCPeerConnectionState>,
    /// Whether ICE gathering has completed.
    pub gathered: watch::Receiver<bool>,
    /// Remote tracks, as they arrive.
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

impl PeerEvents {
    /// A handler to build a peer connection with, and the channels it feeds.
    pub fn channel() -> (Arc<dyn PeerConnectionEventHandler>, Self) {
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (tracks_tx, tracks) = mpsc::unbounded_channel();
        let sender = EventSender {
            state: state_tx,
            gathered: gathered_tx,
            tracks: tracks_tx,
        };
        let events = Self {
            state,
            gathered,
            tracks,
        };
        (Arc::new(sender), events)
    }
}

/// Resolves when `state` (a [`PeerEvents::state`]) says the connection is gone for good: failed
/// or closed.
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

/// Receives a peer connection's events and feeds them to its [`PeerEvents`].
struct EventSender {
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for EventSender {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}
