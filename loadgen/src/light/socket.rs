//! A light viewer's UDP socket: bound non-blocking with a large receive buffer and UDP GRO,
//! read a GRO batch at a time with `recvmsg`, and the waker its readiness is registered with,
//! which queues the viewer once for its driver.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// The most one read returns: a whole GRO batch (one GSO send of the node).
pub(super) const MAX_READ: usize = 64 * 1024;

/// A viewer's socket receive buffer (the kernel doubles it for its bookkeeping; capped by
/// `net.core.rmem_max`). A joining viewer is sent the cached keyframe and everything after it
/// at once, up to a GOP (hundreds of datagrams); the default buffer holds about 90. A `pc`
/// engine viewer survives that burst in its 256-packet channels per track; a light viewer reads
/// straight from its socket, so the socket holds the burst while the driver serves the others.
const SOCKET_RCVBUF: usize = 1024 * 1024;

/// A viewer's socket, non-blocking, not yet registered with a reactor; with UDP GRO when `gro`
/// (and the kernel has it: without, datagrams simply arrive one by one).
pub(super) fn bind(ip: IpAddr, gro: bool) -> std::io::Result<std::net::UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    setsockopt(&socket, sockopt::RcvBuf, &SOCKET_RCVBUF).map_err(std::io::Error::from)?;
    if gro && let Err(e) = setsockopt(&socket, sockopt::UdpGroSegment, &true) {
        log::debug!("UDP GRO not available: {e}");
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// One read of a (GRO) socket into `buf`: the bytes read, the size of each datagram in them
/// (the last may be shorter; all of it when the kernel did not coalesce), and the sender.
pub(super) fn recv_batch(
    socket: &UdpSocket,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> std::io::Result<(usize, usize, SocketAddr)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd;
    socket.try_io(tokio::io::Interest::READABLE, || {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut *cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(std::io::Error::from)?;
        let len = msg.bytes;
        let mut stride = len;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::UdpGroSegments(size) = c
                && size > 0
            {
                stride = size as usize;
            }
        }
        let from = msg
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                    })
            })
            .ok_or_else(|| std::io::Error::other("datagram without a sender address"))?;
        Ok((len, stride.max(1), from))
    })
}

/// Sockets that became readable, by viewer index, and the wake-up for the driver.
#[derive(Default)]
pub(super) struct ReadyQueue {
    pub(super) indexes: Mutex<Vec<usize>>,
    pub(super) notify: Notify,
}

/// The waker a viewer's socket readiness is registered with: queues the viewer once until the
/// driver takes it.
pub(super) struct SocketWaker {
    pub(super) index: usize,
    pub(super) queued: AtomicBool,
    pub(super) queue: Arc<ReadyQueue>,
}

impl Wake for SocketWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue
                .indexes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.index);
            self.queue.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::light::driver::RX_CHUNK;
    use bytes::BytesMut;
    use std::io::ErrorKind;
    use std::task::{Context, Waker};
    use std::time::Duration;

    #[tokio::test]
    async fn a_readable_socket_queues_its_viewer_once() {
        let queue = Arc::new(ReadyQueue::default());
        let wake = Arc::new(SocketWaker {
            index: 7,
            queued: AtomicBool::new(false),
            queue: queue.clone(),
        });
        let waker = Waker::from(wake.clone());
        let socket =
            UdpSocket::from_std(bind("127.0.0.1".parse().unwrap(), false).unwrap()).unwrap();
        let to = socket.local_addr().unwrap();
        assert!(
            socket
                .poll_recv_ready(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"one", to).unwrap();
        sender.send_to(b"two", to).unwrap();
        tokio::time::timeout(Duration::from_secs(5), queue.notify.notified())
            .await
            .expect("the driver is woken");
        // Woken again before the driver took it: still queued once.
        wake.wake_by_ref();
        assert_eq!(*queue.indexes.lock().unwrap(), vec![7]);

        // The driver drains it into one buffer, each datagram split off without a copy.
        let mut rx = BytesMut::with_capacity(RX_CHUNK);
        let mut got = Vec::new();
        while let Ok((_, from)) = socket.try_recv_buf_from(&mut rx) {
            assert_eq!(from, sender.local_addr().unwrap());
            got.push(rx.split().freeze());
        }
        assert_eq!(got, vec![&b"one"[..], &b"two"[..]]);
        assert!(rx.capacity() >= RX_CHUNK - 6);
    }

    #[tokio::test]
    async fn a_gso_send_arrives_as_one_read_split_into_its_datagrams() {
        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrIn, sendmsg};
        use std::os::fd::AsRawFd;
        let socket =
            UdpSocket::from_std(bind("127.0.0.1".parse().unwrap(), true).unwrap()).unwrap();
        let to = match socket.local_addr().unwrap() {
            SocketAddr::V4(v4) => SockaddrIn::from(v4),
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        };
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Three datagrams of 1000, 1000 and 500 bytes in one GSO send.
        let payload: Vec<u8> = (0..2500u32).map(|i| (i / 1000) as u8).collect();
        let segment = 1000u16;
        sendmsg(
            sender.as_raw_fd(),
            &[std::io::IoSlice::new(&payload)],
            &[ControlMessage::UdpGsoSegments(&segment)],
            MsgFlags::empty(),
            Some(&to),
        )
        .expect("the kernel has UDP GSO");
        let (mut buf, mut cmsg) = (vec![0; MAX_READ], nix::cmsg_space!(i32));
        let (len, stride, from) = loop {
            socket.readable().await.unwrap();
            match recv_batch(&socket, &mut buf, &mut cmsg) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                other => break other.unwrap(),
            }
        };
        assert_eq!(from, sender.local_addr().unwrap());
        let datagrams: Vec<&[u8]> = buf[..len].chunks(stride).collect();
        assert_eq!(
            datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        for (i, d) in datagrams.iter().enumerate() {
            assert!(d.iter().all(|&b| b == i as u8), "datagram {i} intact");
        }
    }
}
