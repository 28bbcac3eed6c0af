//! A mux shard's viewers on ICE over TCP (`rtc::ice_tcp`): their connections, what waits to be
//! written to them, and how a connection that cannot keep up is kept from holding up the rest.
//!
//! A connection the node's ICE-TCP listener hands to the shard is split in two: a reader task
//! decodes its RFC 4571 frames and queues them for the engine (input is little: checks, DTLS,
//! RTCP), and the engine writes to it itself, without waiting: each datagram for it (media
//! protected in place, as for UDP) is framed at the end of the connection's buffer, and every
//! flush writes what the socket takes. A reader that falls behind fills the buffer: above
//! [`CONGESTED`] bytes the viewer's video pauses until the buffer has drained and then starts
//! again at a keyframe (`Leg::pause`: one continuous stream for the viewer); beyond [`LIMIT`]
//! nothing more is queued for it. Other viewers never wait for it.

use crate::rtc::ice_tcp::{self, Accepted};
use bytes::BytesMut;
use futures::StreamExt;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

/// Bytes waiting for a connection above which its viewer's video pauses: with the kernel's
/// buffer, about half a second of a 2.5 Mbit/s stream, and room for a keyframe.
pub(super) const CONGESTED: usize = 128 * 1024;
/// Bytes waiting for a connection at most; what does not fit is dropped.
const LIMIT: usize = 1024 * 1024;
/// The kernel's send buffer of a connection (Linux doubles it): small, so that what waits,
/// waits where the mux sees it, yet enough for 5 Mbit/s at 200 ms round trip.
const SEND_BUFFER: usize = 64 * 1024;
/// Frames from all connections waiting for the engine at most; more are dropped, as a full UDP
/// socket drops datagrams.
pub(super) const INPUT_QUEUE: usize = 4096;
/// TCP connections one viewer may have (one per local address of its host, as with UDP).
pub(super) const MAX_PER_VIEWER: usize = 4;

/// What the reader tasks tell the engine.
pub(super) enum Input {
    Frame(u64, BytesMut),
    Closed(u64),
}

struct Conn {
    /// The writing half: the same socket as the reader task's, non-blocking, not registered.
    stream: std::net::TcpStream,
    peer: SocketAddr,
    viewer: usize,
    /// Framed datagrams; `pending[written..]` still to write.
    pending: Vec<u8>,
    written: usize,
    /// In [`TcpConns::backlog`].
    queued: bool,
    congested: bool,
}

/// A shard's TCP connections.
pub(super) struct TcpConns {
    conns: HashMap<u64, Conn>,
    by_peer: HashMap<SocketAddr, u64>,
    next_id: u64,
    input: mpsc::Sender<Input>,
    /// Connections with bytes to write.
    backlog: Vec<u64>,
    /// Scratch for [`TcpConns::flush`].
    still: Vec<u64>,
}

impl TcpConns {
    pub(super) fn new(input: mpsc::Sender<Input>) -> Self {
        Self {
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            next_id: 1,
            input,
            backlog: Vec::new(),
            still: Vec::new(),
        }
    }

