//! The HTTP listener: the accept loop that serves the node's router, with limits that keep a
//! client from holding connections open (`--http-*` flags, [`HttpLimits`]; SECURITY.md "HTTP
//! listener limits").
//!
//! Each connection has one deadline at a time, kept by its own [`Deadlines`]:
//!
//! - **Header** (`--http-header-timeout`): from accept, or from the first byte after an idle
//!   wait, until a whole request head has been read. A client that sends half a head, or
//!   connects and says nothing, is closed then (slowloris). It covers HTTP/1 and HTTP/2 and the
//!   version sniffing before either, which hyper's own `header_read_timeout` (HTTP/1 only) does
//!   not.
//! - **Idle** (`--http-idle-timeout`): from the end of the last response until the next request
//!   starts arriving (keep-alive). hyper's `header_read_timeout` cannot be used for either: it
//!   restarts when a keep-alive connection goes idle, so the wait for the next request would be
//!   cut at the header timeout instead.
//! - **None** while a request is in flight (head read, response not yet sent): a handler may
//!   take its time. Its body is bounded on its own: it must arrive within
//!   `--http-body-timeout` of the head ([`DeadlineBody`]), else reading it fails and the
//!   handler answers 400.
//!
//! A semaphore caps the open connections (`--http-max-connections`): over it, a connection is
//! accepted and closed at once (counted in `cascade_http_refused_connections_total`, logged at
//! most once a second) and every other connection is served as before. Shutdown stops accepting,
//! closes connections with no request in flight, lets in-flight requests finish, and returns when
//! every connection has closed.

use crate::obs::metrics::HttpConnections;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the HTTP listener allows a client, from the `--http-*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head must arrive within this from accept, or from its first byte after an
    /// idle wait.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// A request body must arrive within this from its head.
    pub body_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// Raises this process's soft limit of open files to its hard limit, so that the connection cap
/// rather than `EMFILE` is what refuses connections. Logs what it did; never fails.
pub fn raise_nofile_limit(max_connections: usize) {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            match before {
                Some((soft, _)) if soft < now => {
                    tracing::info!(from = soft, to = now, "raised the open-file limit");
                }
                _ => tracing::debug!(limit = now, "open-file limit"),
            }
            // Each connection is one descriptor; media sockets, gRPC and Redis need more.
            if (max_connections as u64).saturating_add(256) > now {
                tracing::warn!(
                    limit = now,
                    max_connections,
                    "the open-file limit is below --http-max-connections: accepting fails \
                     with EMFILE before the cap is reached"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown`, then waits for the open
/// connections to finish their requests and close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: HttpConnections,
    shutdown: CancellationToken,
) {
    // Validation keeps the cap within `u32` (the permits taken back at shutdown).
    let cap = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(cap as usize));
    let mut refusals = Throttle::default();
    let mut accept_errors = Throttle::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            // The client gave up before we took the connection: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            // Out of descriptors or buffers: wait a little rather than spin.
            Err(e) => {
                if let Some(suppressed) = accept_errors.hit() {
                    tracing::warn!(error = %e, suppressed, "HTTP accept failed");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the cap: closed at once, the others keep being served.
            drop(stream);
            metrics.refused.inc();
            if let Some(suppressed) = refusals.hit() {
                tracing::warn!(
                    %peer,
                    max_connections = limits.max_connections,
                    suppressed,
                    "HTTP connection refused: --http-max-connections reached"
                );
            }
            continue;
        };
        let conn = Connection {
            peer,
            app: app.clone(),
            limits,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(async move {
            conn.run(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection task holds a permit until it ends.
    let _ = permits.acquire_many(cap).await;
}

/// Errors of one connection that `accept` reports, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// At most one log line a second; counts the ones left out.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(lines left out since the last one)` when this one should be logged.
    fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    metrics: HttpConnections,
    shutdown: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        self.metrics.open.inc();
        let deadlines = Arc::new(Deadlines::new(self.limits));
        let io = TokioIo::new(Watched {
            inner: stream,
            deadlines: deadlines.clone(),
        });
        let service = ConnService {
            app: self.app,
            peer: self.peer,
            deadlines: deadlines.clone(),
            body_timeout: self.limits.body_timeout,
        };
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        // Ours are the header and idle timeouts (module docs); hyper's would cut keep-alive
        // waits at the header timeout.
        builder.http1().header_read_timeout(None::<Duration>);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            let deadline = deadlines.deadline();
            let changed = deadlines.changed.notified();
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(peer = %self.peer, error = %e, "HTTP connection ended");
                    }
                    break;
                }
                () = sleep_until(deadline) => {
                    if let Some(phase) = deadlines.expired(Instant::now()) {
                        tracing::debug!(peer = %self.peer, phase, "HTTP connection timed out");
                        let counter = match phase {
                            "header" => &self.metrics.header_timeouts,
                            _ => &self.metrics.idle_timeouts,
                        };
                        counter.inc();
                        break;
                    }
                }
                () = changed => {}
                () = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    // In-flight requests finish and idle connections close (hyper's graceful
                    // shutdown); one still waiting for a request head is closed now.
                    conn.as_mut().graceful_shutdown();
                    if deadlines.waiting_for_head() {
                        break;
                    }
                }
            }
        }
        self.metrics.open.dec();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is, and until when it may stay there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head, since accept or since its first byte.
    Head(Instant),
    /// No request in flight and none arriving.
    Idle(Instant),
    /// This many requests in flight (HTTP/2 may have several).
    Busy(usize),
}

