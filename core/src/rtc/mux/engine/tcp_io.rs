//! The engine's side of its viewers' ICE-TCP connections (`mux::tcp`): taking a connection
//! over, handing its frames to the viewer's core, and writing what waits for it.

use super::super::tcp::{self, Input};
use super::*;

/// Where a shard hears of its viewers' TCP connections.
pub(in crate::rtc::mux) struct TcpInputs {
    /// Connections the ICE-TCP listener routed to one of the shard's viewers.
    pub(in crate::rtc::mux) accepted: mpsc::UnboundedReceiver<Accepted>,
    /// Frames (and ends) the connections' reader tasks read.
    pub(in crate::rtc::mux) input: mpsc::Receiver<Input>,
}

impl Engine {
    /// A connection whose first frame named one of the shard's viewers: it becomes one of the
    /// viewer's connections, and the frame (a binding request) goes to its core.
    pub(super) fn tcp_accept(&mut self, mut accepted: Accepted) {
        let (Some(local), Some(&key)) = (self.tcp_local, self.by_ufrag.get(&accepted.ufrag)) else {
            return;
        };
        if self.viewers[key].tcp_conns.len() >= tcp::MAX_PER_VIEWER {
            tracing::debug!(peer = %accepted.peer, "ICE-TCP: the viewer has its connections; closed");
            return;
        }
        let (peer, first) = (accepted.peer, std::mem::take(&mut accepted.first));
        let id = match self.out.tcp.open(accepted, key) {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "ICE-TCP: connection not taken over");
                return;
            }
        };
        self.viewers[key].tcp_conns.push(id);
        self.tcp_deliver(key, local, peer, first);
    }

    /// A frame from a connection, or its end.
    pub(super) fn tcp_receive(&mut self, input: Input) {
        match input {
            Input::Frame(id, frame) => {
                let (Some(local), Some((peer, key))) = (self.tcp_local, self.out.tcp.get(id))
                else {
                    return;
                };
                self.tcp_deliver(key, local, peer, frame);
            }
            Input::Closed(id) => self.tcp_close(id),
        }
    }

    /// Closes connection `id` and forgets it as its viewer's.
    fn tcp_close(&mut self, id: u64) {
        if let Some((_, key)) = self.out.tcp.get(id) {
            self.out.tcp.close(id);
            if let Some(viewer) = self.viewers.get_mut(key) {
                viewer.tcp_conns.retain(|&c| c != id);
            }
        }
    }

    fn tcp_deliver(&mut self, key: usize, local: SocketAddr, peer: SocketAddr, frame: BytesMut) {
        if self.own_rtcp(key, &frame) {
            return;
        }
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        let message = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: local,
                peer_addr: peer,
                ecn: None,
                transport_protocol: TransportProtocol::TCP,
            },
            message: frame,
        };
        if let Err(e) = viewer.pc.handle_read(message) {
            tracing::trace!(error = %e, "viewer core refused a TCP frame");
        }
        self.service(key);
    }

    /// Writes what waits for each connection, as far as its socket takes it. A viewer whose
    /// connection filled up has its video paused (`send`); once it has drained, each paused
    /// video leg asks its track for a keyframe to start again at. Failed connections close.
    pub(super) fn flush_tcp(&mut self) {
        let mut closed = std::mem::take(&mut self.tcp_closed);
        let viewers = &mut self.viewers;
        self.out.tcp.flush(
            |key, congested| {
                let Some(viewer) = viewers.get_mut(key) else {
                    return;
                };
                viewer.congested = congested;
                if congested {
                    tracing::debug!(viewer = viewer.id, "ICE-TCP viewer congested: video paused");
                    return;
                }
                for leg in &viewer.legs {
                    if leg.forward.needs_keyframe() && !leg.forward.is_started() {
                        let track = leg.track.clone();
                        tokio::spawn(async move { track.request_keyframe().await });
                    }
                }
            },
            &mut closed,
        );
        for &id in &closed {
            self.tcp_close(id);
        }
        closed.clear();
        self.tcp_closed = closed;
    }
}
