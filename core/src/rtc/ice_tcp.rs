//! ICE over TCP (RFC 6544): one listening port per node for clients whose network drops UDP.
//!
//! The node offers a passive TCP host candidate (`tcptype passive`) beside its UDP one; a
//! client that cannot use UDP connects to it, and every packet on the connection is framed as
//! RFC 4571 says (a 16-bit length before each). Like the UDP mux, one port serves every session:
//! the first frame of a connection must be a STUN binding request, and its USERNAME's local
//! part (the ufrag we gave that session in its answer) names the session. The connection is then
//! handed over whole to whoever registered that ufrag ([`Route`]): a mux shard, which serves it on
//! its batched path, or a peer connection's own listener on loopback (publishers), spliced to it.
//!
//! Limits: connections that have not yet sent their first frame are few
//! ([`MAX_HANDSHAKES`]) and short-lived ([`FIRST_FRAME_TIMEOUT`]); a first frame that is not a
//! binding request for a known ufrag closes the connection. Anyone may connect; only a client
//! that holds a session's ufrag gets past the first frame, and the session's ICE agent still
//! authenticates the request (its password is in the same answer).

use bytes::BytesMut;
use futures::StreamExt;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

/// Connections waiting for their first frame at most; more are closed at once.
pub const MAX_HANDSHAKES: usize = 256;
/// How long a new connection has to send its first frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest first frame read: a binding request is about a hundred bytes.
const MAX_FIRST_FRAME: usize = 1_500;
/// How long a spliced connection's other end may take to accept.
const SPLICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where connections for one ufrag go.
#[derive(Debug, Clone)]
pub enum Route {
    /// Handed to a task that serves the connection itself (a mux shard).
    Hand(mpsc::UnboundedSender<Accepted>),
    /// Spliced, byte for byte, to a TCP listener of the session's own (a peer connection's
    /// ICE-TCP listener on loopback); the first frame is passed on as it came.
    Splice(SocketAddr),
}

/// A connection whose first frame named a session.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    /// The client's address: the remote candidate its ICE agent learns.
    pub peer: SocketAddr,
    /// The session's ufrag, as the first frame named it.
    pub ufrag: String,
    /// The first frame (a STUN binding request), without its length.
    pub first: BytesMut,
}

/// The node's ICE-TCP listener and its routes.
#[derive(Debug)]
pub struct IceTcp {
    /// The address in sessions' TCP candidates (the advertised IP, the listener's port).
    candidate: SocketAddr,
    routes: Mutex<HashMap<String, Route>>,
}

/// A ufrag's route, removed when dropped (the session ended).
#[derive(Debug)]
pub struct Registration {
    ice_tcp: Arc<IceTcp>,
    ufrag: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.ice_tcp.routes().remove(&self.ufrag);
    }
}

/// RFC 4571 framing: a 16-bit big-endian length before each packet.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(usize::from(u16::MAX))
        .new_codec()
}

impl IceTcp {
    /// Listens on `bind` (port 0: the OS picks) and serves connections until `shutdown`;
    /// candidates carry `advertise_ip` (default: the bound address).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(
        bind: SocketAddr,
        advertise_ip: Option<IpAddr>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let listener = std::net::TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let local = listener.local_addr()?;
        let candidate = SocketAddr::new(advertise_ip.unwrap_or(local.ip()), local.port());
        let me = Arc::new(Self {
            candidate,
            routes: Mutex::new(HashMap::new()),
        });
        tracing::info!(%local, %candidate, "ICE-TCP port open");
        tokio::spawn(accept_loop(listener, me.clone(), shutdown));
        Ok(me)
    }

    /// The address in sessions' passive TCP candidates.
    pub fn candidate(&self) -> SocketAddr {
        self.candidate
    }

    /// Sends connections whose first frame names `ufrag` along `route`, until the registration
    /// is dropped.
    pub fn register(self: &Arc<Self>, ufrag: &str, route: Route) -> Registration {
        self.routes().insert(ufrag.to_owned(), route);
        Registration {
            ice_tcp: self.clone(),
            ufrag: ufrag.to_owned(),
        }
    }

    /// Routes registered now.
    pub fn routes_len(&self) -> usize {
        self.routes().len()
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, ufrag: &str) -> Option<Route> {
        self.routes().get(ufrag).cloned()
    }
}

async fn accept_loop(listener: TcpListener, ice_tcp: Arc<IceTcp>, shutdown: CancellationToken) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, most likely: give the node a moment rather than spin.
                tracing::warn!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "ICE-TCP: too many connections without a first frame; closed");
            continue;
        };
        let ice_tcp = ice_tcp.clone();
        tokio::spawn(async move {
            let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, first_frame(stream)).await;
            drop(permit);
            match first {
                Ok(Some((stream, first, ufrag))) => {
                    dispatch(&ice_tcp, stream, peer, first, ufrag).await
                }
                Ok(None) => {
                    tracing::debug!(%peer, "ICE-TCP: first frame is not a binding request for us")
                }
                Err(_) => tracing::debug!(%peer, "ICE-TCP: no first frame in time"),
            }
        });
    }
}