/// A connection's deadline, moved by its reads ([`Watched`]) and requests ([`ConnService`]),
/// watched by its task ([`Connection::run`]).
#[derive(Debug)]
struct Deadlines {
    phase: Mutex<Phase>,
    changed: Notify,
    header: Duration,
    idle: Duration,
}

impl Deadlines {
    fn new(limits: HttpLimits) -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now() + limits.header_timeout)),
            changed: Notify::new(),
            header: limits.header_timeout,
            idle: limits.idle_timeout,
        }
    }

    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let next = f(*phase);
        if next != *phase {
            *phase = next;
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: after an idle wait, a request head has begun.
    fn read(&self) {
        self.set(|phase| match phase {
            Phase::Idle(_) => Phase::Head(Instant::now() + self.header),
            other => other,
        });
    }

    /// A request head was read.
    fn request_started(&self) {
        self.set(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
    }

    /// A response was sent (or its request abandoned).
    fn request_ended(&self) {
        self.set(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now() + self.idle),
        });
    }

    fn deadline(&self) -> Option<Instant> {
        match self.get() {
            Phase::Head(at) | Phase::Idle(at) => Some(at),
            Phase::Busy(_) => None,
        }
    }

    fn waiting_for_head(&self) -> bool {
        matches!(self.get(), Phase::Head(_))
    }

    /// The phase whose deadline has passed at `now`, if one has.
    fn expired(&self, now: Instant) -> Option<&'static str> {
        match self.get() {
            Phase::Head(at) if at <= now => Some("header"),
            Phase::Idle(at) if at <= now => Some("idle"),
            _ => None,
        }
    }
}

/// The socket, telling its [`Deadlines`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    deadlines: Arc<Deadlines>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.deadlines.read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The router as one connection's hyper service: adds `ConnectInfo<SocketAddr>` (as
/// `into_make_service_with_connect_info` does), puts a deadline on the request body and marks
/// the request in flight until its response body is done.
#[derive(Clone)]
struct ConnService {
    app: Router,
    peer: SocketAddr,
    deadlines: Arc<Deadlines>,
    body_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<InFlightBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let guard = InFlight::new(self.deadlines.clone());
        let deadline = Instant::now() + self.body_timeout;
        let mut request = request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline,
                sleep: None,
            })
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        Box::pin(async move {
            use tower::ServiceExt;
            let response = app.oneshot(request).await?;
            Ok(response.map(|body| InFlightBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// A request in flight; ends when dropped (with its response body, or with its future if the
/// client left first).
struct InFlight(Arc<Deadlines>);

impl InFlight {
    fn new(deadlines: Arc<Deadlines>) -> Self {
        deadlines.request_started();
        Self(deadlines)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that keeps its request in flight until it is sent.
struct InFlightBody {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for InFlightBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive within `--http-body-timeout` of its head.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the body timeout")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once its deadline passes before its end.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Made on the first wait, so bodies that are already complete cost no timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `at` is `after` from some moment in `from..=to`.
    fn near(at: Option<Instant>, from: Instant, to: Instant, after: Duration) -> bool {
        at.is_some_and(|at| at >= from + after && at <= to + after)
    }

    #[test]
    fn deadlines_follow_the_connection() {
        let limits = HttpLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            ..HttpLimits::default()
        };
        let header = limits.header_timeout;
        let start = Instant::now();
        let d = Deadlines::new(limits);
        let first = d.deadline();
        assert!(near(first, start, Instant::now(), header));
        // Bytes of the first head do not move its deadline.
        d.read();
        assert_eq!(d.deadline(), first);
        assert!(d.waiting_for_head());
        assert_eq!(d.expired(first.unwrap()), Some("header"));
        // Requests in flight: no deadline (HTTP/2 may have several).
        d.request_started();
        d.request_started();
        assert_eq!(d.deadline(), None);
        assert_eq!(d.expired(start + Duration::from_secs(3600)), None);
        d.request_ended();
        assert_eq!(d.deadline(), None);
        let before = Instant::now();
        d.request_ended();
        let idle = d.deadline();
        assert!(near(idle, before, Instant::now(), limits.idle_timeout));
        assert!(!d.waiting_for_head());
        assert_eq!(d.expired(idle.unwrap() - Duration::from_millis(1)), None);
        assert_eq!(d.expired(idle.unwrap()), Some("idle"));
        // The next request's first byte: its head gets the header timeout from then.
        let before = Instant::now();
        d.read();
        assert!(near(d.deadline(), before, Instant::now(), header));
        assert!(d.waiting_for_head());
    }

    #[test]
    fn the_log_is_throttled() {
        let mut t = Throttle::default();
        assert_eq!(t.hit(), Some(0));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit(), None);
        t.last = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(t.hit(), Some(2));
    }
}
