//! The async runtime the node's own peer connections (publishers, relay links) run on: the
//! runtime webrtc-rs would pick, with a larger receive buffer on each UDP socket it binds.
//!
//! A relay link's first moments bring a burst: the upstream sends every track's cached group of
//! pictures at once (up to [`crate::media::room::KEYFRAME_CACHE_PACKETS`] packets per layer)
//! while the downstream driver is still busy opening those tracks. The kernel's default buffer
//! (about 208 KiB) overflows, and what it drops first is the start of the burst: a layer's
//! keyframe. NACKs cannot bring it back, since nothing before a stream's first received packet
//! is known to be missing.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
};

/// Receive buffer asked of a peer connection's UDP socket (the kernel caps it at
/// `net.core.rmem_max`). Memory is only taken while datagrams wait in it.
pub const RECV_BUFFER: usize = 4 << 20;

/// webrtc-rs's default runtime, with [`RECV_BUFFER`] on every UDP socket.
pub struct PcRuntime {
    inner: Arc<dyn Runtime>,
}

impl fmt::Debug for PcRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcRuntime")
            .field("inner", &self.inner.name())
            .finish()
    }
}

/// The runtime for the node's peer connections; `None` when webrtc-rs has no runtime to offer
/// (no runtime feature on).
pub fn pc_runtime() -> Option<Arc<dyn Runtime>> {
    let inner = webrtc::runtime::default_runtime()?;
    Some(Arc::new(PcRuntime { inner }))
}

impl Runtime for PcRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // Best effort: a smaller buffer than asked is still a working socket.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER);
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wrapped_socket_gets_the_larger_receive_buffer() {
        let runtime = pc_runtime().expect("a runtime");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let probe = socket.try_clone().unwrap();
        let before = socket2::SockRef::from(&probe).recv_buffer_size().unwrap();
        let _wrapped = runtime.wrap_udp_socket(socket).unwrap();
        let after = socket2::SockRef::from(&probe).recv_buffer_size().unwrap();
        // Linux doubles what it is asked for and caps it at rmem_max: larger, whatever the cap.
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        assert!(
            after > before || before >= cap,
            "receive buffer {before} -> {after} (rmem_max {cap})"
        );
    }
}