    /// Takes over an accepted connection for viewer `viewer`; returns its id.
    pub(super) fn open(&mut self, accepted: Accepted, viewer: usize) -> std::io::Result<u64> {
        let stream = accepted.stream.into_std()?;
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        let reader = tokio::net::TcpStream::from_std(stream.try_clone()?)?;
        let id = self.next_id;
        self.next_id += 1;
        let input = self.input.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(reader, ice_tcp::codec());
            while let Some(Ok(frame)) = frames.next().await {
                if input.try_send(Input::Frame(id, frame)).is_err() && input.is_closed() {
                    return;
                }
            }
            let _ = input.send(Input::Closed(id)).await;
        });
        self.by_peer.insert(accepted.peer, id);
        self.conns.insert(
            id,
            Conn {
                stream,
                peer: accepted.peer,
                viewer,
                pending: Vec::new(),
                written: 0,
                queued: false,
                congested: false,
            },
        );
        Ok(id)
    }

    /// Closes a connection (its reader task sees the end and stops).
    pub(super) fn close(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            if self.by_peer.get(&conn.peer) == Some(&id) {
                self.by_peer.remove(&conn.peer);
            }
        }
    }

    /// A connection's client address and viewer.
    pub(super) fn get(&self, id: u64) -> Option<(SocketAddr, usize)> {
        self.conns.get(&id).map(|c| (c.peer, c.viewer))
    }

    /// The connection from `peer`, if it belongs to viewer `viewer`.
    pub(super) fn conn_of(&self, peer: SocketAddr, viewer: usize) -> Option<u64> {
        let id = *self.by_peer.get(&peer)?;
        self.conns
            .get(&id)
            .filter(|c| c.viewer == viewer)
            .map(|_| id)
    }

    /// Queues a copy of `datagram` for connection `id`.
    pub(super) fn push(&mut self, id: u64, datagram: &[u8]) -> bool {
        self.push_with(id, |buf| {
            buf.extend_from_slice(datagram);
            true
        })
    }

    /// Queues the datagram `write` appends for connection `id`, framed, if it says it wrote one
    /// and it fits (see [`LIMIT`]). Returns whether it was queued.
    pub(super) fn push_with(&mut self, id: u64, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        if conn.pending.len() - conn.written >= LIMIT {
            return false;
        }
        let start = conn.pending.len();
        conn.pending.extend_from_slice(&[0, 0]);
        let len = if write(&mut conn.pending) {
            u16::try_from(conn.pending.len() - start - 2).ok()
        } else {
            None
        };
        let Some(len) = len else {
            conn.pending.truncate(start);
            return false;
        };
        conn.pending[start..start + 2].copy_from_slice(&len.to_be_bytes());
        if !conn.queued {
            conn.queued = true;
            self.backlog.push(id);
        }
        true
    }

    /// Writes what each connection's socket takes now. `congestion` is told of each viewer
    /// whose connection went above [`CONGESTED`] (true) or drained (false); `closed` of each
    /// connection that failed.
    pub(super) fn flush(&mut self, mut congestion: impl FnMut(usize, bool), closed: &mut Vec<u64>) {
        self.still.clear();
        for i in 0..self.backlog.len() {
            let id = self.backlog[i];
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let mut failed = false;
            while conn.written < conn.pending.len() {
                match (&conn.stream).write(&conn.pending[conn.written..]) {
                    Ok(0) => {
                        failed = true;
                        break;
                    }
                    Ok(n) => conn.written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!(peer = %conn.peer, error = %e, "ICE-TCP write failed");
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                closed.push(id);
                continue;
            }
            if conn.written == conn.pending.len() {
                conn.pending.clear();
                conn.written = 0;
                conn.queued = false;
            } else {
                if conn.written > 0 {
                    conn.pending.drain(..conn.written);
                    conn.written = 0;
                }
                self.still.push(id);
            }
            let congested = if conn.congested {
                !conn.pending.is_empty()
            } else {
                conn.pending.len() > CONGESTED
            };
            if congested != conn.congested {
                conn.congested = congested;
                congestion(conn.viewer, congested);
            }
        }
        std::mem::swap(&mut self.backlog, &mut self.still);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::ice_tcp::codec;
    use tokio::net::{TcpListener, TcpStream};

    /// A connection as the listener hands it over, and the client's end.
    async fn pair() -> (Accepted, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        (
            Accepted {
                stream,
                peer,
                ufrag: "v".into(),
                first: BytesMut::new(),
            },
            client,
        )
    }

    #[tokio::test]
    async fn datagrams_go_out_framed_and_frames_come_in() {
        use futures::SinkExt;
        let (tx, mut rx) = mpsc::channel(INPUT_QUEUE);
        let mut conns = TcpConns::new(tx);
        let (accepted, client) = pair().await;
        let peer = accepted.peer;
        let id = conns.open(accepted, 7).unwrap();
        assert_eq!(conns.conn_of(peer, 7), Some(id));
        assert_eq!(conns.conn_of(peer, 8), None);
        assert!(conns.push(id, b"one"));
        assert!(!conns.push_with(id, |buf| {
            buf.extend_from_slice(b"refused");
            false
        }));
        assert!(conns.push(id, b"three"));
        let mut closed = Vec::new();
        conns.flush(|_, _| panic!("not congested"), &mut closed);
        assert!(closed.is_empty());
        let mut client = tokio_util::codec::Framed::new(client, codec());
        assert_eq!(&client.next().await.unwrap().unwrap()[..], b"one");
        assert_eq!(&client.next().await.unwrap().unwrap()[..], b"three");
        client
            .send(bytes::Bytes::from_static(b"rtcp"))
            .await
            .unwrap();
        match rx.recv().await.unwrap() {
            Input::Frame(from, frame) => assert_eq!((from, &frame[..]), (id, &b"rtcp"[..])),
            Input::Closed(_) => panic!("closed"),
        }
        drop(client);
        assert!(matches!(rx.recv().await.unwrap(), Input::Closed(c) if c == id));
    }

    #[tokio::test]
    async fn a_reader_that_does_not_read_congests_only_its_viewer_and_is_bounded() {
        let (tx, _rx) = mpsc::channel(INPUT_QUEUE);
        let mut conns = TcpConns::new(tx);
        let (slow, _slow_client) = pair().await;
        let (fast, fast_client) = pair().await;
        let slow_id = conns.open(slow, 1).unwrap();
        let fast_id = conns.open(fast, 2).unwrap();
        let mut fast_client = FramedRead::new(fast_client, codec());
        let packet = [0x80u8; 1200];
        let mut states = Vec::new();
        let mut closed = Vec::new();
        let mut refused = 0;
        for _ in 0..4_000 {
            if !conns.push(slow_id, &packet) {
                refused += 1;
            }
            assert!(conns.push(fast_id, &packet));
            conns.flush(
                |viewer, congested| states.push((viewer, congested)),
                &mut closed,
            );
            // The fast client reads all it is sent.
            assert_eq!(fast_client.next().await.unwrap().unwrap().len(), 1200);
        }
        assert!(closed.is_empty());
        // 4,000 packets of 1.2 kB is 4.8 MB: the slow connection took its socket buffers' worth
        // and the mux's limit, and the rest was refused.
        assert!(refused > 0, "the slow connection's queue is bounded");
        assert_eq!(states, vec![(1, true)], "only the slow viewer is congested");
    }
}