/// Reads a connection's first frame: a STUN message with a USERNAME, whose local ufrag it
/// returns.
async fn first_frame(stream: TcpStream) -> Option<(TcpStream, BytesMut, String)> {
    let mut framed = FramedRead::new(
        stream,
        LengthDelimitedCodec::builder()
            .length_field_length(2)
            .max_frame_length(MAX_FIRST_FRAME)
            .new_codec(),
    );
    let first = framed.next().await?.ok()?;
    let ufrag = crate::rtc::stun::stun_local_ufrag(&first)?.to_owned();
    // A client sends nothing more before it is answered, so nothing is left in the buffer.
    if !framed.read_buffer().is_empty() {
        return None;
    }
    let stream = framed.into_inner();
    let _ = stream.set_nodelay(true);
    Some((stream, first, ufrag))
}

async fn dispatch(
    ice_tcp: &IceTcp,
    stream: TcpStream,
    peer: SocketAddr,
    first: BytesMut,
    ufrag: String,
) {
    match ice_tcp.route(&ufrag) {
        None => tracing::debug!(%peer, "ICE-TCP: binding request for no session; closed"),
        Some(Route::Hand(to)) => {
            let _ = to.send(Accepted {
                stream,
                peer,
                ufrag,
                first,
            });
        }
        Some(Route::Splice(to)) => splice(stream, peer, &first, to).await,
    }
}

/// Joins the client's connection to `to` (a session's own listener), first frame first.
async fn splice(mut client: TcpStream, peer: SocketAddr, first: &[u8], to: SocketAddr) {
    let connected = tokio::time::timeout(SPLICE_CONNECT_TIMEOUT, TcpStream::connect(to)).await;
    let Ok(Ok(mut session)) = connected else {
        tracing::debug!(%peer, %to, "ICE-TCP: the session's listener did not accept");
        return;
    };
    let _ = session.set_nodelay(true);
    let Ok(len) = u16::try_from(first.len()) else {
        return;
    };
    if session.write_all(&len.to_be_bytes()).await.is_err()
        || session.write_all(first).await.is_err()
    {
        return;
    }
    // Ends when either side closes: the session's peer connection closes its end when it ends.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut session).await;
}

/// An answer of a peer connection that listens for ICE-TCP itself (on `a=candidate` lines of
/// protocol `tcp`), rewritten so clients connect to the node's port `candidate` instead: its
/// passive TCP candidates move there (active ones, which a client never connects to, go), and
/// the connections are to be spliced to the peer connection's own listener. Returns the new
/// answer, the answer's ufrag and the address of the peer connection's listener (its first
/// passive candidate's); `None` when the answer has no passive TCP candidate or no ufrag.
pub fn splice_answer(sdp: &str, candidate: SocketAddr) -> Option<(String, String, SocketAddr)> {
    let mut ufrag = None;
    let mut own: Option<SocketAddr> = None;
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        let ending = &line[text.len()..];
        if let Some(u) = text.strip_prefix("a=ice-ufrag:") {
            ufrag.get_or_insert_with(|| u.to_owned());
        }
        let Some(value) = text.strip_prefix("a=candidate:") else {
            out.push_str(line);
            continue;
        };
        // foundation component protocol priority address port typ type [extensions]
        let fields: Vec<&str> = value.split(' ').collect();
        if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("tcp") {
            out.push_str(line);
            continue;
        }
        let passive = fields
            .windows(2)
            .any(|w| w[0] == "tcptype" && w[1] == "passive");
        let (Ok(ip), Ok(port)) = (fields[4].parse::<IpAddr>(), fields[5].parse::<u16>()) else {
            continue;
        };
        let addr = SocketAddr::new(ip, port);
        if !passive || addr.port() == 0 || own.is_some_and(|o| o != addr) {
            continue;
        }
        own = Some(addr);
        let (ip, at) = (candidate.ip().to_string(), candidate.port().to_string());
        let mut moved = fields.clone();
        moved[4] = &ip;
        moved[5] = &at;
        out.push_str("a=candidate:");
        out.push_str(&moved.join(" "));
        out.push_str(ending);
    }
    Some((out, ufrag?, own?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::stun::binding_request;
    use futures::SinkExt;
    use tokio_util::codec::Framed;

    async fn node() -> (Arc<IceTcp>, CancellationToken) {
        let shutdown = CancellationToken::new();
        let ice_tcp =
            IceTcp::start("127.0.0.1:0".parse().unwrap(), None, shutdown.clone()).unwrap();
        (ice_tcp, shutdown)
    }

    #[tokio::test]
    async fn a_connection_goes_to_the_session_its_first_binding_request_names() {
        let (ice_tcp, _shutdown) = node().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _registration = ice_tcp.register("viewer1", Route::Hand(tx));
        let client = TcpStream::connect(ice_tcp.candidate()).await.unwrap();
        let local = client.local_addr().unwrap();
        let mut framed = Framed::new(client, codec());
        let request = binding_request("viewer1:browser");
        framed
            .send(bytes::Bytes::from(request.clone()))
            .await
            .unwrap();
        let accepted = rx.recv().await.unwrap();
        assert_eq!(accepted.ufrag, "viewer1");
        assert_eq!(accepted.peer, local);
        assert_eq!(&accepted.first[..], &request[..]);
    }

    #[tokio::test]
    async fn a_connection_for_no_session_or_with_junk_is_closed() {
        let (ice_tcp, _shutdown) = node().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let registration = ice_tcp.register("viewer1", Route::Hand(tx));
        for first in [
            binding_request("someone-else:browser"),
            vec![0x80; 40],
            Vec::new(),
        ] {
            let mut framed = Framed::new(
                TcpStream::connect(ice_tcp.candidate()).await.unwrap(),
                codec(),
            );
            framed.send(bytes::Bytes::from(first)).await.unwrap();
            // The node closes the connection: the client reads its end.
            assert!(matches!(framed.next().await, None | Some(Err(_))));
        }
        // A first frame longer than any binding request: closed too.
        let mut client = TcpStream::connect(ice_tcp.candidate()).await.unwrap();
        // The node may close before the rest is written.
        let _ = client.write_all(&[0xff, 0xff]).await;
        let _ = client.write_all(&[0u8; 4096]).await;
        let mut framed = Framed::new(client, codec());
        assert!(matches!(framed.next().await, None | Some(Err(_))));
        assert!(rx.try_recv().is_err());
        // Dropping the registration removes the route.
        assert_eq!(ice_tcp.routes_len(), 1);
        drop(registration);
        assert_eq!(ice_tcp.routes_len(), 0);
    }

    #[tokio::test]
    async fn a_spliced_connection_reaches_the_sessions_listener_first_frame_first() {
        let (ice_tcp, _shutdown) = node().await;
        let session = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _registration = ice_tcp.register("pub1", Route::Splice(session.local_addr().unwrap()));
        let mut client = Framed::new(
            TcpStream::connect(ice_tcp.candidate()).await.unwrap(),
            codec(),
        );
        let request = binding_request("pub1:obs");
        client
            .send(bytes::Bytes::from(request.clone()))
            .await
            .unwrap();
        let (stream, _) = session.accept().await.unwrap();
        let mut at_session = Framed::new(stream, codec());
        assert_eq!(&at_session.next().await.unwrap().unwrap()[..], &request[..]);
        // Both ways, byte for byte.
        at_session
            .send(bytes::Bytes::from_static(b"answer"))
            .await
            .unwrap();
        assert_eq!(&client.next().await.unwrap().unwrap()[..], b"answer");
        client
            .send(bytes::Bytes::from_static(b"media"))
            .await
            .unwrap();
        assert_eq!(&at_session.next().await.unwrap().unwrap()[..], b"media");
    }

    #[test]
    fn an_answers_passive_tcp_candidates_move_to_the_nodes_port() {
        let sdp = "v=0\r\n\
                   a=ice-ufrag:Abc\r\n\
                   a=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\n\
                   a=candidate:2 1 tcp 1671430143 10.0.0.5 45123 typ host tcptype passive\r\n\
                   a=candidate:3 1 tcp 1671430143 10.0.0.5 9 typ host tcptype active\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=candidate:2 1 tcp 1671430143 10.0.0.5 45123 typ host tcptype passive\r\n";
        let node: SocketAddr = "203.0.113.7:7881".parse().unwrap();
        let (answer, ufrag, own) = splice_answer(sdp, node).unwrap();
        assert_eq!(
            (ufrag.as_str(), own),
            ("Abc", "10.0.0.5:45123".parse().unwrap())
        );
        assert_eq!(
            answer,
            "v=0\r\n\
             a=ice-ufrag:Abc\r\n\
             a=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\n\
             a=candidate:2 1 tcp 1671430143 203.0.113.7 7881 typ host tcptype passive\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
             a=candidate:2 1 tcp 1671430143 203.0.113.7 7881 typ host tcptype passive\r\n"
        );
        // Without a passive TCP candidate there is nothing to splice.
        assert!(
            splice_answer(
                "a=ice-ufrag:Abc\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n",
                node
            )
            .is_none()
        );
        assert!(
            splice_answer(
                "a=candidate:2 1 tcp 1 1.2.3.4 5 typ host tcptype passive\r\n",
                node
            )
            .is_none()
        );
    }
}
